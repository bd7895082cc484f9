"""Sampling in fixed blocks: bounded memory, and the same rows whatever the chunking.

A run of ``num_rows`` rows from ``seed`` is cut into blocks of :data:`BLOCK_ROWS` rows (the last
one shorter). Block ``i`` draws from its own generator, ``SeedSequence(seed, spawn_key=(i,))``,
and holds rows ``i * BLOCK_ROWS`` onwards, so:

* the chunks a caller asks for (:func:`sample_batches`) only group or cut blocks: the same seed
  gives the same rows whatever the chunk size;
* a process (a Dask worker) can make any range of blocks alone: the same seed gives the same
  rows on one worker or fifty;
* each block is made by the model's usual path (rules by rejection, conditions, refinement),
  so every chunk meets them;
* generated keys continue across blocks: block ``i``'s sequential identifiers are shifted by its
  first row (:meth:`~clinsynth.transform.TableTransformer.shift_ids`), so they stay unique.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clinsynth._utils import one_openmp_thread
from clinsynth.errors import ParameterError, check_param

if TYPE_CHECKING:
    from clinsynth.synthesizers._base import BaseSynthesizer

#: Rows of one block, the unit of randomness (fixed: changing it changes every streamed row).
BLOCK_ROWS = 65_536
#: Default rows per chunk handed out by :func:`sample_batches` (four blocks).
DEFAULT_BATCH_ROWS = 4 * BLOCK_ROWS


def num_blocks(num_rows: int) -> int:
    """Blocks that ``num_rows`` rows take.

    >>> num_blocks(1), num_blocks(BLOCK_ROWS), num_blocks(BLOCK_ROWS + 1)
    (1, 1, 2)
    """
    return -(-int(num_rows) // BLOCK_ROWS)


def block_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of block ``index`` of a run seeded ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(index),)))


def check_streamable(synth: BaseSynthesizer) -> None:
    """Raise a :class:`~clinsynth.errors.ParameterError` for a model that cannot stream."""
    synth._check_fitted()
    if getattr(synth, "_sequential", False):
        raise ParameterError(
            f"{type(synth).__name__} makes whole patients' sequences, which are not cut into "
            "row blocks: use sample(num_sequences) for it."
        )


def sample_block(
    synth: BaseSynthesizer,
    seed: int,
    index: int,
    num_rows: int,
    *,
    conditions: dict[str, Any] | None = None,
    max_tries_per_batch: int = 100,
) -> pd.DataFrame:
    """Block ``index`` of a run of ``num_rows`` rows seeded ``seed`` (its rows only).

    The model is only read (its own sampling stream is not used): threads may make blocks side
    by side.
    """
    start = int(index) * BLOCK_ROWS
    size = min(BLOCK_ROWS, int(num_rows) - start)
    if size <= 0:
        raise ParameterError(
            f"Block {index} is past the end of a run of {num_rows:,} rows "
            f"({num_blocks(num_rows)} blocks)."
        )
    rng = block_rng(seed, index)
    if conditions:
        from clinsynth.synthesizers._conditions import sample_with_conditions

        df = sample_with_conditions(synth, size, conditions, max_tries_per_batch, rng)
    else:
        df = synth._sample_rows(size, rng)
    if start:
        df = synth._transformer_.shift_ids(df, start)
    return df


def iter_blocks(
    synth: BaseSynthesizer,
    num_rows: int,
    seed: int,
    *,
    first: int = 0,
    stop: int | None = None,
    conditions: dict[str, Any] | None = None,
    max_tries_per_batch: int = 100,
    threads: int | None = None,
) -> Iterator[pd.DataFrame]:
    """Blocks ``first`` to ``stop - 1`` (default: to the end) of a run of ``num_rows`` rows,
    in order.

    ``threads`` blocks are made side by side (numpy and torch release the GIL in their bulk
    work), at most ``threads + 1`` held at once; each block has its own generator, so the rows
    do not depend on the threads.
    """
    stop = num_blocks(num_rows) if stop is None else min(int(stop), num_blocks(num_rows))
    indices = range(int(first), stop)
    threads = sampling_threads() if threads is None else max(int(threads), 1)

    def make(index: int) -> pd.DataFrame:
        return sample_block(
            synth,
            seed,
            index,
            num_rows,
            conditions=conditions,
            max_tries_per_batch=max_tries_per_batch,
        )

    if threads == 1 or len(indices) <= 1:
        yield from map(make, indices)
        return

    def make_alone(index: int) -> pd.DataFrame:
        # The blocks are the parallelism: each thread's torch and OpenMP work on one core
        # (OpenMP's thread count is per calling thread; idle OpenMP workers spin for work).
        with one_openmp_thread():
            return make(index)

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="clinsynth-block") as pool:
        pending: deque[Future[pd.DataFrame]] = deque()
        try:
            for index in indices:
                pending.append(pool.submit(make_alone, index))
                if len(pending) > threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def sampling_threads() -> int:
    """Threads that make blocks side by side: the CPUs this process may use, at most 4."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4))


def rechunk(blocks: Iterator[pd.DataFrame], batch_size: int) -> Iterator[pd.DataFrame]:
    """Regroup a stream of frames into frames of exactly ``batch_size`` rows (the last may be
    shorter), each with a fresh 0-based index.

    >>> frames = iter([pd.DataFrame({"a": range(3)}), pd.DataFrame({"a": range(3, 5)})])
    >>> [len(f) for f in rechunk(frames, 2)]
    [2, 2, 1]
    """
    pending: list[pd.DataFrame] = []
    have = 0
    for block in blocks:
        offset = 0
        while offset < len(block):
            take = min(batch_size - have, len(block) - offset)
            whole = offset == 0 and take == len(block)
            pending.append(block if whole else block.iloc[offset : offset + take])
            have += take
            offset += take
            if have == batch_size:
                yield _joined(pending)
                pending, have = [], 0
    if have:
        yield _joined(pending)


def _joined(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if len(frames) == 1:
        return frames[0].reset_index(drop=True)
    return pd.concat(frames, ignore_index=True)


def check_batch_args(
    num_rows: Any, batch_size: Any, seed: Any, owner: str = "sample_batches"
) -> None:
    """The standard parameter errors of :func:`sample_batches` (or ``owner``)."""

    def _int(value: Any, low: int) -> bool:
        return isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= low

    check_param(owner, "num_rows", num_rows, _int(num_rows, 0), "an int >= 0")
    check_param(owner, "batch_size", batch_size, _int(batch_size, 1), "an int >= 1")
    ok = seed is None or _int(seed, 0)
    check_param(owner, "seed", seed, ok, "None or an int >= 0")


def sample_batches(
    synth: BaseSynthesizer,
    num_rows: int,
    *,
    batch_size: int = DEFAULT_BATCH_ROWS,
    seed: int,
    conditions: dict[str, Any] | None = None,
    max_tries_per_batch: int = 100,
) -> Iterator[pd.DataFrame]:
    """``num_rows`` rows from ``synth`` as chunks of ``batch_size`` rows (see the module)."""
    from clinsynth.synthesizers._limits import check_sample_size

    check_sample_size(synth, min(int(num_rows), max(int(batch_size), BLOCK_ROWS)))
    blocks = iter_blocks(
        synth,
        int(num_rows),
        int(seed),
        conditions=conditions,
        max_tries_per_batch=max_tries_per_batch,
    )
    yield from rechunk(blocks, int(batch_size))
