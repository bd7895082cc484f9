"""Discovery over numbers and dates: formulas, grids, point masses and orders.

* **Formulas.** For each numerical column (last first), a least-squares fit on a sample of rows
  against the other columns present wherever it is present, with an intercept; in log space too
  for positive columns (products, ratios, BMI). A fit whose residuals the columns' rounding
  explains is simplified (small weights dropped, weights written as small fractions) and kept
  only when it holds on every row. The derived column is then no input for later fits.
* **Grids.** Values whose greatest common step is coarser than their decimals.
* **Point masses.** One value held by many rows (at least 5%, three times the next value).
* **Orders.** ``a <= b`` (``<`` when never equal) on every row where both are present, checked
  for all pairs at once on the sample, confirmed on every row, kept when unlikely by chance,
  and reduced transitively: ``a <= c`` is left out when ``a <= b <= c`` and ``b`` is present
  wherever ``a`` and ``c`` are.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd

from clinsynth.constraints._base import Constraint, _numeric
from clinsynth.constraints._formula import Formula, decimals_of
from clinsynth.constraints._logic import plain
from clinsynth.constraints._rules import DateOrder, Inequality
from clinsynth.constraints._values import Grid, PointMass

#: Most decimals a value may have for its rounding to count (float noise has more).
MOST_DECIMALS = 6
#: Most points of a grid over the column's range (a finer grid is no value set).
MAX_GRID_POINTS = 2000


@dataclass
class Numbers:
    """The numerical (or date) columns as a float matrix, with their decimals."""

    names: list[str]
    values: np.ndarray  # rows x columns, NaN for missing
    decimals: list[int | None]

    def __post_init__(self) -> None:
        self.present = ~np.isnan(self.values)

    def half_unit(self, j: int) -> float:
        d = self.decimals[j]
        return 0.5 * 10.0 ** (-d) if d is not None else 0.0


def numbers(data: pd.DataFrame, table, columns: list[str]) -> Numbers:  # noqa: ANN001
    values = [_numeric(data[c], table.columns[c])[0] for c in columns]
    matrix = np.column_stack(values) if values else np.zeros((len(data), 0))
    decimals = [decimals_of(v[~np.isnan(v)][:5000], MOST_DECIMALS) for v in values]
    return Numbers(list(columns), matrix, decimals)


# --------------------------------------------------------------------------- formulas
def _nice_weight(w: float) -> float | Fraction:
    frac = Fraction(w).limit_denominator(12)
    if abs(float(frac) - w) <= 1e-3 * max(1.0, abs(w)):
        return frac
    return float(f"{w:.6g}")


def _term(weight: float | Fraction, name: str) -> str:
    sign = "-" if weight < 0 else "+"
    size = abs(weight)
    if size == 1:
        return f"{sign} `{name}`"
    text = f"{size.numerator}/{size.denominator}" if isinstance(size, Fraction) else f"{size}"
    if isinstance(size, Fraction) and size.denominator == 1:
        text = str(size.numerator)
    return f"{sign} {text} * `{name}`"


def _linear_expression(weights: list[float | Fraction], names: list[str], intercept: float) -> str:
    text = " ".join(_term(w, n) for w, n in zip(weights, names, strict=True))
    if intercept:
        text += f" {'-' if intercept < 0 else '+'} {abs(intercept):g}"
    return text[2:] if text.startswith("+ ") else "-" + text[2:]


def _fit_candidates(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Least squares with an intercept, by the normal equations on centred, scaled columns
    (a few columns, many rows: much faster than an SVD and exact enough to find identities)."""
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    gram = z.T @ z
    gram[np.diag_indices_from(gram)] += 1e-12 * len(z)
    try:
        coef = np.linalg.solve(gram, z.T @ (y - y.mean()))
    except np.linalg.LinAlgError:
        coef = np.linalg.lstsq(z, y - y.mean(), rcond=None)[0]
    w = coef / scale
    return w, float(y.mean() - mean @ w)


