"""PII is never learned, rare categories are merged and never stored, free text is refused."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest

from clinsynth import GaussianCopulaSynthesizer, Metadata, list_synthesizers, load
from clinsynth.errors import DataError, ParameterError
from clinsynth.transform import CategoricalTransformer, TableTransformer

RARE = ["kuru", "fatal familial insomnia", "Bickerstaff encephalitis"]


def _table(n: int = 150, seed: int = 0) -> tuple[pd.DataFrame, Metadata]:
    rng = np.random.default_rng(seed)
    dx = rng.choice(["copd", "chf", "sepsis"], n).astype(object)
    dx[: len(RARE)] = RARE  # three patients with a diagnosis nobody else has
    df = pd.DataFrame(
        {
            "pid": np.arange(n),
            "age": rng.integers(20, 90, n),
            "dx": dx,
            "ward": rng.choice([1, 2, 3], n),
            "name": [f"Zebulon Quixote{i}" for i in range(n)],
            "email": [f"zq{i}@realhospital.example" for i in range(n)],
            "phone": [f"+1-555-010-{i:04d}" for i in range(n)],
        }
    )
    df.loc[n - 2 :, "ward"] = 77  # a ward code held by two patients
    md = Metadata.from_dict(
        {
            "columns": {
                "pid": {"sdtype": "id"},
                "age": {"sdtype": "numerical", "computer_representation": "Int64"},
                "dx": {"sdtype": "categorical"},
                "ward": {"sdtype": "categorical"},
                "name": {"sdtype": "name", "pii": True},
                "email": {"sdtype": "email", "pii": True},
                "phone": {"sdtype": "phone_number", "pii": True},
            },
            "primary_key": "pid",
        }
    )
    return df, md


def _bundle_text(path) -> str:
    with zipfile.ZipFile(path) as z:
        return "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())


def _fast(name: str) -> dict:
    from test_contract import FAST_PARAMS

    params = dict(FAST_PARAMS.get(name, {}))
    if name == "dp_marginal":
        params = {"epsilon": 5.0, "public_bounds": {"age": (0, 110)}}
    if "condition_column" in params:  # the contract table's columns are not this table's
        params["condition_column"] = "dx"
    if "column_groups" in params:
        params["column_groups"] = {"clinical": ["age"], "context": ["dx", "ward"]}
    return params


@pytest.mark.parametrize("name", sorted(list_synthesizers()))
def test_pii_and_rare_levels_never_reach_output_or_bundle(name, tmp_path):
    df, md = _table()
    model = list_synthesizers()[name](md, random_state=0, **_fast(name)).fit(df)
    syn = model.sample(400)
    for col in ("name", "email", "phone"):
        assert not syn[col].isin(df[col]).any(), col
    assert not syn["dx"].isin(RARE).any()
    assert not (syn["ward"] == 77).any()
    text = _bundle_text(model.save(tmp_path / "m.zip"))
    for value in [*df["name"], *df["email"], *df["phone"], *RARE]:
        assert value not in text, value
    assert "Zebulon" not in text and "realhospital" not in text
    report = model.get_privacy_report()
    # A DP model never names levels below its noisy threshold, and does not count them either.
    dp = report["differential_privacy"]
    assert report["rare_levels_merged"] == ({} if dp else {"dx": 3, "ward": 1})
    assert set(report["generated_columns"]) == {"pid", "name", "email", "phone"}


def test_other_level_decoding_and_opt_out(tmp_path):
    df, md = _table()
    merged = GaussianCopulaSynthesizer(md, random_state=0).fit(df)
    dx = merged._transformer_.get_transformer("dx")
    assert "Other" in dx.levels_ and not set(RARE) & set(dx.levels_)
    ward = merged._transformer_.get_transformer("ward")
    assert -1 in ward.levels_ and 77 not in ward.levels_  # number codes: -1 means "other"
    syn = merged.sample(3000)
    assert syn["ward"].dtype == df["ward"].dtype and set(syn["ward"]) <= {1, 2, 3, -1}
    kept = GaussianCopulaSynthesizer(md, random_state=0, rare_category_threshold=None).fit(df)
    assert set(RARE) <= set(kept._transformer_.get_transformer("dx").levels_)
    assert kept.get_privacy_report()["rare_levels_merged"] == {}
    with pytest.raises(ParameterError, match="rare_category_threshold"):
        GaussianCopulaSynthesizer(md, rare_category_threshold=0).fit(df)
    loaded = load(merged.save(tmp_path / "m"))
    assert loaded.get_privacy_report()["rare_levels_merged"] == {"dx": 3, "ward": 1}


def test_rarity_counts_patients_not_rows():
    # "kuru" has 8 rows but one patient; "copd" 5 patients.
    values = pd.Series(["kuru"] * 8 + ["copd"] * 5 + ["chf"] * 6)
    patients = pd.Series([1] * 8 + list(range(2, 13)))
    t = CategoricalTransformer("dx", rare_threshold=5).fit(values, entities=patients)
    assert "kuru" not in t.levels_ and "copd" in t.levels_
    by_rows = CategoricalTransformer("dx", rare_threshold=5).fit(values)
    assert "kuru" in by_rows.levels_


def test_existing_other_level_absorbs_rare_ones_and_ordinals_are_kept():
    values = pd.Series(["a"] * 9 + ["other"] * 6 + ["x", "y"])
    t = CategoricalTransformer("c", rare_threshold=5).fit(values)
    assert t.levels_ == ["a", "other"] and t.frequencies_[1] == pytest.approx(8 / 17)
    stage = CategoricalTransformer("s", order=["I", "II", "III"], rare_threshold=5)
    assert stage.fit(pd.Series(["I"] * 9 + ["III"])).levels_ == ["I", "II", "III"]


def test_free_text_declared_categorical_is_refused():
    rng = np.random.default_rng(0)
    words = np.array(
        "patient reports mild chest pain since yesterday evening after "
        "climbing stairs denies fever cough or dyspnea".split()
    )
    notes = [" ".join(rng.choice(words, 12)) for _ in range(300)]
    df = pd.DataFrame({"age": rng.integers(20, 90, 300), "note": notes})
    md = Metadata.detect_from_dataframe(df)
    assert md.get_table().columns["note"]["sdtype"] == "text"  # detection fakes it
    md.update_column("note", sdtype="categorical")
    with pytest.raises(DataError, match="free text .*sdtype 'text'.*drop the column"):
        GaussianCopulaSynthesizer(md).fit(df)
    with pytest.raises(DataError, match="free text"):
        TableTransformer(md).fit(df)
