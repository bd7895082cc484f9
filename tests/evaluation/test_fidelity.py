import warnings

import numpy as np
import pandas as pd
import pytest
from evaldata import draw_population, population_metadata, splits

from clinsynth.errors import DataError, ParameterError
from clinsynth.evaluation import evaluate_quality


@pytest.fixture
def data():
    return splits()


def _sdmetrics_scores(real, synthetic, metadata_dict, thresholds: bool):
    """Column Shapes and Column Pair Trends from SDMetrics on the same inputs.

    SDMetrics pins pandas<3, so it is not in the test venv (which has the pandas users get):
    these cross-checks run in the benchmark venv, `make check-sdmetrics`, and skip elsewhere.
    """
    pytest.importorskip("sdmetrics", reason="SDMetrics is in the [bench] extra (pandas<3)")
    with warnings.catch_warnings():
        # sdmetrics deprecates its single-table report and calls pandas APIs pandas deprecates
        warnings.simplefilter("ignore")
        if thresholds:
            from sdmetrics.reports.single_table import QualityReport

            report = QualityReport()
            report.generate(real, synthetic, metadata_dict, verbose=False)
            props = report.get_properties().set_index("Property")["Score"]
            return props["Column Shapes"], props["Column Pair Trends"]
        from sdmetrics.reports.single_table._properties import ColumnPairTrends, ColumnShapes

        # the report converts datetime text with its format before the properties run; do the same
        real, synthetic = real.copy(), synthetic.copy()
        for col, spec in metadata_dict["columns"].items():
            if spec["sdtype"] == "datetime" and "datetime_format" in spec:
                for df in (real, synthetic):
                    df[col] = pd.to_datetime(df[col], format=spec["datetime_format"])
        return (
            ColumnShapes().get_score(real, synthetic, metadata_dict),
            ColumnPairTrends().get_score(real, synthetic, metadata_dict),
        )


def test_identical_data_scores_one(data):
    train, _, _, md = data
    report = evaluate_quality(train, train.copy(), md, detection=False)
    props = report.get_properties()
    assert list(props.columns) == ["Property", "Score"]
    assert props["Score"].tolist() == pytest.approx([1.0, 1.0])
    assert report.get_score() == pytest.approx(1.0)
    assert report.get_details("Column Shapes")["Score"].min() == pytest.approx(1.0)


def test_shuffled_columns_lose_pair_trends_but_keep_shapes(data):
    train, _, _, md = data
    rng = np.random.default_rng(0)
    shuffled = train.copy()
    for col in shuffled.columns:
        shuffled[col] = rng.permutation(shuffled[col].to_numpy())
    faithful = evaluate_quality(train, draw_population(500, seed=5), md, detection=False)
    broken = evaluate_quality(train, shuffled, md, detection=False)
    shapes = broken.get_properties().set_index("Property")["Score"]
    assert shapes["Column Shapes"] == pytest.approx(1.0)
    pair_drop = faithful.metrics["column_pair_trends"] - shapes["Column Pair Trends"]
    assert pair_drop > 0.15
    assert broken.get_score() < faithful.get_score() - 0.05


@pytest.mark.parametrize("thresholds", [True, False], ids=["QualityReport", "plain-average"])
def test_agrees_with_sdmetrics(data, thresholds):
    train, _, fresh, md = data
    synthetic = fresh.copy()
    synthetic.loc[:40, "age"] += 15  # some real differences
    synthetic.loc[60:200, "risk"] = "low"
    kwargs = (
        {} if thresholds else {"real_correlation_threshold": 0, "real_association_threshold": 0}
    )
    mine = evaluate_quality(train, synthetic, md, detection=False, **kwargs).get_properties()
    mine = mine.set_index("Property")["Score"]
    shapes, pairs = _sdmetrics_scores(train, synthetic, md.get_table().to_dict(), thresholds)
    assert mine["Column Shapes"] == pytest.approx(shapes, abs=0.01)
    assert mine["Column Pair Trends"] == pytest.approx(pairs, abs=0.01)