def _rows_for(num: Numbers, t: int, inputs: list[int], rows: np.ndarray) -> np.ndarray:
    keep = num.present[rows, t]
    for j in inputs:
        keep &= num.present[rows, j]
    return rows[keep]


def _linear_formula(
    num: Numbers, t: int, candidates: list[int], sample: np.ndarray, min_rows: int
) -> tuple[list[int], list, float] | None:
    rows = _rows_for(num, t, candidates, sample)
    if len(rows) < max(min_rows, 2 * (len(candidates) + 1) + 10):
        return None
    x, y = num.values[np.ix_(rows, candidates)], num.values[rows, t]
    w, _ = _fit_candidates(x, y)
    spread = y.std() or 1.0
    used = [
        j
        for j, wj, sj in zip(candidates, w, x.std(axis=0), strict=True)
        if abs(wj) * sj > 1e-6 * spread
    ]
    if not used:
        return None
    fitted = _exact_fit(num, t, used, rows)
    if fitted is None:
        return None
    # Backward elimination: leave out the inputs the identity does not need.
    for j in sorted(used, key=lambda j: abs(fitted[0][used.index(j)]) * num.values[rows, j].std()):
        if len(used) == 1:
            break
        fewer = [k for k in used if k != j]
        refit = _exact_fit(num, t, fewer, rows)
        if refit is not None:
            used, fitted = fewer, refit
    w, b, bound = fitted
    order = sorted(range(len(used)), key=lambda i: (w[i] < 0, used[i]))
    used = [used[i] for i in order]
    weights = [_nice_weight(float(w[i])) for i in order]
    intercept = 0.0 if abs(b) <= bound + 1e-9 else float(f"{b:.6g}")
    return used, weights, intercept


def _exact_fit(
    num: Numbers, t: int, used: list[int], rows: np.ndarray
) -> tuple[np.ndarray, float, float] | None:
    """``(weights, intercept, bound)`` when ``t`` is a linear function of ``used`` on ``rows``
    within what the columns' rounding explains, else None."""
    x, y = num.values[np.ix_(rows, used)], num.values[rows, t]
    w, b = _fit_candidates(x, y)
    bound = num.half_unit(t) + sum(
        abs(wj) * num.half_unit(j) for wj, j in zip(w, used, strict=True)
    )
    resid = np.abs(y - x @ w - b)
    if resid.max() > bound + 1e-9 * max(1.0, np.abs(y).max()):
        return None
    return w, b, bound


def _log_formula(
    num: Numbers, t: int, candidates: list[int], sample: np.ndarray, min_rows: int
) -> tuple[list[int], list[float], float] | None:
    with np.errstate(invalid="ignore"):
        ok = ~(num.values[np.ix_(sample, candidates)] <= 0).any(axis=0)  # NaN is no objection
    positive = [j for j, good in zip(candidates, ok, strict=True) if good]
    rows = _rows_for(num, t, positive, sample)
    if len(positive) < 2 or len(rows) < max(min_rows, 2 * (len(positive) + 1) + 10):
        return None
    if np.any(num.values[rows, t] <= 0):
        return None
    x, y = np.log(num.values[np.ix_(rows, positive)]), np.log(num.values[rows, t])
    w, _ = _fit_candidates(x, y)
    used = [j for j, wj in zip(positive, w, strict=True) if abs(wj) > 0.05]
    if len(used) < 2:
        return None
    x = np.log(num.values[np.ix_(rows, used)])
    w, b = _fit_candidates(x, y)
    halves = np.round(np.asarray(w) * 2) / 2
    if np.any(np.abs(halves - w) > 0.03) or np.any(halves == 0):
        return None
    constant = float(np.exp(np.median(y - x @ halves)))
    power = np.log10(constant)
    constant = (
        10.0 ** round(power) if abs(power - round(power)) < 0.002 else float(f"{constant:.6g}")
    )
    return used, [float(h) for h in halves], constant


