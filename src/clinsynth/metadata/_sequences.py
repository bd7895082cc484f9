"""Longitudinal tables found from the data: the patient column and the time column.

A table of events (visits, lab results) holds several rows per patient. Its ``sequence_key``
is a key-named column (``patient_id``, an MRN) whose values repeat; its ``sequence_index`` a
number or date column, present on every row, that never ties within a patient and orders the
patient's rows. Detection proposes; the user (or the caller) decides: nothing here changes
metadata.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clinsynth.metadata._keys import _KEY_SDTYPES, _TIME_NAME, key_named
from clinsynth.metadata._metadata import Metadata

#: Fewest distinct patients for a column to be proposed as the sequence key.
MIN_PATIENTS = 5
#: Least mean number of rows per patient for a table to be proposed as longitudinal.
MIN_EVENTS_PER_PATIENT = 1.5


def sequence_key_candidates(
    data: pd.DataFrame, metadata: Metadata, *, table_name: str | None = None
) -> list[str]:
    """Columns that can name the patient of each row of a longitudinal table, best first.

    A candidate is key-named or of a key sdtype (``id``, ``mrn``), present on every row, has at
    least :data:`MIN_PATIENTS` values and repeats them (on average at least
    :data:`MIN_EVENTS_PER_PATIENT` rows each). The table's primary key never qualifies.

    Examples
    --------
    >>> from clinsynth.simulate import simulate_lab_trajectories
    >>> visits, _ = simulate_lab_trajectories(30, seed=0)
    >>> sequence_key_candidates(visits, Metadata.detect_from_dataframe(visits))
    ['patient_id']
    """
    table = metadata.get_table(table_name)
    found = []
    for column, spec in table.columns.items():
        if column not in data or column == table.primary_key:
            continue
        if spec["sdtype"] not in _KEY_SDTYPES and not key_named(column):
            continue
        values = data[column]
        patients = values.nunique()
        if values.isna().any() or patients < MIN_PATIENTS:
            continue
        if len(values) / patients >= MIN_EVENTS_PER_PATIENT:
            found.append((spec["sdtype"] not in _KEY_SDTYPES, patients, column))
    # Key sdtypes first, then the column with the most patients (the finest grouping).
    return [column for *_, column in sorted(found, key=lambda t: (t[0], -t[1]))]


def sequence_index_candidates(
    data: pd.DataFrame, metadata: Metadata, key: str, *, table_name: str | None = None
) -> list[str]:
    """Number and date columns that order the rows of each patient (``key``), best first.

    A candidate is present (and a valid date) on every row, never ties within a patient and is
    not constant within every patient. Ranked by the share of patients whose rows, as given,
    follow it in increasing order, then by a time-like name (``day``, ``date``, ``visit``),
    then dates before numbers.

    Examples
    --------
    >>> from clinsynth.simulate import simulate_lab_trajectories
    >>> visits, _ = simulate_lab_trajectories(30, seed=0)
    >>> md = Metadata.detect_from_dataframe(visits)
    >>> sequence_index_candidates(visits, md, "patient_id")[0]
    'day'
    """
    table = metadata.get_table(table_name)
    if key not in data or data[key].isna().any():
        return []
    groups = pd.factorize(data[key])[0]
    scored = []
    for column, spec in table.columns.items():
        if column == key or column not in data or spec["sdtype"] not in ("numerical", "datetime"):
            continue
        values = _as_numbers(data[column], spec)
        if values is None or np.isnan(values).any():
            continue
        frame = pd.DataFrame({"g": groups, "t": values})
        if frame.duplicated().any() or not frame.duplicated("g").any():
            continue  # ties within a patient, or one row per patient
        if (frame.groupby("g")["t"].nunique() == 1).all():
            continue
        # Each patient's rows in the order given: does the column increase along them?
        backwards = frame.groupby("g")["t"].diff().le(0)
        ordered = ~backwards.groupby(groups).any()
        scored.append(
            (
                -float(ordered.mean()),
                _TIME_NAME.search(column) is None,
                spec["sdtype"] != "datetime",
                column,
            )
        )
    return [column for *_, column in sorted(scored)]


def detect_sequence(
    data: pd.DataFrame, metadata: Metadata, *, table_name: str | None = None
) -> tuple[str, str] | None:
    """The proposed ``(sequence_key, sequence_index)`` of a table, or None when it does not
    look longitudinal (no repeated patient column with a column that orders its rows).

    Nothing is set: pass the pair to :meth:`Metadata.set_sequence_key` and
    :meth:`Metadata.set_sequence_index` to use it.

    Examples
    --------
    >>> from clinsynth.simulate import simulate_lab_trajectories
    >>> visits, _ = simulate_lab_trajectories(30, seed=0)
    >>> detect_sequence(visits, Metadata.detect_from_dataframe(visits))
    ('patient_id', 'day')
    """
    for key in sequence_key_candidates(data, metadata, table_name=table_name):
        indexes = sequence_index_candidates(data, metadata, key, table_name=table_name)
        if indexes:
            return key, indexes[0]
    return None


def _as_numbers(series: pd.Series, spec: dict) -> np.ndarray | None:
    """Numbers, or dates as seconds (NaN where missing or not a date); None if neither."""
    if spec["sdtype"] == "datetime":
        if not pd.api.types.is_datetime64_any_dtype(series):
            series = pd.to_datetime(
                series, format=spec.get("datetime_format") or "mixed", errors="coerce"
            )
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        stamps = series.to_numpy(dtype="datetime64[s]")
        out = stamps.astype(np.int64).astype(np.float64)
        out[np.isnat(stamps)] = np.nan
        return out
    numbers = pd.to_numeric(series, errors="coerce")
    return numbers.to_numpy(dtype=np.float64, na_value=np.nan)
