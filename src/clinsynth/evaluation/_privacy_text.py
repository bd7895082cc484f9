"""Plain-language verdicts and advice for the privacy risks (for a data-protection officer)."""

from __future__ import annotations

import math

import pandas as pd

from clinsynth.evaluation._common import verdict

_DP = "train with differential privacy (epsilon <= 3)"
_NONE = "No action needed."

_EXPLAIN = {
    "Distance To Closest Record": (
        "Share of synthetic rows that lie closer to a training patient than to a comparable new "
        "patient. 50% means the synthetic data is no closer to the training patients than to "
        "anyone else from the same population."
    ),
    "Membership Inference": (
        "How well an attacker can tell, from the synthetic data alone, whether a given person was "
        "in the training data (ROC AUC; 0.5 = no better than a coin toss)."
    ),
    "Exact Copies": (
        "Share of synthetic rows identical to a training row, beyond the share that occurs by "
        "chance (measured on new patients)."
    ),
    "Unusual Closeness (NNDR)": (
        "Share of synthetic rows that are much closer to one training patient than to the next "
        "one, against 5% for new patients (informational; not in the score)."
    ),
    "Singling Out": (
        "How often a combination of values seen once in the synthetic data points at exactly one "
        "training patient, beyond chance."
    ),
    "Linkability": (
        "How often an attacker holding two separate parts of a patient's record can link them "
        "through the synthetic data, beyond chance."
    ),
    "Attribute Inference": (
        "How much better the synthetic data predicts the sensitive value of training patients "
        "than of new patients (5 nearest synthetic records)."
    ),
    "Inference": (
        "As attribute inference, with the single nearest synthetic record (anonymeter's attack)."
    ),
}


def _advice(risk: str, level: str, metrics: dict, column: str | None = None) -> str:
    if level in ("low", "not measured"):
        return _NONE
    if risk in ("Distance To Closest Record", "Membership Inference", "Unusual Closeness (NNDR)"):
        return (
            f"The model memorized training patients: {_DP}, train for fewer epochs, or increase "
            "the training data."
        )
    if risk == "Exact Copies":
        return f"Remove synthetic rows identical to a training row before release, and {_DP}."
    if risk == "Singling Out":
        cols = metrics["singling_out"].get("columns_most_used") or []
        named = " and ".join(f"'{c}'" for c in cols) or "the quasi-identifiers"
        return f"Drop or coarsen quasi-identifiers such as {named} (e.g. age bands), or {_DP}."
    if risk == "Linkability":
        return f"Release fewer columns together, coarsen quasi-identifiers, or {_DP}."
    return (
        f"Drop or coarsen the quasi-identifiers that predict '{column}', or {_DP}; "
        "increasing the training data also helps."
    )


def _row(name, value, measure, level, score, metrics, *, ci=(None, None), column=None) -> dict:
    return {
        "Risk": name if column is None else f"{name} ({column})",
        "Measure": measure,
        "Value": value,
        "CI Low": ci[0],
        "CI High": ci[1],
        "Verdict": level,
        "Score": score,
        "Explanation": _EXPLAIN[name],
        "Advice": _advice(name, level, metrics, column),
    }


def _attack_row(name: str, res: dict | None, metrics: dict, column: str | None = None):
    if res is None or res.get("n_attacks", 0) == 0 or math.isnan(res["risk"]):
        return _row(name, None, "risk", "not measured", None, metrics, column=column)
    # A risk is only called medium or high when it is measurable: its lower bound is above 0.
    level = "low" if res["ci_low"] <= 0 else verdict(res["risk"], 0.05, 0.2)
    return _row(
        name,
        res["risk"],
        "risk (0 = none, 1 = total)",
        level,
        1.0 - res["ci_low"],  # what is measurable: the lower bound of the risk
        metrics,
        ci=(res["ci_low"], res["ci_high"]),
        column=column,
    )


def risk_rows(metrics: dict) -> tuple[pd.DataFrame, dict[str, float | None]]:
    """The risks table and the property scores (1 = no measurable risk) from privacy metrics."""
    dcr = metrics["dcr_share"]
    mia = metrics["mia_auc"]
    excess = max(metrics["exact_copy_share"] - metrics["holdout_copy_share_baseline"], 0.0)
    copy_norm = min(1.0, excess / max(1.0 - metrics["holdout_copy_share_baseline"], 1e-12))
    # Excess beyond two standard errors of the no-leakage value: noise is not a risk.
    dcr_excess = max(dcr - 0.5 - 2 * metrics["dcr_share_se"], 0.0)
    mia_excess = max(mia - 0.5 - 2 * metrics["mia_auc_se"], 0.0)
    nndr_excess = max(metrics["nndr_below_holdout_p5_share"] - 0.05, 0.0)
    rows = [
        _row(
            "Distance To Closest Record",
            dcr,
            "dcr_share (0.5 ideal)",
            verdict(dcr_excess, 0.05, 0.15),
            1 - 2 * dcr_excess,
            metrics,
        ),
        _row(
            "Membership Inference",
            mia,
            "mia_auc (0.5 ideal)",
            verdict(mia_excess, 0.05, 0.15),
            1 - 2 * mia_excess,
            metrics,
        ),
        _row(
            "Exact Copies",
            metrics["exact_copy_share"],
            "share of synthetic rows",
            verdict(excess, 0.001, 0.01),
            1 - copy_norm,
            metrics,
        ),
        _row(
            "Unusual Closeness (NNDR)",
            metrics["nndr_below_holdout_p5_share"],
            "share (0.05 expected)",
            verdict(nndr_excess, 0.05, 0.15),
            None,
            metrics,
        ),
        _attack_row("Singling Out", metrics["singling_out"], metrics),
        _attack_row("Linkability", metrics["linkability"], metrics),
    ]
    for col, res in metrics["inference"].items():
        rows.append(_attack_row("Attribute Inference", res["attribute_inference"], metrics, col))
        rows.append(_attack_row("Inference", res["inference"], metrics, col))
    risks = pd.DataFrame(rows)
    properties: dict[str, float | None] = {}
    for row in rows:
        if row["Risk"].startswith("Unusual Closeness"):
            continue
        base = row["Risk"].split(" (")[0]
        score = row["Score"]
        if base in properties and properties[base] is not None and score is not None:
            properties[base] = min(properties[base], score)
        elif base not in properties or properties[base] is None:
            properties[base] = score
    return risks, properties
