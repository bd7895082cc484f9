"""How each table is linked and what its model learns, decided once from the real data.

For every child table the relationships get one of these roles:

``primary``
    The parent whose rows the child rows are generated under: its model holds the number of
    children per row, and the child model is conditioned on its context. Chosen for the most
    linked rows, then the most distinct parents referenced (a lab result's visit rather than its
    test's vocabulary entry), then the most other links it *derives*. A key that puts every row
    on one parent row is a code, never a primary parent.
``derived``
    A key implied by the primary chain: a lab result's patient is its visit's patient. Filled by
    lookup, so multi-parent keys are always consistent.
``secondary``
    Another parent: picked per row among the synthetic parent rows (weighted by their modeled
    number of children), inside the same ancestor group when the real data always agrees (a
    condition's encounter belongs to the condition's patient).
``reference``
    A key into a table kept verbatim (a public vocabulary such as OMOP ``concept``): modeled as a
    categorical column whose levels are real keys.
``self``
    A key into the same table (a case-control set, the previous visit): its groups (sizes, rows
    pointing to themselves, columns matched within a group) are learned and rebuilt once the
    table's rows exist (:mod:`clinsynth.multitable._self_groups`).

Columns equal to a same-named column of an ancestor row on every real row are *inherited*
(copied, not learned).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clinsynth.metadata import Metadata
from clinsynth.multitable._schema import compose, link_positions
from clinsynth.multitable._self_groups import learn_self_groups

#: Share of the child rows on which a derivation or a group must hold to be used.
CONSISTENCY = 0.99


def plan_links(
    md: Metadata,
    tables: dict[str, pd.DataFrame],
    order: list[str],
    reference: set[str],
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, np.ndarray]]]:
    """Roles of every relationship, and each table's ancestor row positions (real data).

    Returns
    -------
    links : dict
        ``{table: {"primary", "derived", "secondary", "reference_fks", "self_fks", "chain"}}``.
    ancestors : dict
        ``{table: {ancestor: positions}}`` along the primary chain (``-1``: no such row).
    """
    depth: dict[str, int] = {}
    links: dict[str, dict[str, Any]] = {}
    ancestors: dict[str, dict[str, np.ndarray]] = {}
    for name in order:
        df = tables[name]
        rels = [r for r in md.relationships if r["child_table_name"] == name]
        info: dict[str, Any] = {
            "primary": None,
            "derived": [],
            "secondary": [],
            "reference_fks": [],
            "self_fks": [],
            "chain": [],
        }
        links[name] = info
        ancestors[name] = {}
        depth[name] = 0
        if name in reference:
            continue
        candidates = []
        for rel in rels:
            parent, fk = rel["parent_table_name"], rel["child_foreign_key"]
            if parent == name:
                groups = learn_self_groups(
                    df,
                    rel["parent_primary_key"],
                    fk,
                    md.tables[name].columns,
                    np.random.default_rng(0),  # only picks the random pairs of a baseline
                )
                info["self_fks"].append(
                    {"fk": fk, "null_rate": groups["null_rate"], "groups": groups}
                )
            elif parent in reference:
                info["reference_fks"].append(fk)
            else:
                pos = link_positions(tables[parent][rel["parent_primary_key"]], df[fk])
                candidates.append({"rel": rel, "pos": pos})
        eligible = [
            i for i, c in enumerate(candidates) if len(np.unique(c["pos"][c["pos"] >= 0])) >= 2
        ]
        if not eligible:  # every row on one parent (a code, not an owner): no primary parent
            for cand in candidates:
                rel = cand["rel"]
                info["secondary"].append(
                    {
                        "fk": rel["child_foreign_key"],
                        "parent": rel["parent_table_name"],
                        "pk": rel["parent_primary_key"],
                        "group": None,
                        "nullable": bool(df[rel["child_foreign_key"]].isna().any()),
                    }
                )
            continue
        best = max(eligible, key=lambda i: _primary_score(i, candidates, ancestors, depth, tables))
        primary = candidates[best]
        chain = _chain(primary, ancestors)
        prel = primary["rel"]
        info["primary"] = {
            "parent": prel["parent_table_name"],
            "pk": prel["parent_primary_key"],
            "fk": prel["child_foreign_key"],
        }
        info["chain"] = list(chain)
        ancestors[name] = chain
        depth[name] = depth[prel["parent_table_name"]] + 1
        for i, cand in enumerate(candidates):
            if i == best:
                continue
            rel = cand["rel"]
            fk, parent = rel["child_foreign_key"], rel["parent_table_name"]
            entry = {"fk": fk, "parent": parent, "pk": rel["parent_primary_key"]}
            if _consistent(df[fk], cand["pos"], chain.get(parent)):
                info["derived"].append(entry)
                continue
            entry["group"] = _group(cand, chain, ancestors)
            entry["nullable"] = bool(df[fk].isna().any())
            info["secondary"].append(entry)
    return links, ancestors


def _chain(cand: dict, ancestors: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Positions of the candidate parent and of its ancestors for each child row."""
    parent = cand["rel"]["parent_table_name"]
    chain = {parent: cand["pos"]}
    for anc, pos in ancestors[parent].items():
        chain[anc] = compose(cand["pos"], pos)
    return chain


