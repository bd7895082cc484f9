"""The leaderboard of AutoSynthesizer: a DataFrame, JSON records and a markdown table."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

#: Leaderboard columns, in order.
LEADERBOARD_COLUMNS = (
    "rank",
    "model",
    "status",
    "score",
    "fidelity",
    "column_shapes",
    "column_pair_trends",
    "detection_auc",
    "detection_score",
    "utility",
    "tstr",
    "trtr",
    "dcr_share",
    "mia_auc",
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
