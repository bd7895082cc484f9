"""Where synthetic rows give themselves away: the table's logic, and the detector's columns.

* **Logic kept** — for each rule of the table (the metadata's ``constraints``; discovered on the
  real rows when the metadata has none), the share of synthetic rows that obey it, beside the
  share of real holdout rows and of the training rows. Rules that need values (a functional
  dependency's lookup, a point mass's gap) learn them from the training rows.
* **What gives it away** — permutation importance of the detection classifier (histogram
  gradient boosting, as in the detection test): how much its ROC AUC falls on held-out rows when
  one column's values are shuffled, and a plain sentence naming the columns that matter most.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from clinsynth.constraints import Constraint, constraint_from_dict, discover_rules
from clinsynth.errors import MetadataError
from clinsynth.metadata import TableMetadata

#: An AUC drop below this is noise, not a give-away.
GIVEAWAY_MIN_DROP = 0.01


def table_rules(real: pd.DataFrame, table: TableMetadata) -> list[Constraint]:
    """The rules to check: the metadata's (custom predicates left out), else discovered ones."""
    items = table.constraints or [r.to_dict() for r in discover_rules(real, table)]
    rules = []
    for item in items:
        try:
            rule = constraint_from_dict(item)
        except MetadataError:
            continue
        if rule.type == "custom" or rule.check_metadata(table):
            continue
        rules.append(rule)
    return rules


def evaluate_logic(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    table: TableMetadata,
    *,
    holdout: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per rule, the share of rows obeying it; and the share of rows obeying every rule.

    Returns
    -------
    details : DataFrame
        ``Rule``, ``Kind``, ``Discovered``, ``Support`` (informative rows at discovery),
        ``Synthetic``, ``Holdout`` and ``Training`` (shares of rows obeying the rule).
    metrics : dict
        ``logic_rules`` and ``logic_rows_kept`` (share of synthetic rows obeying every rule),
        with ``_holdout`` and ``_training`` variants.
    """
    if holdout is not None and any(c not in holdout.columns for c in table.columns):
        holdout = None  # another table's rows: nothing to compare
    frames = {"Synthetic": synthetic, "Holdout": holdout, "Training": real}
    rows, every = [], {k: np.ones(len(f), dtype=bool) for k, f in frames.items() if f is not None}
    for rule in table_rules(real, table):
        try:
            rule.learn(real, table)
        except MetadataError:
            continue
        row: dict[str, Any] = {
            "Rule": rule.describe(),
            "Kind": rule.type,
            "Discovered": rule.discovered,
            "Support": (rule.support or {}).get("informative"),
        }
        for name, frame in frames.items():
            if frame is None:
                row[name] = None
                continue
            ok = np.asarray(rule.is_valid(frame, table), dtype=bool)
            every[name] &= ok
            row[name] = float(ok.mean()) if len(ok) else None
        rows.append(row)
    details = pd.DataFrame(rows, columns=["Rule", "Kind", "Discovered", "Support", *frames])
    metrics: dict[str, Any] = {"logic_rules": len(rows)}
    for name, suffix in (("Synthetic", ""), ("Holdout", "_holdout"), ("Training", "_training")):
        ok = every.get(name)
        metrics["logic_rows_kept" + suffix] = (
            float(ok.mean()) if ok is not None and len(ok) and rows else None
        )
    return details, metrics


def logic_sentence(details: pd.DataFrame, metrics: dict[str, Any]) -> str:
    """One plain sentence on the logic kept."""
    if not len(details):
        return "No rule of the table's logic was found or declared, so none was checked."
    kept = metrics.get("logic_rows_kept")
    holdout = metrics.get("logic_rows_kept_holdout")
    worst = details.sort_values("Synthetic").iloc[0]
    text = (
        f"{kept:.1%} of the synthetic rows obey all {len(details)} rules"
        + (f" (real holdout rows: {holdout:.1%})" if holdout is not None else "")
        + "."
    )
    if worst["Synthetic"] is not None and worst["Synthetic"] < 1.0:
        share = 1 - worst["Synthetic"]
        text += f" The rule broken most often: '{worst['Rule']}' ({share:.1%} of rows)."
    return text


def giveaway(
    x_real: np.ndarray,
    x_synthetic: np.ndarray,
    groups: dict[str, slice],
    *,
    seed: int,
    top: int = 10,
) -> pd.DataFrame:
    """Permutation importance of each column for the detection classifier.

    The classifier trains on two thirds of the rows (both classes) and is scored on the rest;
    each column's features (its one-hot block, its missing flag) are shuffled together.
    Returns the ``top`` columns: ``Column``, ``AUC Drop``.
    """
    x = np.vstack([x_real, x_synthetic])
    y = np.r_[np.zeros(len(x_real)), np.ones(len(x_synthetic))]
    if min(len(x_real), len(x_synthetic)) < 10 or not groups:
        return pd.DataFrame(columns=["Column", "AUC Drop"])
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for label in (0, 1):
        idx = np.flatnonzero(y == label)
        test[rng.choice(idx, size=len(idx) // 3, replace=False)] = True
    model = HistGradientBoostingClassifier(max_iter=100, early_stopping=False, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x[~test], y[~test])
    x_test, y_test = x[test], y[test]
    base = roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])
    order = rng.permutation(len(x_test))
    drops = []
    for column, block in groups.items():
        shuffled = x_test.copy()
        shuffled[:, block] = x_test[order][:, block]
        auc = roc_auc_score(y_test, model.predict_proba(shuffled)[:, 1])
        drops.append((column, float(base - auc)))
    out = pd.DataFrame(drops, columns=["Column", "AUC Drop"])
    return (
        out.sort_values("AUC Drop", ascending=False, kind="stable").head(top).reset_index(drop=True)
    )


def giveaway_sentence(importance: pd.DataFrame, auc: float | None) -> str:
    """A plain sentence naming the columns that give the synthetic rows away."""
    strong = importance[importance["AUC Drop"] >= GIVEAWAY_MIN_DROP]
    if auc is not None and auc < 0.6:
        lead = f"The detector barely tells synthetic rows from real ones (ROC AUC {auc:.2f})"
        if not len(strong):
            return lead + "; no single column gives them away."
        return lead + f"; what it uses most is {_names(strong)}."
    if not len(strong):
        return (
            "No single column gives the synthetic rows away: shuffling any one of them changes "
            f"the detector's ROC AUC by less than {GIVEAWAY_MIN_DROP}; it relies on combinations."
        )
    first = strong.iloc[0]
    text = (
        f"The detector tells synthetic rows apart mostly by '{first['Column']}' (its ROC AUC "
        f"falls by {first['AUC Drop']:.2f} when that column is shuffled)"
    )
    if len(strong) > 1:
        text += f", then by {_names(strong.iloc[1:4])}"
    return text + ". Look at how these columns, and the rules on them, differ from the real data."


def _names(frame: pd.DataFrame) -> str:
    items = [f"'{c}' ({d:.2f})" for c, d in zip(frame["Column"], frame["AUC Drop"], strict=True)]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
