"""Detection round-trips: ``fit(df)`` succeeds on ``Metadata.detect_from_dataframe(df)``, with
the common missing-value markers of SAS, Stata, R and spreadsheet exports read as missing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clinsynth import GaussianCopulaSynthesizer, Metadata, TVAESynthesizer
from clinsynth.cli import main
from clinsynth.errors import MetadataError
from clinsynth.evaluation import evaluate_quality
from clinsynth.io import read_table

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
TEXT_MARKERS = [".", "NA", "N/A", "?", "", " ", "NaN", "null", "NULL", "#N/A"]


def trial_table(n: int = 823, seed: int = 0) -> pd.DataFrame:
    """An R/SAS export: 15 lab columns hold '.' for missing (17 cells each), plus an arm,
    a visit date and a flag with their own markers."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {"USUBJID": [f"S{i:04d}" for i in range(n)]}
    for j in range(15):
        values = np.round(rng.normal(50 + j, 8, n), 1).astype(object)
        values[rng.choice(n, 17, replace=False)] = "."
        data[f"OAA{j + 1}"] = values
    data["ARM"] = rng.choice(["placebo", "drug", "."], n, p=[0.48, 0.48, 0.04])
    dates = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    visit = dates.strftime("%Y-%m-%d").to_numpy(dtype=object)
    visit[rng.choice(n, 9, replace=False)] = "-"
    data["VISITDT"] = visit
    data["SMOKER"] = rng.choice(["true", "false", "?"], n, p=[0.3, 0.65, 0.05])
    weight = np.round(rng.normal(75, 12, n)).astype(int)
    weight[rng.choice(n, 6, replace=False)] = -99  # a numeric sentinel in a positive column
    data["WEIGHT"] = weight
    return pd.DataFrame(data)


@pytest.fixture(scope="module")
def trial_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("trial") / "trial.csv"
    trial_table().to_csv(path, index=False)
    return path


def test_trial_table_detects_markers_and_fits(trial_csv, caplog):
    df = read_table(trial_csv)
    with caplog.at_level("WARNING", logger="clinsynth"):
        md = Metadata.detect_from_dataframe(df)
    columns = md.get_table().columns
    for j in range(1, 16):
        assert columns[f"OAA{j}"]["sdtype"] == "numerical"
        assert columns[f"OAA{j}"]["missing_values"] == ["."]
    assert columns["VISITDT"]["sdtype"] == "datetime"
    assert columns["VISITDT"]["missing_values"] == ["-"]
    assert columns["SMOKER"] == {"sdtype": "boolean", "missing_values": ["?"]}
    assert columns["ARM"] == {"sdtype": "categorical", "missing_values": ["."]}
    assert columns["WEIGHT"]["missing_values"] == [-99]
    assert "column 'OAA1'" in caplog.text and "17 cells hold '.'" in caplog.text
    assert "6 cells hold -99" in caplog.text
    # The metadata survives JSON, and the data satisfies it: validation passes.
    md = Metadata.from_dict(json.loads(json.dumps(md.to_dict())))
    md.validate_data(df)
    before = df.copy()
    model = GaussianCopulaSynthesizer(md, random_state=0).fit(df)
    pd.testing.assert_frame_equal(df, before)  # the caller's frame is not modified
    synthetic = model.sample(2000)
    # Missing, not a level or a value: numbers stay numbers, '.' never comes back.
    assert pd.api.types.is_float_dtype(synthetic["OAA1"])
    assert 0.005 < synthetic["OAA1"].isna().mean() < 0.05  # 17/823 = 2.1% in the data
    assert set(synthetic["ARM"].dropna()) <= {"placebo", "drug"}
    assert synthetic["ARM"].isna().any()
    assert (synthetic["WEIGHT"].dropna() > 0).all()
    assert not synthetic.isin(["."]).any().any()
    report = evaluate_quality(df, synthetic, md, detection=False)  # markers read as missing
    assert report.get_properties().set_index("Property")["Score"]["Column Shapes"] > 0.85


def test_every_model_kind_fits_the_detected_metadata(trial_csv):
    df = read_table(trial_csv).head(300)
    md = Metadata.detect_from_dataframe(df)
    out = TVAESynthesizer(md, epochs=1, batch_size=100, random_state=0).fit(df).sample(50)
    assert out.shape == (50, df.shape[1])