def _power_expression(weights: list[float], names: list[str], constant: float) -> str:
    def factor(w: float, name: str) -> str:
        size = abs(w)
        exponent = "" if size == 1 else f" ** {size:g}"
        return f"`{name}`{exponent}"

    top = [factor(w, n) for w, n in zip(weights, names, strict=True) if w > 0]
    bottom = [factor(w, n) for w, n in zip(weights, names, strict=True) if w < 0]
    lead = [] if constant == 1 else [f"{constant:g}"]
    text = " * ".join(lead + top) or "1"
    if bottom:
        text += " / " + (bottom[0] if len(bottom) == 1 else "(" + " * ".join(bottom) + ")")
    return text


def _confirm(
    num: Numbers,
    t: int,
    inputs: list[int],
    weights: list[float],
    expression: str,
    data: pd.DataFrame,
    log: bool,
) -> Formula | None:
    """The formula when it holds on every row where its columns are present (within what the
    columns' rounding explains), or None."""
    inputs_present = np.all(num.present[:, inputs], axis=1)
    if np.any(inputs_present & ~num.present[:, t]):
        return None  # missing where its inputs are known: the formula would fill it
    present = inputs_present
    rule = Formula(num.names[t], expression)
    with np.errstate(all="ignore"):
        expected = rule.evaluate(data)
    y = num.values[present, t]
    resid = np.abs(y - expected[present])
    if not len(resid) or not np.all(np.isfinite(resid)):
        return None
    half = num.half_unit(t)
    parts = np.array(
        [abs(float(w)) * num.half_unit(j) for w, j in zip(weights, inputs, strict=True)]
    )
    if log:
        with np.errstate(all="ignore"):
            x = np.abs(num.values[np.ix_(present, inputs)])
            bound = half + np.abs(y) * np.sum(parts / x, axis=1)
    else:
        bound = np.full(len(resid), half + parts.sum())
    if np.any(resid > bound * (1 + 1e-6) + 1e-9 * np.maximum(1.0, np.abs(y))):
        return None
    rule.tolerance = float(f"{max(half, float(resid.max())) * 1.0001 + 1e-12:.6g}")
    return rule


def _correlated(num: Numbers, t: int, candidates: list[int], sample: np.ndarray) -> list[int]:
    """The candidates whose correlation with ``t`` (on the sampled rows where both are known)
    is at least 0.999 in size, all computed at once."""
    if not candidates:
        return []
    both = num.present[sample][:, candidates] & num.present[sample, t][:, None]
    x = np.where(both, num.values[np.ix_(sample, candidates)], 0.0)
    y = np.where(both, num.values[sample, t][:, None], 0.0)
    n = both.sum(axis=0).astype(np.float64)
    with np.errstate(all="ignore"):
        mx, my = x.sum(axis=0) / n, y.sum(axis=0) / n
        cov = (x * y).sum(axis=0) / n - mx * my
        vx = (x * x).sum(axis=0) / n - mx**2
        vy = (y * y).sum(axis=0) / n - my**2
        r = np.abs(cov / np.sqrt(vx * vy))
    return [j for j, rj, nj in zip(candidates, r, n, strict=True) if nj >= 20 and rj >= 0.999]


