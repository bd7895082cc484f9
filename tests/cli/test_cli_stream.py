"""clinsynth sample in chunks: same file whatever --batch-size, -n checked, one-line errors."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from clinsynth import GaussianCopulaSynthesizer
from clinsynth.cli import main
from clinsynth.synthesizers import _stream
from conftest import make_mixed_metadata, make_mixed_table


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "model"
    model = GaussianCopulaSynthesizer(make_mixed_metadata(), random_state=0)
    model.fit(make_mixed_table(150)).save(path)
    return path


def run(args, capsys):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_chunked_file_is_the_same_whatever_the_batch_size(
    model_path, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(_stream, "BLOCK_ROWS", 100)
    frames = []
    for size in (64, 1000):
        out = tmp_path / f"s{size}.parquet"
        args = ["sample", model_path, "-n", 330, "--seed", 3, "--batch-size", size, "-o", out]
        code, stdout, err = run([*args, "-q"], capsys)
        assert code == 0, err
        assert "Generated 330 rows" in stdout
        frames.append(pd.read_parquet(out))
    pd.testing.assert_frame_equal(frames[0], frames[1])
    code, _, err = run(
        ["sample", model_path, "-n", 330, "--seed", 3, "-o", tmp_path / "s.csv"], capsys
    )
    assert code == 0, err
    csv = pd.read_csv(tmp_path / "s.csv")
    assert len(csv) == 330 and csv["pid"].tolist() == frames[0]["pid"].tolist()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv", "s1000.parquet", "s64.parquet"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["-n", "0", "-o", "{d}/o.csv"],
            r"The '-n/--num-rows' option must be an int >= 1\. Got 0\.",
        ),
        (["-n", "-5", "-o", "{d}/o.csv"], r"must be an int >= 1\. Got -5\."),
        (["-n", "5", "--batch-size", "0", "-o", "{d}/o.csv"], "'--batch-size' option must be"),
        (["-n", "5", "--scheduler", "tcp://127.0.0.1:1", "-o", "{d}/o.parquet"], "-o FOLDER"),
        (["-n", "10000000000000", "-o", "{d}/o.parquet"], r"needs about .* of disk"),
    ],
)
def test_bad_input_is_one_line(model_path, tmp_path, capsys, extra, message):
    args = ["sample", model_path, *[a.format(d=tmp_path) for a in extra]]
    code, _, err = run(args, capsys)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.search(message, err), err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["duckdb", "sqlite"])
def test_sql_output_streams_the_same_rows_in_one_table(
    model_path, tmp_path, capsys, monkeypatch, kind
):
    import sqlalchemy as sa

    monkeypatch.setattr(_stream, "BLOCK_ROWS", 100)
    url = f"{kind}:///{tmp_path / 'syn.db'}"
    args = ["sample", model_path, "-n", 330, "--seed", 3, "--batch-size", 64, "-q"]
    code, stdout, err = run([*args, "--sql", url], capsys)
    assert code == 0, err
    assert "Generated 330 rows" in stdout
    code, _, err = run([*args, "-o", tmp_path / "s.parquet"], capsys)
    assert code == 0, err
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            back = pd.read_sql_query(sa.text(f'SELECT * FROM "{names[0]}"'), conn)
    finally:
        engine.dispose()
    assert len(names) == 1 and len(back) == 330
    assert back["pid"].tolist() == pd.read_parquet(tmp_path / "s.parquet")["pid"].tolist()
    # A second run into the same database: one line, exit 2, the table untouched.
    code, _, err = run([*args, "--sql", url], capsys)
    assert code == 2 and "already exists" in err and len(err.strip().splitlines()) == 1


def sql_rows(url: str) -> pd.DataFrame | None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            if not names:
                return None
            assert len(names) == 1, names
            return pd.read_sql_query(sa.text(f'SELECT * FROM "{names[0]}"'), conn)
    finally:
        engine.dispose()


@pytest.mark.parametrize(("kind", "suffix"), [("duckdb", "parquet"), ("sqlite", "csv")])
def test_file_and_sql_stream_the_same_rows(model_path, tmp_path, capsys, monkeypatch, kind, suffix):
    monkeypatch.setattr(_stream, "BLOCK_ROWS", 100)
    url, out = f"{kind}:///{tmp_path / 'syn.db'}", tmp_path / f"s.{suffix}"
    args = ["sample", model_path, "-n", 330, "--seed", 3, "--batch-size", 64, "-q"]
    code, stdout, err = run([*args, "--sql", url, "-o", out], capsys)
    assert code == 0, err
    assert "Generated 330 rows" in stdout and str(out) in stdout
    back = sql_rows(url)
    frame = pd.read_parquet(out) if suffix == "parquet" else pd.read_csv(out)
    assert len(back) == len(frame) == 330
    assert back["pid"].tolist() == frame["pid"].tolist()
    np.testing.assert_allclose(
        pd.to_numeric(back["age"]).to_numpy(float), frame["age"].to_numpy(float), equal_nan=True
    )
    # The same rows as a file-only run with the same seed.
    code, _, err = run([*args, "-o", tmp_path / f"alone.{suffix}"], capsys)
    assert code == 0, err
    alone = tmp_path / f"alone.{suffix}"
    alone_frame = pd.read_parquet(alone) if suffix == "parquet" else pd.read_csv(alone)
    pd.testing.assert_frame_equal(frame, alone_frame)


@pytest.mark.parametrize("kind", ["duckdb", "sqlite"])
@pytest.mark.parametrize("where", ["sampling", "file rename"])
def test_file_and_sql_failure_leaves_neither(
    model_path, tmp_path, capsys, monkeypatch, kind, where
):
    from clinsynth.errors import SamplingError
    from clinsynth.io import _atomic

    monkeypatch.setattr(_stream, "BLOCK_ROWS", 100)
    if where == "sampling":
        original = GaussianCopulaSynthesizer.sample_batches

        def broken(self, *args, **kwargs):
            for i, chunk in enumerate(original(self, *args, **kwargs)):
                if i == 2:
                    raise SamplingError("sampling broke mid-run")
                yield chunk

        monkeypatch.setattr(GaussianCopulaSynthesizer, "sample_batches", broken)
    else:

        def refuse(src, dst):
            raise PermissionError(13, "Permission denied", str(dst))

        monkeypatch.setattr(_atomic.os, "replace", refuse)
    url, out = f"{kind}:///{tmp_path / 'syn.db'}", tmp_path / "s.parquet"
    args = ["sample", model_path, "-n", 330, "--seed", 3, "--batch-size", 64, "-q"]
    code, _, err = run([*args, "--sql", url, "-o", out], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert ("broke mid-run" if where == "sampling" else "ermission") in err
    assert sql_rows(url) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["syn.db"]
