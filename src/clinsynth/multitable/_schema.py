"""The relationship graph of a schema: synthesis order, row links, orphans and empty columns.

Everything here works on whole columns: a link between two tables is the array of parent row
positions of the child rows (``-1`` where the key is empty or matches no parent), computed once
with ``pandas.Index.get_indexer`` and composed with fancy indexing to reach grandparents.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd

from clinsynth.errors import DataError
from clinsynth.metadata import Metadata
from clinsynth.metadata._relations import OrphanFinding, find_orphans, orphan_mask

logger = logging.getLogger(__name__)

OrphanPolicy = Literal["error", "drop", "keep_as_null"]
ORPHAN_POLICIES = ("error", "drop", "keep_as_null")


def topological_order(md: Metadata) -> list[str]:
    """Tables with every parent before its children (metadata order among equals).

    Self-relationships (a visit pointing to the previous visit) do not constrain the order.

    >>> md = Metadata.from_dict({"tables": {
    ...     "visits": {"columns": {"pid": {"sdtype": "id"}}},
    ...     "patients": {"columns": {"pid": {"sdtype": "id"}}, "primary_key": "pid"}},
    ...     "relationships": [{"parent_table_name": "patients", "parent_primary_key": "pid",
    ...                        "child_table_name": "visits", "child_foreign_key": "pid"}]})
    >>> topological_order(md)
    ['patients', 'visits']
    """
    parents: dict[str, set[str]] = {name: set() for name in md.tables}
    for rel in md.relationships:
        parent, child = rel["parent_table_name"], rel["child_table_name"]
        if parent != child and child in parents:
            parents[child].add(parent)
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(parents):
        ready = [t for t in parents if t not in done and parents[t] <= done]
        if not ready:  # a cycle: Metadata.validate() reports it before we get here
            raise DataError(
                "The relationships form a cycle, so no table can be synthesized first. Remove "
                "one relationship of the cycle (Metadata.validate() names it)."
            )
        order.extend(ready)
        done.update(ready)
    return order


def link_positions(parent_keys: pd.Series, child_keys: pd.Series) -> np.ndarray:
    """For each child row, the position of its parent row (``-1``: empty key or orphan).

    >>> link_positions(pd.Series([10, 20]), pd.Series([20, None, 30, 10])).tolist()
    [1, -1, -1, 0]
    """
    index = pd.Index(parent_keys)
    positions = np.asarray(index.get_indexer(child_keys), dtype=np.int64)
    positions[child_keys.isna().to_numpy()] = -1
    return positions


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """Positions through two links: ``inner[outer]`` where ``outer`` is valid, else ``-1``."""
    out = np.full(len(outer), -1, dtype=np.int64)
    valid = outer >= 0
    out[valid] = inner[outer[valid]]
    return out


def resolve_orphans(
    md: Metadata, tables: dict[str, pd.DataFrame], policy: OrphanPolicy
) -> tuple[dict[str, pd.DataFrame], list[OrphanFinding]]:
    """Apply the orphan policy; return the tables and what was found.

    ``drop`` removes orphan rows table by table in synthesis order, so rows orphaned by the
    removal of their parent go too; ``keep_as_null`` empties the orphan keys and keeps the rows;
    ``error`` changes nothing (the caller raises).
    """
    findings = find_orphans(md, tables)
    if not findings or policy == "error":
        return tables, findings
    out = dict(tables)
    for name in topological_order(md):
        df = out[name]
        rels = [r for r in md.relationships if r["child_table_name"] == name]
        if not rels:
            continue
        if policy == "drop":
            drop = np.zeros(len(df), dtype=bool)
            for rel in rels:
                parent_keys = out[rel["parent_table_name"]][rel["parent_primary_key"]]
                drop |= orphan_mask(parent_keys, df[rel["child_foreign_key"]]).to_numpy()
            if drop.any():
                logger.warning("Dropped %d orphan rows of table '%s'.", int(drop.sum()), name)
                out[name] = df.loc[~drop].reset_index(drop=True)
        else:
            df = df.copy()
            for rel in rels:
                fk = rel["child_foreign_key"]
                parent_keys = out[rel["parent_table_name"]][rel["parent_primary_key"]]
                mask = orphan_mask(parent_keys, df[fk])
                if mask.any():
                    logger.warning("Emptied %d orphan keys of '%s.%s'.", int(mask.sum()), name, fk)
                    df[fk] = df[fk].astype(_nullable(df[fk].dtype)).mask(mask)
            out[name] = df
    return out, findings


def _nullable(dtype: np.dtype) -> str | np.dtype:
    """A dtype that can hold missing values without turning integers into floats."""
    if pd.api.types.is_integer_dtype(dtype) and not isinstance(
        dtype, pd.api.extensions.ExtensionDtype
    ):
        return "Int64"
    return dtype


def orphan_error_problems(findings: list[OrphanFinding]) -> list[str]:
    """The orphan findings worded for a :class:`~clinsynth.errors.DataError`."""
    return [
        f.describe() + " Pass orphans='drop' to remove those rows or orphans='keep_as_null' to "
        "keep them with an empty key."
        for f in findings
    ]


def empty_columns(md: Metadata, tables: dict[str, pd.DataFrame]) -> dict[str, dict[str, str]]:
    """``{table: {column: dtype}}`` of the columns with no value at all (keys excluded)."""
    keys: dict[str, set[str]] = {name: set() for name in md.tables}
    for name, table in md.tables.items():
        if table.primary_key:
            keys[name].add(table.primary_key)
    for rel in md.relationships:
        keys.setdefault(rel["child_table_name"], set()).add(rel["child_foreign_key"])
    out: dict[str, dict[str, str]] = {}
    for name, table in md.tables.items():
        df = tables.get(name)
        if not isinstance(df, pd.DataFrame) or len(df) == 0:
            continue
        found = {
            col: str(df[col].dtype)
            for col in table.columns
            if col in df.columns and col not in keys[name] and df[col].isna().all()
        }
        if found:
            out[name] = found
    return out
