import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.pandas import column, data_frames, range_indexes

from clinsynth import Metadata
from clinsynth.errors import DataError, NotFittedError
from clinsynth.transform import TableTransformer

LEARNED = ["age", "weight", "sbp", "sex", "stage", "smoker", "admitted", "code", "diagnosis"]


@pytest.mark.parametrize("numerical", ["mode", "quantile", "identity"])
@pytest.mark.parametrize("categorical", ["onehot", "label"])
def test_round_trip_is_exact(mixed_df, mixed_metadata, numerical, categorical):
    tt = TableTransformer(mixed_metadata, numerical=numerical, categorical=categorical)
    encoded = tt.fit(mixed_df).transform(mixed_df)
    assert encoded.dtype == np.float32
    assert encoded.shape == (len(mixed_df), tt.output_dim)
    back = tt.inverse_transform(encoded, random_state=0)
    assert list(back.columns) == list(mixed_df.columns)
    for col in LEARNED:
        pd.testing.assert_series_equal(back[col], mixed_df[col], check_names=False)


def test_output_info_describes_every_span(mixed_df, mixed_metadata):
    tt = TableTransformer(mixed_metadata).fit(mixed_df)
    spans = tt.output_info
    assert sum(s.dim for s in spans) == tt.output_dim
    by_col = {}
    for s in spans:
        by_col.setdefault(s.column, []).append((s.activation, s.role))
    assert by_col["age"][0] == ("tanh", "value") and by_col["age"][1][1] == "mode"
    assert by_col["weight"][-1] == ("softmax", "null")  # weight has missing values
    assert by_col["sex"] == [("softmax", "category")]
    assert "pid" not in by_col and "email" not in by_col  # generated, never learned
    slices = tt.column_slices()
    assert slices["pid"].stop - slices["pid"].start == 0


def test_generated_columns_never_copy_real_values(mixed_df, mixed_metadata):
    tt = TableTransformer(mixed_metadata).fit(mixed_df)
    back = tt.inverse_transform(tt.transform(mixed_df), random_state=1)
    assert back["pid"].is_unique
    assert not back["pid"].isin(mixed_df["pid"]).any()
    assert back["pid"].dtype == mixed_df["pid"].dtype
    assert not back["email"].isin(mixed_df["email"]).any()
    assert back["email"].str.contains("@").all()
    assert not back["name"].isin(mixed_df["name"]).any()
    state = str(tt.to_dict())
    for value in ["patient1@hospital.org", "Real Person"]:
        assert value not in state


def test_id_shapes_are_kept(mixed_metadata):
    md = Metadata.from_dict(
        {"columns": {"code": {"sdtype": "id"}, "u": {"sdtype": "id"}}, "primary_key": "code"}
    )
    df = pd.DataFrame(
        {
            "code": [f"PAT-{i:06d}" for i in range(30)],
            "u": [f"{i:08x}-aaaa-4bbb-8ccc-{i:012x}" for i in range(30)],
        }
    )
    tt = TableTransformer(md).fit(df)
    back = tt.inverse_transform(tt.transform(df), random_state=0)
    assert back["code"].str.fullmatch(r"PAT-\d{6}").all()
    assert back["code"].is_unique and not back["code"].isin(df["code"]).any()
    assert (
        back["u"]
        .str.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
        .all()
    )


def test_state_round_trip_decodes_identically(mixed_df, mixed_metadata):
    tt = TableTransformer(mixed_metadata).fit(mixed_df)
    clone = TableTransformer.from_dict(tt.to_dict(), mixed_metadata)
    encoded = tt.transform(mixed_df)
    np.testing.assert_array_equal(clone.transform(mixed_df), encoded)
    pd.testing.assert_frame_equal(
        clone.inverse_transform(encoded, random_state=3),
        tt.inverse_transform(encoded, random_state=3),
    )


def test_errors(mixed_df, mixed_metadata):
    tt = TableTransformer(mixed_metadata)
    with pytest.raises(NotFittedError):
        tt.transform(mixed_df)
    tt.fit(mixed_df)
    with pytest.raises(DataError, match=r"missing \['sex'\]"):
        tt.transform(mixed_df.drop(columns="sex"))
    bad = mixed_df.copy()
    bad.loc[0, "sex"] = "X"
    with pytest.raises(DataError, match="'sex' has 1 values not seen"):
        tt.transform(bad)
    with pytest.raises(DataError, match="shape"):
        tt.inverse_transform(np.zeros((3, 2)))


def test_values_stay_in_range_and_integers_stay_integers(mixed_df, mixed_metadata):
    tt = TableTransformer(mixed_metadata).fit(mixed_df)
    noise = np.random.default_rng(0).normal(0, 3, (500, tt.output_dim)).astype(np.float32)
    back = tt.inverse_transform(noise, random_state=0)
    assert back["age"].between(mixed_df["age"].min(), mixed_df["age"].max()).all()
    assert back["age"].dtype == mixed_df["age"].dtype
    assert set(back["sex"]) <= {"F", "M"}
    assert set(back["stage"]) <= {"I", "II", "III", "IV"}
    dates = pd.to_datetime(back["admitted"].dropna(), format="%Y-%m-%d")
    real = pd.to_datetime(mixed_df["admitted"].dropna())
    assert dates.min() >= real.min() and dates.max() <= real.max()


def test_native_datetime_and_timezones():
    md = Metadata.from_dict({"columns": {"t": {"sdtype": "datetime"}, "u": {"sdtype": "datetime"}}})
    t = pd.Series(pd.date_range("2022-03-01 08:00", periods=40, freq="37min"))
    df = pd.DataFrame({"t": t, "u": t.dt.tz_localize("Europe/Berlin")})
    df.loc[5, "t"] = pd.NaT
    tt = TableTransformer(md).fit(df)
    back = tt.inverse_transform(tt.transform(df))
    pd.testing.assert_frame_equal(back, df)


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=32)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data_frames(
        [
            column("x", elements=st.one_of(finite.map(lambda v: round(v, 3)), st.none())),
            column("n", dtype=np.int64, elements=st.integers(-1000, 1000)),
            column("c", elements=st.one_of(st.sampled_from(["a", "b", "c", "d"]), st.none())),
            column("b", dtype=bool),
        ],
        index=range_indexes(min_size=2, max_size=60),
    )
)
def test_round_trip_property(df):
    df["x"] = df["x"].astype("float64")
    md = Metadata.from_dict(
        {
            "columns": {
                "x": {"sdtype": "numerical"},
                "n": {"sdtype": "numerical", "computer_representation": "Int64"},
                "c": {"sdtype": "categorical"},
                "b": {"sdtype": "boolean"},
            }
        }
    )
    for numerical in ("mode", "quantile"):
        tt = TableTransformer(md, numerical=numerical).fit(df)
        back = tt.inverse_transform(tt.transform(df))
        assert back["x"].isna().equals(df["x"].isna())
        np.testing.assert_allclose(back["x"].fillna(0), df["x"].fillna(0), rtol=1e-5, atol=1e-3)
        pd.testing.assert_series_equal(back["n"], df["n"])
        pd.testing.assert_series_equal(back["c"], df["c"])
        pd.testing.assert_series_equal(back["b"], df["b"])
