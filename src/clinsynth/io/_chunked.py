"""Write a table that arrives in chunks (a stream of DataFrames) to one file, atomically.

CSV chunks are appended under one header; Parquet chunks become row groups of one file (pyarrow's
``ParquetWriter``, the first chunk's schema for every row group). The file is written to a
temporary sibling and renamed over the target only once the last chunk is in: a run that fails
or is interrupted leaves no partial file under the target's name (:mod:`clinsynth.io._atomic`).

After the first chunk, the bytes it took on disk give the bytes per row, and the rest of the run
is checked against the free space of the output's file system before going on.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from clinsynth.errors import DataError
from clinsynth.io._atomic import atomic_path
from clinsynth.io._formats import format_of
from clinsynth.io._limits import check_disk, count

#: Formats that can be written chunk by chunk.
CHUNKED_FORMATS = ("csv", "tsv", "parquet")
#: Margin on the measured bytes per row (later chunks compress a little differently).
_DISK_MARGIN = 1.1


def can_write_chunks(path: str | os.PathLike) -> bool:
    """Whether ``path``'s format is written chunk by chunk (CSV, TSV, Parquet)."""
    fmt = format_of(path, writing=True)
    return fmt is not None and fmt.name in CHUNKED_FORMATS


class _TextSink:
    def __init__(self, path: Path, sep: str) -> None:
        self._file = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        self._sep = sep
        self._header = True

    def write(self, df: pd.DataFrame) -> None:
        df.to_csv(self._file, index=False, header=self._header, sep=self._sep)
        self._header = False

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class _ParquetSink:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._writer: Any = None
        self._schema: Any = None

    def write(self, df: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._writer is None:
            table = pa.Table.from_pandas(df, preserve_index=False)
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self._path, self._schema)
        else:
            try:
                table = pa.Table.from_pandas(df, schema=self._schema, preserve_index=False)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                raise DataError(
                    f"Cannot write a chunk of {len(df):,} rows to '{self._path.name}': its "
                    f"columns do not fit the types of the first chunk ({exc}). Sample in one "
                    "chunk (a larger batch size) or write CSV."
                ) from None
        self._writer.write_table(table, row_group_size=max(len(df), 1))

    def flush(self) -> None:
        """Nothing to do: each row group goes to the file when it is written."""

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _sink(fmt_name: str, path: Path) -> _TextSink | _ParquetSink:
    if fmt_name == "parquet":
        return _ParquetSink(path)
    return _TextSink(path, "\t" if fmt_name == "tsv" else ",")


def write_chunks(
    chunks: Iterable[pd.DataFrame],
    path: str | os.PathLike,
    *,
    num_rows: int,
    progress: Callable[[int, int, str], None] | None = None,
) -> int:
    """Write ``chunks`` (DataFrames with the same columns) to ``path``; returns the rows written.

    Parameters
    ----------
    chunks : iterable of DataFrame
    path : str or path-like
        A ``.csv``, ``.tsv`` or ``.parquet`` file, replaced atomically at the end.
    num_rows : int
        The rows the chunks add up to: for the progress and the disk check.
    progress : callable, optional
        ``progress(total, completed, message)`` after each chunk.

    Raises
    ------
    DataError
        For another format, or when the rows still to write would not fit on the disk
        (checked after the first chunk, from the bytes it took).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> frames = (pd.DataFrame({"a": [i, i + 1]}) for i in (0, 2))
    >>> write_chunks(frames, out, num_rows=4), out.read_text().split()
    (4, ['a', '0', '1', '2', '3'])
    """
    written = 0
    with chunk_file(path, num_rows=num_rows) as out:
        for chunk in chunks:
            written = out.write(chunk)
            if progress is not None:
                progress(num_rows, written, f"{count(written)} rows")
    return written


class ChunkFile:
    """The open file of :func:`chunk_file`: ``write(chunk)`` returns the rows written so far;
    ``close()`` finishes the file (its footer, for Parquet) before it is renamed."""

    def __init__(self, path: Path, tmp: Path, fmt_name: str, num_rows: int) -> None:
        self._path, self._tmp, self._num_rows = path, tmp, num_rows
        self._sink = _sink(fmt_name, tmp)
        self.written = 0

    def write(self, chunk: pd.DataFrame) -> int:
        self._sink.write(chunk)
        self.written += len(chunk)
        if self.written == len(chunk) and self.written < self._num_rows:
            self._sink.flush()
            _check_rest(self._path, self._tmp, self.written, self._num_rows)
        return self.written

    def close(self) -> None:
        self._sink.close()


@contextlib.contextmanager
def chunk_file(path: str | os.PathLike, *, num_rows: int) -> Iterator[ChunkFile]:
    """A ``.csv``, ``.tsv`` or ``.parquet`` file written chunk by chunk (``out.write(chunk)``)
    to a temporary sibling, renamed over ``path`` when the block ends without an error (else
    removed). ``num_rows`` is the rows expected, for the disk check after the first chunk.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> with chunk_file(target, num_rows=2) as out:
    ...     out.write(pd.DataFrame({"a": [1, 2]}))
    2
    >>> target.read_text().split()
    ['a', '1', '2']
    """
    path = Path(path)
    fmt = format_of(path, writing=True)
    if fmt is None or fmt.name not in CHUNKED_FORMATS:
        raise DataError(
            f"Cannot write '{path}' chunk by chunk: give a .csv, .tsv or .parquet file (an "
            "Excel sheet is written whole)."
        )
    with atomic_path(path) as tmp:
        out = ChunkFile(path, tmp, fmt.name, num_rows)
        try:
            yield out
        finally:
            out.close()


def _check_rest(path: Path, tmp: Path, written: int, num_rows: int) -> None:
    """Refuse to go on when the rows left, at the bytes per row measured so far, would not
    fit on the disk."""
    size = tmp.stat().st_size
    if size <= 0:
        return
    needed = size / written * (num_rows - written) * _DISK_MARGIN
    check_disk(path, needed, f"Writing {count(num_rows)} rows to '{path}'")
