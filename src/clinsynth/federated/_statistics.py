"""The transformer's statistics, agreed with differential privacy.

Each site measures its columns with Gaussian noise (the histograms of
:class:`~clinsynth.privacy.ColumnPrivacy`, sensitivity 1 per row) and sends only the noisy
counts; the server sums them (the noise of a sum of sites is ``sqrt(sum sigma^2)``) and everything
it derives is post-processing. Two exchanges:

1. **ranges** (:func:`site_ranges`): numbers give a noisy histogram on a grid fixed in advance
   (signed powers of ten, 4 bins a decade) and a noisy histogram of their rounding unit;
   categories give a thresholded noisy histogram of their levels (a level is named only when its
   noisy count clears the release threshold, so a level of one patient is named with probability
   at most delta), plus noisy counts of missing values and of the rows of unnamed levels.
2. **histograms** (:func:`site_histograms`): on the range the server agreed
   (:func:`agree_ranges`), numbers give a noisy histogram of ``n_bins`` equal bins plus a missing
   bin.

The server keeps the levels whose summed noisy count reaches the rare-category threshold (a
bundle never holds a value of fewer than 5 patients), and fits the one transformer of the
federation on rows drawn from the merged histograms (:func:`fit_transformer`): drawn columns are
independent, which is all a column-by-column transformer reads.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from clinsynth.metadata import TableMetadata, is_pii
from clinsynth.privacy import ColumnPrivacy, DPStatistics, PrivacyAccountant
from clinsynth.privacy._statistics import sample_from_histogram
from clinsynth.transform import TableTransformer

logger = logging.getLogger(__name__)

#: The data-independent grid of the ranges: 4 bins a decade from 1e-3 to 1e13, both signs.
_MAGS = 10.0 ** np.arange(-3.0, 13.01, 0.25)
COARSE_EDGES = np.concatenate([-_MAGS[::-1], [0.0], _MAGS])
#: Candidate rounding units of numbers (1, 0.1, ... 1e-6).
UNITS = tuple(10.0**-d for d in range(7))
#: Share of a number's budget spent on its range (the rest: the histogram of the second step).
RANGE_SHARE, UNIT_SHARE = 0.3, 0.1
#: Most rows drawn to fit the transformer.
MAX_PSEUDO_ROWS = 20_000


def _kind(spec: dict) -> str:
    if is_pii(spec) or spec["sdtype"] == "id":
        return "generated"
    return "number" if spec["sdtype"] == "numerical" else "levels"


def column_budgets(
    table: TableMetadata,
    rho: float,
    delta: float,
    accountant: PrivacyAccountant,
    seed: int,
    public: dict[str, Any] | None = None,
) -> dict[str, ColumnPrivacy]:
    """One :class:`ColumnPrivacy` per learned column, sharing ``rho`` (zCDP) evenly;
    ``public`` holds the federation's public knowledge (``[low, high]`` of a number, the list
    of a category's levels), which costs nothing."""
    learned = [c for c, s in table.columns.items() if _kind(s) != "generated"]
    stats = DPStatistics(
        rho=rho, delta=delta, random_state=seed, accountant=accountant, public_bounds=public or {}
    )
    return stats.split(learned)


def _part(cp: ColumnPrivacy, share: float) -> ColumnPrivacy:
    """The same column's mechanisms on ``share`` of its budget."""
    return dataclasses.replace(cp, rho=cp.rho * share)


