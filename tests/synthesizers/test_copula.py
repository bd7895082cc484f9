import json
import zipfile

import numpy as np
import pandas as pd
import pytest

import clinsynth
from clinsynth import GaussianCopulaSynthesizer, Metadata
from clinsynth.errors import BundleError, NotFittedError, ParameterError, SamplingError


def correlated_table(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    age = rng.normal(60, 12, n)
    return pd.DataFrame(
        {
            "age": age.round(1),
            "sbp": (90 + 0.8 * age + rng.normal(0, 6, n)).round(),
            "lab": rng.lognormal(0, 0.5, n).round(3),
            "sex": rng.choice(["F", "M"], n),
            "dm": np.where(age + rng.normal(0, 10, n) > 70, "yes", "no"),
        }
    )


@pytest.fixture(scope="module")
def fitted():
    df = correlated_table()
    md = Metadata.detect_from_dataframe(df)
    return df, GaussianCopulaSynthesizer(md, random_state=0).fit(df)


def test_reproduces_marginals_and_correlations(fitted):
    df, model = fitted
    syn = model.sample(4000)
    assert syn.shape == (4000, 5)
    assert abs(syn["age"].mean() - df["age"].mean()) < 1.0
    assert abs(syn["age"].std() - df["age"].std()) < 1.0
    real_r = df["age"].corr(df["sbp"])
    assert abs(syn["age"].corr(syn["sbp"]) - real_r) < 0.05
    assert syn.groupby("dm")["age"].mean()["yes"] > syn.groupby("dm")["age"].mean()["no"] + 5
    assert abs((syn["sex"] == "F").mean() - (df["sex"] == "F").mean()) < 0.04
    assert syn["lab"].min() >= df["lab"].min() and syn["lab"].max() <= df["lab"].max()
    assert syn["sbp"].dtype == df["sbp"].dtype


def test_marginal_choice_is_reported(fitted):
    _, model = fitted
    dists = model.get_learned_distributions()
    assert set(dists) == {"age", "sbp", "lab"}
    assert dists["age"]["distribution"] in ("norm", "empirical")
    forced = GaussianCopulaSynthesizer(
        model.metadata, numerical_distributions={"lab": "lognorm"}, random_state=0
    ).fit(correlated_table(500))
    assert forced.get_learned_distributions()["lab"]["distribution"] == "lognorm"


def test_nulls_keep_rate_and_relation(mixed_df, mixed_metadata):
    big = pd.concat([mixed_df] * 10, ignore_index=True)
    big["pid"] = np.arange(len(big))
    model = GaussianCopulaSynthesizer(mixed_metadata, random_state=1).fit(big)
    syn = model.sample(5000)
    for col in ("weight", "admitted", "diagnosis"):
        assert abs(syn[col].isna().mean() - big[col].isna().mean()) < 0.03, col
    assert set(syn["stage"]) <= {"I", "II", "III", "IV"}
    assert syn["smoker"].dtype == bool
    assert not syn["email"].isin(big["email"]).any()


def test_same_seed_same_rows_and_reset(fitted):
    df, model = fitted
    other = GaussianCopulaSynthesizer(model.metadata, random_state=0).fit(df)
    model.reset_sampling()
    first = model.sample(50)
    pd.testing.assert_frame_equal(first, other.sample(50))
    assert not model.sample(50).equals(first)
    model.reset_sampling()
    pd.testing.assert_frame_equal(model.sample(50), first)


@pytest.mark.parametrize("name", ["model_dir", "model.zip"])
def test_save_load_round_trip(tmp_path, fitted, name):
    _, model = fitted
    path = model.save(tmp_path / name)
    loaded = clinsynth.load(path)
    assert isinstance(loaded, GaussianCopulaSynthesizer)
    model.reset_sampling()
    pd.testing.assert_frame_equal(loaded.sample(100), model.sample(100))
    assert GaussianCopulaSynthesizer.load(path).get_params() == {
        **model.get_params(),
        "progress": None,
    }


def test_bundle_holds_no_training_rows_and_no_pickle(tmp_path, mixed_df, mixed_metadata):
    model = GaussianCopulaSynthesizer(mixed_metadata).fit(mixed_df)
    path = model.save(tmp_path / "m.zip")
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        text = "".join(zf.read(n).decode("utf-8", "replace") for n in names if n.endswith(".json"))
        weights = zf.read("weights.pt")
    assert set(names) == {"manifest.json", "transformer.json", "model.json", "weights.pt"}
    for value in ["patient1@hospital.org", "Real Person", "hospital.org"]:
        assert value not in text
    assert b"Real Person" not in weights
    # weights.pt is a torch zip of tensors; a pickle-only loader must not be needed
    import io

    import torch

    torch.load(io.BytesIO(weights), weights_only=True)


def test_corrupt_and_future_bundles(tmp_path, fitted):
    _, model = fitted
    path = model.save(tmp_path / "m")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = 99
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="Upgrade clinsynth"):
        clinsynth.load(path)
    (path / "manifest.json").write_text("{garbage")
    with pytest.raises(BundleError, match="corrupt"):
        clinsynth.load(path)
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    with pytest.raises(BundleError, match="not a clinsynth model"):
        clinsynth.load(tmp_path / "x.zip")
    with pytest.raises(BundleError, match="does not exist"):
        clinsynth.load(tmp_path / "missing")