def _consistent(keys: pd.Series, pos: np.ndarray, implied: np.ndarray | None) -> bool:
    if implied is None:
        return False
    rows = keys.notna().to_numpy()
    if not rows.any():
        return False
    same = (pos == implied) & (pos >= 0)
    return bool(same[rows].mean() >= CONSISTENCY)


def _primary_score(
    i: int,
    candidates: list[dict],
    ancestors: dict[str, dict[str, np.ndarray]],
    depth: dict[str, int],
    tables: dict[str, pd.DataFrame],
) -> tuple:
    cand = candidates[i]
    chain = _chain(cand, ancestors)
    derived = 0
    for j, other in enumerate(candidates):
        if j != i:
            fk = other["rel"]["child_foreign_key"]
            child = tables[other["rel"]["child_table_name"]]
            derived += _consistent(
                child[fk], other["pos"], chain.get(other["rel"]["parent_table_name"])
            )
    parent = cand["rel"]["parent_table_name"]
    pos = cand["pos"]
    linked = round(float((pos >= 0).mean()), 2) if len(pos) else 0.0
    # The owner of a row links it (almost) always and groups the rows finely: a lab result's
    # visit rather than its test's vocabulary entry.
    distinct = len(np.unique(pos[pos >= 0]))
    return (linked, distinct, derived, depth[parent], len(tables[parent]), -i)


def _group(
    cand: dict, chain: dict[str, np.ndarray], ancestors: dict[str, dict[str, np.ndarray]]
) -> str | None:
    """The closest ancestor shared by the primary chain and the secondary parent on which the
    real rows always agree (picks are then made inside that ancestor's rows)."""
    other = _chain(cand, ancestors)
    for anc, pos in chain.items():
        if anc not in other:
            continue
        both = (pos >= 0) & (other[anc] >= 0)
        if both.any() and (pos[both] == other[anc][both]).mean() >= CONSISTENCY:
            return anc
    return None


def inherited_columns(
    name: str,
    md: Metadata,
    tables: dict[str, pd.DataFrame],
    chain: dict[str, np.ndarray],
    exclude: set[str],
    usable: dict[str, set[str]],
) -> dict[str, list[str]]:
    """``{column: [ancestor, column]}`` for columns copied from an ancestor row.

    A column is inherited when an ancestor on the primary chain has a column of the same name
    (``usable`` lists the ancestor columns that exist in the synthetic data) whose value is equal
    on every linked real row, and at least 99% of the rows are linked.
    """
    df = tables[name]
    out: dict[str, list[str]] = {}
    if len(df) == 0:
        return out
    for column in md.tables[name].columns:
        if column in exclude:
            continue
        for anc, pos in chain.items():
            if column not in usable.get(anc, set()):
                continue
            valid = pos >= 0
            if valid.mean() < CONSISTENCY:
                continue
            mine = df[column].to_numpy()[valid]
            theirs = tables[anc][column].to_numpy()[pos[valid]]
            if _equal(mine, theirs):
                out[column] = [anc, column]
                break
    return out


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = pd.Series(a), pd.Series(b)
    both_null = a.isna() & b.isna()
    try:
        same = (a == b) | both_null
    except TypeError:  # values that cannot be compared are not equal
        return False
    return bool(same.all())
