"""Fidelity of sequences (one table of events per patient): how many events, how far apart,
how each numeric column moves from one event to the next, how categorical states change, and
how many events break the time order or a bound.

Every function takes the real and synthetic event tables with the sequence key and index
(vectorized: sorts and shifts, no loop over patients).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from clinsynth.errors import MetadataError
from clinsynth.metadata import Metadata, TableMetadata


def _ordered(data: pd.DataFrame, key: str, index: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows sorted by patient and time, and whether each row follows one of its patient."""
    time = _time(data[index])
    codes = pd.factorize(data[key], sort=True)[0]
    order = np.lexsort((time, codes))
    out = data.iloc[order].reset_index(drop=True)
    out["__time"] = time[order]
    same = np.r_[False, codes[order][1:] == codes[order][:-1]]
    return out, same


def _time(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype=np.float64)
    stamps = pd.to_datetime(values, format="mixed", errors="coerce")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps.to_numpy(dtype="datetime64[s]").astype(np.float64) / 86_400.0


def _ks(real: np.ndarray, synthetic: np.ndarray) -> float:
    real, synthetic = real[~np.isnan(real)], synthetic[~np.isnan(synthetic)]
    if not len(real) or not len(synthetic):
        return float("nan")
    return float(stats.ks_2samp(real, synthetic).statistic)


def events_per_patient(data: pd.DataFrame, key: str) -> np.ndarray:
    return data.groupby(key, sort=False).size().to_numpy()


def gaps(data: pd.DataFrame, key: str, index: str) -> np.ndarray:
    """Time between consecutive events of a patient (days for dates)."""
    ordered, same = _ordered(data, key, index)
    return np.diff(ordered["__time"].to_numpy(), prepend=np.nan)[same]


def lag1_autocorrelation(
    data: pd.DataFrame, key: str, index: str, column: str, *, method: str = "pearson"
) -> float:
    """Correlation (``pearson`` or ``spearman``: of the ranks, robust to a few extreme values)
    of a numeric column between consecutive events of each patient (pooled over patients)."""
    ordered, same = _ordered(data, key, index)
    values = pd.to_numeric(ordered[column], errors="coerce").to_numpy(dtype=np.float64)
    now, before = values[same], values[np.flatnonzero(same) - 1]
    ok = ~np.isnan(now) & ~np.isnan(before)
    if ok.sum() < 3 or now[ok].std() == 0 or before[ok].std() == 0:
        return float("nan")
    before, now = before[ok], now[ok]
    if method == "spearman":
        before, now = stats.rankdata(before), stats.rankdata(now)
    return float(np.corrcoef(before, now)[0, 1])


def steps(data: pd.DataFrame, key: str, index: str, column: str) -> np.ndarray:
    """Change of a numeric column from one event to the next of the same patient."""
    ordered, same = _ordered(data, key, index)
    values = pd.to_numeric(ordered[column], errors="coerce").to_numpy(dtype=np.float64)
    return np.diff(values, prepend=np.nan)[same]


def transitions(
    data: pd.DataFrame, key: str, index: str, column: str, *, counts: bool = False
) -> pd.DataFrame:
    """``P(state at the next event | state now)``: rows the state now, columns the next (the
    number of consecutive pairs with ``counts=True``)."""
    ordered, same = _ordered(data, key, index)
    states = ordered[column].astype("string").fillna("<missing>").to_numpy()
    pairs = pd.crosstab(states[np.flatnonzero(same) - 1], states[same])
    return pairs if counts else pairs.div(pairs.sum(axis=1), axis=0)


def transition_distance(
    real: pd.DataFrame, synthetic: pd.DataFrame, weights: pd.Series | None = None
) -> float:
    """Total-variation distance between the rows of two transition matrices, averaged over the
    real states (weighted by ``weights``, e.g. how often each state is left in the real data;
    0: the same transitions, 1: nothing in common)."""
    states = sorted(set(real.index) | set(real.columns) | set(synthetic.columns))
    r = real.reindex(index=real.index, columns=states, fill_value=0.0).fillna(0.0)
    s = synthetic.reindex(index=real.index, columns=states, fill_value=0.0).fillna(0.0)
    if not len(r):
        return float("nan")
    distance = 0.5 * (r - s).abs().sum(axis=1)
    w = np.ones(len(r)) if weights is None else weights.reindex(r.index).to_numpy(dtype=float)
    return float(np.average(distance.to_numpy(), weights=w))


