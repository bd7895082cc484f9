"""The leaderboard of AutoSynthesizer: the ranking, a DataFrame, JSON records and markdown.

The ranking respects measurement noise: the candidates that passed the privacy checks and whose
validation score is within the noise of the best one (see :func:`score_tolerance_applied`) are
tied on fidelity, and among them the one with the lowest privacy risk wins (see
:func:`rank_leaderboard`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from clinsynth.evaluation._metrics import metrics

#: The privacy metrics of the leaderboard (the registry's others are in the privacy report).
LEADERBOARD_PRIVACY = ("dcr_share", "mia_auc")
#: Leaderboard columns, in order: the fidelity and utility metrics of the registry
#: (``clinsynth.evaluation.metrics``) and :data:`LEADERBOARD_PRIVACY` among them.
LEADERBOARD_COLUMNS = (
    "rank",
    "model",
    "status",
    "score",
    "score_se",
    *(m.name for m in metrics("fidelity")),
    *(m.name for m in metrics("utility")),
    *LEADERBOARD_PRIVACY,
    "privacy_risk",
    "passes_privacy",
    "epochs",
    "fit_seconds",
    "evaluation_seconds",
    "note",
)


def _mean(values: Any) -> float | None:
    values = [float(v) for v in values if v is not None and v == v]
    return float(np.mean(values)) if values else None


def leaderboard_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The leaderboard from its JSON records (missing values as NaN, numbers as floats)."""
    board = pd.DataFrame(records).reindex(columns=list(LEADERBOARD_COLUMNS))
    for column in board.columns:
        if column in ("model", "status", "passes_privacy", "note"):
            values = board[column].astype("object")
            board[column] = values.where(values.notna(), np.nan)
        else:
            board[column] = pd.to_numeric(board[column])
    return board


def leaderboard_records(board: pd.DataFrame) -> list[dict[str, Any]]:
    """The leaderboard as JSON-able records (NaN becomes None)."""
    out = []
    for record in board.to_dict(orient="records"):
        clean = {}
        for key, value in record.items():
            if isinstance(value, np.generic):
                value = value.item()
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            clean[key] = value
        out.append(clean)
    return out


