"""Sample side of the hierarchical synthesizer: one table from its model and its parents.

:func:`generate_table` draws the rows of a table (as many under each synthetic parent row as
the parent's model said, conditioned on the parent's context), rebuilds its dates from their
anchors, regenerates its primary key and assigns every foreign key from the synthetic parents:
primary (by construction), derived (by lookup along the primary chain), secondary (a weighted
pick), reference (learned levels, checked) and self (last, its groups rebuilt on the finished
rows: :mod:`clinsynth.multitable._self_groups`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from clinsynth.metadata import Metadata
from clinsynth.multitable._conditional import sample_conditioned
from clinsynth.multitable._context import ContextEncoder
from clinsynth.multitable._dates import decode_dates, needed_ancestor_bounds, shift_dates, to_ns
from clinsynth.multitable._learn import aligned, count_column
from clinsynth.multitable._match import (
    CANDIDATES,
    MATCH_BLOCK,
    match_pick,
    numeric_values,
    redrawn_dates,
)
from clinsynth.multitable._schema import compose
from clinsynth.multitable._self_groups import assign_self_groups
from clinsynth.multitable._sequence import sample_sequences
from clinsynth.synthesizers import BaseSynthesizer
from clinsynth.transform import IdTransformer


@dataclass
class References:
    """What every table's sampling may read: the metadata used at fit time and the tables kept
    verbatim."""

    metadata: Metadata
    data: dict[str, pd.DataFrame]


class SampleState:
    """What one ``sample`` call has produced so far."""

    def __init__(self) -> None:
        self.out: dict[str, pd.DataFrame] = {}
        self.aug: dict[str, pd.DataFrame] = {}
        self.anc: dict[str, dict[str, np.ndarray]] = {}
        self.keys: dict[str, pd.Series] = {}
        self._dates: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}

    def dates(self, table: str, column: str, md: Metadata) -> tuple[np.ndarray, np.ndarray]:
        if (table, column) not in self._dates:
            fmt = md.tables[table].columns[column].get("datetime_format")
            self._dates[(table, column)] = to_ns(self.out[table][column], fmt)
        return self._dates[(table, column)]


def generate_table(
    name: str,
    plan: dict[str, Any],
    model: BaseSynthesizer | None,
    scale: float,
    rng: np.random.Generator,
    state: SampleState,
    references: References,
) -> None:
    """Sample table ``name`` into ``state`` (its parents must be there already)."""
    if plan["reference"]:
        df = references.data[name].copy()
        state.out[name] = df
        state.aug[name] = df
        state.anc[name] = {}
        return
    primary = plan["primary"]
    context_names = [f["name"] for f in plan["context"]]
    if primary is None:
        n = int(round(scale * plan["n_rows"]))
        rows = unconditional(model, n, rng, context_names)
        ppos = np.full(n, -1, dtype=np.int64)
    else:
        parent = primary["parent"]
        count = count_column(name, primary["fk"])
        counts = state.aug[parent][count].to_numpy(dtype=np.float64, na_value=0.0)
        counts = np.clip(np.nan_to_num(np.round(counts)), 0, None).astype(np.int64)
        ppos = np.repeat(np.arange(len(counts)), counts)
        # Context of every parent row (its own and its ancestors' columns), shared by its
        # children.
        every = np.arange(len(counts))
        parent_anc = {parent: every}
        for a, pos in state.anc[parent].items():
            parent_anc[a] = pos
        parent_ctx = context_frame(plan, state, parent_anc)
        if model is None:
            rows = pd.DataFrame(index=range(len(ppos)))
        elif plan.get("sequence"):
            rows, ppos = sample_sequences(model, plan, parent_ctx, counts, state.out[parent], rng)
        else:
            rows = sample_conditioned(
                model,
                parent_ctx,
                rng,
                rows=ppos,
                axis=np.asarray(plan.get("axis", [])),
                strata=plan.get("strata"),
            )
        extra = int(round(scale * plan["parentless"]))
        if extra:
            loose = unconditional(model, extra, rng, context_names)
            rows = pd.concat([rows, loose], ignore_index=True)
            ppos = np.concatenate([ppos, np.full(extra, -1, dtype=np.int64)])
    rows = rows.reset_index(drop=True)
    n = len(rows)
    anc = {}
    if primary is not None:
        anc[primary["parent"]] = ppos
        for a, pos in state.anc[primary["parent"]].items():
            anc[a] = compose(ppos, pos)
    state.anc[name] = anc

    bounds = {}
    for a, column in needed_ancestor_bounds(plan["dates"]):
        ns, ok = state.dates(a, column, references.metadata)
        bounds[(a, column)] = aligned(ns, ok, anc[a])
    decoded = decode_dates(
        plan["dates"],
        {e["column"]: rows[e["column"]] for e in plan["dates"] if e["column"] in rows},
        bounds,
    )

    pk = plan["pk"]
    if pk:
        gen = IdTransformer.from_dict(plan["pk_generator"])
        state.keys[name] = gen.inverse_transform(np.zeros((n, 0), dtype=np.float32), rng)
    fks: dict[str, pd.Series] = {}
    if primary is not None:
        fks[primary["fk"]] = take(state.keys[primary["parent"]], ppos)
    for entry in plan["derived"]:
        fks[entry["fk"]] = take(state.keys[entry["parent"]], anc[entry["parent"]])
    for entry in plan["secondary"]:
        own = {
            f["child"]: decoded[f["child"]] if f["child"] in decoded else rows[f["child"]]
            for f in entry.get("match", [])
        }
        pick = pick_secondary(name, entry, rows, own, anc, state, references.metadata, rng)
        fks[entry["fk"]] = take(state.keys[entry["parent"]], pick)
        anchor = entry.get("anchor")
        if anchor and anchor["child"] in decoded:
            decoded = anchor_to_parent(
                plan,
                decoded,
                anchor,
                entry["parent"],
                pick,
                bounds,
                state,
                references.metadata,
                rng,
            )
    for fk in plan["reference_fks"]:
        fks[fk] = valid_reference_keys(references, name, fk, rows[fk], rng)

    out = {}
    for column in plan["columns"]:
        if column == pk and column not in fks:
            out[column] = state.keys[name]
        elif column in fks:
            out[column] = restore_key_dtype(fks[column], plan["key_dtypes"].get(column))
        elif column in plan["inherited"]:
            a, source = plan["inherited"][column]
            out[column] = take(state.out[a][source], anc[a])
        elif column in decoded:
            out[column] = decoded[column]
        elif column in plan["empty"]:
            out[column] = pd.Series([None] * n, dtype=empty_dtype(plan["empty"][column]))
        elif column in rows.columns:
            out[column] = rows[column].reset_index(drop=True)
        else:  # an empty real table: nothing was learned
            dtype = empty_dtype(plan.get("dtypes", {}).get(column, "object"))
            out[column] = pd.Series([None] * n, dtype=dtype)
    table = pd.DataFrame(out, index=range(n), copy=False)
    if pk and pk in fks:
        state.keys[name] = table[pk]
    # Keys into the table's own rows last: their groups are matched on the finished rows.
    columns_md = references.metadata.tables[name].columns
    for entry in plan["self_fks"]:
        pos, marker = self_key_positions(entry, table, columns_md, n, rng)
        if marker is not None:
            table[marker.name] = marker.to_numpy()
        table[entry["fk"]] = restore_key_dtype(
            take(state.keys[name], pos), plan["key_dtypes"].get(entry["fk"])
        )
    state.out[name] = table
    helpers = [c for c in rows.columns if c.startswith("__n__")]
    state.aug[name] = pd.concat([table, rows[helpers].reset_index(drop=True)], axis=1)


def self_key_positions(
    entry: dict[str, Any], table: pd.DataFrame, columns: dict, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, pd.Series | None]:
    """Rows the self-referencing key points to, and the marker column of heads corrected to
    agree with them: the learned groups rebuilt, or (a plan saved before groups were learned)
    a random row."""
    if entry.get("groups"):
        return assign_self_groups(table, entry["groups"], columns, rng)
    pos = rng.integers(0, max(n, 1), size=n)
    pos[rng.random(n) < entry["null_rate"]] = -1
    return pos, None


def valid_reference_keys(
    references: References, name: str, fk: str, values: pd.Series, rng: np.random.Generator
) -> pd.Series:
    """Keys into a reference table, any value outside it (a level merged as rare by the
    table model) replaced by a random key of the reference table."""
    rel = next(
        r
        for r in references.metadata.relationships
        if r["child_table_name"] == name and r["child_foreign_key"] == fk
    )
    keys = references.data[rel["parent_table_name"]][rel["parent_primary_key"]]
    bad = values.notna() & ~values.isin(keys)
    if not bad.any():
        return values.reset_index(drop=True)
    fixed = values.astype(object).copy()
    fixed[bad] = keys.to_numpy()[rng.integers(0, len(keys), int(bad.sum()))]
    return restore_key_dtype(fixed.reset_index(drop=True), str(keys.dtype))


def unconditional(
    model: BaseSynthesizer | None, n: int, rng: np.random.Generator, drop: list[str]
) -> pd.DataFrame:
    if model is None:
        return pd.DataFrame(index=range(n))
    return model.sample_rows(n, rng).drop(columns=drop, errors="ignore")


def context_frame(
    plan: dict[str, Any], state: SampleState, anc: dict[str, np.ndarray]
) -> pd.DataFrame:
    """The context scores of the child rows, from their synthetic ancestor rows."""
    columns = {}
    n = len(next(iter(anc.values()))) if anc else 0
    for feature in plan["context"]:
        table = feature["table"]
        encoder = ContextEncoder.from_dict(feature["encoder"])
        z = encoder.transform(state.aug[table][feature["column"]], feature["sdtype"])
        pos = anc[table]
        values = np.zeros(n)
        values[pos >= 0] = z[pos[pos >= 0]]
        columns[feature["name"]] = values
    return pd.DataFrame(columns, index=range(n))


def pick_secondary(
    name: str,
    entry: dict[str, Any],
    rows: pd.DataFrame,
    own: dict[str, pd.Series],
    anc: dict[str, np.ndarray],
    state: SampleState,
    md: Metadata,
    rng: np.random.Generator,
) -> np.ndarray:
    """A parent row per child row, weighted by the parents' modeled child counts, inside
    the child's ancestor group when there is one; among ``CANDIDATES`` such draws, by the
    likelihood of the parent's columns given the child's (``own``) when the real data ties
    them (``entry["match"]``, see :mod:`clinsynth.multitable._match`)."""
    parent = entry["parent"]
    n = len(rows)
    weights = state.aug[parent][count_column(name, entry["fk"])].to_numpy(
        dtype=np.float64, na_value=0.0
    )
    group = entry.get("group")
    if group is None:
        cand_group = np.zeros(len(weights), dtype=np.int64)
        child_group = np.zeros(n, dtype=np.int64)
    else:
        cand_group = np.arange(len(weights)) if group == parent else state.anc[parent][group]
        child_group = anc[group]
    fits = entry.get("match") or []
    if not fits:
        pick = weighted_group_pick(cand_group, weights, child_group, rng)
    else:
        child_values = {
            f["child"]: numeric_values(own[f["child"]], md.tables[name].columns[f["child"]])
            for f in fits
        }
        parent_values = {
            f["parent"]: numeric_values(
                state.out[parent][f["parent"]], md.tables[parent].columns[f["parent"]]
            )
            for f in fits
        }
        pick = np.empty(n, dtype=np.int64)
        # In blocks of rows: the candidates of a million rows would take gigabytes at once.
        for lo in range(0, n, MATCH_BLOCK):
            hi = min(lo + MATCH_BLOCK, n)
            draws = weighted_group_pick(
                cand_group, weights, np.repeat(child_group[lo:hi], CANDIDATES), rng
            ).reshape(hi - lo, CANDIDATES)
            block = {k: v[lo:hi] for k, v in child_values.items()}
            pick[lo:hi] = match_pick(draws, block, parent_values, fits, rng)
    if entry.get("has") and entry["has"] in rows:
        has = rows[entry["has"]].astype("boolean").fillna(False).to_numpy(dtype=bool)
        pick[~has] = -1
    return pick


def anchor_to_parent(
    plan: dict[str, Any],
    decoded: dict[str, pd.Series],
    anchor: dict[str, Any],
    parent: str,
    pick: np.ndarray,
    bounds: dict,
    state: SampleState,
    md: Metadata,
    rng: np.random.Generator,
) -> dict[str, pd.Series]:
    """Redraw a child date tied to its secondary parent's date (``anchor``, see
    :func:`clinsynth.multitable._match.fit_anchor`) as the chosen parent's date plus a real
    gap; the child's dates that move with it keep their distance to it."""
    pns, pok = state.dates(parent, anchor["parent"], md)
    entries = {e["column"]: e for e in plan["dates"]}
    xs, xp = to_ns(decoded[anchor["child"]], entries[anchor["child"]].get("format"))
    safe = np.where(pick >= 0, pick, 0)
    valid = (pick >= 0) & xp & pok[safe]
    target = redrawn_dates(anchor, pns[safe], rng)
    delta = np.where(valid, target - xs, 0)
    return shift_dates(plan["dates"], decoded, [anchor["child"], *anchor["shift"]], delta, bounds)


