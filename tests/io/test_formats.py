"""The table of file formats drives reading, writing, folders and the messages."""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest

from clinsynth.errors import DataError
from clinsynth.io import FORMATS, format_of, get_format, read_table, write_table, write_tables
from clinsynth.io._formats import folder_formats, listed_suffixes, writable_suffixes

_DF = pd.DataFrame({"id": [1, 2, 3], "age": [40.5, 51.0, 63.25], "sex": ["F", "M", "F"]})
_NEEDS = {"xlsx": "openpyxl", "parquet": "pyarrow"}


def _skip_without(fmt) -> None:
    module = _NEEDS.get(fmt.name)
    if module and importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")


@pytest.mark.parametrize(
    ("fmt", "suffix"), [(f, s) for f in FORMATS for s in f.writes], ids=lambda v: str(v)
)
def test_every_written_suffix_reads_back(tmp_path, fmt, suffix):
    _skip_without(fmt)
    path = tmp_path / f"table{suffix}"
    write_table(_DF, path)
    assert format_of(path) is fmt and format_of(path, writing=True) is fmt
    pd.testing.assert_frame_equal(read_table(path), _DF, check_dtype=False)


def test_read_only_suffixes_are_refused_for_writing(tmp_path):
    read_only = [s for f in FORMATS for s in f.suffixes if s not in f.writes]
    assert read_only  # .txt, .xls
    for suffix in read_only:
        assert format_of(f"t{suffix}") is not None
        with pytest.raises(DataError, match=r"Use \.csv, \.xlsx or \.parquet"):
            write_table(_DF, tmp_path / f"t{suffix}")


def test_unknown_suffix_and_no_suffix():
    assert format_of("t.json") is None and format_of("t.json", writing=True) is None
    assert format_of("table").name == "csv"  # read as CSV
    assert format_of("table", writing=True) is None
    assert listed_suffixes() == ".csv, .xlsx or .parquet"
    assert set(writable_suffixes()) >= {".csv", ".tsv", ".xlsx", ".parquet", ".pq"}


@pytest.mark.parametrize("name", folder_formats())
def test_folder_formats_write_one_file_per_table(tmp_path, name):
    fmt = get_format(name)
    _skip_without(fmt)
    write_tables({"a": _DF, "b": _DF}, tmp_path / "out", file_format=name)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"a{fmt.writes[0]}",
        f"b{fmt.writes[0]}",
    ]


def test_a_format_without_folder_support_is_refused_for_folders(tmp_path):
    with pytest.raises(DataError, match="Use 'csv' or 'parquet'"):
        write_tables({"a": _DF}, tmp_path / "out", file_format="xlsx")
