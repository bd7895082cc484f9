"""What an SDV user types works: verbose epochs, sample(num_samples=...), save("x.pkl")."""

from __future__ import annotations

import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest

import clinsynth
from clinsynth import GaussianCopulaSynthesizer, Metadata, TVAESynthesizer
from clinsynth.errors import ParameterError


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"age": rng.normal(60, 10, 120).round(), "sex": rng.choice(["F", "M"], 120)})
    return df, Metadata.detect_from_dataframe(df)


def test_verbose_prints_one_line_per_epoch(table, capsys):
    df, md = table
    TVAESynthesizer(md, epochs=3, batch_size=60, verbose=True, random_state=0).fit(df)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 3
    for epoch, line in enumerate(lines, start=1):
        assert line.startswith(f"TVAESynthesizer epoch {epoch}/3 loss ")
    TVAESynthesizer(md, epochs=2, batch_size=60, random_state=0).fit(df)
    assert capsys.readouterr().out == ""  # quiet unless asked


def test_num_samples_is_num_rows(table):
    df, md = table
    model = GaussianCopulaSynthesizer(md, random_state=0).fit(df)
    first = model.sample(7)
    model.reset_sampling()
    pd.testing.assert_frame_equal(model.sample(num_samples=7), first)
    model.reset_sampling()
    pd.testing.assert_frame_equal(model.sample(num_rows=7), first)
    with pytest.raises(ParameterError, match="not both"):
        model.sample(5, num_samples=5)
    with pytest.raises(ParameterError, match="number of rows"):
        model.sample()


def test_a_pickle_path_gets_a_zip_bundle_and_a_warning(table, tmp_path):
    df, md = table
    model = GaussianCopulaSynthesizer(md, random_state=0).fit(df)
    path = tmp_path / "trained_model.pkl"
    with pytest.warns(UserWarning, match="never pickles"):
        written = model.save(path)
    assert written == path and path.is_file() and zipfile.is_zipfile(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trained_model.pkl"]
    loaded = clinsynth.load(path)
    model.reset_sampling()
    pd.testing.assert_frame_equal(loaded.sample(5), model.sample(5))
    with open(path, "rb") as handle, pytest.raises(pickle.UnpicklingError):
        pickle.load(handle)  # noqa: S301 (the point: it is not a pickle)


def test_fit_reports_its_steps(table):
    df, md = table
    calls = []
    GaussianCopulaSynthesizer(md, progress=lambda *a: calls.append(a)).fit(df)
    assert [(total, done) for total, done, _ in calls] == [(4, i) for i in range(5)]
    assert calls[1][2] == "learning 2 columns" and calls[-1][2] == "done"
