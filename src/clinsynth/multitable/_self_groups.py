"""Keys into a table's own rows that form groups: case-control sets, families, transfers.

A self-referencing key ``fk -> pk`` groups the rows by the row they point to. In a matched
case-control table (``case.id -> id``) the case points to itself and its controls to the case:
groups of ~4.6 rows of which one points to itself, whose members agree with their head on the
matching variables (same sex, age within a few years). Drawing each key as a random row keeps
the keys valid but loses all of that. This module learns, from the real rows:

``sizes``
    The distribution of group sizes of *self-headed* groups (the row pointed to is in its own
    group: a case and its controls) and of the other groups (a manager's reports, the stays
    after a transfer), each size seen in at least :data:`MIN_GROUPS` groups (rarer sizes are
    pooled with their neighbours, so no size of fewer than 5 groups is kept);
``null_rate`` and ``self_rows``
    The share of rows with no key, and the share of keyed rows in self-headed groups;
``marker``
    A categorical or boolean column whose levels tell heads from members (``case``: True for
    the case), when one does (>= 95% of the heads and <= 5% of the members on the head levels);
``matched``
    The columns on which members agree with their head far more than random pairs do:
    categorical ones (the same level on >= 90% of the members, 0.2 above chance) are matched
    exactly, numerical and date ones (median distance to the head at most a quarter of the
    median distance between random rows) by rank.

Groups are synthesized last, once the table's rows exist (:func:`assign_self_groups`): the rows
of each stratum of exact-matched levels are cut into groups of the learned sizes; heads are the
rows of the marker's head levels (or drawn at random), and members are given to the heads in the
order of the rank-matched columns (the youngest controls to the youngest cases), so matched sets
stay matched. Where the table model drew more or fewer heads than the sizes ask for, the marker
is corrected on those rows. Everything is vectorized; the only loop runs over the strata.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: Least number of groups behind each size kept (smaller counts are pooled).
MIN_GROUPS = 5
#: A marker level holds at least this share of the heads, members at most 1 minus it.
MARKER_PURITY = 0.95
#: Categorical columns matched exactly: members agree with their head at least this often ...
EXACT_AGREEMENT = 0.9
#: ... and this much more often than random pairs do.
EXACT_LIFT = 0.2
#: Numeric columns matched by rank: median distance to the head at most this share of the median
#: distance between random rows.
NEAR_RATIO = 0.25
#: Most levels of a marker column.
MAX_MARKER_LEVELS = 20


def learn_self_groups(
    df: pd.DataFrame, pk: str, fk: str, columns: dict[str, dict], rng: np.random.Generator
) -> dict[str, Any]:
    """What :func:`assign_self_groups` needs to rebuild the groups of ``df[fk] -> df[pk]``.

    Parameters
    ----------
    df : DataFrame
        The real table.
    pk, fk : str
        Its primary key and the foreign key into its own rows.
    columns : dict
        The table's column specs (``{"sdtype": ...}``): which columns may be marker or matched.
    rng : numpy.random.Generator
        For the random pairs of the matching baseline.

    Returns
    -------
    dict
        JSON-ready: ``fk``, ``null_rate``, ``self_rows``, ``sizes``, ``other_sizes`` (each
        ``{"values": [...], "weights": [...]}``), ``marker`` (or None), ``matched``,
        ``self_share`` (rows pointing to themselves, for the report).

    Examples
    --------
    >>> ids = np.arange(1, 21)
    >>> sex = np.repeat(list("FMFMF"), 4)
    >>> df = pd.DataFrame({"id": ids, "set": np.repeat(ids[::4], 4), "sex": sex})
    >>> spec = learn_self_groups(df, "id", "set", {"sex": {"sdtype": "categorical"}},
    ...                          np.random.default_rng(0))
    >>> spec["sizes"], spec["self_share"], [m["column"] for m in spec["matched"]]
    ({'values': [4], 'weights': [1.0]}, 0.25, ['sex'])
    """
    n = len(df)
    values, keys = df[fk], df[pk]
    present = values.notna().to_numpy()
    out: dict[str, Any] = {
        "fk": fk,
        "null_rate": float(1.0 - present.mean()) if n else 0.0,
        "self_rows": 0.0,
        "sizes": None,
        "other_sizes": None,
        "marker": None,
        "matched": [],
        "self_share": 0.0,
    }
    if not present.any():
        return out
    target = pd.Index(keys).get_indexer(values[present])  # row pointed to (-1: orphan)
    group, uniques = pd.factorize(values[present])
    sizes = np.bincount(group)
    rows = np.flatnonzero(present)
    points_self = np.zeros(n, dtype=bool)
    points_self[rows] = target == rows
    group_target = np.full(len(uniques), -1, dtype=np.int64)
    group_target[group] = target
    headed = (group_target >= 0) & points_self[np.where(group_target >= 0, group_target, 0)]
    in_headed = headed[group]
    out["self_rows"] = float(in_headed.mean())
    out["self_share"] = float(points_self[rows].mean())
    out["sizes"] = size_distribution(sizes[headed])
    out["other_sizes"] = size_distribution(sizes[~headed])
    if headed.any():
        member_rows = rows[in_headed & ~points_self[rows]]
        head_of_member = group_target[group[in_headed & ~points_self[rows]]]
        skip = {pk, fk}
        out["marker"] = _marker(df, rows, points_self, columns, skip)
        if out["marker"]:
            skip.add(out["marker"]["column"])
        out["matched"] = _matched(df, member_rows, head_of_member, columns, skip, rng)
    return out


def size_distribution(sizes: np.ndarray) -> dict[str, list] | None:
    """Group sizes and their shares, each size seen in >= MIN_GROUPS groups (rarer sizes are
    pooled with their neighbours into their rounded mean).

    >>> size_distribution(np.array([2] * 10 + [3] * 6 + [9, 12]))
    {'values': [2, 5], 'weights': [0.5556, 0.4444]}
    """
    if len(sizes) == 0:
        return None
    values, counts = np.unique(sizes, return_counts=True)
    pooled: list[tuple[float, int]] = []  # (sum of sizes, groups)
    acc_sum, acc_n = 0.0, 0
    for value, count in zip(values.tolist(), counts.tolist(), strict=True):
        acc_sum, acc_n = acc_sum + value * count, acc_n + count
        if acc_n >= MIN_GROUPS:
            pooled.append((acc_sum, acc_n))
            acc_sum, acc_n = 0.0, 0
    if acc_n:
        if pooled:
            last_sum, last_n = pooled.pop()
            pooled.append((last_sum + acc_sum, last_n + acc_n))
        else:
            pooled.append((acc_sum, acc_n))
    total = sum(k for _, k in pooled)
    return {
        "values": [max(1, int(round(s / k))) for s, k in pooled],
        "weights": [round(k / total, 4) for _, k in pooled],
    }


def _marker(
    df: pd.DataFrame,
    rows: np.ndarray,
    points_self: np.ndarray,
    columns: dict[str, dict],
    skip: set[str],
) -> dict[str, Any] | None:
    """The column whose levels best tell heads from members, if one does."""
    is_head = points_self[rows]
    best = None
    for column, spec in columns.items():
        if (
            column in skip
            or column not in df
            or spec.get("sdtype")
            not in (
                "categorical",
                "boolean",
            )
        ):
            continue
        series = df[column].iloc[rows]
        if series.nunique(dropna=True) > MAX_MARKER_LEVELS:
            continue
        table = pd.crosstab(series.astype(object).fillna("\0missing"), is_head)
        if True not in table.columns or False not in table.columns:
            continue
        heads, members = table[True].to_numpy(), table[False].to_numpy()
        levels = table.index.to_numpy(dtype=object)
        mask = heads > members
        if not mask.any() or any(isinstance(v, str) and v == "\0missing" for v in levels[mask]):
            continue
        head_cover = heads[mask].sum() / heads.sum()
        member_in = members[mask].sum() / max(members.sum(), 1)
        if head_cover < MARKER_PURITY or member_in > 1.0 - MARKER_PURITY:
            continue
        if ((heads + members)[mask] < MIN_GROUPS).any():
            continue  # a level of fewer than 5 rows is not kept in a bundle
        score = head_cover - member_in
        if best is None or score > best[0]:
            common = levels[~mask][np.argmax(members[~mask])]
            member = None if isinstance(common, str) and common == "\0missing" else common
            best = (score, column, [_plain(v) for v in levels[mask]], _plain(member))
    if best is None:
        return None
    return {"column": best[1], "head_values": best[2], "member_value": best[3]}


def _matched(
    df: pd.DataFrame,
    members: np.ndarray,
    heads: np.ndarray,
    columns: dict[str, dict],
    skip: set[str],
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """Columns on which members agree with their head beyond chance (strongest first)."""
    if len(members) < MIN_GROUPS:
        return []
    other = rng.permutation(len(df))[: len(members)] if len(df) >= len(members) else None
    found = []
    for column, spec in columns.items():
        sdtype = spec.get("sdtype")
        if column in skip or column not in df:
            continue
        if sdtype in ("categorical", "boolean"):
            a = df[column].to_numpy(dtype=object)
            ok = pd.notna(a[members]) & pd.notna(a[heads])
            if ok.sum() < MIN_GROUPS:
                continue
            agree = float(np.mean(a[members][ok] == a[heads][ok]))
            shares = pd.Series(a[members][ok]).value_counts(normalize=True).to_numpy()
            chance = float(np.sum(shares**2))
            if agree >= EXACT_AGREEMENT and agree >= chance + EXACT_LIFT:
                found.append({"column": column, "kind": "exact", "strength": round(agree, 3)})
        elif sdtype in ("numerical", "datetime") and other is not None:
            x = _numbers(df[column], sdtype)
            ok = np.isfinite(x[members]) & np.isfinite(x[heads])
            if ok.sum() < MIN_GROUPS:
                continue
            near = float(np.median(np.abs(x[members][ok] - x[heads][ok])))
            pairs = np.isfinite(x[members]) & np.isfinite(x[other])
            spread = float(np.median(np.abs(x[members][pairs] - x[other][pairs])))
            if spread > 0 and near <= NEAR_RATIO * spread:
                strength = round(1.0 - near / spread, 3)
                found.append({"column": column, "kind": "rank", "strength": strength})
    found.sort(key=lambda m: -m["strength"])
    return found


def _numbers(series: pd.Series, sdtype: str) -> np.ndarray:
    if sdtype == "datetime" or pd.api.types.is_datetime64_any_dtype(series):
        values = pd.to_datetime(series, errors="coerce")
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        out = values.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64)
        out[values.isna().to_numpy()] = np.nan
        return out
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _plain(value: Any) -> Any:
    """A JSON value (numpy scalars as Python ones)."""
    return value.item() if isinstance(value, np.generic) else value


def describe_self_groups(entry: dict[str, Any]) -> str:
    """One line for the plan: ``case.id: sets of 4.6 rows (22% point to themselves), heads by
    case, matched on sex (exact), age (rank)``."""
    spec = entry.get("groups")
    if not spec:
        return f"{entry['fk']}: a random row"
    parts = []
    for key, label in (("sizes", "sets"), ("other_sizes", "groups under another row")):
        dist = spec.get(key)
        if dist:
            mean = float(np.dot(dist["values"], dist["weights"]) / np.sum(dist["weights"]))
            parts.append(f"{label} of {mean:.1f} rows")
    text = f"{spec['fk']}: {' and '.join(parts) or 'no groups'}"
    text += f" ({spec['self_share']:.0%} point to themselves)"
    if spec.get("marker"):
        text += f", heads by {spec['marker']['column']}"
    if spec.get("matched"):
        matched = ", ".join(f"{m['column']} ({m['kind']})" for m in spec["matched"])
        text += f", matched on {matched}"
    return text


def assign_self_groups(
    table: pd.DataFrame, spec: dict[str, Any], columns: dict[str, dict], rng: np.random.Generator
) -> tuple[np.ndarray, pd.Series | None]:
    """The row each synthetic row points to (``-1``: no key), rebuilding the learned groups.

    Rows of the same exact-matched levels (a stratum: the women, the men) are cut into groups
    whose sizes are drawn from the learned distribution; each group's head is a row of the
    marker's head levels (a case) and its members are given to the heads in the order of the
    rank-matched columns. Where the table model drew more or fewer heads than the sizes ask
    for, the marker is corrected on those rows (a control made a case or the reverse), so the
    marker always agrees with the structure.

    Parameters
    ----------
    table : DataFrame
        The synthetic table, every other column generated.
    spec : dict
        From :func:`learn_self_groups`.
    columns : dict
        The table's column specs.
    rng : numpy.random.Generator

    Returns
    -------
    positions : numpy.ndarray of int64
        Positions into ``table``.
    marker : Series or None
        The marker column with its corrections, when there is a marker.
    """
    n = len(table)
    pos = np.full(n, -1, dtype=np.int64)
    marker = spec.get("marker")
    if marker and marker["column"] not in table:
        marker = None
    if n == 0 or (spec.get("sizes") is None and spec.get("other_sizes") is None):
        return pos, None
    head_mark = np.zeros(n, dtype=bool)
    if marker:
        head_mark = table[marker["column"]].isin(marker["head_values"]).to_numpy(dtype=bool)
    keyed = (rng.random(n) >= spec["null_rate"]) | head_mark  # a case always has its set
    rows = np.flatnonzero(keyed)
    in_sets = np.zeros(len(rows), dtype=bool)
    if spec.get("sizes"):
        in_sets = (rng.random(len(rows)) < spec["self_rows"]) | head_mark[rows]
    set_rows, other_rows = rows[in_sets], rows[~in_sets]
    is_head = np.zeros(n, dtype=bool)
    if len(set_rows):
        codes, rank = _strata_and_rank(table, spec, columns, rng)
        for code in np.unique(codes[set_rows]):
            stratum = set_rows[codes[set_rows] == code]
            sizes = rng.permutation(_draw_sizes(spec["sizes"], len(stratum), rng))
            heads = _choose_heads(stratum, head_mark[stratum], len(sizes), rng)
            is_head[heads] = True
            members = stratum[~np.isin(stratum, heads)]
            pos[heads] = heads
            if len(members):
                pos[members] = _fill(heads, sizes - 1, members, rank)
    if len(other_rows) and spec.get("other_sizes"):
        sizes = _draw_sizes(spec["other_sizes"], len(other_rows), rng)
        group = np.repeat(np.arange(len(sizes)), sizes)[: len(other_rows)]
        target = rng.integers(0, n, len(sizes))
        pos[rng.permutation(other_rows)] = target[group]
    if not marker:
        return pos, None
    values = table[marker["column"]].astype(object).copy()
    promoted, demoted = is_head & ~head_mark, head_mark & ~is_head
    values[promoted] = marker["head_values"][0]
    values[demoted] = marker.get("member_value")
    return pos, values.astype(table[marker["column"]].dtype, errors="ignore")


def _draw_sizes(dist: dict[str, list], total: int, rng: np.random.Generator) -> np.ndarray:
    """Sizes drawn from ``dist`` whose sum is exactly ``total`` (the last one cut)."""
    values = np.asarray(dist["values"], dtype=np.int64)
    p = np.asarray(dist["weights"], dtype=np.float64)
    p = p / p.sum()
    count = int(np.ceil(total / max(float(np.dot(values, p)), 1.0) * 1.2)) + 10
    sizes = rng.choice(values, size=count, p=p)
    while sizes.sum() < total:  # rarely: draw more
        sizes = np.concatenate([sizes, rng.choice(values, size=count, p=p)])
    cum = np.cumsum(sizes)
    last = int(np.searchsorted(cum, total))
    sizes = sizes[: last + 1].copy()
    sizes[-1] -= int(cum[last] - total)
    return sizes[sizes > 0]


def _choose_heads(
    stratum: np.ndarray, marked: np.ndarray, count: int, rng: np.random.Generator
) -> np.ndarray:
    """``count`` heads of the stratum: the marked rows first, then others at random."""
    ranked = np.lexsort((rng.random(len(stratum)), ~marked))  # marked first, random within
    return stratum[ranked[:count]]


def _strata_and_rank(
    table: pd.DataFrame, spec: dict[str, Any], columns: dict[str, dict], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A stratum code per row (its exact-matched levels) and its rank by the rank-matched
    columns (strongest first; ties at random)."""
    exact = [m["column"] for m in spec["matched"] if m["kind"] == "exact" and m["column"] in table]
    ranked = [m["column"] for m in spec["matched"] if m["kind"] == "rank" and m["column"] in table]
    if exact:
        frame = table[exact].astype(object).fillna("\0")
        codes = pd.MultiIndex.from_frame(frame).factorize()[0]
    else:
        codes = np.zeros(len(table), dtype=np.int64)
    keys = [rng.random(len(table))]
    for column in reversed(ranked):
        x = _numbers(table[column], columns.get(column, {}).get("sdtype", "numerical"))
        fill = float(np.nanmedian(x)) if np.isfinite(x).any() else 0.0
        keys.append(np.where(np.isfinite(x), x, fill))
    rank = np.empty(len(table), dtype=np.int64)
    rank[np.lexsort(keys)] = np.arange(len(table))
    return np.asarray(codes), rank


def _fill(
    heads: np.ndarray, capacity: np.ndarray, members: np.ndarray, rank: np.ndarray
) -> np.ndarray:
    """Members in rank order given to the slots of the heads in rank order (the youngest
    members to the youngest heads); ``capacity`` sums to the number of members.

    >>> _fill(np.array([0, 1]), np.array([1, 2]), np.array([2, 3, 4]), np.array([0, 4, 3, 2, 1]))
    array([1, 1, 0])
    """
    by_head = np.argsort(rank[heads], kind="stable")
    slots = np.repeat(heads[by_head], capacity[by_head])
    by_member = np.argsort(rank[members], kind="stable")
    out = np.empty(len(members), dtype=np.int64)
    out[by_member] = slots[: len(members)]
    return out
