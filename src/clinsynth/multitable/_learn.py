"""Fit side of the hierarchical synthesizer: what each table's model learns.

:func:`learn_table` turns one real table into its model's training frame: its own columns (dates
replaced by their gaps to the anchors of :mod:`._dates`, keys into reference tables as
categories), the number of children of each row in every child table (``__n__<child>__<key>``),
a has-key flag per nullable secondary key (``__has__<key>``) and the normal scores of the most
informative parent and grandparent columns (``__ctx__<ancestor>__<column>``, chosen by
:func:`choose_context`). Everything the sampler needs besides the model goes in the table's JSON
*plan*.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clinsynth.constraints import rules_within
from clinsynth.metadata import Metadata, TableMetadata
from clinsynth.multitable._context import ContextEncoder, encoder_sdtype, select_features
from clinsynth.multitable._dates import date_format_of, encode_dates, plan_dates, to_ns
from clinsynth.multitable._match import fit_anchor, fit_match
from clinsynth.multitable._plan import inherited_columns
from clinsynth.multitable._schema import link_positions
from clinsynth.transform import IdTransformer

#: Rows used to choose context columns (correlations are stable long before this).
SELECTION_ROWS = 100_000


def learn_table(
    name: str,
    md: Metadata,
    tables: dict[str, pd.DataFrame],
    link: dict[str, Any],
    chain: dict[str, np.ndarray],
    counts: dict[str, np.ndarray],
    augmented: dict[str, pd.DataFrame],
    date_cache: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]],
    empties: dict[str, str],
    rng: np.random.Generator,
    *,
    columns_order: list[str],
    max_context: int,
    encoder_source: dict[str, pd.DataFrame] | None = None,
    sequence: bool = False,
) -> tuple[dict[str, Any], pd.DataFrame, TableMetadata, list[str]]:
    """Decide what the table's model learns; build its training frame.

    Returns ``(plan, frame, model_metadata, context_columns)``: the JSON plan the sampler
    follows, the frame to fit the table's model on, its metadata and the names of its context
    columns. ``augmented`` and ``date_cache`` hold what the table's ancestors (already learned)
    expose: their columns, child counts and dates. ``encoder_source`` (differential privacy):
    synthetic rows of each ancestor, on which the context encoders are fit instead of the real
    ones (see :func:`choose_context`), and secondary parents are not matched on columns
    (those fits keep quantiles of real gaps and a date range). ``sequence``: the table is
    learned as sequences (:mod:`clinsynth.multitable._sequence`), its ``sequence_index`` kept
    as it is (the sequence model orders it and keeps its bounds).
    """
    table = md.tables[name]
    df = tables[name]
    pk = table.primary_key
    keys = {pk} if pk else set()
    if link["primary"]:
        keys.add(link["primary"]["fk"])
    keys.update(e["fk"] for e in link["derived"] + link["secondary"] + link["self_fks"])
    usable = {a: set(md.tables[a].columns) - key_columns(md, a) for a in chain}
    inherited = inherited_columns(name, md, tables, chain, keys, usable)
    datetime_cols = [
        c
        for c, s in table.columns.items()
        if s["sdtype"] == "datetime"
        and c not in keys
        and c not in inherited
        and not (sequence and c == table.sequence_index)
    ]
    own_ns = {c: to_ns(df[c], table.columns[c].get("datetime_format")) for c in datetime_cols}
    formats = {c: date_format_of(df[c], table.columns[c]) for c in datetime_cols}
    bounds = {
        (anc, c): aligned(ns, ok, chain[anc])
        for anc in chain
        for c, (ns, ok) in date_cache[anc].items()
    }
    dates = plan_dates(own_ns, formats, bounds)
    gaps = encode_dates(dates, own_ns, bounds, rng)
    whole = {e["column"]: e["whole"] for e in dates}

    columns: dict[str, pd.Series | np.ndarray] = {}
    specs: dict[str, dict] = {}
    for column, spec in table.columns.items():
        if column in keys or column in inherited:
            continue
        if column in link["reference_fks"]:
            # Keys of a public vocabulary: every level is kept (none merged as rare).
            spec = {"sdtype": "categorical", "rare_category_threshold": None}
        if column in gaps:
            columns[column] = gaps[column]
            rep = "Int64" if whole[column] else "Float"
            spec = {"sdtype": "numerical", "computer_representation": rep}
        else:
            columns[column] = df[column]
        specs[column] = dict(spec)
    for entry in link["secondary"]:
        parent = entry["parent"]
        pos = link_positions(tables[parent][entry["pk"]], df[entry["fk"]])
        exclude = keys | key_columns(md, name) | set(inherited)
        if encoder_source is not None:  # DP: the fits would keep real gaps and date ranges
            entry["match"], entry["anchor"] = [], None
        else:
            entry["match"] = fit_match(
                df, table, tables[parent], md.tables[parent], pos, exclude, key_columns(md, parent)
            )
            entry["anchor"] = fit_anchor(
                df, table, tables[parent], md.tables[parent], pos, entry["match"], exclude
            )
        if entry["nullable"]:
            entry["has"] = f"__has__{entry['fk']}"
            columns[entry["has"]] = df[entry["fk"]].notna().to_numpy()
            specs[entry["has"]] = {"sdtype": "boolean"}
    for column, values in counts.items():
        columns[column] = values
        specs[column] = {"sdtype": "numerical", "computer_representation": "Int64"}

    context: list[dict[str, Any]] = []
    primary = link["primary"]
    parentless = 0
    if primary:
        pos = chain[primary["parent"]]
        parentless = int((pos < 0).sum())
        context = choose_context(md, augmented, chain, columns, specs, max_context, encoder_source)
        for feature in context:
            columns[feature["name"]] = feature.pop("values")
            specs[feature["name"]] = {"sdtype": "numerical", "computer_representation": "Float"}
    frame = pd.DataFrame(columns, index=df.index, copy=False)
    plan = {
        "reference": False,
        "n_rows": len(df),
        "parentless": parentless,
        "columns": [c for c in columns_order if c in table.columns or c in empties],
        "pk": pk,
        "pk_generator": IdTransformer(pk).fit(df[pk]).to_dict() if pk else None,
        "key_dtypes": {k: str(df[k].dtype) for k in keys},
        "dtypes": {c: str(df[c].dtype) for c in df.columns},
        "empty": dict(empties),
        "inherited": inherited,
        "dates": dates,
        "context": context,
        "counts": list(counts),
        **link,
    }
    # The table's own rules on the columns its model learns as they are (keys, inherited
    # columns and dates learned as gaps are handled by the schema).
    rules = rules_within(table.constraints, specs, table.columns)
    model_md = TableMetadata(specs, constraints=rules)
    return plan, frame, model_md, [f["name"] for f in context]


def choose_context(
    md: Metadata,
    augmented: dict[str, pd.DataFrame],
    chain: dict[str, np.ndarray],
    columns: dict[str, Any],
    specs: dict[str, dict],
    max_context: int,
    encoder_source: dict[str, pd.DataFrame] | None = None,
) -> list[dict[str, Any]]:
    """Encode the columns of the parent and grandparent... rows for the child rows; keep
    the ones most associated with the child's own columns.

    With ``encoder_source`` (synthetic rows of each ancestor, drawn from its differentially
    private model) nothing here reads the real rows but to encode them for the child's DP
    model: the encoders are fit on the synthetic rows (post-processing), dates are left out
    (a model's rows hold them as gaps), and the first ``max_context`` columns in schema order
    are kept instead of the most associated ones.
    """
    if max_context == 0 or not columns or not chain:
        return []
    private = encoder_source is not None
    first = next(iter(chain))
    attached = chain[first] >= 0
    n = len(attached)
    rng = np.random.default_rng(0)
    rows = np.sort(rng.permutation(n)[:SELECTION_ROWS]) if n > SELECTION_ROWS else None
    candidates: dict[str, dict[str, Any]] = {}
    for anc, pos in chain.items():
        frame = augmented[anc]
        table = md.tables[anc]
        keys = key_columns(md, anc)
        valid = pos >= 0
        source = encoder_source.get(anc) if private else frame
        if source is None:
            continue
        for column in frame.columns:
            if column.startswith("__n__"):
                sdtype, fmt = "count", None
            elif column in table.columns and column not in keys:
                sdtype = encoder_sdtype(table.columns[column])
                fmt = table.columns[column].get("datetime_format")
            else:
                continue
            if sdtype is None or (private and (sdtype == "datetime" or column not in source)):
                continue
            encoder = ContextEncoder.fit(source[column], sdtype, fmt)
            z_anc = encoder.transform(frame[column], sdtype)
            # 0 (neutral) where a grandparent is missing; NaN only for rows with no parent.
            values = np.where(attached, 0.0, np.nan)
            values[valid] = z_anc[pos[valid]]
            name = f"__ctx__{anc}__{column.lstrip('_')}"
            candidates[name] = {
                "name": name,
                "table": anc,
                "column": column,
                "sdtype": sdtype,
                "encoder": encoder.to_dict(),
                "values": values,
            }
    if private:
        return list(candidates.values())[:max_context]
    targets = []
    for column, values in columns.items():
        sdtype = "count" if column.startswith("__n__") else encoder_sdtype(specs[column])
        if sdtype is None:
            continue
        series = values if isinstance(values, pd.Series) else pd.Series(values)
        fmt = specs[column].get("datetime_format") if sdtype == "datetime" else None
        sub = series.iloc[rows] if rows is not None else series
        targets.append(ContextEncoder.fit(sub, sdtype, fmt).transform(sub, sdtype))
    subset = {
        k: (v["values"][rows] if rows is not None else v["values"]) for k, v in candidates.items()
    }
    chosen = select_features(subset, targets, max_context)
    return [candidates[c] for c in chosen]


def count_column(child: str, fk: str) -> str:
    return f"__n__{child}__{fk}"


def key_columns(md: Metadata, name: str) -> set[str]:
    keys = {md.tables[name].primary_key} - {None}
    keys |= {r["child_foreign_key"] for r in md.relationships if r["child_table_name"] == name}
    return keys


def child_counts(
    md: Metadata,
    tables: dict[str, pd.DataFrame],
    links: dict[str, dict[str, Any]],
    ancestors: dict[str, dict[str, np.ndarray]],
) -> dict[str, dict[str, np.ndarray]]:
    """``{parent: {count column: children per parent row}}`` for primary and secondary links."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for child, link in links.items():
        primary = link["primary"]
        if primary:
            pos = ancestors[child][primary["parent"]]
            n = len(tables[primary["parent"]])
            out.setdefault(primary["parent"], {})[count_column(child, primary["fk"])] = np.bincount(
                pos[pos >= 0], minlength=n
            )
        for entry in link["secondary"]:
            parent = tables[entry["parent"]]
            pos = link_positions(parent[entry["pk"]], tables[child][entry["fk"]])
            out.setdefault(entry["parent"], {})[count_column(child, entry["fk"])] = np.bincount(
                pos[pos >= 0], minlength=len(parent)
            )
    return out


def date_columns(
    table: TableMetadata, df: pd.DataFrame
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {
        c: to_ns(df[c], s.get("datetime_format"))
        for c, s in table.columns.items()
        if s["sdtype"] == "datetime" and c in df.columns
    }


def aligned(ns: np.ndarray, ok: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    valid = pos >= 0
    safe = np.where(valid, pos, 0)
    if len(ns) == 0:
        return np.zeros(len(pos), dtype=np.int64), np.zeros(len(pos), dtype=bool)
    return ns[safe], ok[safe] & valid