def test_failed_save_keeps_previous_model(tmp_path, fitted, monkeypatch):
    _, model = fitted
    path = model.save(tmp_path / "m")
    before = (path / "model.json").read_text()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("torch.save", boom)
    with pytest.raises(OSError):
        model.save(path)
    assert (path / "model.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_conditions(fitted):
    _, model = fitted
    rows = model.sample(200, conditions={"sex": "F", "age": (70, None)})
    assert len(rows) == 200
    assert (rows["sex"] == "F").all() and (rows["age"] >= 70).all()
    with pytest.raises(SamplingError, match="never seen"):
        model.sample(10, conditions={"sex": "X"})
    with pytest.raises(SamplingError, match="contradictory"):
        model.sample(10, conditions={"age": (80, 20)})
    with pytest.raises(SamplingError, match="outside the values seen in training"):
        model.sample(10, conditions={"age": (500, None)})
    conds = pd.DataFrame({"sex": ["F", "M", "F"], "dm": ["yes", None, "no"]})
    out = model.sample_from_conditions(conds)
    assert out["sex"].tolist() == ["F", "M", "F"]
    assert out.loc[[0, 2], "dm"].tolist() == ["yes", "no"]


def test_contract_errors(fitted, mixed_metadata):
    df, model = fitted
    with pytest.raises(NotFittedError, match="fit"):
        GaussianCopulaSynthesizer(model.metadata).sample(5)
    with pytest.raises(
        ParameterError,
        match="'default_distribution' parameter of GaussianCopulaSynthesizer must be one of",
    ):
        GaussianCopulaSynthesizer(model.metadata, default_distribution="bogus").fit(df)
    with pytest.raises(ParameterError, match="num_rows"):
        model.sample(-1)
    assert model.sample(0).shape == (0, 5)
    before = df.copy()
    GaussianCopulaSynthesizer(model.metadata).fit(df)
    pd.testing.assert_frame_equal(df, before)  # fit never mutates the caller's data


def test_copula_has_no_loss_curve(fitted):
    _, model = fitted
    assert model.get_loss_values().empty


def test_kde_marginal_smooths_instead_of_handing_out_training_values():
    rng = np.random.default_rng(3)
    # Bimodal, so that no parametric family fits; two decimals, so nearly every value is unique.
    lab = np.concatenate([rng.normal(50, 5, 100), rng.normal(90, 8, 100)]).round(2)
    df = pd.DataFrame({"lab": lab, "sex": rng.choice(["F", "M"], 200)})
    md = Metadata.detect_from_dataframe(df)
    step = GaussianCopulaSynthesizer(md, random_state=0).fit(df)
    assert step.get_learned_distributions()["lab"]["distribution"] == "empirical"
    assert step.sample(500)["lab"].isin(set(df["lab"])).all()
    model = GaussianCopulaSynthesizer(md, default_distribution="kde", random_state=0).fit(df)
    assert model.get_learned_distributions()["lab"]["distribution"] == "kde"
    syn = model.sample(2000)["lab"]
    assert syn.isin(set(df["lab"])).mean() < 0.2
    assert df["lab"].min() <= syn.min() and syn.max() <= df["lab"].max()
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):
        assert abs(syn.quantile(q) - df["lab"].quantile(q)) < 4, q


def test_small_strata_share_one_copula():
    def table(n, seed=0):
        rng = np.random.default_rng(seed)
        group = np.repeat(["a", "b"], n // 2)
        shift = np.where(group == "a", 0.0, 3.0)
        cols = {f"x{i}": (shift + rng.normal(0, 1, n)).round(3) for i in range(12)}
        return pd.DataFrame({**cols, "group": group})

    md = Metadata.detect_from_dataframe(table(400))
    # 13 copula variables: a stratum needs 5 rows per variable (65); two strata of 60 share one.
    assert GaussianCopulaSynthesizer(md, random_state=0).fit(table(400)).stratified_by_ == "group"
    assert GaussianCopulaSynthesizer(md, random_state=0).fit(table(120)).stratified_by_ is None


def _float32_valued_table(n=600, seed=0):
    """support2's prg6m: values with 7 decimals (0.7999997) that float32 cannot hold."""
    rng = np.random.default_rng(seed)
    levels = np.array([0.0, 0.1, 0.2, 0.5, 0.5999999, 0.6999998, 0.7999997, 0.8999996, 1.0])
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "prg": levels[np.clip(((x + 2) * 2).astype(int), 0, 8)],
            "age": (60 + 10 * x + rng.normal(0, 5, n)).round(),
            "group": rng.choice(["a", "b", "c"], n),
        }
    )


def _hands_out_training_values(model, df):
    sampled = model.sample(3000)["prg"].dropna()
    assert set(sampled.unique()) <= set(df["prg"].unique())


@pytest.mark.parametrize("stratify_by", [None, "group"])
def test_sampled_values_are_exact_training_values(stratify_by):
    # The marginals are fitted on float64 values and sampled into float64: 0.7999997 comes
    # back as itself, not as float32's 0.799999714 (a detector tells those apart).
    df = _float32_valued_table()
    md = Metadata.detect_from_dataframe(df)
    model = GaussianCopulaSynthesizer(md, random_state=0, stratify_by=stratify_by).fit(df)
    _hands_out_training_values(model, df)


def test_bundle_without_exact_values_flag_still_loads_and_snaps(tmp_path):
    # Bundles saved before the flag (marginals fitted on float32) decode through float32 and
    # the transformer's snapping to frequent values.
    df = _float32_valued_table()
    model = GaussianCopulaSynthesizer(Metadata.detect_from_dataframe(df), random_state=0).fit(df)
    path = model.save(tmp_path / "m")
    state_file = path / "model.json"
    state = json.loads(state_file.read_text())
    holder = state.get("state", state)
    assert holder.pop("exact_values") is True
    state_file.write_text(json.dumps(state))
    loaded = clinsynth.load(path)
    assert loaded._exact_ is False
    _hands_out_training_values(loaded, df)
