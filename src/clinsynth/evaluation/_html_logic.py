"""The report's "logic kept" and "what gives it away" blocks (fidelity section)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clinsynth.evaluation._reports import QualityReport


def logic_block(q: QualityReport) -> str:
    """Per rule of the table: the share of synthetic, holdout and training rows obeying it."""
    from clinsynth.evaluation._html import _esc, _table

    if "Logic Kept" not in q.detail_names:
        return ""
    details = q.get_details("Logic Kept")
    text = q.metrics.get("logic_summary", "")
    intro = (
        "<h3>Logic kept</h3><p>The rules every real row obeys (discovered in the real data or "
        "declared in the metadata) and the share of rows that obey each: synthetic rows, real "
        f"rows the model never saw (holdout) and training rows. {_esc(text)}</p>"
    )
    if details.empty:
        return intro
    shown = details.sort_values("Synthetic", kind="stable")
    return intro + _table(shown)


def giveaway_block(q: QualityReport) -> str:
    """The detector's most important columns and a sentence about them."""
    from clinsynth.evaluation._html import _esc, _table

    if "Detection Importance" not in q.detail_names:
        return ""
    return (
        "<h3>What gives it away</h3><p>How much the detector's ROC AUC falls on held-out rows "
        "when one column's values are shuffled (permutation importance): the columns it "
        f"relies on. {_esc(q.metrics.get('giveaway', ''))}</p>"
        + _table(q.get_details("Detection Importance"))
    )