def leaderboard_markdown(board: pd.DataFrame) -> str:
    """A markdown table of the leaderboard (numbers to 3 decimals, empty cells for missing)."""
    columns = [c for c in board.columns if board[c].notna().any()]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for record in leaderboard_records(board[columns]):
        cells = []
        for value in record.values():
            if value is None:
                cells.append("")
            elif isinstance(value, float):
                cells.append(f"{value:.3f}")
            else:
                cells.append(str(value).replace("|", "/").replace("\n", " "))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: The columns of the compact leaderboard (a terminal's width).
COMPACT_COLUMNS = ("model", "score", "privacy risk", "time (s)", "verdict")


def leaderboard_compact(board: pd.DataFrame) -> pd.DataFrame:
    """Five columns that fit an 80-column terminal: model, score, privacy risk, fit time and
    the verdict (the status; with the reason for a skipped or failed candidate).

    The full leaderboard (every measure and note) is :func:`leaderboard_markdown` /
    ``AutoSynthesizer.save_leaderboard``.

    >>> board = rank_leaderboard([{"model": "a", "score": 0.8, "dcr_share": 0.5,
    ...                            "mia_auc": 0.5, "passes_privacy": True}])
    >>> list(leaderboard_compact(board).iloc[0])
    ['a', '0.800', '0.000', '', 'chosen']
    """

    def number(value: Any, fmt: str) -> str:
        return "" if value is None or value != value else format(float(value), fmt)

    rows = []
    for record in leaderboard_records(board):
        status = record.get("status") or ""
        note = record.get("note") or ""
        verdict = f"{status}: {note}" if status in ("skipped", "error") and note else status
        rows.append(
            (
                str(record.get("model")),
                number(record.get("score"), ".3f"),
                number(record.get("privacy_risk"), ".3f"),
                number(record.get("fit_seconds"), ".1f"),
                verdict,
            )
        )
    return pd.DataFrame(rows, columns=list(COMPACT_COLUMNS))


def budget_skips(board: pd.DataFrame) -> list[str]:
    """The candidates the time budget left out (status "skipped")."""
    skipped = board[board["status"] == "skipped"]
    return [str(m) for m in skipped["model"]]


def privacy_risk(dcr_share: Any, mia_auc: Any) -> Any:
    """How far a candidate's privacy measures are from "no leakage" (0 is none).

    The larger of the DCR share's distance from 0.5 and the membership-inference AUC's excess
    over 0.5: both are probabilities whose no-leakage value is 0.5, so they share one scale.
    Works on numbers and on pandas Series.
    """
    dcr = np.abs(np.asarray(dcr_share, dtype=float) - 0.5)
    mia = np.asarray(mia_auc, dtype=float) - 0.5
    out = np.fmax(dcr, mia)
    return out if out.ndim else float(out)


def score_tolerance_applied(board: pd.DataFrame, score_tolerance: float) -> float:
    """The score difference below which two candidates are tied: noise, not fidelity.

    Each candidate's score is the mean of two scores of independent synthetic samples, and its
    ``score_se`` is half their difference (the standard error of that mean, from one pair). The
    pooled standard error is the root mean square of ``score_se`` over the scored candidates; a
    difference of two scores has sqrt(2) times that, and the tolerance is two standard errors of
    a difference, or ``score_tolerance`` when that is larger (also when nothing was estimated).
    """
    se = pd.to_numeric(board["score_se"], errors="coerce").dropna().to_numpy(dtype=float)
    if len(se) == 0:
        return float(score_tolerance)
    pooled = float(np.sqrt(np.mean(se**2)))
    return float(max(score_tolerance, 2.0 * np.sqrt(2.0) * pooled))


def rank_leaderboard(rows: list[dict[str, Any]], score_tolerance: float = 0.01) -> pd.DataFrame:
    """Rank the candidates, mark the chosen one, and say in each note why it ranks there.

    Status: "ok" for a scored candidate that passed the privacy checks, "failed privacy check"
    for one that did not, and the first "ok" candidate becomes "chosen". Order: the passing
    candidates whose score is within the tolerance of the best passing score (see
    :func:`score_tolerance_applied`) come first, by increasing :func:`privacy_risk` (then by
    score, then in the given order); then the other passing candidates and then the rest, by
    decreasing score. A clear fidelity win is never overturned by privacy; a near-tie is decided
    by it. Deterministic: the same rows give the same ranking.

    Examples
    --------
    >>> rows = [
    ...     {"model": "a", "score": 0.870, "score_se": 0.005, "dcr_share": 0.57,
    ...      "mia_auc": 0.55, "passes_privacy": True},
    ...     {"model": "b", "score": 0.865, "score_se": 0.005, "dcr_share": 0.51,
    ...      "mia_auc": 0.52, "passes_privacy": True},
    ... ]
    >>> list(rank_leaderboard(rows)["model"])
    ['b', 'a']
    """
    board = leaderboard_frame(rows)
    scored = board["score"].notna()
    board.loc[scored & (board["passes_privacy"] == True), "status"] = "ok"  # noqa: E712
    board.loc[scored & (board["passes_privacy"] == False), "status"] = (  # noqa: E712
        "failed privacy check"
    )
    board["privacy_risk"] = privacy_risk(board["dcr_share"], board["mia_auc"])
    ok = (board["status"] == "ok").to_numpy()
    score = board["score"].astype(float).fillna(-1.0).to_numpy()
    tolerance = score_tolerance_applied(board.loc[scored], score_tolerance)
    best = score[ok].max() if ok.any() else np.nan
    tied = ok & (score >= best - tolerance - 1e-12)
    risk = board["privacy_risk"].fillna(np.inf).to_numpy()
    order = board.assign(
        _group=np.where(tied, 0, np.where(ok, 1, 2)),
        _risk=np.where(tied, risk, 0.0),
        _score=-score,
    ).sort_values(["_group", "_risk", "_score"], kind="stable")
    board = board.loc[order.index].reset_index(drop=True)
    tied = tied[order.index.to_numpy()]
    if ok.any():
        board.loc[0, "status"] = "chosen"
        _explain(board, tied, best, tolerance)
    board["rank"] = np.arange(1, len(board) + 1)
    return board


def _explain(board: pd.DataFrame, tied: np.ndarray, best: float, tolerance: float) -> None:
    """Notes saying why the chosen candidate won and why each other passing one lost."""
    first = board.iloc[0]
    others = board[(board["status"] == "ok")]
    if tied.sum() > 1:
        leader = board.loc[tied].sort_values("score", ascending=False, kind="stable").iloc[0]
        where = (
            "best score"
            if leader["model"] == first["model"]
            else f"score within {tolerance:.3f} of the best ({leader['model']} {best:.3f})"
        )
        why = (
            f"chosen: {where}, and the lowest privacy risk of the {int(tied.sum())} candidates "
            f"within the noise tolerance {tolerance:.3f} ({first['privacy_risk']:.3f}: DCR "
            f"share {first['dcr_share']:.3f}, MIA AUC {first['mia_auc']:.3f})"
        )
    elif len(others):
        runner = others.iloc[0]
        why = (
            f"chosen: best score, {first['score'] - runner['score']:.3f} above the next "
            f"passing candidate ({runner['model']}), beyond the noise tolerance {tolerance:.3f}"
        )
    else:
        why = "chosen: the only scored candidate that passed the privacy checks"
    _append_note(board, 0, why)
    for i in range(1, len(board)):
        if board.loc[i, "status"] != "ok":
            continue
        if tied[i]:
            why = (
                f"tied on score with the chosen (tolerance {tolerance:.3f}) but a higher "
                f"privacy risk ({board.loc[i, 'privacy_risk']:.3f} > "
                f"{first['privacy_risk']:.3f})"
            )
        else:
            gap = best - board.loc[i, "score"]
            why = f"score {gap:.3f} below the best (noise tolerance {tolerance:.3f})"
        _append_note(board, i, why)


def _append_note(board: pd.DataFrame, i: int, text: str) -> None:
    note = board.loc[i, "note"]
    board.loc[i, "note"] = f"{note}; {text}" if isinstance(note, str) and note else text