@pytest.mark.parametrize("marker", TEXT_MARKERS)
@pytest.mark.parametrize("kind", ["numbers", "dates", "booleans", "levels"])
def test_generated_frames_with_a_marker_round_trip(marker, kind):
    rng = np.random.default_rng(1)
    n = 120
    values = {
        "numbers": [f"{v:.2f}" for v in rng.normal(100, 15, n)],
        "dates": [
            f"2021-{m:02d}-{d:02d}"
            for m, d in zip(rng.integers(1, 13, n), rng.integers(1, 29, n), strict=True)
        ],
        "booleans": list(rng.choice(["yes", "no"], n)),
        "levels": list(rng.choice(["a", "b", "c"], n)),
    }[kind]
    column = np.array(values, dtype=object)
    column[rng.choice(n, 12, replace=False)] = marker
    df = pd.DataFrame({"x": column, "y": rng.normal(0, 1, n)})
    md = Metadata.detect_from_dataframe(df)
    spec = md.get_table().columns["x"]
    expected = {"numbers": "numerical", "dates": "datetime", "booleans": "categorical"}
    assert spec["sdtype"] == expected.get(kind, "categorical"), spec
    assert spec["missing_values"] == [marker.strip()]
    out = GaussianCopulaSynthesizer(md, random_state=0).fit(df).sample(300)
    assert out["x"].isna().any() and not out["x"].astype(str).str.strip().eq(marker).any()


def test_typed_markers_apply_to_typed_columns_only():
    rng = np.random.default_rng(2)
    numbers = np.array([str(v) for v in rng.integers(0, 300, 200)], dtype=object)
    numbers[:5] = "-"
    numbers[5:9] = "not done"
    spec = Metadata.detect_from_dataframe(pd.DataFrame({"x": numbers})).get_table().columns["x"]
    assert spec["sdtype"] == "numerical" and set(spec["missing_values"]) == {"-", "not done"}
    levels = pd.DataFrame({"smoking": rng.choice(["never", "former", "none", "."], 200)})
    spec = Metadata.detect_from_dataframe(levels).get_table().columns["smoking"]
    assert spec == {"sdtype": "categorical", "missing_values": ["."]}  # "none" is a level


def test_numbers_are_not_sentinels_unless_clearly_apart():
    rng = np.random.default_rng(3)
    signed = pd.Series(np.r_[rng.normal(0, 50, 200).round(), [-99, -99]])  # negatives are values
    assert (
        "missing_values"
        not in Metadata.detect_from_dataframe(pd.DataFrame({"x": signed})).get_table().columns["x"]
    )
    positive = pd.Series(np.r_[rng.integers(1, 90, 200), [-999]])
    columns = Metadata.detect_from_dataframe(pd.DataFrame({"x": positive})).get_table().columns
    assert columns["x"]["missing_values"] == [-999]


def test_empty_and_all_marker_columns_fit_and_stay_empty(caplog):
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"a": rng.normal(size=60), "empty": [np.nan] * 60, "dots": ["."] * 60})
    md = Metadata.detect_from_dataframe(df)
    assert md.get_table().columns["empty"]["sdtype"] == "unknown"
    with pytest.raises(MetadataError, match="could not be detected"):
        md.validate()  # a JSON with 'unknown' still asks for a type
    with caplog.at_level("WARNING", logger="clinsynth"):
        out = GaussianCopulaSynthesizer(md, random_state=0).fit(df).sample(20)
    assert out["empty"].isna().all() and out["dots"].isna().all()
    assert "column 'empty' is empty" in caplog.text
    filled = df.assign(empty=1.0)
    with pytest.raises(MetadataError, match="column 'empty': its type could not be detected"):
        GaussianCopulaSynthesizer(md).fit(filled)  # 'unknown' is accepted for empty columns only


def test_bad_missing_values_in_the_metadata_are_reported():
    md = Metadata.from_dict({"columns": {"x": {"sdtype": "numerical", "missing_values": "."}}})
    with pytest.raises(MetadataError, match="'missing_values' must be a list"):
        md.validate()


def test_cli_detect_reports_markers_and_fit_works(trial_csv, tmp_path, capsys):
    assert main(["detect", str(trial_csv), "-o", str(tmp_path / "md.json")]) == 0
    captured = capsys.readouterr()
    assert "Warning: column 'OAA1'" in captured.err and "read as missing" in captured.err
    saved = json.loads((tmp_path / "md.json").read_text())
    assert saved["tables"]["table"]["columns"]["OAA1"]["missing_values"] == ["."]
    code = main(
        [str(a) for a in ("fit", trial_csv, "-m", tmp_path / "md.json", "-o", tmp_path / "m", "-q")]
    )
    assert code == 0, capsys.readouterr().err


def _shared_csvs() -> list[Path]:
    return sorted(SHARED.glob("*/*.csv")) if SHARED.is_dir() else []


@pytest.mark.slow
@pytest.mark.skipif(not _shared_csvs(), reason="../shared/data is not beside the repository")
@pytest.mark.parametrize("path", _shared_csvs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shared_csv_fits_its_detected_metadata(path):
    df = read_table(path)
    if len(df) > 1500:  # the same frame is detected and fitted; a sample keeps it short
        df = df.sample(1500, random_state=0).reset_index(drop=True)
    md = Metadata.detect_from_dataframe(df)
    out = GaussianCopulaSynthesizer(md, random_state=0).fit(df).sample(20)
    assert list(out.columns) == list(df.columns)