def _numbers(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _unit_counts(values: np.ndarray) -> np.ndarray:
    """How many values need each rounding unit (last bin: none fits)."""
    units = np.array(UNITS)
    scale = np.maximum(1.0, np.abs(values))
    fits = np.stack(
        [np.abs(values / u - np.round(values / u)) * u <= 1e-9 * scale for u in units], axis=1
    )
    first = np.where(fits.any(axis=1), fits.argmax(axis=1), len(units))
    return np.bincount(first, minlength=len(units) + 1)


def _levels_key(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | float | np.integer | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# --------------------------------------------------------------------------- site: step 1
def site_ranges(
    table: TableMetadata, data: pd.DataFrame, budgets: dict[str, ColumnPrivacy]
) -> dict[str, Any]:
    """Step 1 at a site: noisy coarse histograms and unit histograms of numbers, thresholded
    noisy level histograms of categories (see the module docstring)."""
    out: dict[str, Any] = {}
    for column, spec in table.columns.items():
        kind = _kind(spec)
        if kind == "generated":
            continue
        cp = budgets[column]
        if kind == "number":
            values = _numbers(data[column])
            values = values[~np.isnan(values)]
            units, unit_sigma = _part(cp, UNIT_SHARE).histogram(
                _unit_counts(values), 1.0, "rounding unit"
            )
            out[column] = {"units": units.tolist(), "unit_sigma": unit_sigma}
            if cp.public is None:  # no public bounds: a range from a noisy coarse histogram
                counts, _ = np.histogram(
                    np.clip(values, COARSE_EDGES[0], COARSE_EDGES[-1]), bins=COARSE_EDGES
                )
                coarse, sigma = _part(cp, RANGE_SHARE).histogram(counts, 1.0, "range (coarse)")
                out[column].update(coarse=coarse.tolist(), sigma=sigma)
            continue
        series = data[column]
        factor, uniques = pd.factorize(series, use_na_sentinel=True)
        counts = np.bincount(factor[factor >= 0], minlength=len(uniques))
        n_missing = int((factor < 0).sum())
        public = spec.get("order") if spec["sdtype"] == "ordinal" else cp.public
        if spec["sdtype"] == "boolean":
            public = [False, True]
        if public is not None:
            where = {_levels_key(v): i for i, v in enumerate(public)}
            aligned = np.zeros(len(public))
            n_other = 0
            for v, c in zip(uniques, counts, strict=True):
                if _levels_key(v) in where:
                    aligned[where[_levels_key(v)]] += c
                else:
                    n_other += int(c)
            noisy, missing, other, sigma = cp.public_levels(aligned, n_missing, n_other)
            levels = [_python(v) for v in public]
        else:
            named, noisy, missing, other, sigma = cp.discover_levels(counts, n_missing)
            levels = [_python(uniques[i]) for i in named]
        out[column] = {
            "levels": levels,
            "counts": np.asarray(noisy).tolist(),
            "missing": float(missing),
            "other": float(other),
            "sigma": float(sigma),
        }
    return out


# --------------------------------------------------------------------------- server: step 1
def occupied(noisy: np.ndarray, sigma: float, cut: float, strong: float = 5.0) -> tuple[int, int]:
    """First and last bins holding data: bins over ``strong`` sigma, extended through
    neighbours over ``cut`` sigma (a gap of one bin allowed); the fullest bin when none is over.

    >>> occupied(np.array([0.0, 1, 50, 60, 4, 0]), 1.0, 3.0)
    (2, 4)
    """
    weak = noisy > cut * sigma
    strong_bins = np.flatnonzero(noisy > max(strong, cut) * sigma)
    if len(strong_bins) == 0:
        i = int(np.argmax(noisy))
        return i, i
    first, last = int(strong_bins[0]), int(strong_bins[-1])
    while (step := next((k for k in (1, 2) if first - k >= 0 and weak[first - k]), 0)) != 0:
        first -= step
    while (step := next((k for k in (1, 2) if last + k < len(weak) and weak[last + k]), 0)) != 0:
        last += step
    return first, last


def merge_ranges(
    table: TableMetadata,
    reports: list[dict[str, Any]],
    rare_threshold: int = 5,
    public: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Sum the sites' step-1 reports: each number's range (``public`` bounds when given) and
    rounding unit, each category's levels with their summed noisy counts (levels under
    ``rare_threshold`` are not kept, unless declared: ordinal, boolean, public lists)."""
    public = public or {}
    agreed: dict[str, Any] = {}
    for column, spec in table.columns.items():
        kind = _kind(spec)
        if kind == "generated":
            continue
        parts = [r[column] for r in reports]
        if kind == "number":
            if column in public:
                low, high = (float(v) for v in public[column])
            else:
                low, high = _merge_coarse(column, parts)
            integer = str(spec.get("computer_representation", "Float")) != "Float"
            unit = 0 if integer else _merge_units(parts)
            agreed[column] = {"low": low, "high": high, "unit": unit}
            continue
        totals: dict[str, list] = {}
        for p in parts:
            for value, count in zip(p["levels"], p["counts"], strict=True):
                entry = totals.setdefault(_levels_key(value), [value, 0.0])
                entry[1] += float(count)
        other = sum(p["other"] for p in parts)
        missing = sum(p["missing"] for p in parts)
        sigma = math.sqrt(sum(p["sigma"] ** 2 for p in parts))
        keep_all = spec["sdtype"] in ("boolean", "ordinal") or column in public  # declared
        kept = [(v, c) for v, c in totals.values() if keep_all or c >= rare_threshold]
        other += sum(c for v, c in totals.values() if not keep_all and c < rare_threshold)
        agreed[column] = {
            "levels": [v for v, _ in kept],
            "counts": [c for _, c in kept],
            "other": other if other > max(2 * sigma, rare_threshold) else 0.0,
            "missing": missing if missing > max(2 * sigma, rare_threshold) else 0.0,
        }
    return agreed


def _merge_coarse(column: str, parts: list[dict[str, Any]]) -> tuple[float, float]:
    """A number's range from the sites' summed coarse histograms (widened by one bin a side)."""
    coarse = np.sum([p["coarse"] for p in parts], axis=0)
    sigma = math.sqrt(sum(p["sigma"] ** 2 for p in parts))
    if not (coarse > 5 * sigma).any():
        logger.warning(
            "Column '%s': the sites' noisy ranges are mostly noise at their budgets (few rows "
            "or many columns); give the federation public bounds for it (--public-bounds).",
            column,
        )
    i, j = occupied(coarse, sigma, 3.0)
    low = float(COARSE_EDGES[max(i - 1, 0)])
    high = float(COARSE_EDGES[min(j + 2, len(COARSE_EDGES) - 1)])
    return low, high


def _merge_units(parts: list[dict[str, Any]]) -> int:
    """Index into :data:`UNITS` of the coarsest unit nearly every value fits (``len(UNITS)``:
    none, no rounding), from the summed noisy unit histograms. Where the noise is too large
    to tell, no rounding: rounding a measured value away is worse than keeping decimals.

    >>> _merge_units([{"units": [0, 0, 90, 10, 0, 0, 0, 0], "unit_sigma": 0.1}])
    3
    """
    noisy = np.sum([p["units"] for p in parts], axis=0)
    sigma = math.sqrt(sum(p["unit_sigma"] ** 2 for p in parts))
    total = max(float(noisy.sum()), 1.0)
    finer = np.cumsum(noisy[::-1])[::-1]
    for k in range(len(UNITS)):
        slack = 2 * sigma * np.sqrt(len(noisy) - k - 1)
        if slack > 0.05 * total:
            return len(UNITS)
        if finer[k + 1] <= max(0.01 * total, slack):
            return k
    return len(UNITS)


# --------------------------------------------------------------------------- site: step 2
def site_histograms(
    table: TableMetadata,
    data: pd.DataFrame,
    budgets: dict[str, ColumnPrivacy],
    agreed: dict[str, Any],
    n_bins: int = 32,
) -> dict[str, Any]:
    """Step 2 at a site: a noisy histogram of every number on the agreed range (clipped), with
    a missing bin, on the rest of the number's budget."""
    out = {}
    for column, spec in table.columns.items():
        if _kind(spec) != "number":
            continue
        values = _numbers(data[column])
        present = values[~np.isnan(values)]
        cp = _part(budgets[column], 1.0 - RANGE_SHARE - UNIT_SHARE)
        cp = dataclasses.replace(cp, n_bins=n_bins)
        low, high = agreed[column]["low"], agreed[column]["high"]
        _, counts, missing, sigma = cp.numeric_histogram(
            present, len(values) - len(present), low, high, 1.0
        )
        out[column] = {"counts": counts.tolist(), "missing": missing, "sigma": sigma}
    return out


def noisy_rows(ranges: dict[str, Any], histograms: dict[str, Any]) -> float:
    """A site's noisy row count (post-processing of its reports): the median over its columns
    of each column's noisy total."""
    totals = [sum(h["counts"]) + h["missing"] for h in histograms.values()]
    totals += [
        sum(r["counts"]) + r["missing"] + r["other"] for r in ranges.values() if "levels" in r
    ]
    return float(max(np.median(totals), 1.0)) if totals else 1.0


# --------------------------------------------------------------------------- server: step 2
def merge_histograms(
    table: TableMetadata,
    agreed: dict[str, Any],
    reports: list[dict[str, Any]],
    n_bins: int = 32,
    public: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Sum the sites' step-2 histograms; trim each number's range to its occupied bins (not
    public bounds)."""
    public = public or {}
    merged = {}
    for column, spec in table.columns.items():
        if _kind(spec) != "number":
            merged[column] = agreed.get(column)
            continue
        parts = [r[column] for r in reports]
        counts = np.sum([p["counts"] for p in parts], axis=0)
        missing = float(sum(p["missing"] for p in parts))
        sigma = math.sqrt(sum(p["sigma"] ** 2 for p in parts))
        edges = np.linspace(agreed[column]["low"], agreed[column]["high"], n_bins + 1)
        i, j = 0, n_bins - 1  # public bounds are kept whole, and so is a range all noise
        if column not in public and (counts > 5 * sigma).any():
            i, j = occupied(counts, sigma, 2.0)
        merged[column] = {
            "edges": edges[i : j + 2].tolist(),
            "counts": np.maximum(counts[i : j + 1], 0.0).tolist(),
            "missing": missing if missing > 2 * sigma else 0.0,
            "unit": agreed[column]["unit"],
        }
    return merged


def pseudo_rows(
    table: TableMetadata,
    merged: dict[str, Any],
    dtypes: dict[str, str],
    seed: int = 0,
) -> pd.DataFrame:
    """Rows drawn from the merged noisy histograms, column by column (post-processing only)."""
    rng = np.random.default_rng(seed)
    totals = []
    for column in table.columns:
        m = merged.get(column)
        if m is None:
            continue
        totals.append(sum(m["counts"]) + m["missing"] + m.get("other", 0.0))
    n = int(np.clip(round(float(np.median(totals))) if totals else 100, 100, MAX_PSEUDO_ROWS))
    columns: dict[str, Any] = {}
    for column, spec in table.columns.items():
        m = merged.get(column)
        if spec["sdtype"] == "id":
            columns[column] = np.arange(1, n + 1)
        elif is_pii(spec):
            columns[column] = np.full(n, "x", dtype=object)
        elif "edges" in m:
            columns[column] = _draw_numbers(m, n, dtypes.get(column, "float64"), rng)
        else:
            columns[column] = _draw_levels(m, n, rng)
    return pd.DataFrame(columns)


def _draw_numbers(m: dict[str, Any], n: int, dtype: str, rng: np.random.Generator) -> Any:
    counts = np.asarray(m["counts"], dtype=np.float64)
    total = counts.sum() + m["missing"]
    n_missing = int(round(n * m["missing"] / total)) if total > 0 else 0
    edges = np.asarray(m["edges"], dtype=np.float64)
    values = sample_from_histogram(edges, counts, n - n_missing, rng)
    if m["unit"] < len(UNITS):
        values = np.round(values, m["unit"])
    values = np.clip(values, edges[0], edges[-1])
    out = np.concatenate([values, np.full(n_missing, np.nan)])
    rng.shuffle(out)
    if m["unit"] == 0 and n_missing == 0 and dtype.lower().startswith(("int", "uint")):
        return out.astype(np.int64)
    return out


def _draw_levels(m: dict[str, Any], n: int, rng: np.random.Generator) -> Any:
    levels = list(m["levels"])
    weights = list(m["counts"])
    if m["other"] > 0:
        text = [v for v in levels if isinstance(v, str)]
        levels.append("Other" if text or not levels else -1)
        weights.append(m["other"])
    if m["missing"] > 0:
        levels.append(None)
        weights.append(m["missing"])
    if not levels:
        return np.full(n, None, dtype=object)
    w = np.maximum(np.asarray(weights, dtype=np.float64), 0.0)
    w = np.ones_like(w) if w.sum() <= 0 else w
    picks = rng.choice(len(levels), size=n, p=w / w.sum())
    out = np.empty(len(levels), dtype=object)
    out[:] = levels
    values = out[picks]
    if all(isinstance(v, bool) or v is None for v in levels):
        return pd.array(values, dtype="boolean")
    return values


def fit_transformer(
    table: TableMetadata,
    merged: dict[str, Any],
    dtypes: dict[str, str],
    *,
    rare_threshold: int = 5,
    seed: int = 0,
    **options: Any,
) -> tuple[TableTransformer, pd.DataFrame]:
    """The federation's transformer, fitted on :func:`pseudo_rows` (returned too).

    Values outside what was agreed map at the sites to the nearest kept thing: numbers are
    clipped to the range, a category level not kept becomes the most frequent level.
    """
    rows = pseudo_rows(table, merged, dtypes, seed)
    transformer = TableTransformer(table, rare_category_threshold=rare_threshold, **options).fit(
        rows
    )
    for t in transformer.transformers_.values():
        if t.kind == "categorical" and t.other_code_ < 0:
            t.other_code_ = 0
        if t.kind == "numerical":
            t.clip_input_ = True
    return transformer, rows
