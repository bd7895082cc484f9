"""Optional stacks are extras: without one, the error names the extra to install."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from clinsynth.cli import main
from clinsynth.errors import ClinsynthError, MissingDependencyError


@pytest.fixture
def without(monkeypatch):
    """Make ``import name`` fail as it does when the package is not installed."""

    def block(*names: str) -> None:
        for name in names:
            for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
                monkeypatch.delitem(sys.modules, loaded)
            monkeypatch.setitem(sys.modules, name, None)

    return block


def test_excel_without_openpyxl_names_the_extra(tmp_path, without):
    from clinsynth.io import read_table, write_table

    without("openpyxl")
    with pytest.raises(MissingDependencyError, match=r"pip install clinsynth\[excel\]"):
        write_table(pd.DataFrame({"a": [1, 2]}), tmp_path / "t.xlsx")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "t.xlsx").write_bytes(b"PK\x03\x04")
    with pytest.raises(MissingDependencyError, match=r"clinsynth\[excel\]") as info:
        read_table(tmp_path / "t.xlsx")
    assert isinstance(info.value, ClinsynthError) and isinstance(info.value, ImportError)


@pytest.mark.parametrize(
    ("blocked", "url", "extra"),
    [
        ("sqlalchemy", "duckdb:///{tmp}/db.duckdb", "sql"),
        ("duckdb_engine", "duckdb:///{tmp}/db.duckdb", "sql"),
        ("psycopg2", "postgresql+psycopg2://u:secret@127.0.0.1:1/db", "postgres"),
    ],
)
def test_sql_without_its_driver_names_the_extra(tmp_path, without, blocked, url, extra):
    from clinsynth.io import write_sql_schema

    without(blocked)
    url = url.format(tmp=tmp_path)
    with pytest.raises(MissingDependencyError, match=rf"pip install clinsynth\[{extra}\]") as info:
        write_sql_schema({"t": pd.DataFrame({"a": [1, 2]})}, url)
    assert "secret" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_cli_without_an_extra_is_one_line(tmp_path, without, capsys):
    without("streamlit")
    assert main(["dashboard", "--port", "8599"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install clinsynth[dashboard]" in err[0]


def test_an_error_inside_an_installed_package_is_not_disguised(monkeypatch):
    """Only the package's own absence is reported as a missing extra."""
    from clinsynth._extras import require

    def broken(name, *args, **kwargs):
        raise ModuleNotFoundError("No module named 'something_else'", name="something_else")

    monkeypatch.setattr("importlib.import_module", broken)
    with pytest.raises(ModuleNotFoundError, match="something_else"):
        require("openpyxl", "Reading Excel")


def test_core_install_needs_no_extra_for_the_whole_job(tmp_path, without, capsys):
    """simulate, fit, sample, evaluate and the HTML report: the core alone."""
    without("streamlit", "sqlalchemy", "duckdb", "duckdb_engine", "psycopg2", "openpyxl", "umap")
    assert main(["demo", "--rows", "300", "--output", tmp_path / "demo"]) == 0
    assert (tmp_path / "demo" / "report.html").exists()


def test_dask_sampling_without_distributed_names_the_extra(tmp_path, without, capsys):
    """The API and ``clinsynth sample --scheduler`` both name clinsynth[dask]."""
    from clinsynth import GaussianCopulaSynthesizer
    from clinsynth.synthesizers._dask import sample_to_parquet
    from conftest import make_mixed_metadata, make_mixed_table

    model = GaussianCopulaSynthesizer(make_mixed_metadata(), random_state=0)
    model.fit(make_mixed_table(60)).save(tmp_path / "model")
    without("distributed")
    with pytest.raises(MissingDependencyError, match=r"pip install clinsynth\[dask\]"):
        sample_to_parquet(model, 10, tmp_path / "parts", client=None)
    args = ["sample", str(tmp_path / "model"), "-n", "10", "-o", str(tmp_path / "parts")]
    assert main([*args, "--scheduler", "tcp://127.0.0.1:8786"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install clinsynth[dask]" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
