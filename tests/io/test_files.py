import numpy as np
import pandas as pd
import pytest

from clinsynth.errors import DataError
from clinsynth.io import atomic_path, load_csvs, read_table, write_table, write_tables


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".parquet"])
def test_round_trip_keeps_types(tmp_path, suffix):
    df = pd.DataFrame(
        {
            "age": [34, 51, 67],
            "weight": [70.5, np.nan, 88.25],
            "sex": ["F", "M", None],
            "flag": [True, False, True],
        }
    )
    path = write_table(df, tmp_path / f"t{suffix}")
    back = read_table(path)
    assert list(back.columns) == list(df.columns)
    assert back["age"].dtype.kind == "i"
    assert back["weight"].isna().tolist() == [False, True, False]
    assert back["weight"].iloc[2] == 88.25
    assert back["sex"].iloc[2] is None or pd.isna(back["sex"].iloc[2])
    assert back["flag"].dtype == bool


def test_semicolon_and_cp1252(tmp_path):
    path = tmp_path / "euro.csv"
    path.write_bytes("name;city\nJos\xe9;M\xfcnchen\nAnn;Z\xfcrich\n".encode("cp1252"))
    df = read_table(path)
    assert df.shape == (2, 2)
    assert df["city"].tolist() == ["München", "Zürich"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"a,b\n", "no data rows"),
        (b"\x00\x01\x02\x03binary\x00", "binary"),
        (b"a,b,a\n1,2,3\n", "duplicate column names"),
        (
            b"<html><body>not a table at all but a page someone saved</body></html>\n<p>x</p>\n",
            "does not look like a table",
        ),
    ],
)
def test_bad_files_have_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        read_table(path)
    assert "bad.csv" in str(info.value)


def test_missing_file_and_wrong_type(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(DataError, match="unsupported type"):
        read_table(tmp_path / "x.json")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="Parquet"):
        read_table(tmp_path / "broken.parquet")
    (tmp_path / "broken.xlsx").write_bytes(b"PK not really a workbook")
    with pytest.raises(DataError, match="Excel"):
        read_table(tmp_path / "broken.xlsx")


def test_failed_write_leaves_previous_file_intact(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_folder_of_csvs(tmp_path):
    tables = {"a": pd.DataFrame({"x": [1, 2]}), "b": pd.DataFrame({"y": ["u", "v"]})}
    write_tables(tables, tmp_path / "schema")
    back = load_csvs(tmp_path / "schema")
    assert sorted(back) == ["a", "b"]
    assert back["a"]["x"].tolist() == [1, 2]
    with pytest.raises(DataError, match="no .csv files"):
        load_csvs(tmp_path / "schema" / ".." / "schema" / "..")


def test_written_files_get_normal_permissions(tmp_path):
    import os

    path = write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.csv")
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
