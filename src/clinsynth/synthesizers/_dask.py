"""Sampling on a Dask cluster (``clinsynth[dask]``): one Parquet part per partition.

The run is the streamed run of :mod:`clinsynth.synthesizers._stream` cut into partitions of
whole blocks: partition ``p`` makes blocks ``p * k`` to ``p * k + k - 1`` from the run's seed
alone, so the same seed gives the same rows on one worker or fifty, and whatever the order in
which the workers finish.

* The model travels as its safe bundle (the zip of JSON documents and tensors that ``save``
  writes, loaded with ``torch.load(weights_only=True)``), broadcast once to every worker and
  loaded once per worker process; the model object is never pickled.
* The output folder is made as a hidden temporary sibling; each worker writes its part there
  atomically (``part-00003.parquet``, renamed when complete). When every part is in, the
  driver writes ``_SUCCESS`` (a JSON manifest: rows, seed, parts) last and renames the folder
  into place. A run that fails (a part that raises, workers that die, a lost scheduler) removes
  the temporary folder: nothing is left under the output's name.
* A part whose worker dies is run again on another worker by Dask (same seed, same rows); when
  the workers keep dying (Dask's ``distributed.scheduler.allowed-failures``), the run fails.

The workers need clinsynth installed, and the output folder must be on a file system that the
driver and every worker see at the same path.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clinsynth._utils import ProgressCallback, derive_seed, report
from clinsynth.errors import DataError, SamplingError, check_param
from clinsynth.synthesizers import _stream

if TYPE_CHECKING:
    from clinsynth.synthesizers._base import BaseSynthesizer

#: Written last, in the output folder: the run's manifest (a complete set of parts).
SUCCESS = "_SUCCESS"
#: Default rows of one partition (16 blocks, about a million rows).
PARTITION_ROWS = 16 * _stream.BLOCK_ROWS
#: The model loaded in this (worker) process: ``(digest, model)``.
_LOADED: dict[str, Any] = {}


def is_parts_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder of parts written by :func:`sample_to_parquet`."""
    return Path(path).is_dir() and (Path(path) / SUCCESS).is_file()


def model_bytes(synth: BaseSynthesizer) -> bytes:
    """The model as the bytes of its zip bundle (what ``synth.save("m.zip")`` writes)."""
    with tempfile.TemporaryDirectory(prefix="clinsynth-bundle-") as folder:
        path = Path(folder) / "model.zip"
        synth.save(path)
        return path.read_bytes()


def _model(raw: bytes, digest: str) -> BaseSynthesizer:
    """The model of bundle bytes ``raw``, loaded once per process (checked like any bundle)."""
    from clinsynth.synthesizers._base import BaseSynthesizer

    if digest not in _LOADED:
        _LOADED.clear()
        with tempfile.TemporaryDirectory(prefix="clinsynth-bundle-") as folder:
            path = Path(folder) / "model.zip"
            path.write_bytes(raw)
            _LOADED[digest] = BaseSynthesizer.load(path)
    return _LOADED[digest]