def temporal_violations(
    data: pd.DataFrame,
    key: str,
    index: str,
    *,
    upper: list[str] = (),  # type: ignore[assignment]
    lower: list[str] = (),  # type: ignore[assignment]
) -> dict[str, int]:
    """Events not strictly after the previous one of their patient, and events after an
    ``upper`` bound column (end of follow-up, death) or before a ``lower`` one (birth)."""
    ordered, same = _ordered(data, key, index)
    time = ordered["__time"].to_numpy()
    out = {"not_increasing": int((np.diff(time, prepend=np.nan)[same] <= 0).sum())}
    for column in upper:
        bound = _time(ordered[column])
        out[f"after_{column}"] = int((time > bound).sum())
    for column in lower:
        bound = _time(ordered[column])
        out[f"before_{column}"] = int((time < bound).sum())
    return out


def _transitions(
    real: pd.DataFrame, synthetic: pd.DataFrame, key: str, index: str, column: str
) -> float:
    pairs = transitions(real, key, index, column, counts=True)
    matrix = pairs.div(pairs.sum(axis=1), axis=0)
    return transition_distance(
        matrix, transitions(synthetic, key, index, column), pairs.sum(axis=1)
    )


def _table(metadata: Metadata | TableMetadata) -> TableMetadata:
    table = metadata if isinstance(metadata, TableMetadata) else metadata.get_table()
    if table.sequence_key is None or table.sequence_index is None:
        raise MetadataError(
            "Sequence evaluation needs the table's sequence_key and sequence_index "
            "(metadata.set_sequence_key(...), metadata.set_sequence_index(...))."
        )
    return table