def take(values: pd.Series, pos: np.ndarray) -> pd.Series:
    """``values`` at positions ``pos``; missing where ``pos`` is -1."""
    pos = np.asarray(pos, dtype=np.int64)
    valid = pos >= 0
    if len(values) == 0:
        return pd.Series([None] * len(pos), dtype=object)
    taken = values.iloc[np.where(valid, pos, 0)].reset_index(drop=True)
    if valid.all():
        return taken
    if pd.api.types.is_integer_dtype(taken.dtype) and not isinstance(
        taken.dtype, pd.api.extensions.ExtensionDtype
    ):
        taken = taken.astype("Int64")
    elif pd.api.types.is_bool_dtype(taken.dtype):
        taken = taken.astype("boolean")
    return taken.mask(~valid)


def restore_key_dtype(values: pd.Series, dtype: str | None) -> pd.Series:
    """Foreign keys with the real column's dtype (``Int64`` when an integer key has gaps)."""
    if dtype is None or str(values.dtype) == dtype:
        return values
    try:
        if dtype.startswith(("int", "uint")):
            return values.astype(dtype if values.notna().all() else "Int64")
        if dtype.startswith("float") and pd.api.types.is_numeric_dtype(values):
            return values.astype(dtype)
    except (TypeError, ValueError):
        return values
    return values