def _trim(num: Numbers, t: int, candidates: list[int], sample: np.ndarray) -> list[int]:
    """At most as many inputs as the complete sampled rows can fit well (twice over): those
    most correlated with the column."""
    rows = _rows_for(num, t, candidates, sample)
    limit = max(1, (len(rows) - 10) // 2 - 1)
    if len(candidates) <= limit:
        return candidates
    x, y = num.values[np.ix_(rows, candidates)], num.values[rows, t]
    with np.errstate(all="ignore"):
        corr = np.abs(np.nan_to_num([np.corrcoef(x[:, i], y)[0, 1] for i in range(x.shape[1])]))
    return [candidates[i] for i in np.argsort(-corr, kind="stable")[:limit]]


#: Columns with larger values (or infinities) take no part in formulas: their squares overflow.
_LARGEST_FOR_FORMULAS = 1e100


def _fits(values: np.ndarray) -> bool:
    """Whether a column can enter a least-squares formula: finite, not huge, not constant."""
    known = values[~np.isnan(values)]
    if known.size == 0 or not np.all(np.abs(known) < _LARGEST_FOR_FORMULAS):
        return False
    return bool(np.std(known) > 0)


def formula_rules(
    num: Numbers, data: pd.DataFrame, sample: np.ndarray, *, targets: int, min_rows: int
) -> tuple[list[Formula], set[str]]:
    """Formulas for the first ``targets`` columns of ``num`` (the others, number-coded levels,
    are inputs only), and the columns they derive."""
    derived: set[int] = set()
    rules: list[Formula] = []
    present = num.present[sample]
    variable = [j for j in range(len(num.names)) if _fits(num.values[sample, j])]
    for t in reversed([j for j in variable if j < targets]):
        where = present[:, t]
        if where.sum() < min_rows:
            continue
        share = present[where].mean(axis=0)  # of each column, where t is known
        free = [j for j in variable if j != t and j not in derived]
        full = [j for j in free if share[j] == 1.0]
        # A column that fills in for a missing input (an imputed copy): one input at a time,
        # only those (nearly) perfectly correlated with it where both are known.
        partial = [j for j in free if 0.5 <= share[j] < 1.0]
        partial = _correlated(num, t, partial, sample)
        attempts = [(full, log) for log in (False, True)] + [([j], False) for j in partial]
        for candidates, log in attempts:
            if not candidates:
                continue
            candidates = _trim(num, t, candidates, sample)
            found = (_log_formula if log else _linear_formula)(num, t, candidates, sample, min_rows)
            if found is None:
                continue
            used, weights, extra = found
            names = [num.names[j] for j in used]
            expression = (
                _power_expression(weights, names, extra)
                if log
                else _linear_expression(weights, names, extra)
            )
            rule = _confirm(num, t, used, weights, expression, data, log)
            n_rows = int(np.all(num.present[:, [t, *used]], axis=1).sum())
            if rule is not None and n_rows >= max(min_rows, 5 * (len(used) + 1)):
                rule.support = {"rows": n_rows, "informative": n_rows}
                rules.append(rule)
                derived.add(t)
                break
    return rules, {num.names[t] for t in derived}


# --------------------------------------------------------------------------- grids, point masses
def grid_rule(num: Numbers, j: int, *, min_rows: int, min_evidence: float) -> Grid | None:
    x = num.values[:, j]
    x = x[~np.isnan(x)]
    d = num.decimals[j]
    if d is None or len(x) < min_rows:
        return None
    scaled = np.round(x * 10.0**d)
    if np.abs(scaled).max() >= 2**52:
        return None
    ints = scaled.astype(np.int64)
    low = int(ints.min())
    step = int(np.gcd.reduce(ints - low))
    distinct = len(np.unique(ints))
    if step <= 1 or (distinct - 1) * np.log10(step) < min_evidence:
        return None
    if (int(ints.max()) - low) // step > MAX_GRID_POINTS:
        return None  # so fine a grid is a storage artefact, not a value set
    unit = 10.0**d
    offset = round((low % step) / unit, d)
    rule = Grid(num.names[j], plain(round(step / unit, d)), plain(offset) or 0)
    rule.support = {"rows": len(x), "informative": len(x)}
    return rule


def point_mass_rule(num: Numbers, j: int, *, min_rows: int) -> PointMass | None:
    x = num.values[:, j]
    x = x[~np.isnan(x)]
    if len(x) < min_rows:
        return None
    values, counts = np.unique(x, return_counts=True)
    if len(values) < 10:
        return None
    top = int(np.argmax(counts))
    second = np.sort(counts)[-2]
    if counts[top] < min_rows or counts[top] < 0.05 * len(x) or counts[top] < 3 * second:
        return None
    rule = PointMass(num.names[j], plain(values[top]))
    rule.support = {"rows": len(x), "informative": int(counts[top])}
    return rule


# --------------------------------------------------------------------------- orders
def _order_evidence(low: np.ndarray, high: np.ndarray, n_both: int, strict: bool) -> float:
    """``-log10`` of the chance that ``low <= high`` holds on ``n_both`` rows if the two were
    independent draws from their own values."""
    ordered = np.sort(high)
    broken = np.searchsorted(ordered, low, side="right" if strict else "left")
    chance = float(broken.mean()) / len(ordered)
    if chance >= 1.0:
        return np.inf
    return -n_both * float(np.log10(1.0 - chance))


def order_rules(
    num: Numbers,
    sample: np.ndarray,
    *,
    dates: bool,
    min_rows: int,
    min_evidence: float,
    rng: np.random.Generator,
) -> list[Constraint]:
    q = len(num.names)
    if q < 2:
        return []
    v = num.values[sample]
    p = ~np.isnan(v)
    edges: dict[tuple[int, int], bool] = {}
    for i in range(q):
        with np.errstate(invalid="ignore"):
            le = (v[:, i : i + 1] <= v) | ~p[:, i : i + 1] | ~p
        both = (p[:, i : i + 1] & p).sum(axis=0)
        for j in np.flatnonzero(le.all(axis=0) & (both >= min(min_rows, len(sample)))):
            if j != i:
                edges[(i, int(j))] = True
    confirmed: dict[tuple[int, int], bool] = {}
    copies = _copies(num, edges)
    for i, j in edges:
        if i in copies or j in copies:
            continue
        a, b = num.values[:, i], num.values[:, j]
        both = ~np.isnan(a) & ~np.isnan(b)
        n_both = int(both.sum())
        if n_both < min_rows or not np.all(a[both] <= b[both]) or np.all(a[both] == b[both]):
            continue
        strict = bool(np.all(a[both] < b[both]))
        lows, highs = a[~np.isnan(a)], b[~np.isnan(b)]
        lows = lows if len(lows) <= 5000 else rng.choice(lows, 5000, replace=False)
        highs = highs if len(highs) <= 5000 else rng.choice(highs, 5000, replace=False)
        if _order_evidence(lows, highs, n_both, strict) >= min_evidence:
            confirmed[(i, j)] = strict
    rules: list[Constraint] = []
    present = num.present
    for (i, j), strict in sorted(confirmed.items()):
        if _implied(i, j, strict, confirmed, present, q):
            continue
        low, high = num.names[i], num.names[j]
        rule: Constraint = (
            DateOrder([low, high], strict) if dates else Inequality(low, high, strict)
        )
        n_both = int((present[:, i] & present[:, j]).sum())
        rule.support = {"rows": n_both, "informative": n_both}
        rules.append(rule)
    return rules


def _copies(num: Numbers, edges: dict[tuple[int, int], bool]) -> set[int]:
    """Columns equal to an earlier column on every row (a date and its datetime twin): orders
    are kept for the first only."""
    out: set[int] = set()
    for i, j in edges:
        if i < j and (j, i) in edges and i not in out:
            a, b = num.values[:, i], num.values[:, j]
            if np.array_equal(np.isnan(a), np.isnan(b)) and np.array_equal(
                a[~np.isnan(a)], b[~np.isnan(b)]
            ):
                out.add(j)
    return out


def _implied(
    i: int, j: int, strict: bool, edges: dict[tuple[int, int], bool], present: np.ndarray, q: int
) -> bool:
    """Whether ``i <= j`` follows from ``i <= m <= j`` for a column ``m`` present wherever
    ``i`` and ``j`` are (strict when the edge is)."""
    both = present[:, i] & present[:, j]
    for m in range(q):
        if m in (i, j) or (i, m) not in edges or (m, j) not in edges:
            continue
        if strict and not (edges[(i, m)] or edges[(m, j)]):
            continue
        if np.all(present[both, m]):
            return True
    return False