def evaluate_sequences(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    metadata: Metadata | TableMetadata,
    *,
    upper_bounds: list[str] = (),  # type: ignore[assignment]
    lower_bounds: list[str] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    """Every sequence measure of the module, as a JSON-able dict.

    ``events_per_patient_ks`` and ``gap_ks`` are Kolmogorov-Smirnov statistics (0 is best);
    ``lag1`` gives, per numeric event column, the real and synthetic lag-1 autocorrelations
    (``lag1_spearman`` the same on ranks);
    ``step_ks`` the KS statistic of the change between consecutive events; ``transitions``
    the total-variation distance of each categorical column's transition matrix (rows weighted
    by how often the real patients leave each state); and
    ``violations`` the temporal-logic violations of the synthetic events.
    """
    table = _table(metadata)
    key, index = table.sequence_key, table.sequence_index
    constant = real.groupby(key, sort=False).nunique(dropna=False).max() <= 1
    events = [c for c in table.columns if c not in (key, index) and not constant.get(c, False)]
    numeric = [c for c in events if table.sdtype(c) == "numerical"]
    categorical = [c for c in events if table.sdtype(c) in ("categorical", "ordinal", "boolean")]
    result: dict[str, Any] = {
        "events_per_patient_ks": _ks(
            events_per_patient(real, key).astype(float),
            events_per_patient(synthetic, key).astype(float),
        ),
        "gap_ks": _ks(gaps(real, key, index), gaps(synthetic, key, index)),
        "lag1": {
            c: {
                "real": lag1_autocorrelation(real, key, index, c),
                "synthetic": lag1_autocorrelation(synthetic, key, index, c),
            }
            for c in numeric
        },
        "lag1_spearman": {
            c: {
                "real": lag1_autocorrelation(real, key, index, c, method="spearman"),
                "synthetic": lag1_autocorrelation(synthetic, key, index, c, method="spearman"),
            }
            for c in numeric
        },
        "step_ks": {
            c: _ks(steps(real, key, index, c), steps(synthetic, key, index, c)) for c in numeric
        },
        "transitions": {c: _transitions(real, synthetic, key, index, c) for c in categorical},
        "violations": temporal_violations(
            synthetic, key, index, upper=list(upper_bounds), lower=list(lower_bounds)
        ),
    }
    return result


def bound_columns(data: pd.DataFrame, table: TableMetadata) -> tuple[list[str], list[str]]:
    """Columns of the index's kind (number or date), constant within each patient, that no
    real event passes (``upper``: an end of follow-up, a death) or precedes (``lower``: a
    birth, an enrolment), present on at least half the events: ``(upper, lower)``."""
    key, index = table.sequence_key, table.sequence_index
    kind = table.sdtype(index)
    candidates = [c for c in table.columns if c not in (key, index) and table.sdtype(c) == kind]
    candidates = [c for c in candidates if c in data.columns]
    if not candidates or not len(data):
        return [], []
    constant = data.groupby(key, sort=False)[candidates].nunique(dropna=False).max() <= 1
    time = _time(data[index])
    upper, lower = [], []
    for column in candidates:
        bound = _time(data[column])
        ok = ~np.isnan(bound) & ~np.isnan(time)
        if not constant[column] or ok.mean() < 0.5:
            continue
        if (time[ok] <= bound[ok]).all():
            upper.append(column)
        elif (time[ok] >= bound[ok]).all():
            lower.append(column)
    return upper, lower


def trajectory_data(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    metadata: Metadata | TableMetadata,
    column: str,
    *,
    patients: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """The points of :func:`trajectory_figure` as JSON values: per side (``real``,
    ``synthetic``), one ``{"x": time since the patient's first event, "y": values}`` per
    patient drawn at random."""
    table = _table(metadata)
    key, index = table.sequence_key, table.sequence_index
    if column not in real.columns or column not in synthetic.columns:
        raise MetadataError(f"'{column}' is not a column of both tables.")
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"column": column, "index": index, "patients": patients}
    for side, data in (("real", real), ("synthetic", synthetic)):
        ordered, _ = _ordered(data, key, index)
        ids = ordered[key].unique()
        chosen = rng.choice(ids, size=min(patients, len(ids)), replace=False)
        lines = []
        for pid in chosen:  # a handful of patients: the figure's own lines
            rows = ordered[ordered[key] == pid]
            x = rows["__time"] - rows["__time"].iloc[0]
            y = pd.to_numeric(rows[column], errors="coerce")
            lines.append(
                {
                    "x": [float(v) for v in x],
                    "y": [None if pd.isna(v) else float(v) for v in y],
                }
            )
        out[side] = lines
    return out


def trajectory_plot(data: dict[str, Any]) -> Any:
    """The plotly figure of :func:`trajectory_data`'s points: real (left), synthetic (right)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, subplot_titles=("real", "synthetic"))
    for col, side in ((1, "real"), (2, "synthetic")):
        for line in data[side]:
            fig.add_trace(
                go.Scatter(x=line["x"], y=line["y"], mode="lines+markers", showlegend=False),
                row=1,
                col=col,
            )
    column = data["column"]
    fig.update_xaxes(title_text=f"time since the first event ({data['index']})")
    fig.update_yaxes(title_text=column, col=1)
    fig.update_layout(title=f"{column}: {data['patients']} patients each", height=360)
    return fig


def trajectory_figure(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    metadata: Metadata | TableMetadata,
    column: str,
    *,
    patients: int = 5,
    seed: int = 0,
) -> Any:
    """A plotly figure of ``column`` over time for a few real (left) and synthetic (right)
    patients drawn at random. The real panel shows real patients' values: keep the figure
    with the real data."""
    data = trajectory_data(real, synthetic, metadata, column, patients=patients, seed=seed)
    return trajectory_plot(data)


#: Numeric event columns drawn as trajectories in a report.
REPORT_TRAJECTORIES = 3


def sequence_report(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    metadata: Metadata | TableMetadata,
    *,
    patients: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """What a report shows of a sequence table, as JSON values: the measures of
    :func:`evaluate_sequences` (violations counted against the bound columns the real events
    all respect, :func:`bound_columns`) and the trajectories of a few patients for the first
    :data:`REPORT_TRAJECTORIES` numeric event columns."""
    from clinsynth.evaluation._common import jsonable

    table = _table(metadata)
    upper, lower = bound_columns(real, table)
    measures = evaluate_sequences(real, synthetic, table, upper_bounds=upper, lower_bounds=lower)
    columns = list(measures["lag1"])[:REPORT_TRAJECTORIES]
    return jsonable(
        {
            "key": table.sequence_key,
            "index": table.sequence_index,
            "upper_bounds": upper,
            "lower_bounds": lower,
            "measures": measures,
            "trajectories": [
                trajectory_data(real, synthetic, table, c, patients=patients, seed=seed)
                for c in columns
            ],
        }
    )
