"""No model keeps a numeric value of fewer than 5 patients: not in its bundle, not in its rows."""

from __future__ import annotations

import re
import zipfile

import numpy as np
import pandas as pd
import pytest

from clinsynth import Metadata, list_synthesizers, load
from clinsynth.privacy._safe_values import microaggregate

#: One patient's values, far from everybody else's.
OUTLIERS = {"age": 109, "creatinine": 14.73, "admitted": "2031-05-17"}


def _table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.integers(30, 80, n),
            "creatinine": np.round(rng.lognormal(0.0, 0.3, n), 2),
            "sex": rng.choice(["F", "M"], n),
            "admitted": pd.Timestamp("2020-01-01")
            + pd.to_timedelta(rng.integers(0, 700, n), unit="D"),
        }
    )
    df.loc[7, "age"] = OUTLIERS["age"]
    df.loc[11, "creatinine"] = OUTLIERS["creatinine"]
    df.loc[13, "admitted"] = pd.Timestamp(OUTLIERS["admitted"])
    return df


def _fast(name: str) -> dict:
    from test_contract import FAST_PARAMS

    params = dict(FAST_PARAMS.get(name, {}))
    if name == "dp_marginal":
        params = {"epsilon": 5.0}
    if "condition_column" in params:
        params["condition_column"] = "sex"
    if "column_groups" in params:
        params["column_groups"] = {"clinical": ["age", "creatinine"], "context": ["sex"]}
    return params


def _protected(md: Metadata) -> Metadata:
    """The numbers and dates declared to keep extremes of fewer than 5 patients out."""
    spec = md.to_dict()
    for col in ("age", "creatinine", "admitted"):
        spec["tables"]["table"]["columns"][col]["min_patients"] = 5
    return Metadata.from_dict(spec)


def _bundle_text(path) -> str:
    with zipfile.ZipFile(path) as z:
        return "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())


@pytest.mark.parametrize("name", sorted(list_synthesizers()))
def test_a_unique_outlier_is_in_neither_the_bundle_nor_the_rows(name, tmp_path):
    df = _table()
    md = _protected(Metadata.detect_from_dataframe(df, discover_rules=False))
    model = list_synthesizers()[name](md, random_state=0, **_fast(name)).fit(df)
    text = _bundle_text(model.save(tmp_path / "m.zip"))
    for value in ("109", "14.73"):
        assert not re.search(rf"(?<![\d.]){re.escape(value)}(\.0+)?(?!\d)", text), value
    ns = pd.Timestamp(OUTLIERS["admitted"]).value
    assert str(ns) not in text and str(ns / 1e9) not in text and "2031-05" not in text
    rows = load(tmp_path / "m.zip").sample(10_000)
    assert not (rows["age"] == OUTLIERS["age"]).any()
    assert not (rows["creatinine"] == OUTLIERS["creatinine"]).any()
    assert not (rows["admitted"] == pd.Timestamp(OUTLIERS["admitted"])).any()
    if not model.get_privacy_report()["differential_privacy"]:
        # Without DP the range is estimated from the 5th and 10th most extreme patients: the
        # outliers lie far beyond it (DP models draw from public or noisy bounds instead).
        assert rows["age"].max() < 90 and rows["creatinine"].max() < 5
        assert rows["admitted"].max() < pd.Timestamp("2023-01-01")


def test_microaggregation_keeps_frequent_values_and_merges_the_rest():
    x = np.array([0.0] * 6 + [1.1, 1.2, 1.3, 1.4, 1.5, 1.6] + [2.0] * 5 + [3.0, 50.0])
    out = microaggregate(x, 5)
    assert (out[:6] == 0).all() and (out[12:] == 2).all()  # frequent values kept
    # 1.1..1.6 (6 patients) became one number that is none of theirs; 3 and 50 joined the 2s
    assert len(set(out[6:12])) == 1 and out[6] not in x
    values, counts = np.unique(out, return_counts=True)
    assert counts.min() >= 5


def test_microaggregation_counts_patients_not_rows():
    values = np.array([7.0] * 5 + [1, 2, 3, 4, 5, 6])
    patients = np.array([1] * 5 + [2, 3, 4, 5, 6, 7])
    by_rows = microaggregate(values, 5)
    assert (by_rows[:5] == 7).all()  # five rows of 7
    by_patients = microaggregate(values, 5, patients)
    assert by_patients[0] != 7  # one patient's five rows: 7 belongs to one patient


def test_a_column_of_fewer_than_five_patients_becomes_their_mean():
    assert microaggregate(np.array([1.0, 2.0, 6.0]), 5).tolist() == [3.0, 3.0, 3.0]


def test_off_unless_declared_in_the_metadata():
    from clinsynth import GaussianCopulaSynthesizer

    df = _table()
    md = Metadata.detect_from_dataframe(df, discover_rules=False)
    raw = GaussianCopulaSynthesizer(md).fit(df)
    assert raw._transformer_.get_transformer("age").max_ == OUTLIERS["age"]
    safe = GaussianCopulaSynthesizer(_protected(md)).fit(df)
    saved = safe._transformer_.get_transformer("age").max_
    assert saved < 90 and not (df["age"] == saved).sum() == 1