def empty_dtype(dtype: str) -> str:
    if dtype.startswith(("int", "uint")):
        return "Int64"
    if dtype == "bool":
        return "boolean"
    return dtype


def weighted_group_pick(
    cand_group: np.ndarray,
    weights: np.ndarray,
    child_group: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """For each child, a candidate of its group drawn with probability proportional to its
    weight (uniform where a group's weights are all 0); ``-1`` where the group has none.

    >>> pick = weighted_group_pick(np.array([0, 0, 1]), np.array([0.0, 1.0, 1.0]),
    ...                            np.array([0, 1, 2, -1]), np.random.default_rng(0))
    >>> pick.tolist()
    [1, 2, -1, -1]
    """
    n = len(child_group)
    pick = np.full(n, -1, dtype=np.int64)
    valid = cand_group >= 0
    if not valid.any() or n == 0:
        return pick
    idx = np.flatnonzero(valid)
    order = idx[np.argsort(cand_group[idx], kind="stable")]
    groups = cand_group[order]
    w = np.clip(np.nan_to_num(weights[order].astype(np.float64)), 0.0, None)
    size = int(max(groups.max(), child_group.max(initial=-1)) + 1)
    starts = np.searchsorted(groups, np.arange(size), side="left")
    ends = np.searchsorted(groups, np.arange(size), side="right")
    totals = np.bincount(groups, weights=w, minlength=size)
    # Groups whose weights are all zero draw uniformly.
    w = np.where(totals[groups] > 0, w, 1.0)
    cum = np.concatenate([[0.0], np.cumsum(w)])
    ok = (child_group >= 0) & (child_group < size)
    ok[ok] = ends[child_group[ok]] > starts[child_group[ok]]
    g = child_group[ok]
    lo, hi = cum[starts[g]], cum[ends[g]]
    target = lo + rng.random(len(g)) * (hi - lo)
    at = np.searchsorted(cum, target, side="right") - 1
    at = np.clip(at, starts[g], ends[g] - 1)
    pick[ok] = order[at]
    return pick
