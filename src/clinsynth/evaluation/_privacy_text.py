"""Plain-language verdicts, advice and the one-paragraph statement for a data-protection officer."""

from __future__ import annotations

import math

import pandas as pd

from clinsynth.evaluation._common import verdict
from clinsynth.evaluation._metrics import get_metric

_DP = "train with differential privacy (epsilon <= 3)"
_NONE = "No action needed."
#: The upper confidence bound under which a re-identification risk reads as shown to be small.
RISK_BOUND = 0.05

_EXPLAIN = {
    # the risks of a registered metric are explained in the registry's words
    "Distance To Closest Record": get_metric("dcr_share").text,
    "Membership Inference": get_metric("mia_auc").text,
    "Membership Inference (DOMIAS)": (
        "The same question answered by comparing how dense the synthetic data is around a person "
        "with how dense the population is there (DOMIAS, van Breugel et al. 2023; ROC AUC, 0.5 = "
        "coin toss)."
    ),
    "Exact Copies": get_metric("exact_copy_share").text
    + " The verdict counts only the share beyond what occurs by chance (measured on new "
    "patients).",
    "Unusual Closeness (NNDR)": (
        "Share of synthetic rows that are much closer to one training patient than to the next "
        "one, against 5% for new patients (informational; not in the score)."
    ),
    "Singling Out": (
        "How often a combination of values seen once in the synthetic data points at exactly one "
        "training patient, beyond how often it does so among new patients (Giomi et al. 2023)."
    ),
    "Linkability": (
        "How often an attacker holding two separate parts of a patient's record can link them "
        "through the synthetic data, beyond chance (Giomi et al. 2023)."
    ),
    "Inference": (
        "How much better the nearest synthetic record reveals a training patient's sensitive "
        "value than a new patient's, from the patient's other columns (Giomi et al. 2023)."
    ),
}


def _advice(risk: str, level: str, metrics: dict, column: str | None = None) -> str:
    if level in ("low", "not measured"):
        return _NONE
    if risk.startswith(
        ("Distance To Closest Record", "Membership Inference", "Unusual Closeness (NNDR)")
    ):
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


def _excess_row(name: str, value: float, se: float, measure: str, metrics: dict) -> dict:
    """A statistic whose no-leakage value is 0.5: only its excess beyond two standard errors
    counts, since noise is not a risk."""
    if value is None or math.isnan(value):
        return _row(name, None, measure, "not measured", None, metrics)
    excess = max(value - 0.5 - 2 * se, 0.0)
    ci = (max(0.0, value - 1.96 * se), min(1.0, value + 1.96 * se))
    return _row(name, value, measure, verdict(excess, 0.05, 0.15), 1 - 2 * excess, metrics, ci=ci)


