"""``evaluate_quality``: fidelity of the synthetic data to the real data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from clinsynth._utils import ProgressCallback, report
from clinsynth.errors import DataError
from clinsynth.evaluation._common import (
    CONTINUOUS,
    Sampling,
    check_columns,
    check_frame,
    check_positive_int,
    nanmean,
    resolve_table,
    single_threaded,
    statistical_columns,
    subsample,
    to_numeric,
)
from clinsynth.evaluation._detection import detection_and_precision
from clinsynth.evaluation._fidelity import (
    check_thresholds,
    column_pair_trends,
    column_shapes,
    pair_trends_score,
    score_metrics,
    shapes_score,
)
from clinsynth.evaluation._logic import evaluate_logic, giveaway_sentence, logic_sentence
from clinsynth.evaluation._metrics import compute_metrics
from clinsynth.evaluation._reports import QualityReport
from clinsynth.evaluation._statistics import categorical_statistics, numeric_statistics
from clinsynth.metadata import Metadata


@single_threaded
def evaluate_quality(
    real_data: pd.DataFrame,
    synthetic_data: pd.DataFrame,
    metadata: Metadata,
    *,
    holdout: pd.DataFrame | None = None,
    detection: bool = True,
    logic: bool = False,
    importance: bool = False,
    real_correlation_threshold: float = 0.5,
    real_association_threshold: float = 0.3,
    max_rows_pairs: int | None = 50_000,
    max_rows_detection: int | None = 10_000,
    max_rows_precision: int | None = 5_000,
    random_state: int | None = 0,
    progress: ProgressCallback | None = None,
) -> QualityReport:
    """Measure how faithfully the synthetic data reproduces the real data.

    The score is the mean of **Column Shapes** and **Column Pair Trends**, defined as in SDMetrics'
    ``QualityReport`` (see :mod:`clinsynth.evaluation._fidelity` for the exact definitions, which
    include SDMetrics' rule that only pairs associated in the real data count). Supplementary
    details that do not enter the score: per-column statistical tests (KS, Welch t, chi-square),
    moments, Wasserstein distances, the logic kept (per rule of the table, the share of
    synthetic, holdout and training rows obeying it), a detection test (can a classifier tell
    the two apart? and by which columns) and alpha-precision / beta-recall.

    Parameters
    ----------
    real_data, synthetic_data : DataFrame
        The real table and the synthetic table, with the metadata's columns.
    metadata : Metadata
        Single-table metadata. Id and PII columns are ignored.
    holdout : DataFrame, optional
        Real rows the model never saw: the logic kept is shown beside theirs.
    detection : bool
        Run the detection classifiers and alpha-precision / beta-recall (the slowest part).
    logic : bool
        Check the table's rules (its metadata ``constraints``, else rules discovered on
        ``real_data``) on every row ("Logic Kept"; ``evaluate`` turns it on).
    importance : bool
        With ``detection``: the detector's permutation importance per column and a sentence
        on what gives the synthetic rows away ("Detection Importance"; one more classifier
        fit; ``evaluate`` turns it on).
    real_correlation_threshold, real_association_threshold : float
        A pair counts toward Column Pair Trends only when the real data's ``|Pearson r|`` (two
        continuous columns) or Cramér's V (other pairs) exceeds this; SDMetrics' values by default.
        Set both to 0 to average over every pair.
    max_rows_pairs, max_rows_detection, max_rows_precision : int or None
        Rows drawn from each table (with ``random_state``) for contingency tables, for detection
        and for alpha-precision; None uses every row. The report's ``sampling`` says what was
        subsampled.
    random_state : int, optional
    progress : callable, optional
        ``progress(total, completed, message)``.

    Returns
    -------
    QualityReport

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from clinsynth import Metadata
    >>> rng = np.random.default_rng(0)
    >>> real = pd.DataFrame({"age": rng.normal(60, 10, 300), "sex": rng.choice(["F", "M"], 300)})
    >>> md = Metadata.detect_from_dataframe(real)
    >>> report = evaluate_quality(real, real.sample(frac=1, random_state=1), md, detection=False)
    >>> report.get_score()
    1.0
    """
    table = resolve_table(metadata)
    real = check_frame(real_data, "real_data")
    synthetic = check_frame(synthetic_data, "synthetic_data")
    # Cells holding a column's "missing_values" markers (".", "NA", ...) are missing values.
    from clinsynth.metadata._validate import clear_missing_values

    real, synthetic = clear_missing_values(real, table), clear_missing_values(synthetic, table)
    check_columns(table, {"real_data": real, "synthetic_data": synthetic})
    for name, value in (
        ("max_rows_pairs", max_rows_pairs),
        ("max_rows_detection", max_rows_detection),
        ("max_rows_precision", max_rows_precision),
    ):
        check_positive_int("evaluate_quality", name, value)
    check_thresholds(
        "evaluate_quality",
        real_correlation_threshold=real_correlation_threshold,
        real_association_threshold=real_association_threshold,
    )
    columns = statistical_columns(table)
    if not columns:
        raise DataError(
            "The metadata has no numerical, datetime, categorical, ordinal or boolean column, so "
            "there is nothing to compare. Declare the sdtypes of the columns to evaluate."
        )
    rng = np.random.default_rng(random_state)
    sampling = Sampling()
    total = 4 if detection else 3
    report(progress, total, 0, "Column shapes")

    numeric = {
        c: (to_numeric(real[c], table.columns[c]), to_numeric(synthetic[c], table.columns[c]))
        for c in statistical_columns(table, CONTINUOUS)
    }
    shapes = column_shapes(real, synthetic, table, numeric)
    report(progress, total, 1, "Column pair trends")

    ir, is_ = np.arange(len(real)), np.arange(len(synthetic))
    if max_rows_pairs is not None and max(len(real), len(synthetic)) > max_rows_pairs:
        ir = np.sort(rng.permutation(len(real))[:max_rows_pairs])
        is_ = np.sort(rng.permutation(len(synthetic))[:max_rows_pairs])
        sampling.record("Column Pair Trends (contingency)", real=len(ir), synthetic=len(is_))
    pairs = column_pair_trends(
        real,
        synthetic,
        table,
        numeric,
        contingency_rows=(ir, is_),
        real_correlation_threshold=real_correlation_threshold,
        real_association_threshold=real_association_threshold,
    )
    report(progress, total, 2, "Statistical tests")

    num_tests, moments = numeric_statistics(table, numeric)
    cat_tests = categorical_statistics(real, synthetic, table)
    tests = pd.concat([d for d in (num_tests, cat_tests) if not d.empty], ignore_index=True)

    properties = {
        "Column Shapes": shapes_score(shapes),
        "Column Pair Trends": pair_trends_score(pairs),
    }
    details = {
        "Column Shapes": shapes,
        "Column Pair Trends": pairs,
        "Statistical Tests": tests,
        "Moments": moments,
    }
    notes = []
    if logic:
        logic_details, logic_metrics = evaluate_logic(
            real,
            synthetic,
            table,
            holdout=check_frame(holdout, "holdout") if holdout is not None else None,
        )
        details["Logic Kept"] = logic_details
    if properties["Column Pair Trends"] is None:
        notes.append(
            "Column Pair Trends was not measured: no pair of columns is associated in the real "
            f"data above the thresholds (|r| > {real_correlation_threshold}, Cramér's V > "
            f"{real_association_threshold}). As in SDMetrics, the quality score is then the "
            "Column Shapes score alone."
        )
    metrics = {
        **score_metrics(properties, pairs),
        "mean_standardized_wasserstein": nanmean(
            list(num_tests["Wasserstein (standardized)"].replace(np.inf, np.nan))
        )
        if len(num_tests)
        else None,
    }
    if logic:
        metrics.update(logic_metrics)
        metrics["logic_summary"] = logic_sentence(logic_details, logic_metrics)
    metrics.update(compute_metrics("fidelity", real, synthetic, table))

    if detection:
        report(progress, total, 3, "Detection")
        seed = int(rng.integers(2**31 - 1))
        r_sub, s_sub = (
            subsample(real, max_rows_detection, rng),
            subsample(synthetic, max_rows_detection, rng),
        )
        if len(r_sub) < len(real) or len(s_sub) < len(synthetic):
            sampling.record("Detection", real=len(r_sub), synthetic=len(s_sub))
        det, curves, summary = detection_and_precision(
            r_sub,
            s_sub,
            table,
            columns,
            seed=seed,
            precision_rows=max_rows_precision or max(len(r_sub), len(s_sub)),
            importance=importance,
        )
        rows = summary["precision_rows"]
        if rows["real"] < len(real) or rows["synthetic"] < len(synthetic):
            sampling.record("Alpha-precision / beta-recall", **rows)
        details["Detection"] = det
        details["Alpha Precision Beta Recall"] = curves
        aucs = det["AUC"].dropna()
        worst = float(aucs.max()) if len(aucs) else None
        if importance:
            details["Detection Importance"] = summary["importance"]
            metrics["giveaway"] = giveaway_sentence(summary["importance"], worst)
        metrics.update(
            {
                "detection_auc": dict(zip(det["Model"], det["AUC"], strict=True)),
                "detection_score": None if worst is None else 1 - 2 * max(worst - 0.5, 0.0),
                "alpha_precision": summary["alpha_precision"],
                "beta_recall": summary["beta_recall"],
            }
        )
    report(progress, total, total, "Fidelity done")
    return QualityReport(properties, details, metrics=metrics, sampling=sampling.notes, notes=notes)
