"""Fidelity on Dask, partition by partition: the in-memory report's figures, from sums that add
up over partitions (threads scheduler; the cluster path is the same tasks)."""

import numpy as np
import pandas as pd
import pytest

from clinsynth.errors import DataError, ParameterError
from clinsynth.evaluation import evaluate_quality
from clinsynth.evaluation._dask import evaluate_quality_dask
from conftest import make_mixed_metadata, make_mixed_table

dd = pytest.importorskip("dask.dataframe")


@pytest.fixture(scope="module")
def tables():
    metadata = make_mixed_metadata()
    real = make_mixed_table(900, seed=1)
    synthetic = make_mixed_table(700, seed=2)
    synthetic["weight"] = synthetic["weight"] * 1.05  # a visible difference in one shape
    return metadata, real, synthetic


def _both(tables, **kwargs):
    metadata, real, synthetic = tables
    memory = evaluate_quality(real, synthetic, metadata, detection=False)
    on_dask = evaluate_quality_dask(
        dd.from_pandas(real, npartitions=3),
        dd.from_pandas(synthetic, npartitions=4),
        metadata,
        detection=False,
        **kwargs,
    )
    return memory, on_dask


def test_the_same_scores_as_in_memory(tables):
    memory, on_dask = _both(tables)
    shapes_m = memory.get_details("Column Shapes").set_index("Column")
    shapes_d = on_dask.get_details("Column Shapes").set_index("Column")
    for column, row in shapes_d.iterrows():
        expected = shapes_m.loc[column, "Score"]
        if row["KS bound"] == 0:  # whole numbers and levels: exact
            assert row["Score"] == pytest.approx(expected, abs=1e-12), column
        else:  # read at the grid's edges: never above the exact statistic by more than the bound
            assert expected - 1e-12 <= row["Score"] <= expected + row["KS bound"] + 1e-12
    # age, sbp (whole numbers) and the levels are exact; weight and the dates are on the grid
    assert shapes_d.loc["age", "KS bound"] == 0 and shapes_d.loc["stage", "KS bound"] == 0
    assert shapes_d.loc["weight", "KS bound"] > 0
    pairs_m = memory.get_details("Column Pair Trends")
    pairs_d = on_dask.get_details("Column Pair Trends")
    assert list(pairs_m["Metric"]) == list(pairs_d["Metric"])
    np.testing.assert_allclose(pairs_d["Score"], pairs_m["Score"], atol=1e-9)
    np.testing.assert_allclose(
        pairs_d["Real Association"], pairs_m["Real Association"], atol=1e-9, equal_nan=True
    )
    assert list(pairs_d["Meets Threshold?"]) == list(pairs_m["Meets Threshold?"])
    assert on_dask.get_score() == pytest.approx(memory.get_score(), abs=2e-3)
    assert on_dask.metrics["rows"] == {"real": 900, "synthetic": 700}


def test_a_fine_grid_tightens_the_bound(tables):
    metadata, real, synthetic = tables
    coarse, fine = (
        evaluate_quality_dask(real, synthetic, metadata, bins=bins, detection=False)
        for bins in (64, 8192)
    )
    assert fine.metrics["ks_max_bound"] < coarse.metrics["ks_max_bound"]


def test_parquet_parts_and_detection(tables, tmp_path):
    metadata, real, synthetic = tables
    folder = tmp_path / "synthetic"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(synthetic)), 3)):
        synthetic.iloc[part].to_parquet(folder / f"part-{i:05d}.parquet")
    (folder / "_SUCCESS").write_text("{}")  # what sample_to_parquet writes last
    report = evaluate_quality_dask(real, folder, metadata, max_rows_detection=400)
    assert report.metrics["rows"]["synthetic"] == len(synthetic)
    assert not report.get_details("Detection").empty
    assert 0.0 <= max(report.metrics["detection_auc"].values()) <= 1.0
    # an identical copy scores 1 on every shape and pair
    same = evaluate_quality_dask(real, real.iloc[::-1], metadata, detection=False)
    assert same.get_score() == pytest.approx(1.0)


def test_bad_input_is_refused_clearly(tables, tmp_path):
    metadata, real, synthetic = tables
    with pytest.raises(DataError, match="lacks the metadata column"):
        evaluate_quality_dask(real, synthetic.drop(columns=["age"]), metadata, detection=False)
    with pytest.raises(DataError, match="does not exist"):
        evaluate_quality_dask(real, tmp_path / "nope.parquet", metadata, detection=False)
    with pytest.raises(ParameterError, match="must be a Dask or pandas DataFrame"):
        evaluate_quality_dask(real, [1, 2], metadata, detection=False)
    with pytest.raises(ParameterError, match="bins"):
        evaluate_quality_dask(real, synthetic, metadata, bins=0, detection=False)
    empty = pd.DataFrame(columns=real.columns)
    with pytest.raises(DataError, match="at least one row"):
        evaluate_quality_dask(real, empty, metadata, detection=False)