def test_agrees_with_sdmetrics_on_shared_mixed_table():
    from conftest import make_mixed_metadata, make_mixed_table  # the repository's tiny fixture

    real, synthetic = make_mixed_table(150, seed=0), make_mixed_table(120, seed=1)
    md = make_mixed_metadata()
    for thresholds in (True, False):
        kw = (
            {} if thresholds else {"real_correlation_threshold": 0, "real_association_threshold": 0}
        )
        mine = evaluate_quality(real, synthetic, md, detection=False, **kw).get_properties()
        mine = mine.set_index("Property")["Score"]
        shapes, pairs = _sdmetrics_scores(real, synthetic, md.get_table().to_dict(), thresholds)
        assert mine["Column Shapes"] == pytest.approx(shapes, abs=0.01)
        if not np.isnan(pairs):
            assert mine["Column Pair Trends"] == pytest.approx(pairs, abs=0.01)
        else:
            assert np.isnan(mine["Column Pair Trends"])


def test_supplementary_details(data):
    train, _, fresh, md = data
    report = evaluate_quality(train, fresh, md, random_state=1)
    tests = report.get_details("Statistical Tests").set_index("Column")
    assert {"age", "sbp", "admitted", "sex", "risk", "smoker"} <= set(tests.index)
    assert tests.loc["age", "KS p-value"] > 0.01  # same distribution
    assert not {"pid", "email"} & set(tests.index)  # ids and PII are left out
    moments = report.get_details("Moments").set_index("Column")
    assert moments.loc["age", "Real Mean"] == pytest.approx(train["age"].mean())
    detection = report.get_details("Detection")
    assert set(detection["Model"]) == {"HistGradientBoosting", "LogisticRegression"}
    assert detection["AUC"].max() < 0.65
    assert 0.8 < report.metrics["detection_score"] <= 1.0
    assert report.metrics["alpha_precision"] > 0.75 and report.metrics["beta_recall"] > 0.75


def test_detection_spots_a_bad_copy(data):
    train, _, _, md = data
    bad = train.assign(age=train["age"] + 10, sbp=train["sbp"] * 0.8)
    report = evaluate_quality(train, bad, md)
    assert report.metrics["detection_auc"]["HistGradientBoosting"] > 0.9
    assert report.metrics["detection_score"] < 0.2
    assert report.metrics["alpha_precision"] < 0.7


def test_subsampling_is_recorded_and_reproducible(data):
    train, _, fresh, md = data
    a = evaluate_quality(train, fresh, md, max_rows_pairs=200, max_rows_detection=300)
    b = evaluate_quality(train, fresh, md, max_rows_pairs=200, max_rows_detection=300)
    assert a.sampling["Column Pair Trends (contingency)"] == {"real": 200, "synthetic": 200}
    assert a.sampling["Detection"] == {"real": 300, "synthetic": 300}
    assert a.to_dict() == b.to_dict()


def test_bad_input_is_reported(data):
    train, _, _, md = data
    with pytest.raises(DataError, match="lacks the metadata column"):
        evaluate_quality(train, train.drop(columns=["age"]), md)
    with pytest.raises(ParameterError, match="max_rows_pairs"):
        evaluate_quality(train, train, md, max_rows_pairs=0)
    with pytest.raises(ParameterError, match="property_name"):
        evaluate_quality(train, train, md, detection=False).get_details("Nope")
    with pytest.raises(DataError, match="no rows"):
        evaluate_quality(train, train.iloc[:0], md)


def test_metadata_as_dict_and_datetime_strings(data):
    train, _, _, md = data
    as_text = train.assign(admitted=train["admitted"].dt.strftime("%Y-%m-%d"))
    meta = population_metadata().to_dict()
    meta["tables"]["table"]["columns"]["admitted"]["datetime_format"] = "%Y-%m-%d"
    report = evaluate_quality(train, as_text, meta, detection=False)
    assert report.get_score() == pytest.approx(1.0)
    assert isinstance(report.get_properties(), pd.DataFrame)