def risk_rows(metrics: dict) -> tuple[pd.DataFrame, dict[str, float | None]]:
    """The risks table and the property scores (1 = no measurable risk) from privacy metrics."""
    excess = max(metrics["exact_copy_share"] - metrics["holdout_copy_share_baseline"], 0.0)
    copy_norm = min(1.0, excess / max(1.0 - metrics["holdout_copy_share_baseline"], 1e-12))
    # beyond two standard errors of the 5% expected, as for the other measures
    nndr_excess = max(
        metrics["nndr_below_holdout_p5_share"] - 0.05 - 2 * metrics["nndr_below_holdout_p5_se"],
        0.0,
    )
    rows = [
        _excess_row(
            "Distance To Closest Record",
            metrics["dcr_share"],
            metrics["dcr_share_se"],
            "dcr_share (0.5 ideal, 1 = copies)",
            metrics,
        ),
        _excess_row(
            "Membership Inference",
            metrics["mia_auc"],
            metrics["mia_auc_se"],
            "ROC AUC (0.5 ideal)",
            metrics,
        ),
        _excess_row(
            "Membership Inference (DOMIAS)",
            metrics["domias_auc"],
            metrics["domias_auc_se"],
            "ROC AUC (0.5 ideal)",
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
        rows.append(_attack_row("Inference", res, metrics, col))
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


def attack_table(metrics: dict) -> pd.DataFrame:
    """One row per re-identification attack: its risk and interval, and the success rates of the
    main (training patients), control (unseen patients) and baseline (random guess) attacks."""
    named = [("Singling Out", metrics["singling_out"]), ("Linkability", metrics["linkability"])]
    named += [(f"Inference ({c})", r) for c, r in metrics["inference"].items()]
    rows = [
        {
            "Attack": name,
            "Risk": res["risk"],
            "CI Low": res["ci_low"],
            "CI High": res["ci_high"],
            "Success On Training": res["attack_rate"],
            "Success On Holdout": res["control_rate"],
            "Success Guessing": res.get("baseline_rate"),
            "Attacks": res["n_attacks"],
            "Better Than Guessing": not res.get("weak_attack", False),
        }
        for name, res in named
        if res is not None and res.get("n_attacks")
    ]
    return pd.DataFrame(rows)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _attacks_sentence(metrics: dict) -> tuple[str, list[str], list[str]]:
    """The re-identification risks in words, the names of those whose upper bound exceeds
    RISK_BOUND, and of the attacks that did no better than guessing."""
    named = [("singling out", metrics["singling_out"]), ("linkability", metrics["linkability"])]
    named += [(f"inference of '{c}'", r) for c, r in metrics["inference"].items()]
    parts, wide, weak = [], [], []
    for label, res in named:
        if res is None or res.get("n_attacks", 0) == 0 or math.isnan(res["risk"]):
            parts.append(f"{label} not measured")
            continue
        parts.append(
            f"{label} {_pct(res['risk'])} (95% interval {_pct(res['ci_low'])} to "
            f"{_pct(res['ci_high'])}, {res['n_attacks']} attacks)"
        )
        if res["ci_high"] > RISK_BOUND:
            wide.append(label)
        if res.get("weak_attack"):
            weak.append(label)
    return "; ".join(parts), wide, weak


def statement(metrics: dict, risks: pd.DataFrame) -> str:
    """One paragraph a data-protection officer can sign: the conclusion, the figures and what
    they mean."""
    rows = metrics["rows"]
    flagged = risks[risks["Verdict"].isin(["medium", "high"])]
    attacks, wide, weak = _attacks_sentence(metrics)
    if len(flagged):
        pairs = zip(flagged["Risk"], flagged["Verdict"], strict=True)
        listed = ", ".join(f"{r} ({v})" for r, v in pairs)
        head = (
            f"Measurable privacy risk: {listed}. The synthetic data reveals more about the "
            "training patients than about comparable patients, and should not be released as "
            "anonymous without the advice of the risk table."
        )
    elif wide:
        head = (
            "No measurable privacy risk, but the evidence is not precise enough to show every "
            f"risk below {_pct(RISK_BOUND)}: {_upper_bounds(wide)}. "
            "Keeping more patients out of training (a larger holdout) would tighten the bounds."
        )
    else:
        head = (
            "No measurable privacy risk: every re-identification risk is below "
            f"{_pct(RISK_BOUND)} at 95% confidence, and the synthetic rows are no closer to the "
            "training patients than to patients the model never saw."
        )
    copies = round(metrics["exact_copy_share"] * rows["synthetic"])
    body = (
        f" The evidence compares the {rows['train']} training patients with {rows['holdout']} "
        f"patients the model never saw, through {rows['synthetic']} synthetic rows. "
        "Re-identification risks as defined by Giomi et al. (PoPETs 2023, the method of the "
        "anonymeter tool reviewed by the CNIL), each the attacker's success on training patients "
        f"beyond their success on unseen patients (0% = none, 100% = total): {attacks}. "
        f"DCR share {metrics['dcr_share']:.3f} ± {metrics['dcr_share_se']:.3f} (0.5 = no closer "
        "to training patients than to others, 1.0 = copies); "
        f"{copies} synthetic rows ({_pct(metrics['exact_copy_share'])}) are identical to a "
        f"training patient, against {_pct(metrics['holdout_copy_share_baseline'])} of unseen "
        "patients by chance. Membership attacks tell a training patient from an unseen one with "
        f"a ROC AUC of {metrics['mia_auc']:.3f} (distance) and {_fmt(metrics['domias_auc'])} "
        "(density, DOMIAS), where 0.5 is a coin toss."
    )
    tail = (
        " These are empirical tests of known attacks; a formal guarantee requires differential "
        "privacy."
    )
    if weak:
        which = f"{_listed(weak)} attack" + ("s" if len(weak) > 1 else "")
        tail = (
            f" The {which} did no better than random guessing here, so "
            f"{'their figures say' if len(weak) > 1 else 'its figure says'} little either way."
            + tail
        )
    return head + body + tail


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _upper_bounds(names: list[str]) -> str:
    if len(names) == 1:
        return f"the upper bound of {names[0]} exceeds it"
    return f"the upper bounds of {_listed(names)} exceed it"


def _fmt(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"