def write_part(
    raw: bytes,
    digest: str,
    *,
    seed: int,
    num_rows: int,
    first: int,
    stop: int,
    folder: str,
    index: int,
    conditions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Make blocks ``first`` to ``stop - 1`` of the run and write them to
    ``folder/part-<index>.parquet`` (atomically); runs on a worker. Returns its manifest entry."""
    from clinsynth.io._chunked import write_chunks

    where = Path(folder)
    if not where.is_dir():  # the driver gave the run up and removed it: do not recreate it
        raise SamplingError(
            f"The output folder '{folder}' of the run is gone; part {index} not made."
        )
    synth = _model(raw, digest)
    rows = min(stop * _stream.BLOCK_ROWS, num_rows) - first * _stream.BLOCK_ROWS
    # One thread per task: the cluster's parallelism is its workers' threads.
    blocks = _stream.iter_blocks(
        synth, num_rows, seed, first=first, stop=stop, conditions=conditions, threads=1
    )
    target = where / f"part-{index:05d}.parquet"
    written = write_chunks(
        _stream.rechunk(blocks, _stream.DEFAULT_BATCH_ROWS), target, num_rows=rows
    )
    return {"part": target.name, "rows": written, "bytes": target.stat().st_size}


def _partitions(num_rows: int, partition_rows: int) -> list[tuple[int, int]]:
    """``(first block, stop block)`` of each partition.

    >>> _partitions(3 * _stream.BLOCK_ROWS + 5, 2 * _stream.BLOCK_ROWS)
    [(0, 2), (2, 4)]
    """
    per = max(1, -(-int(partition_rows) // _stream.BLOCK_ROWS))
    total = _stream.num_blocks(num_rows)
    return [(a, min(a + per, total)) for a in range(0, total, per)]


def connect(address: str, timeout: float = 10.0) -> Any:
    """A ``distributed.Client`` of the scheduler at ``address``, or a clear error."""
    from clinsynth._extras import require

    distributed = require("distributed", "Sampling on a Dask cluster (--scheduler)")
    try:
        return distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise SamplingError(
            f"Cannot reach the Dask scheduler at '{address}' ({reason}). Start it (dask "
            "scheduler), check the address (tcp://host:8786) and that this machine can reach it."
        ) from None


def sample_to_parquet(
    synth: BaseSynthesizer,
    num_rows: int,
    output: str | Path,
    *,
    client: Any,
    seed: int | None = None,
    partition_rows: int = PARTITION_ROWS,
    conditions: dict[str, Any] | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Sample ``num_rows`` rows on the Dask cluster of ``client`` into a folder of Parquet parts.

    Parameters
    ----------
    synth : BaseSynthesizer
        A fitted single-table model.
    num_rows : int
    output : str or Path
        The folder to make (replaced as a whole if it holds an earlier run's parts).
    client : distributed.Client
    seed : int, optional
        The run's seed; None draws one from the model's sampling stream.
    partition_rows : int
        Rows per partition (one task, one part), rounded up to whole blocks of 65,536 rows.
    conditions : dict, optional
        As in ``sample``.
    progress : callable, optional
        ``progress(total, completed, message)`` as parts finish (in rows).

    Returns
    -------
    dict
        The manifest written to ``output/_SUCCESS``.

    Raises
    ------
    SamplingError
        When workers die, or the cluster is lost, before every part is made (nothing is left
        under ``output``).
    """
    from clinsynth._extras import require
    from clinsynth.io._atomic import atomic_path, atomic_write_text

    distributed = require("distributed", "Sampling on a Dask cluster")
    _stream.check_batch_args(num_rows, partition_rows, seed, "sample_to_parquet")
    check_param("sample_to_parquet", "num_rows", num_rows, num_rows >= 1, "an int >= 1")
    _stream.check_streamable(synth)
    output = Path(output)
    if output.exists() and not (output.is_dir() and (is_parts_folder(output) or _empty(output))):
        raise DataError(
            f"The output '{output}' exists and is not a folder of parts made by clinsynth; it "
            "would be replaced as a whole. Give a new or empty folder."
        )
    seed = derive_seed(synth._sample_rng_) if seed is None else int(seed)
    raw = model_bytes(synth)
    digest = hashlib.sha256(raw).hexdigest()
    ranges = _partitions(num_rows, partition_rows)
    start = time.perf_counter()
    with atomic_path(output, directory=True) as tmp:
        parts = _run(
            distributed, client, raw, digest, ranges, seed, num_rows, tmp, conditions, progress
        )
        manifest = {
            "format": "clinsynth-parts",
            "model": type(synth).__name__,
            "rows": int(sum(p["rows"] for p in parts)),
            "seed": seed,
            "block_rows": _stream.BLOCK_ROWS,
            "columns": list(synth._transformer_.column_names),
            "parts": parts,
            "seconds": round(time.perf_counter() - start, 3),
        }
        if manifest["rows"] != num_rows:
            raise SamplingError(
                f"The parts hold {manifest['rows']:,} rows, not the {num_rows:,} asked for; "
                "nothing was kept. Run again."
            )
        atomic_write_text(tmp / SUCCESS, json.dumps(manifest, indent=1) + "\n")
    return manifest


def _empty(folder: Path) -> bool:
    return not any(folder.iterdir())


def _run(
    distributed: Any,
    client: Any,
    raw: bytes,
    digest: str,
    ranges: list[tuple[int, int]],
    seed: int,
    num_rows: int,
    folder: Path,
    conditions: dict[str, Any] | None,
    progress: ProgressCallback | None,
) -> list[dict[str, Any]]:
    """Submit one task per partition and collect their manifest entries, in part order."""
    try:
        shared = client.scatter(raw, broadcast=True, hash=False)
        futures = [
            client.submit(
                write_part,
                shared,
                digest,
                seed=seed,
                num_rows=num_rows,
                first=a,
                stop=b,
                folder=str(folder),
                index=i,
                conditions=conditions,
                pure=False,
            )
            for i, (a, b) in enumerate(ranges)
        ]
    except (OSError, TimeoutError) as exc:
        raise _lost(exc) from None
    order = {f.key: i for i, f in enumerate(futures)}
    results: dict[int, dict[str, Any]] = {}
    done_rows = 0
    try:
        for future in distributed.as_completed(futures):
            entry = future.result()
            results[order[future.key]] = entry
            done_rows += entry["rows"]
            report(progress, num_rows, done_rows, f"{len(results)}/{len(futures)} parts")
    except distributed.KilledWorker as exc:
        raise SamplingError(
            f"Dask workers died while making the parts ({_short(exc)}); the run was stopped "
            "and no part was kept. Check the workers' memory (each holds about a partition) "
            "and logs, then run again."
        ) from None
    except (OSError, TimeoutError) as exc:
        raise _lost(exc) from None
    finally:
        with contextlib.suppress(Exception):
            client.cancel([f for f in futures if not f.done()])
    return [results[i] for i in range(len(futures))]


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__


def _lost(exc: BaseException) -> SamplingError:
    return SamplingError(
        f"Lost the Dask cluster while sampling ({_short(exc)}); no part was kept. Check the "
        "scheduler and workers, then run again."
    )
