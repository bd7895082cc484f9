"""The report's section on sequences (a table of events per patient): how many events, how far
apart, how each numeric column moves from one event to the next, how states change, the
temporal-logic violations, and a few real and synthetic trajectories."""

from __future__ import annotations

from typing import Any

import pandas as pd

#: What the section says before its numbers.
INTRO = (
    "This table holds several events per patient (visits, lab results) in time order. These "
    "measures compare the sequences, not only the rows: the number of events per patient and "
    "the time between events (Kolmogorov-Smirnov statistic: 0 means the same distribution, 1 "
    "nothing in common), how strongly each numeric column follows its previous value in the "
    "same patient (lag-1 autocorrelation, real beside synthetic), how categorical states change "
    "from one event to the next (total-variation distance of the transition matrices: 0 is the "
    "same), and the events that break the time order or a bound (should be 0)."
)


def sequence_block(data: dict[str, Any]) -> str:
    """The HTML of :func:`clinsynth.evaluation._sequences.sequence_report`'s result."""
    from clinsynth.evaluation._html import _esc, _fig, _fmt, _table
    from clinsynth.evaluation._sequences import trajectory_plot

    m = data["measures"]
    violations = m["violations"]
    total = sum(int(v) for v in violations.values())
    summary = pd.DataFrame(
        [
            ("Events per patient (KS)", _fmt(m["events_per_patient_ks"])),
            ("Time between events (KS)", _fmt(m["gap_ks"])),
            ("Temporal-logic violations", str(total)),
        ],
        columns=["Measure", "Value"],
    )
    lag1 = pd.DataFrame(
        [
            {
                "Column": column,
                "Real lag-1": v["real"],
                "Synthetic lag-1": v["synthetic"],
                "Difference": _difference(v["real"], v["synthetic"]),
                "Real lag-1 (ranks)": m["lag1_spearman"][column]["real"],
                "Synthetic lag-1 (ranks)": m["lag1_spearman"][column]["synthetic"],
                "Step change (KS)": m["step_ks"][column],
            }
            for column, v in m["lag1"].items()
        ]
    )
    transitions = pd.DataFrame(
        [{"Column": c, "Transition distance": d} for c, d in m["transitions"].items()]
    )
    checked = pd.DataFrame(
        [{"Check": _check_name(k), "Synthetic events": int(v)} for k, v in violations.items()]
    )
    bounds = [*data["upper_bounds"], *data["lower_bounds"]]
    parts = [
        f"<div class='explain'>{_esc(INTRO)}</div>",
        f"<p>Sequence key <b>{_esc(data['key'])}</b>, time <b>{_esc(data['index'])}</b>"
        + (f"; bounds found in the real data: {_esc(', '.join(bounds))}" if bounds else "")
        + ".</p>",
        "<div class='sequence-summary'>" + _table(summary) + "</div>",
        f"<p>Temporal-logic violations: <b>{_fmt(total)}</b>.</p>",
        "<h4>Lag-1 autocorrelation per numeric column</h4>",
        "<div class='sequence-lag1'>" + _table(lag1) + "</div>",
    ]
    if len(transitions):
        parts += ["<h4>State transitions</h4>", _table(transitions)]
    parts += ["<h4>Temporal logic</h4>", _table(checked)]
    if data["trajectories"]:
        parts.append(
            "<h4>A few trajectories</h4><p class='muted'>Patients drawn at random; the left "
            "panel shows real patients' values (keep this report with the real data).</p>"
        )
        parts += [_fig(trajectory_plot(t)) for t in data["trajectories"]]
    return "".join(parts)


def _difference(real: float | None, synthetic: float | None) -> float | None:
    if real is None or synthetic is None:
        return None
    return float(synthetic) - float(real)


def _check_name(key: str) -> str:
    if key == "not_increasing":
        return "not after the patient's previous event"
    if key.startswith("after_"):
        return f"after {key.removeprefix('after_')}"
    return f"before {key.removeprefix('before_')}"
