"""Sequence child tables: a child whose metadata has a ``sequence_index`` (visits, lab results)
is learned as one sequence of events per parent row, not as independent rows.

Fit side (:func:`sequence_frame`): the child's training frame of :func:`~clinsynth.multitable.
_learn.learn_table` (its own columns, counts of its own children, the ``__ctx__`` normal scores of
its parent and grandparent columns) gets the parent row's position as the sequence key, and the
parent's columns of the index's kind that bound every real event (an end of follow-up no event
passes, an enrolment date none precedes) as ``__parent__<column>``, so that the
:class:`~clinsynth.synthesizers.SequentialSynthesizer` finds them as bounds and keeps them by
construction. The ``__ctx__`` scores are constant within a parent, so they are the sequence's
context, with the child's own per-parent constant columns.

Sample side (:func:`sample_sequences`): each synthetic parent row gets as many events as its
parent's model gave it (``__n__<child>__<fk>``, 0 allowed), drawn given its context scores and
its bounds (``SequentialSynthesizer.sample_given_parents``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clinsynth.errors import DataError, MetadataError
from clinsynth.metadata import Metadata, TableMetadata
from clinsynth.synthesizers import BaseSynthesizer
from clinsynth.synthesizers import _sequence_data as sd

#: Prefix of the parent's bound columns in a sequence child's training frame.
PARENT_PREFIX = "__parent__"
#: The model a sequence child gets unless ``table_synthesizers`` names another for it.
SEQUENCE_MODEL = "sequential"


def sequence_tables(md: Metadata) -> list[str]:
    """Tables whose metadata has a ``sequence_index``."""
    return [name for name, table in md.tables.items() if table.sequence_index is not None]


def check_sequence_table(name: str, md: Metadata, link: dict[str, Any]) -> str:
    """The primary foreign key of a sequence child, which must be its ``sequence_key``."""
    table = md.tables[name]
    primary = link["primary"]
    if primary is None:
        raise MetadataError(
            f"Table '{name}' has a sequence_index ('{table.sequence_index}') but no parent "
            "table: inside a schema a sequence is the events of one parent row (its foreign key "
            "is the sequence key). Add the relationship to the parent table, or fit the table "
            "alone with SequentialSynthesizer."
        )
    fk = primary["fk"]
    if table.sequence_key not in (None, fk):
        raise MetadataError(
            f"Table '{name}' has sequence_key '{table.sequence_key}', but inside a schema the "
            f"sequence key of a child table is its foreign key to the parent ('{fk}' -> "
            f"'{primary['parent']}'). Set metadata.set_sequence_key('{fk}', "
            f"table_name='{name}')."
        )
    return fk


def sequence_frame(
    name: str,
    md: Metadata,
    tables: dict[str, pd.DataFrame],
    link: dict[str, Any],
    chain: dict[str, np.ndarray],
    frame: pd.DataFrame,
    model_md: TableMetadata,
    plan: dict[str, Any],
) -> tuple[pd.DataFrame, TableMetadata]:
    """The sequence model's training frame and metadata for child table ``name``; records in
    ``plan["sequence"]`` what sampling needs."""
    fk = check_sequence_table(name, md, link)
    table = md.tables[name]
    parent = link["primary"]["parent"]
    pos = chain[parent]
    if (pos < 0).any():
        raise DataError(
            f"Table '{name}' is learned as sequences under '{parent}', but "
            f"{int((pos < 0).sum())} of its rows have no parent row (empty '{fk}'). Drop them "
            "(orphans='drop'), or remove the table's sequence_index."
        )
    index = table.sequence_index
    # The parent's count of this table's rows is the number of events, given exactly: as a
    # context score too it would duplicate it (a near-singular conditioning of the copula).
    own_count = f"__n__{name}__{fk}"
    dropped = [f["name"] for f in plan["context"] if f["column"] == own_count]
    plan["context"] = [f for f in plan["context"] if f["name"] not in dropped]
    frame = frame.drop(columns=dropped)
    model_md = TableMetadata(
        {c: s for c, s in model_md.columns.items() if c not in dropped},
        constraints=model_md.constraints,
    )
    fixed = _bounding_columns(md, parent, tables[parent], pos, table, tables[name][index])
    out = frame.copy()
    specs = {fk: {"sdtype": "id"}, **{c: dict(s) for c, s in model_md.columns.items()}}
    out[fk] = pos.astype(np.int64)
    for column in fixed:
        values = tables[parent][column].iloc[pos].reset_index(drop=True)
        out[PARENT_PREFIX + column] = values.set_axis(frame.index).to_numpy()
        specs[PARENT_PREFIX + column] = dict(md.tables[parent].columns[column])
    out = out[list(specs)]
    seq_md = TableMetadata(
        specs, constraints=model_md.constraints, sequence_key=fk, sequence_index=index
    )
    plan["sequence"] = {"key": fk, "index": index, "fixed": fixed}
    return out, seq_md


def _bounding_columns(
    md: Metadata,
    parent: str,
    parent_df: pd.DataFrame,
    pos: np.ndarray,
    table: TableMetadata,
    index_values: pd.Series,
) -> list[str]:
    """The parent's columns of the index's kind (number or date) that every real event
    respects, on one side: the sequence model keeps them as bounds."""
    from clinsynth.multitable._learn import key_columns

    spec = table.columns[table.sequence_index]
    kind = spec["sdtype"]
    keys = key_columns(md, parent)
    candidates = [
        c
        for c, s in md.tables[parent].columns.items()
        if s["sdtype"] == kind and c not in keys and c in parent_df.columns
    ]
    if not candidates or index_values.isna().any():
        return []
    axis = sd.time_axis(index_values, spec)
    events = parent_df[candidates].iloc[pos].reset_index(drop=True)
    events["__ticks"] = axis.to_ticks(index_values.reset_index(drop=True))
    bounds = sd.discover_bounds(events, candidates, md.tables[parent], axis)
    return [c for c, _ in bounds.upper + bounds.lower]


def sample_sequences(
    model: BaseSynthesizer,
    plan: dict[str, Any],
    parent_ctx: pd.DataFrame,
    counts: np.ndarray,
    parent_rows: pd.DataFrame,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, np.ndarray]:
    """The events of every synthetic parent row (``counts`` each) and each event's parent
    position; the helper columns of the sequence model are left out."""
    seq = plan["sequence"]
    fixed = pd.DataFrame(
        {PARENT_PREFIX + c: parent_rows[c].to_numpy() for c in seq["fixed"]},
        index=range(len(parent_rows)),
    )
    events, ppos = model.sample_given_parents(parent_ctx, counts, rng, fixed=fixed)
    helpers = [seq["key"], *fixed.columns, *parent_ctx.columns]
    return events.drop(columns=helpers, errors="ignore"), ppos


def sequence_figures(
    name: str,
    real_tables: dict[str, pd.DataFrame],
    synthetic_tables: dict[str, pd.DataFrame],
    metadata: Metadata,
) -> dict[str, Any] | None:
    """The sequence section of a child table with a sequence key and index (its events per
    parent row): :func:`clinsynth.evaluation._sequences.sequence_report` on the table with the
    parent's columns of the index's kind (``parent.column``: an end of follow-up, a birth
    date) beside each event, so that the bounds the real events respect are checked."""
    from clinsynth.evaluation._sequences import sequence_report

    table = metadata.tables[name]
    key, index = table.sequence_key, table.sequence_index
    real, synth = real_tables[name], synthetic_tables[name]
    if key is None or index is None or not len(real) or not len(synth):
        return None
    columns = {c: dict(s) for c, s in table.columns.items()}
    real, synth = real.copy(), synth.copy()
    for rel in metadata.relationships:
        if rel["child_table_name"] != name or rel["child_foreign_key"] != key:
            continue
        parent = rel["parent_table_name"]
        kind = table.sdtype(index)
        pk = rel["parent_primary_key"]
        for column, spec in metadata.tables[parent].columns.items():
            if spec["sdtype"] != kind or column == pk:
                continue
            label = f"{parent}.{column}"
            columns[label] = dict(spec)
            for frame, tables in ((real, real_tables), (synth, synthetic_tables)):
                values = tables[parent].drop_duplicates(pk).set_index(pk)[column]
                frame[label] = frame[key].map(values).to_numpy()
    seq_table = TableMetadata(columns, sequence_key=key, sequence_index=index)
    return sequence_report(real, synth, seq_table)
