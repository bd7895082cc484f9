"""Detection (classifier two-sample test) and alpha-precision / beta-recall.

* **Detection** — a classifier learns to tell real rows (label 0) from synthetic rows (label 1);
  its cross-validated ROC AUC is 0.5 when it cannot (perfect synthetic data) and 1 when it always
  can. Two classifiers: histogram gradient boosting and logistic regression on standardized,
  one-hot encoded columns. ``score = 1 - 2 * max(AUC - 0.5, 0)``; the detection score uses the
  better detector (the larger AUC).
* **Alpha-precision / beta-recall** (Alaa et al., "How faithful is your synthetic data?", ICML
  2022) — *approximated with k-nearest-neighbour radii* instead of the paper's learned hypersphere
  embedding: in the standardized one-hot embedding, the real alpha-support is the set of points
  whose distance to their k-th nearest real record is at most the alpha-quantile of those distances
  among the real records (the densest alpha share of the real data). ``P(alpha)`` is the share of
  synthetic rows inside it; a faithful generator gives ``P(alpha) = alpha``. Beta-recall swaps the
  roles (the synthetic beta-support, real rows inside it). The integrated scores are
  ``1 - 2 * mean |P(alpha) - alpha|`` over a grid of alphas, in [0, 1], 1 is best. Ties in
  all-categorical tables make the curves step-shaped.
* **What gives it away** — the detector's permutation importance per column (see ``_logic``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import NearestNeighbors

from clinsynth.evaluation._encoding import FeatureEncoder
from clinsynth.evaluation._logic import giveaway
from clinsynth.metadata import TableMetadata

ALPHAS = np.round(np.linspace(0.05, 1.0, 20), 2)


def detection_auc(
    x_real: np.ndarray, x_synthetic: np.ndarray, *, folds: int = 3, seed: int = 0
) -> pd.DataFrame:
    """Cross-validated ROC AUC of two classifiers telling real from synthetic rows."""
    x = np.vstack([x_real, x_synthetic])
    y = np.r_[np.zeros(len(x_real)), np.ones(len(x_synthetic))]
    models = {
        "HistGradientBoosting": lambda: HistGradientBoostingClassifier(
            max_iter=100, early_stopping=False, random_state=seed
        ),
        "LogisticRegression": lambda: LogisticRegression(max_iter=500),
    }
    n_splits = int(min(folds, len(x_real), len(x_synthetic)))
    rows = []
    for name, make in models.items():
        if n_splits < 2:
            rows.append((name, np.nan, np.nan))
            continue
        pred = np.empty(len(y))
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        for train, test in splitter.split(x, y):
            model = make()
            with warnings.catch_warnings():
                # An unconverged logistic regression still separates what it can.
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(x[train], y[train])
            pred[test] = model.predict_proba(x[test])[:, 1]
        auc = float(roc_auc_score(y, pred))
        rows.append((name, auc, 1 - 2 * max(auc - 0.5, 0.0)))
    return pd.DataFrame(rows, columns=["Model", "AUC", "Score"])


def _radii(reference: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Distance of each reference row to its k-th other reference row, and of each query row to
    its k-th reference row."""
    nn = NearestNeighbors(n_neighbors=min(k + 1, len(reference)), n_jobs=1).fit(reference)
    own = nn.kneighbors(reference, return_distance=True)[0][:, -1]
    other = nn.kneighbors(queries, n_neighbors=min(k, len(reference)), return_distance=True)[0]
    return own, other[:, -1]


def alpha_precision_beta_recall(
    x_real: np.ndarray, x_synthetic: np.ndarray, *, k: int = 5
) -> tuple[float, float, pd.DataFrame]:
    """Integrated alpha-precision and beta-recall (k-NN approximation), and their curves."""
    if len(x_real) <= k or len(x_synthetic) <= k:
        return float("nan"), float("nan"), pd.DataFrame(columns=["Alpha", "Precision", "Recall"])
    own_r, syn_to_r = _radii(x_real, x_synthetic, k)
    own_s, real_to_s = _radii(x_synthetic, x_real, k)
    q_r = np.quantile(own_r, ALPHAS)
    q_s = np.quantile(own_s, ALPHAS)
    precision = (syn_to_r[None, :] <= q_r[:, None]).mean(axis=1)
    recall = (real_to_s[None, :] <= q_s[:, None]).mean(axis=1)
    ip = 1 - 2 * float(np.mean(np.abs(precision - ALPHAS)))
    ir = 1 - 2 * float(np.mean(np.abs(recall - ALPHAS)))
    curves = pd.DataFrame({"Alpha": ALPHAS, "Precision": precision, "Recall": recall})
    return max(ip, 0.0), max(ir, 0.0), curves


def detection_and_precision(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    table: TableMetadata,
    columns: list[str],
    *,
    seed: int,
    precision_rows: int,
    importance: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Run both on already subsampled tables; ``precision_rows`` caps the k-NN part further.
    With ``importance``, also the detector's permutation importance per column."""
    enc = FeatureEncoder(table, columns).fit(real)
    xr, xs = enc.transform(real), enc.transform(synthetic)
    detection = detection_auc(xr, xs, seed=seed)
    rng = np.random.default_rng(seed)
    ir = rng.permutation(len(xr))[:precision_rows]
    is_ = rng.permutation(len(xs))[:precision_rows]
    ap, br, curves = alpha_precision_beta_recall(xr[ir], xs[is_])
    summary = {
        "alpha_precision": ap,
        "beta_recall": br,
        "precision_rows": {"real": len(ir), "synthetic": len(is_)},
        "importance": giveaway(xr, xs, enc.groups_, seed=seed) if importance else None,
    }
    return detection, curves, summary
