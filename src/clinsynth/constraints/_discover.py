"""Discover the logic of a clinical table: the exact rules that every real row obeys.

:func:`discover_rules` looks for six kinds of rule (see :mod:`._discover_levels` and
:mod:`._discover_numbers` for how):

======================  ==========================================  ===========================
kind                    example                                     rule
======================  ==========================================  ===========================
functional dependency   ``dzgroup`` fixes ``dzclass``               FunctionalDependency
skip pattern            ``cd496`` present exactly when ``r == 1``   SkipPattern
formula                 ``bmi = 10000 * weight / height ** 2``      Formula
implication             ``hospdead = 1`` implies ``death = 1``      Implication
order                   ``slos <= d.time``                          Inequality / DateOrder
grid, point mass        multiples of 5; many exact zeros            Grid / PointMass
======================  ==========================================  ===========================

A rule is kept only when it holds on **every** row and has enough support:

* at least ``MIN_INFORMATIVE`` (20) informative rows — rows that repeat a determinant's level
  (dependencies), hold the premise (implications), have both columns (orders, formulas; a
  formula needs 5 rows per input too), or sit on the point mass;
* it is unlikely to hold by chance: ``-log10`` of its chance under independence is at least
  ``MIN_EVIDENCE`` (6; 3 for grids). This is what keeps near-unique columns (identifiers,
  free codes) from "determining" everything, and ``age <= charges`` (ranges that never
  overlap) out of the orders;
* values a rule names are held by at least ``min_patients`` rows (5), so metadata and saved
  models never carry a rare value.

The search is bounded: every pair is screened on a sample of ``SAMPLE_ROWS`` rows with
vectorized numpy, and only the survivors are confirmed on all rows (seconds for 10k rows and 100
columns; see ``benchmarks/bench_discovery.py``).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from clinsynth.constraints._base import Constraint
from clinsynth.constraints._discover_gates import conditional_identities, conditional_ranges
from clinsynth.constraints._discover_levels import (
    build_nodes,
    dependency_rules,
    implication_rules,
)
from clinsynth.constraints._discover_numbers import (
    formula_rules,
    grid_rule,
    numbers,
    order_rules,
    point_mass_rule,
)
from clinsynth.constraints._logic import _LEARNED
from clinsynth.constraints._table import TableLike

_LEVELS = ("categorical", "ordinal", "boolean")

logger = logging.getLogger(__name__)

#: Least informative rows for a rule to be kept.
MIN_INFORMATIVE = 20
#: Least -log10 chance of holding by accident.
MIN_EVIDENCE = 6.0
#: Grids are weaker claims (a grid only keeps values on the real data's own grid).
MIN_GRID_EVIDENCE = 3.0
#: Rows every pair is screened on before confirmation on all rows.
SAMPLE_ROWS = 3000
#: Most rules of one kind (a safety net for pathological tables).
MAX_PER_KIND = 200


def _usable(data: pd.DataFrame, table: TableLike) -> list[str]:
    out = []
    for col, spec in table.columns.items():
        if col == table.primary_key or spec["sdtype"] not in _LEARNED or col not in data:
            continue
        series = data[col]
        distinct = series.nunique(dropna=False)
        if distinct < 2:
            continue
        if spec["sdtype"] == "numerical" and distinct == len(series) and _whole(series):
            continue  # a serial number or key in disguise: its order and sums mean nothing
        out.append(col)
    return out


def _number_coded(series: pd.Series) -> bool:
    """Levels that are all numbers (a score coded 0-7): usable as formula inputs."""
    if pd.api.types.is_bool_dtype(series):
        return False
    values = pd.Series(series.dropna().unique())
    return len(values) > 0 and bool(pd.to_numeric(values, errors="coerce").notna().all())


def _whole(series: pd.Series) -> bool:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))


def discover_rules(
    data: pd.DataFrame,
    table: TableLike,
    *,
    min_patients: int = 5,
    sample_rows: int = SAMPLE_ROWS,
    random_state: int = 0,
) -> list[Constraint]:
    """The rules every row of ``data`` obeys, with their support, marked as discovered.

    Parameters
    ----------
    data : DataFrame
        The real table (not modified).
    table : TableMetadata or TableLike
        Its metadata; identifiers and personal-data columns are left out.
    min_patients : int
        Least rows a value must have to be named by a rule.
    sample_rows : int
        Rows the search screens candidates on.
    random_state : int

    Returns
    -------
    list of Constraint
        In the order a synthesizer applies them: dependencies, formulas, skip patterns,
        implications, grids and point masses, orders.

    Examples
    --------
    >>> import pandas as pd
    >>> from clinsynth import Metadata
    >>> df = pd.DataFrame({"group": ["a", "b", "c", "d"] * 30, "klass": ["x", "x", "y", "y"] * 30,
    ...                    "low": [v % 37 for v in range(120)],
    ...                    "high": [v % 37 + 5 for v in range(120)]})
    >>> table = Metadata.detect_from_dataframe(df, discover_rules=False).get_table()
    >>> [r.describe() for r in discover_rules(df, table)]
    ['group determines klass', 'high = `low` + 5']
    """
    # One BLAS thread: the fits are small, and spinning threads on a shared machine made them
    # a hundred times slower.
    with threadpool_limits(limits=1):
        return _discover(data, table, min_patients, sample_rows, random_state)


def _discover(
    data: pd.DataFrame, table: TableLike, min_patients: int, sample_rows: int, random_state: int
) -> list[Constraint]:
    start = time.perf_counter()
    columns = _usable(data, table)
    n = len(data)
    if n < MIN_INFORMATIVE or not columns:
        return []
    rng = np.random.default_rng(random_state)
    sample = np.sort(rng.choice(n, size=min(n, sample_rows), replace=False))
    functional, skips, implications = _level_rules(data, table, columns, sample, min_patients)
    formulas, grids, masses, orders, ranges = _number_rules(data, table, columns, sample, rng)
    rules = _most_supported(
        (functional, formulas, skips, implications, grids, masses, orders, ranges)
    )
    for rule in rules:
        rule.discovered = True
    logger.info(
        "Discovered %d rules on %d rows x %d columns in %.2f s",
        len(rules),
        n,
        len(columns),
        time.perf_counter() - start,
    )
    return rules


def _level_rules(
    data: pd.DataFrame,
    table: TableLike,
    columns: list[str],
    sample: np.ndarray,
    min_patients: int,
) -> tuple[list[Constraint], list[Constraint], list[Constraint]]:
    """Rules between levels: functional dependencies, skip patterns and implications."""
    nodes = build_nodes(data, table, columns)
    dependencies, graph = dependency_rules(
        nodes,
        sample,
        min_informative=MIN_INFORMATIVE,
        min_evidence=MIN_EVIDENCE,
        min_patients=min_patients,
    )
    implications = implication_rules(
        nodes,
        sample,
        graph,
        min_informative=MIN_INFORMATIVE,
        min_evidence=MIN_EVIDENCE,
        categorical={c for c in columns if table.columns[c]["sdtype"] in _LEVELS},
    )
    functional = [r for r in dependencies if r.type == "functional_dependency"]
    skips = [r for r in dependencies if r.type == "skip_pattern"]
    return functional, skips, implications


def _number_rules(
    data: pd.DataFrame,
    table: TableLike,
    columns: list[str],
    sample: np.ndarray,
    rng: np.random.Generator,
) -> tuple[list[Constraint], ...]:
    """Rules on numbers and dates: formulas (some within a level only), grids, point masses,
    orders and ranges within a level."""
    categorical = [c for c in columns if table.columns[c]["sdtype"] in ("categorical", "ordinal")]
    numeric = [c for c in columns if table.columns[c]["sdtype"] == "numerical"]
    coded = [c for c in categorical if _number_coded(data[c])]
    num = numbers(data, table, numeric)
    formulas, derived = formula_rules(
        numbers(data, table, numeric + coded),
        data,
        sample,
        targets=len(numeric),
        min_rows=MIN_INFORMATIVE,
    )
    gates = [c for c in columns if table.columns[c]["sdtype"] in _LEVELS]
    formulas += conditional_identities(num, data, gates, min_rows=MIN_INFORMATIVE, skip=derived)
    ranges = conditional_ranges(num, data, gates, min_rows=MIN_INFORMATIVE, skip=derived)
    grids, masses = [], []
    for j, col in enumerate(num.names):
        if col in derived:
            continue
        grid = grid_rule(num, j, min_rows=MIN_INFORMATIVE, min_evidence=MIN_GRID_EVIDENCE)
        if grid is not None:
            grids.append(grid)
        mass = point_mass_rule(num, j, min_rows=MIN_INFORMATIVE)
        if mass is not None:
            masses.append(mass)
    orders = order_rules(
        num, sample, dates=False, min_rows=MIN_INFORMATIVE, min_evidence=MIN_EVIDENCE, rng=rng
    )
    # A derived column against its own inputs (``fee_a < total``) holds by construction.
    inputs = {f.column: set(f.inputs) for f in formulas}
    orders = [
        o
        for o in orders
        if not (o.low in inputs.get(o.high, ()) or o.high in inputs.get(o.low, ()))
    ]
    dates = [c for c in columns if table.columns[c]["sdtype"] == "datetime"]
    orders += order_rules(
        numbers(data, table, dates),
        sample,
        dates=True,
        min_rows=MIN_INFORMATIVE,
        min_evidence=MIN_EVIDENCE,
        rng=rng,
    )
    return formulas, grids, masses, orders, ranges


def _most_supported(kinds: tuple[list[Constraint], ...]) -> list[Constraint]:
    """The rules of every kind, at most ``MAX_PER_KIND`` of one kind (those with most support)."""
    rules: list[Constraint] = []
    for kind in kinds:
        if len(kind) > MAX_PER_KIND:
            logger.warning(
                "Discovery found %d rules of kind %s; keeping the %d with most support.",
                len(kind),
                kind[0].type,
                MAX_PER_KIND,
            )
            kind = sorted(kind, key=lambda r: -(r.support or {}).get("informative", 0))
            kind = kind[:MAX_PER_KIND]
        rules.extend(kind)
    return rules
