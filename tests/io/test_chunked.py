"""write_chunks: CSV appended, Parquet row groups, atomic, the disk checked after one chunk."""

from __future__ import annotations

import shutil
from collections import namedtuple

import pandas as pd
import pyarrow.parquet as pq
import pytest

from clinsynth.errors import DataError
from clinsynth.io._chunked import write_chunks


def _frames(n_chunks=3, rows=4, fail_at=None):
    for i in range(n_chunks):
        if i == fail_at:
            raise RuntimeError("boom")
        start = i * rows
        yield pd.DataFrame(
            {
                "x": range(start, start + rows),
                "y": [f"v{j}" for j in range(start, start + rows)],
                "z": [0.5 * j for j in range(start, start + rows)],
            }
        )


@pytest.mark.parametrize("suffix", ["csv", "parquet", "tsv"])
def test_chunks_make_one_table(tmp_path, suffix):
    out = tmp_path / f"t.{suffix}"
    calls = []
    rows = write_chunks(_frames(), out, num_rows=12, progress=lambda *a: calls.append(a))
    expected = pd.concat(_frames(), ignore_index=True)
    if suffix == "parquet":
        got = pd.read_parquet(out)
        assert pq.ParquetFile(out).num_row_groups == 3
    else:
        got = pd.read_csv(out, sep="\t" if suffix == "tsv" else ",")
    assert rows == 12
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert [c[:2] for c in calls] == [(12, 4), (12, 8), (12, 12)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_a_failure_leaves_nothing_and_keeps_the_old_file(tmp_path, suffix):
    out = tmp_path / f"t.{suffix}"
    out.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        write_chunks(_frames(fail_at=2), out, num_rows=12)
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_the_rest_must_fit_on_the_disk(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**6, 10**6 - 100, 100))
    out = tmp_path / "t.csv"
    with pytest.raises(DataError, match=r"Writing 1,000,000 rows to .* needs about .* only 100"):
        write_chunks(_frames(), out, num_rows=1_000_000)
    assert list(tmp_path.iterdir()) == []


def test_excel_is_not_written_in_chunks(tmp_path):
    with pytest.raises(DataError, match=r"chunk by chunk: give a \.csv, \.tsv or \.parquet"):
        write_chunks(_frames(), tmp_path / "t.xlsx", num_rows=12)
