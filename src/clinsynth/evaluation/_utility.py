"""``evaluate_utility``: is the synthetic data as useful as the real data for a prediction task?

Train on synthetic, test on a real holdout (TSTR), against train on real, test on the same holdout
(TRTR), with two models: histogram gradient boosting and a linear model (logistic regression or
ridge) on standardized, one-hot encoded columns (the encoder is fitted on each training set).

* Classification (categorical, ordinal or boolean target): ROC AUC (macro one-vs-rest for more
  than two classes) and macro F1.
* Regression (numerical or datetime target): R².

The utility score is the mean over the two models of ``TSTR / TRTR`` on the chance-corrected main
metric, clipped to [0, 1]: ``(AUC_tstr - 0.5) / (AUC_trtr - 0.5)`` for classification and
``R²_tstr / R²_trtr`` for regression. It is not measured when the real data itself predicts the
target no better than chance (TRTR excess below 0.02).

Feature-importance agreement: permutation importances (drop of the main metric when a column is
shuffled, on up to 2,000 holdout rows) of the gradient-boosting models trained on real and on
synthetic data, compared with Spearman's rank correlation.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import f1_score, r2_score, roc_auc_score

from clinsynth._utils import ProgressCallback, report
from clinsynth.errors import DataError, ParameterError
from clinsynth.evaluation._common import (
    CONTINUOUS,
    DISCRETE,
    Sampling,
    check_positive_int,
    check_release_inputs,
    clip01,
    nanmean,
    single_threaded,
    statistical_columns,
    subsample,
    to_numeric,
)
from clinsynth.evaluation._encoding import FeatureEncoder
from clinsynth.evaluation._metrics import compute_metrics
from clinsynth.evaluation._reports import UtilityReport
from clinsynth.metadata import Metadata, TableMetadata

MIN_SIGNAL = 0.02


class _Constant:
    """Predicts the only class seen in training."""

    def __init__(self, label: str) -> None:
        self.classes_ = np.array([label])

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.ones((len(x), 1))


def _make_models(task: str, seed: int) -> dict:
    if task == "classification":
        return {
            "HistGradientBoosting": lambda: HistGradientBoostingClassifier(
                max_iter=100, early_stopping=False, random_state=seed
            ),
            "Linear": lambda: LogisticRegression(max_iter=500),
        }
    return {
        "HistGradientBoosting": lambda: HistGradientBoostingRegressor(
            max_iter=100, early_stopping=False, random_state=seed
        ),
        "Linear": lambda: Ridge(alpha=1.0),
    }


def _target(df: pd.DataFrame, table: TableMetadata, target: str, task: str) -> np.ndarray:
    if task == "classification":
        return df[target].astype("string").to_numpy(dtype=object)
    return to_numeric(df[target], table.columns[target])


class _Task:
    """Fits models on one training set and scores predictions on the holdout."""

    def __init__(self, task: str, holdout_y: np.ndarray) -> None:
        self.task = task
        self.y = holdout_y
        if task == "classification":
            self.labels = np.array(sorted(set(holdout_y)), dtype=object)

    def fit(self, make, x: np.ndarray, y: np.ndarray):
        if self.task == "classification" and len(set(y)) < 2:
            return _Constant(y[0])
        model = make()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x, y)
        return model

    def scores(self, model, x: np.ndarray) -> dict[str, float]:
        if self.task == "regression":
            return {"R2": float(r2_score(self.y, model.predict(x)))}
        proba = model.predict_proba(x)
        full = np.zeros((len(x), len(self.labels)))
        where = {c: i for i, c in enumerate(self.labels)}
        for j, c in enumerate(model.classes_):
            if c in where:
                full[:, where[c]] = proba[:, j]
        pred = self.labels[full.argmax(axis=1)]
        f1 = float(f1_score(self.y, pred, labels=self.labels, average="macro", zero_division=0))
        if len(self.labels) < 2:
            return {"ROC AUC": float("nan"), "F1": f1}
        sums = full.sum(axis=1, keepdims=True)
        full = np.where(sums > 0, full / np.where(sums > 0, sums, 1), 1.0 / len(self.labels))
        if len(self.labels) == 2:
            auc = roc_auc_score(self.y == self.labels[1], full[:, 1])
        else:
            auc = roc_auc_score(
                self.y, full, multi_class="ovr", average="macro", labels=self.labels
            )
        return {"ROC AUC": float(auc), "F1": f1}


def _importances(task, model, x: np.ndarray, enc: FeatureEncoder, metric: str, rng) -> np.ndarray:
    base = task.scores(model, x)[metric]
    out = []
    for col in enc.columns:
        block = enc.groups_[col]
        drops = []
        for _ in range(2):
            shuffled = x.copy()
            shuffled[:, block] = x[rng.permutation(len(x)), block]
            drops.append(base - task.scores(model, shuffled)[metric])
        out.append(float(np.mean(drops)))
    return np.array(out)


@single_threaded
def evaluate_utility(
    real_train: pd.DataFrame,
    synthetic: pd.DataFrame,
    metadata: Metadata,
    *,
    target: str,
    holdout: pd.DataFrame,
    task: Literal["classification", "regression"] | None = None,
    max_rows_train: int | None = 20_000,
    max_rows_holdout: int | None = 10_000,
    random_state: int | None = 0,
    progress: ProgressCallback | None = None,
) -> UtilityReport:
    """Compare models trained on synthetic data with models trained on real data.

    Parameters
    ----------
    real_train : DataFrame
        The real records the synthesizer was trained on.
    synthetic : DataFrame
    metadata : Metadata
        Single-table metadata; id and PII columns are not used as features.
    target : str
        The column to predict.
    holdout : DataFrame
        Real records no model (nor the synthesizer) was trained on.
    task : {"classification", "regression"}, optional
        Inferred from the target's sdtype when None.
    max_rows_train, max_rows_holdout : int or None
        Rows drawn (with ``random_state``) from each training set and from the holdout.
    random_state : int, optional
    progress : callable, optional

    Returns
    -------
    UtilityReport
        Property ``ML Efficacy``; ``get_details("ML Efficacy")`` has columns ``Model``,
        ``Metric``, ``tstr``, ``trtr`` and ``ratio``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from clinsynth import Metadata
    >>> rng = np.random.default_rng(0)
    >>> def draw(n):
    ...     age = rng.normal(60, 10, n)
    ...     return pd.DataFrame({"age": age, "bmi": rng.normal(27, 4, n),
    ...                          "event": np.where(age + rng.normal(0, 5, n) > 60, "yes", "no")})
    >>> train, holdout, synth = draw(400), draw(300), draw(400)
    >>> md = Metadata.detect_from_dataframe(train)
    >>> rep = evaluate_utility(train, synth, md, target="event", holdout=holdout)
    >>> rep.get_score() > 0.9
    True
    """
    table, train, synth, hold = check_release_inputs(metadata, real_train, synthetic, holdout)
    check_positive_int("evaluate_utility", "max_rows_train", max_rows_train)
    check_positive_int("evaluate_utility", "max_rows_holdout", max_rows_holdout)
    columns = statistical_columns(table)
    if target not in columns:
        raise ParameterError(
            f"The 'target' parameter of evaluate_utility must be a statistical column of the "
            f"metadata ({', '.join(columns)}). Got {target!r}."
        )
    sdtype = table.sdtype(target)
    if task is None:
        task = "classification" if sdtype in DISCRETE else "regression"
    if task not in ("classification", "regression"):
        raise ParameterError(
            "The 'task' parameter of evaluate_utility must be 'classification', 'regression' or "
            f"None. Got {task!r}."
        )
    if task == "regression" and sdtype not in CONTINUOUS:
        raise ParameterError(
            f"Column '{target}' is {sdtype}; regression needs a numerical or datetime target. "
            "Use task='classification'."
        )
    features = [c for c in columns if c != target]
    if not features:
        raise DataError(f"No feature columns are left to predict '{target}' from.")
    rng = np.random.default_rng(random_state)
    seed = int(rng.integers(2**31 - 1))
    sampling = Sampling()

    def prepared(df: pd.DataFrame, cap: int | None, name: str) -> tuple[pd.DataFrame, np.ndarray]:
        y = _target(df, table, target, task)
        keep = ~pd.isna(y)
        df, y = df[keep], y[keep]
        if len(df) == 0:
            raise DataError(f"The {name} has no row with a value of '{target}'.")
        sub = subsample(df, cap, rng)
        if len(sub) < len(df):
            sampling.record(f"ML utility ({name})", rows=len(sub))
            y = _target(sub, table, target, task)
        return sub, y

    hold_df, hold_y = prepared(hold, max_rows_holdout, "holdout")
    evaluator = _Task(task, hold_y)
    metric = "ROC AUC" if task == "classification" else "R2"
    chance = 0.5 if task == "classification" else 0.0
    rows, models, encoders = [], {}, {}
    sets = {"trtr": prepared(train, max_rows_train, "real training data")}
    sets["tstr"] = prepared(synth, max_rows_train, "synthetic data")
    for step, (which, (df, y)) in enumerate(sets.items()):
        report(progress, 3, step, f"Training models ({which.upper()})")
        enc = FeatureEncoder(table, features).fit(df)
        encoders[which] = enc
        x_train, x_hold = enc.transform(df), enc.transform(hold_df)
        for name, make in _make_models(task, seed).items():
            model = evaluator.fit(make, x_train, y)
            models[(which, name)] = (model, x_hold)
            for m, value in evaluator.scores(model, x_hold).items():
                rows.append({"Model": name, "Metric": m, which: value})
    merged = pd.DataFrame(rows).groupby(["Model", "Metric"], sort=False).first().reset_index()
    merged = merged[["Model", "Metric", "tstr", "trtr"]]

    def ratio(row) -> float | None:
        if row["Metric"] == "F1":
            return clip01(row["tstr"] / row["trtr"]) if row["trtr"] > 0 else None
        signal = row["trtr"] - chance
        if not np.isfinite(signal) or signal < MIN_SIGNAL:
            return None
        return clip01((row["tstr"] - chance) / signal)

    merged["ratio"] = [ratio(r) for _, r in merged.iterrows()]
    report(progress, 3, 2, "Feature importance")

    n_imp = min(len(hold_df), 2000)
    pick = rng.permutation(len(hold_df))[:n_imp]
    imp_task = _Task(task, hold_y[pick])
    imp = {}
    for which in ("trtr", "tstr"):
        model, x_hold = models[(which, "HistGradientBoosting")]
        imp[which] = _importances(imp_task, model, x_hold[pick], encoders[which], metric, rng)
    importance = pd.DataFrame(
        {
            "Column": features,
            "Importance (real)": imp["trtr"],
            "Importance (synthetic)": imp["tstr"],
        }
    )
    agreement = None
    if len(features) > 1 and np.ptp(imp["trtr"]) > 0 and np.ptp(imp["tstr"]) > 0:
        agreement = float(spearmanr(imp["trtr"], imp["tstr"]).statistic)
    main_rows = merged[merged["Metric"] == metric]
    main = main_rows["ratio"].tolist()
    score = nanmean(main)
    notes = [
        f"Utility score = mean over the two models of TSTR/TRTR on the chance-corrected {metric} "
        f"({'AUC - 0.5' if task == 'classification' else 'R² as is'}), clipped to [0, 1]."
    ]
    if score is None:
        notes.append(
            f"The real data predicts '{target}' no better than chance, so utility is not measured."
        )
    report(progress, 3, 3, "Utility done")
    return UtilityReport(
        {"ML Efficacy": score},
        {"ML Efficacy": merged, "Feature Importance": importance},
        metrics={
            "target": target,
            "task": task,
            "metric": metric,
            "tstr": dict(zip(main_rows["Model"], main_rows["tstr"], strict=True)),
            "trtr": dict(zip(main_rows["Model"], main_rows["trtr"], strict=True)),
            "feature_importance_spearman": agreement,
            **compute_metrics("utility", train, synth, table, holdout=hold, target=target),
        },
        sampling=sampling.notes,
        notes=notes,
    )
