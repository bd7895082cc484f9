"""Values that used to come back silently wrong (issue #21): exact zeros, integers beyond int64,
dates after 2262, mixed UTC offsets, columns whose every level is rare, keys into the table's
own rows."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from clinsynth import GaussianCopulaSynthesizer, Metadata
from clinsynth.errors import BundleError
from clinsynth.multitable import HMASynthesizer
from clinsynth.transform import (
    DatetimeTransformer,
    FormatTransformer,
    NumericalTransformer,
    TableTransformer,
)


def _fit_sample(df: pd.DataFrame, n: int = 300, **kwargs) -> pd.DataFrame:
    md = Metadata.detect_from_dataframe(df)
    return GaussianCopulaSynthesizer(md, random_state=0, **kwargs).fit(df).sample(n)


def test_exact_zero_comes_back_exactly_through_float32():
    """support2's totcst: costs with 4 decimals up to 633,212 and 17 exact zeros; float32 keeps
    7 digits of the scaled value, which turned 0 into 0.0001."""
    rng = np.random.default_rng(0)
    cost = np.round(rng.lognormal(9.5, 1.0, 3000), 4)
    cost[:17] = 0.0
    cost[17] = 633212.0
    df = pd.DataFrame({"totcst": cost})
    t = NumericalTransformer("totcst").fit(df["totcst"])
    assert t.decimals_ == 4 and 0.0 in t.atoms_
    back = t.inverse_transform(t.transform(df["totcst"]), np.random.default_rng(0)).to_numpy()
    assert (back[:17] == 0.0).all()
    assert (back[cost > 0] > 0).all()


def test_values_held_by_few_patients_are_not_stored_as_exact_values():
    df = pd.DataFrame({"x": np.r_[np.zeros(4), np.arange(1, 101) * 1.37]})
    t = NumericalTransformer("x").fit(df["x"])
    assert 0.0 not in t.atoms_  # four patients: not stored verbatim


def test_integers_beyond_int64_come_back_as_integers_not_int64_min():
    rng = np.random.default_rng(1)
    huge = [str(10**20 * int(x)) for x in rng.integers(1, 10**6, 200)]
    negative = [str(-(2**63) - int(x)) for x in rng.integers(1, 10**15, 200)]
    unsigned = [str(2**63 + int(x)) for x in rng.integers(0, 10**15, 200)]
    df = pd.DataFrame({"huge": huge, "negative": negative, "unsigned": unsigned})
    df["unsigned"] = df["unsigned"].astype("uint64")
    out = _fit_sample(df)
    floor = -(2**63)
    assert all(isinstance(v, int) and v >= 10**20 for v in out["huge"])
    assert all(isinstance(v, int) and v < floor for v in out["negative"])
    assert out["unsigned"].dtype == "uint64" and (out["unsigned"] >= 2**63).all()


def test_unsigned_column_with_missing_values_keeps_its_range():
    values = pd.Series([2**63 + i * 10**12 for i in range(50)] + [None] * 5, dtype="UInt64")
    t = NumericalTransformer("u").fit(values)
    back = t.inverse_transform(t.transform(values), np.random.default_rng(0))
    assert back.dtype == "UInt64" and back.dropna().min() >= 2**63


def test_dates_after_2262_are_dates_not_a_category():
    days = np.datetime64("2300-01-01") + np.arange(200) * 37  # pandas cannot hold these
    text = np.datetime_as_string(days, unit="D").tolist()
    df = pd.DataFrame({"review": text, "age": np.arange(200) % 60 + 20})
    md = Metadata.detect_from_dataframe(df)
    assert md.columns["review"] == {"sdtype": "datetime", "datetime_format": "%Y-%m-%d"}
    out = GaussianCopulaSynthesizer(md, random_state=0).fit(df).sample(300)
    years = out["review"].str.slice(0, 4).astype(int)
    assert years.between(2300, 2400).all() and out["review"].nunique() > 100
    assert "Other" not in set(out["review"])


def test_native_dates_beyond_nanoseconds_round_trip():
    values = pd.Series(np.array(["1500-03-01", "2500-12-31", "NaT"], dtype="datetime64[s]"))
    t = DatetimeTransformer("d").fit(values)
    back = t.inverse_transform(t.transform(values, dtype=np.float64), np.random.default_rng(0))
    assert back.iloc[:2].tolist() == values.iloc[:2].tolist() and back.isna().iloc[2]


def test_mixed_utc_offsets_are_read_in_utc():
    stamps = [
        f"2020-{1 + i % 12:02d}-10T10:00:00{'+01:00' if i % 2 else '+02:00'}" for i in range(120)
    ]
    df = pd.DataFrame({"ts": stamps, "age": np.arange(120) % 50 + 20})
    md = Metadata.detect_from_dataframe(df)
    assert md.columns["ts"]["sdtype"] == "datetime"
    out = GaussianCopulaSynthesizer(md, random_state=0).fit(df).sample(50)
    parsed = pd.to_datetime(out["ts"], format=md.columns["ts"]["datetime_format"], utc=True)
    assert parsed.notna().all()
    assert out["ts"].str.endswith("+0000").all()
    assert parsed.min() >= pd.Timestamp("2020-01-10T08:00:00Z")


def test_column_of_rare_values_is_generated_in_its_format_not_one_made_up_level(caplog):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "contact": [f"555-{rng.integers(1000, 9999)}" for _ in range(200)],
            "age": rng.integers(20, 90, 200),
        }
    )
    md = Metadata.detect_from_dataframe(df)
    assert md.columns["contact"]["sdtype"] == "categorical"  # no phone-like name: a category
    with caplog.at_level("WARNING"):
        model = GaussianCopulaSynthesizer(md, random_state=0).fit(df)
    assert "contact" in caplog.text and "formats of the real ones" in caplog.text
    out = model.sample(500)
    assert out["contact"].str.fullmatch(r"\d{3}-\d{4}").all()
    assert out["contact"].nunique() > 400 and "Other" not in set(out["contact"])
    assert not set(out["contact"]) & set(df["contact"]) or len(set(out["contact"])) > 400
    assert "contact" in model.get_privacy_report()["generated_columns"]


def test_format_transformer_stores_only_common_formats():
    values = pd.Series(["AB-1234"] * 3 + [f"{i:05d}" for i in range(40)] + [None] * 4)
    t = FormatTransformer("code").fit(values)
    assert t.formats_ == ["99999"]  # "AA-9999" is held by 3 rows only
    generated = t.inverse_transform(np.zeros((200, 0)), np.random.default_rng(0))
    assert generated.dropna().str.fullmatch(r"\d{5}").all()
    assert 0 < generated.isna().sum() < 40


def _staff(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "staff_id": np.arange(1, n + 1),
            "manager_id": rng.integers(1, 20, n).astype(float),
            "salary": rng.normal(50, 10, n).round(1),
        }
    ).assign(manager_id=lambda d: d["manager_id"].where(d.index % 25 != 0))


def test_self_referencing_key_points_to_synthetic_keys_in_a_single_table():
    out = _fit_sample(_staff(), n=400)
    managers = out["manager_id"].dropna()
    assert managers.isin(out["staff_id"]).all()
    assert 0 < out["manager_id"].isna().sum() < 60
    assert managers.nunique() < 60  # a few managers, as in the real table


def test_self_referencing_key_survives_save_load_and_conditions(tmp_path):
    import clinsynth

    df = _staff()
    model = GaussianCopulaSynthesizer(Metadata.detect_from_dataframe(df), random_state=0).fit(df)
    model.save(tmp_path / "m")
    loaded = clinsynth.load(tmp_path / "m")
    out = loaded.sample(300, conditions={"salary": (45.0, None)})
    assert out["manager_id"].dropna().isin(out["staff_id"]).all()


def test_self_referencing_table_is_detected_in_a_schema_and_its_keys_are_valid():
    staff = _staff()
    staff["hospital_id"] = staff.index % 4 + 1  # small codes that happen to be staff ids
    md = Metadata.detect_from_dataframes({"staff": staff})
    links = [(r["child_table_name"], r["child_foreign_key"]) for r in md.relationships]
    assert links == [("staff", "manager_id")]
    out = HMASynthesizer(md, random_state=0).fit({"staff": staff}).sample(scale=1.0)["staff"]
    assert out["manager_id"].dropna().isin(out["staff_id"]).all()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c["state"].update(bogus=1), "unexpected entry 'bogus'"),
        (lambda c: c["state"].update(dtype="V999999999"), "dtype name"),
        (lambda c: c["state"].update(stds=[-1.0]), "stds"),
        (lambda c: c["params"].update(method="magic"), "method must be one of"),
        (lambda c: c.update(kind="evil"), "known kind"),
    ],
)
def test_tampered_transformer_state_is_a_bundle_error(change, message):
    df = pd.DataFrame({"x": np.arange(50) * 1.5})
    state = TableTransformer(Metadata.detect_from_dataframe(df)).fit(df).to_dict()
    change(state["columns"][0])
    with pytest.raises(BundleError, match=re.escape(message)):
        TableTransformer.from_dict(state, Metadata.detect_from_dataframe(df))
