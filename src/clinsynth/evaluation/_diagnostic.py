"""``run_diagnostic``: is the synthetic data well formed, and are no identifiers copied?

Two properties, as in SDV's diagnostic report; the score is their mean.

* **Data Validity** — one score per column, averaged: numbers and dates within the real range
  (``BoundaryAdherence``), categories seen in the real data (``CategoryAdherence``, missing counts
  as a category when the real data has missing values), a unique primary key (``KeyUniqueness``)
  and identifiers and personal data not copied from the real data (``NotCopied`` = 1 - share of
  synthetic values found in the real column). A column that is entirely missing in the synthetic
  data but not in the real data scores 0 (``NullOnly``). Integer surrogate keys (0, 1, 2, ...)
  collide by chance, so their overlap is shown but not scored.
* **Data Structure** — the same column names (``ColumnExistence``: shared / all names) and values
  of a type compatible with the sdtype (``TypeCompatibility``: share of non-missing synthetic values
  that read as numbers, dates or booleans where the sdtype asks for them).

The details also give the share of synthetic rows that are exact copies of a real row
(``Synthesis``, over the statistical columns). It does not enter the score; the privacy report
weighs it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clinsynth.evaluation._common import (
    CONTINUOUS,
    DISCRETE,
    check_frame,
    resolve_table,
    row_keys,
    statistical_columns,
    to_numeric,
)
from clinsynth.evaluation._reports import DiagnosticReport
from clinsynth.metadata import Metadata, TableMetadata, is_pii

_BOOL_TEXT = {"true", "false", "1", "0", "1.0", "0.0", "yes", "no", "t", "f", "y", "n"}


def _validity_row(col: str, spec: dict, real: pd.Series, synth: pd.Series, is_key: bool) -> list:
    rows = []
    if synth.isna().all() and not real.isna().all():
        return [(col, "NullOnly", 0.0)]
    present = synth.dropna()
    sdtype = spec["sdtype"]
    if sdtype in CONTINUOUS:
        r = to_numeric(real, spec)
        s = to_numeric(present, spec)
        s = s[~np.isnan(s)]
        if len(s) and np.isfinite(r).any():
            inside = (s >= np.nanmin(r)) & (s <= np.nanmax(r))
            rows.append((col, "BoundaryAdherence", float(inside.mean())))
    elif sdtype in DISCRETE:
        seen = set(real.dropna().astype("string"))
        values = synth.astype("string")
        ok = values.isin(seen).to_numpy() | (synth.isna().to_numpy() & real.isna().any())
        rows.append((col, "CategoryAdherence", float(ok.mean())))
    if is_key:
        dup = synth.duplicated(keep="first") | synth.isna()
        rows.append((col, "KeyUniqueness", float(1.0 - dup.mean())))
    if sdtype == "id" or is_pii(spec):
        real_text = set(real.dropna().astype("string"))
        copied = float(present.astype("string").isin(real_text).mean()) if len(present) else 0.0
        integer_key = sdtype == "id" and pd.api.types.is_integer_dtype(
            real.dropna().infer_objects()
        )
        if integer_key:
            rows.append((col, "IdOverlap (integer key, not scored)", np.nan, copied))
        else:
            rows.append((col, "NotCopied", 1.0 - copied, copied))
    return rows


def _type_compatibility(spec: dict, synth: pd.Series) -> float:
    present = synth.dropna()
    if len(present) == 0:
        return 1.0
    sdtype = spec["sdtype"]
    if sdtype == "numerical":
        if pd.api.types.is_numeric_dtype(present):
            return 1.0
        return float(pd.to_numeric(present, errors="coerce").notna().mean())
    if sdtype == "datetime":
        return float((~np.isnan(to_numeric(present, spec))).mean())
    if sdtype == "boolean":
        if pd.api.types.is_bool_dtype(present):
            return 1.0
        return float(present.astype("string").str.lower().isin(_BOOL_TEXT).mean())
    return 1.0


def run_diagnostic(
    real_data: pd.DataFrame, synthetic_data: pd.DataFrame, metadata: Metadata
) -> DiagnosticReport:
    """Check that the synthetic data is valid and structured like the real data.

    Parameters
    ----------
    real_data, synthetic_data : DataFrame
    metadata : Metadata
        Single-table metadata.

    Returns
    -------
    DiagnosticReport
        Properties ``Data Validity`` and ``Data Structure``; details for both and ``Synthesis``.

    Examples
    --------
    >>> import pandas as pd
    >>> from clinsynth import Metadata
    >>> real = pd.DataFrame({"age": [30.0, 40, 50, 60, 70, 80, 35, 45, 55, 65, 75],
    ...                      "sex": list("FMFMFMFMFMF")})
    >>> md = Metadata.detect_from_dataframe(real)
    >>> synth = pd.DataFrame({"age": [31.0, 99.0], "sex": ["F", "X"]})
    >>> run_diagnostic(real, synth, md).get_score()  # half the ages and sexes are invalid
    0.75
    """
    table = resolve_table(metadata)
    real = check_frame(real_data, "real_data")
    synthetic = check_frame(synthetic_data, "synthetic_data")
    validity: list[tuple] = []
    for col, spec in table.columns.items():
        if col in real.columns and col in synthetic.columns:
            validity.extend(
                _validity_row(col, spec, real[col], synthetic[col], col == table.primary_key)
            )
    validity_df = pd.DataFrame(
        [row if len(row) == 4 else (*row, np.nan) for row in validity],
        columns=["Column", "Metric", "Score", "Share Copied"],
    )
    expected = set(table.columns)
    names = expected | set(real.columns) | set(synthetic.columns)
    shared = expected & set(synthetic.columns)
    existence = len(shared) / len(names) if names else 1.0
    structure_rows = [("(table)", "ColumnExistence", existence)]
    missing = sorted(expected - set(synthetic.columns))
    extra = sorted(set(synthetic.columns) - expected)
    for col in table.columns:
        if col in synthetic.columns:
            compat = _type_compatibility(table.columns[col], synthetic[col])
            structure_rows.append((col, "TypeCompatibility", compat))
    structure_df = pd.DataFrame(structure_rows, columns=["Column", "Metric", "Score"])
    type_scores = structure_df.loc[structure_df["Metric"] == "TypeCompatibility", "Score"]
    structure = float(np.mean([existence, type_scores.mean()])) if len(type_scores) else existence

    scored = validity_df["Score"].dropna()
    properties = {
        "Data Validity": float(scored.mean()) if len(scored) else 1.0,
        "Data Structure": structure,
    }
    notes = []
    if missing:
        notes.append(f"The synthetic data lacks column(s): {', '.join(missing)}.")
    if extra:
        notes.append(f"The synthetic data has column(s) not in the metadata: {', '.join(extra)}.")
    synthesis, copy_share = _synthesis(real, synthetic, table)
    copied_ids = validity_df.loc[validity_df["Metric"] == "NotCopied", ["Column", "Share Copied"]]
    metrics = {
        "exact_copy_share": copy_share,
        "identifier_copy_share": dict(
            zip(copied_ids["Column"], copied_ids["Share Copied"], strict=True)
        ),
        "missing_columns": missing,
        "extra_columns": extra,
    }
    for col, share in metrics["identifier_copy_share"].items():
        if share > 0:
            notes.append(
                f"Column '{col}' ({table.sdtype(col)}): {share:.0%} of the synthetic values are "
                "real values. Identifiers and personal data must not be copied: replace them with "
                "generated values before release."
            )
    if copy_share is not None and copy_share > 0:
        notes.append(
            f"{copy_share:.1%} of the synthetic rows are exact copies of a real row "
            "(over the statistical columns); see the privacy report."
        )
    return DiagnosticReport(
        properties,
        {"Data Validity": validity_df, "Data Structure": structure_df, "Synthesis": synthesis},
        metrics=metrics,
        notes=notes,
    )


def _synthesis(
    real: pd.DataFrame, synthetic: pd.DataFrame, table: TableMetadata
) -> tuple[pd.DataFrame, float | None]:
    cols = [c for c in statistical_columns(table) if c in real.columns and c in synthetic.columns]
    if not cols:
        return pd.DataFrame(columns=["Metric", "Value"]), None
    real_keys = row_keys(real, table, cols)
    synth_keys = row_keys(synthetic, table, cols)
    share = float(np.isin(synth_keys, real_keys).mean())
    frame = pd.DataFrame(
        [("Exact copies of real rows (share)", share), ("New rows (share)", 1.0 - share)],
        columns=["Metric", "Value"],
    )
    return frame, share
