"""Patient-level differential privacy for a schema: one (ε, δ) for each patient, all tables.

With ``epsilon`` a :class:`~clinsynth.multitable.HierarchicalSynthesizer` protects the *privacy
unit* (the patient: by default the primary key of the root table) rather than each row:

1. **Whose row is it.** Every row of every learned table is traced to its patient through the
   foreign keys (:func:`patient_codes`). A table that does not hang below the unit's table is an
   error (mark it a reference table if it is public).
2. **Bounded contribution.** In each table below the unit, a patient keeps at most
   ``max_rows_per_patient`` rows (a fixed, documented default: :data:`DEFAULT_MAX_ROWS`); a
   patient with more keeps a uniform random subset (in a table learned as sequences, one with
   a ``sequence_index``: their first events in time), and the rows below a dropped row go with
   it (:func:`cap_rows`). The unit's own table has one row per patient. The cap does not read the
   data, so it costs no budget. Parent columns given to child rows as context are part of those
   child rows: they are counted in the same bound.
3. **Sensitivity.** Adding or removing a patient changes at most ``c`` rows of a table whose cap
   is ``c``: a histogram changes by at most ``c`` in L2 norm, so every Gaussian release of that
   table is charged ``c²`` times its row-level cost (exact, not a group-privacy bound), and
   category discovery uses the threshold of a ``c``-row unit. DP-SGD samples and clips rows, not
   patients: its steps are charged by RDP group privacy (Mironov 2017, Prop. 2), the exact
   per-patient clipping is not implemented. A sequence child (``sequential``) clips one whole
   sequence per example: under the patients' table that is one patient, exactly; under a
   deeper parent a patient has up to that parent's cap of sequences, charged as a group. See
   :mod:`clinsynth.privacy._accountant` and :mod:`clinsynth.synthesizers._sequential_dp`.
4. **One budget, one accountant.** The patient's budget is split across the learned tables in
   proportion to ``privacy_weights`` (default: 1 each) by :func:`plan_budget`: in zCDP
   (``ρ`` of (ε, 0.9 δ) split by weight, δ split by weight) when every table model releases
   Gaussian statistics only (``dp_marginal``), else in (ε, δ) by basic composition (a DP-SGD
   curve is not a ``ρ`` line). All tables' ledgers are composed in one
   :class:`~clinsynth.privacy.PrivacyAccountant` at the patient level; the ε reported is the
   smaller of that RDP composition and the sum of the tables' own ε (both valid bounds).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clinsynth.errors import ParameterError, PrivacyError
from clinsynth.metadata import Metadata
from clinsynth.multitable._schema import link_positions
from clinsynth.privacy import DEFAULT_ORDERS, PrivacyAccountant, epsilon_from_rdp, rho_for_epsilon

logger = logging.getLogger(__name__)

#: Rows one patient keeps in each table below the unit's table, unless told otherwise.
DEFAULT_MAX_ROWS = 10
#: δ share the table models keep for naming categories found in the data (``DPMixin``).
_RELEASE_DELTA_SHARE = 0.1

ZCDP_RULE = "zcdp"
BASIC_RULE = "basic"


@dataclass
class PatientBudget:
    """What the schema promises each patient, and how each table spends its share."""

    unit_table: str
    unit_key: str
    epsilon: float
    delta: float
    rule: str
    caps: dict[str, int] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    shares: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PatientBudget:
        return cls(**data)


# --------------------------------------------------------------------------- the unit
def _parents(md: Metadata, table: str) -> list[dict[str, Any]]:
    return [
        r
        for r in md.relationships
        if r["child_table_name"] == table and r["parent_table_name"] != table
    ]


def resolve_unit(
    privacy_unit: str | None, md: Metadata, learned: list[str], reference: set[str]
) -> tuple[str, str]:
    """``(table, key)`` of the privacy unit: ``privacy_unit`` (``"table.column"`` or a column
    name) must be the primary key of a table with no synthesized parent; None picks the primary
    key of the one root table among the learned tables."""
    roots = [
        t
        for t in learned
        if md.tables[t].primary_key
        and not [r for r in _parents(md, t) if r["parent_table_name"] not in reference]
    ]
    if privacy_unit is None:
        if len(roots) != 1:
            raise ParameterError(
                "With epsilon, a schema model protects each patient: give privacy_unit, the "
                f"primary key of the patients' table ('table.column'). Root tables: {roots}."
            )
        return roots[0], str(md.tables[roots[0]].primary_key)
    if not isinstance(privacy_unit, str) or not privacy_unit:
        raise ParameterError(
            f"The 'privacy_unit' parameter of HMASynthesizer must be a primary key, "
            f"'table.column' or a column name. Got {privacy_unit!r}."
        )
    table, _, column = privacy_unit.rpartition(".")
    keys = [(t, md.tables[t].primary_key) for t in learned if md.tables[t].primary_key]
    found = [(t, k) for t, k in keys if k == column and (not table or t == table)]
    if len(found) != 1 or found[0][0] not in roots:
        described = ", ".join(f"{t}.{k}" for t, k in keys if t in roots) or "none"
        why = (
            "is not the primary key of a synthesized table"
            if not found
            else "names several tables' keys: write 'table.column'"
            if len(found) > 1
            else f"is the key of '{found[0][0]}', which has a parent table (not a patient)"
        )
        raise ParameterError(
            f"privacy_unit '{privacy_unit}' {why}. The unit must be the primary key of the "
            f"patients' table; candidates: {described}."
        )
    return found[0]


def patient_codes(
    md: Metadata,
    tables: dict[str, pd.DataFrame],
    order: list[str],
    unit: tuple[str, str],
    learned: list[str],
) -> dict[str, np.ndarray]:
    """For every learned table, the position of each row's patient in the unit's table.

    Rows are traced up their foreign keys (the first parent that leads to a patient wins); a
    row linked to no patient (an orphan kept with an empty key) is a patient of its own
    (codes from ``n_patients`` up). A learned table with no path to the unit is an error.
    """
    unit_table, _ = unit
    n = len(tables[unit_table])
    codes: dict[str, np.ndarray] = {unit_table: np.arange(n, dtype=np.int64)}
    fresh = n
    unreachable = []
    for name in order:
        if name == unit_table or name not in learned:
            continue
        code = np.full(len(tables[name]), -1, dtype=np.int64)
        linked = False
        for rel in _parents(md, name):
            parent = rel["parent_table_name"]
            if parent not in codes:
                continue
            linked = True
            pos = link_positions(
                tables[parent][rel["parent_primary_key"]], tables[name][rel["child_foreign_key"]]
            )
            take = (code < 0) & (pos >= 0)
            code[take] = codes[parent][pos[take]]
        if not linked:
            unreachable.append(name)
            continue
        alone = code < 0
        code[alone] = np.arange(fresh, fresh + int(alone.sum()))
        fresh += int(alone.sum())
        codes[name] = code
    if unreachable:
        raise ParameterError(
            f"With privacy_unit '{unit_table}.{unit[1]}', tables {unreachable} hold no "
            "patient's rows (no foreign-key path to the patients' table). Give them as "
            "reference_tables if they are public, or fit them in a model of their own."
        )
    return codes


# --------------------------------------------------------------------------- the cap
def caps_of(
    max_rows: int | dict[str, int] | None, learned: list[str], unit_table: str
) -> dict[str, int]:
    """Rows per patient kept in each learned table (1 in the unit's table)."""

    def ok(v: Any) -> bool:
        return isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= 1

    if not (
        max_rows is None
        or ok(max_rows)
        or (isinstance(max_rows, dict) and all(t in learned and ok(v) for t, v in max_rows.items()))
    ):
        raise ParameterError(
            "The 'max_rows_per_patient' parameter of HMASynthesizer must be an int >= 1 or a "
            f"dict of learned table name ({', '.join(learned)}) to an int >= 1. Got {max_rows!r}."
        )
    caps: dict[str, int] = {}
    for name in learned:
        value = max_rows.get(name, DEFAULT_MAX_ROWS) if isinstance(max_rows, dict) else max_rows
        caps[name] = 1 if name == unit_table else int(DEFAULT_MAX_ROWS if value is None else value)
    return caps


def cap_rows(
    md: Metadata,
    tables: dict[str, pd.DataFrame],
    order: list[str],
    codes: dict[str, np.ndarray],
    caps: dict[str, int],
    rng: np.random.Generator,
) -> dict[str, pd.DataFrame]:
    """Keep at most ``caps[table]`` rows per patient (a uniform random subset), parents first;
    rows whose parent row was dropped are dropped too. Returns new frames (inputs untouched)."""
    out = dict(tables)
    dropped_keys: dict[str, pd.Index] = {}
    for name in order:
        if name not in codes:
            continue
        df = tables[name]
        keep = np.ones(len(df), dtype=bool)
        for rel in _parents(md, name):
            gone = dropped_keys.get(rel["parent_table_name"])
            if gone is not None and len(gone):
                keep &= ~df[rel["child_foreign_key"]].isin(gone).to_numpy()
        keep &= _within_cap(codes[name], keep, caps[name], rng, _time_order(md, name, df))
        if keep.all():
            continue
        pk = md.tables[name].primary_key
        kept = df[keep].reset_index(drop=True)
        if pk:
            dropped_keys[name] = pd.Index(df[pk].to_numpy()[~keep])
            kept = _unlink_dropped(md, name, kept, dropped_keys[name])
        logger.info("Table '%s': %d rows kept of %d (patient cap).", name, keep.sum(), len(df))
        out[name] = kept
        codes[name] = codes[name][keep]
    return out


def _unlink_dropped(md: Metadata, name: str, kept: pd.DataFrame, gone: pd.Index) -> pd.DataFrame:
    """Keys into a table's own rows (a previous visit) that point to a dropped row become
    empty: the kept row stays, its link to a row the model never sees does not."""
    for rel in md.relationships:
        if rel["parent_table_name"] != name or rel["child_table_name"] != name:
            continue
        fk = rel["child_foreign_key"]
        dangling = kept[fk].isin(gone).to_numpy()
        if dangling.any():
            column = kept[fk]
            if pd.api.types.is_integer_dtype(column) and not isinstance(
                column.dtype, pd.ArrowDtype
            ):
                column = column.astype("Int64")
            kept = kept.assign(**{fk: column.mask(dangling)})
    return kept


def _time_order(md: Metadata, name: str, df: pd.DataFrame) -> np.ndarray | None:
    """The time of each row of a table learned as sequences (its ``sequence_index`` as
    numbers; missing last), None for other tables: a cap keeps a patient's first events."""
    table = md.tables[name]
    index = table.sequence_index
    if index is None or index not in df.columns:
        return None
    values = df[index]
    if table.sdtype(index) == "datetime":
        fmt = table.columns[index].get("datetime_format") or "mixed"
        parsed = pd.to_datetime(values, format=fmt, errors="coerce")
        time = parsed.astype("int64").to_numpy(dtype=np.float64)
        time[parsed.isna().to_numpy()] = np.inf
        return time
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.inf)


def _within_cap(
    code: np.ndarray,
    alive: np.ndarray,
    cap: int,
    rng: np.random.Generator,
    time: np.ndarray | None = None,
) -> np.ndarray:
    """True for the rows within the first ``cap`` of their patient in a random order (in
    ``time`` order when given)."""
    n = len(code)
    group = np.where(alive, code, -1)  # dropped rows do not use a place
    order = np.lexsort((rng.random(n) if time is None else time, group))
    sorted_group = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
    sizes = np.diff(np.r_[starts, n])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - np.repeat(starts, sizes)
    return (rank < cap) | (group < 0)


# --------------------------------------------------------------------------- the budget
def check_budget(epsilon: Any, delta: Any, n_patients: int) -> tuple[float, float]:
    """The patient-level (ε, δ), checked: ε finite > 0, 0 < δ < 1/n (default ``1/(10 n)``)."""
    if (
        not isinstance(epsilon, int | float | np.floating)
        or isinstance(epsilon, bool)
        or not math.isfinite(epsilon)
        or epsilon <= 0
    ):
        raise ParameterError(
            f"The 'epsilon' parameter of HMASynthesizer must be a finite float > 0 (the "
            f"budget of each patient; 0.5-3 is typical). Got {epsilon!r}."
        )
    n = max(int(n_patients), 1)
    if delta is None:
        return float(epsilon), 1.0 / (10.0 * n)
    if (
        not isinstance(delta, int | float | np.floating)
        or isinstance(delta, bool)
        or not 0 < delta < 1.0 / n
    ):
        raise PrivacyError(
            f"The 'delta' parameter of HMASynthesizer must be in (0, 1/n) with n = {n} "
            f"patients, i.e. below {1.0 / n:.3g} (a larger delta may release a whole patient). "
            f"Got {delta!r}. Leave it out for 1/(10 n)."
        )
    return float(epsilon), float(delta)


def check_weights(weights: Any, learned: list[str]) -> dict[str, float]:
    """``privacy_weights`` as a weight per learned table (1 for those not named)."""
    if weights is None:
        return dict.fromkeys(learned, 1.0)
    ok = isinstance(weights, dict) and all(
        t in learned
        and isinstance(w, int | float)
        and not isinstance(w, bool)
        and math.isfinite(w)
        and w > 0
        for t, w in weights.items()
    )
    if not ok:
        raise ParameterError(
            "The 'privacy_weights' parameter of HMASynthesizer must be a dict of learned table "
            f"name ({', '.join(learned)}) to a finite weight > 0. Got {weights!r}."
        )
    return {t: float(weights.get(t, 1.0)) for t in learned}


def plan_budget(
    epsilon: float, delta: float, weights: dict[str, float], gaussian_only: bool
) -> tuple[str, dict[str, dict[str, float]]]:
    """Each table's (ε, δ) to give its model: ``(rule, {table: {"weight", "epsilon",
    "delta"}})``.

    ``zcdp``: ``ρ`` converting to (ε, 0.9 δ) is split by weight, and each table's ε is that of
    its ``ρ_t`` at its ``0.9 δ_t`` (so its model recovers exactly ``ρ_t``); the Gaussian curves
    add up to at most ``ρ``. ``basic``: ``ε_t = w_t ε``, ``δ_t = w_t δ``.
    """
    total = sum(weights.values())
    shares = {t: w / total for t, w in weights.items()}
    out: dict[str, dict[str, float]] = {}
    if gaussian_only:
        rho = rho_for_epsilon(epsilon, delta * (1 - _RELEASE_DELTA_SHARE))
        for t, s in shares.items():
            d = delta * s
            eps_t = epsilon_from_rdp(rho * s * DEFAULT_ORDERS, d * (1 - _RELEASE_DELTA_SHARE))[0]
            out[t] = {"weight": weights[t], "epsilon": _round_down(eps_t), "delta": d}
        return ZCDP_RULE, out
    for t, s in shares.items():
        out[t] = {"weight": weights[t], "epsilon": _round_down(epsilon * s), "delta": delta * s}
    return BASIC_RULE, out


def _round_down(epsilon: float) -> float:
    """A table's ε to 6 significant digits, rounded down (readable reports; never above the
    plan).

    >>> _round_down(0.72023744183), _round_down(3.3e-9)
    (0.720237, 3.3e-09)
    """
    scale = 10.0 ** (5 - math.floor(math.log10(epsilon)))
    return math.floor(epsilon * scale) / scale


# --------------------------------------------------------------------------- the report
#: What the schema learns from the real rows outside the tables' DP models.
NOT_COVERED = [
    "the number of rows of each table (the size of a full-scale sample) and of its rows "
    "without a parent",
    "the schema's structural choices made on the real rows: which columns repeat a parent's "
    "(inherited), which dates always follow a parent's (learned as gaps), which keys are "
    "implied by others, and the format of generated keys",
    "the group sizes of keys into a table's own rows (a previous visit, a case-control set)",
]


def patient_report(budget: PatientBudget, tables: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The schema's privacy report at the patient level, from the plan and the tables' own
    reports (their ledgers): the same figures before and after save/load."""
    accountant = PrivacyAccountant.from_dict(
        {"mechanisms": [m for r in tables.values() for m in r.get("ledger", [])]}
    )
    rdp_epsilon = accountant.get_epsilon(budget.delta) if accountant.mechanisms else 0.0
    shares: dict[str, dict[str, Any]] = {}
    for name, share in budget.shares.items():
        spent = tables.get(name, {}).get("epsilon_spent")
        shares[name] = {
            **share,
            "rows_per_patient": budget.caps.get(name, 1),
            "epsilon_spent": spent if spent is not None else 0.0,
        }
    basic = sum(s["epsilon_spent"] for s in shares.values())
    unit = f"{budget.unit_table}.{budget.unit_key}"
    return {
        "differential_privacy": True,
        "guarantee": (
            f"({budget.epsilon}, {budget.delta:.3g})-differential privacy for each patient "
            f"('{unit}'): adding or removing one patient with all their rows in every table"
        ),
        "privacy_unit": unit,
        "epsilon": budget.epsilon,
        "epsilon_spent": min(rdp_epsilon, basic),
        "delta": budget.delta,
        "composition": (
            "one accountant over every table's mechanisms at the patient level (Renyi DP; a "
            "table with up to c rows per patient: Gaussian releases charged c^2, DP-SGD by RDP "
            "group privacy); the smaller of that and the sum of the tables' epsilons"
        ),
        "budget_split": (
            "zCDP rho split in proportion to privacy_weights"
            if budget.rule == ZCDP_RULE
            else "epsilon and delta split in proportion to privacy_weights (basic composition)"
        ),
        "max_rows_per_patient": dict(budget.caps),
        "shares": shares,
        "not_covered": list(NOT_COVERED),
    }


# --------------------------------------------------------------------------- the whole plan
def plan_patient_privacy(
    model: Any,
    md: Metadata,
    tables: dict[str, pd.DataFrame],
    order: list[str],
    classes: dict[str, type],
    rng: np.random.Generator,
) -> tuple[dict[str, pd.DataFrame], PatientBudget]:
    """Check the patient-level parameters of a schema model (``privacy_unit``, ``epsilon``,
    ``delta``, ``max_rows_per_patient``, ``privacy_weights``), cap each patient's rows and
    split the budget. Returns the capped tables and the plan."""
    from clinsynth.synthesizers import DPMarginalSynthesizer

    not_private = [
        f"'{t}' ({getattr(k, '_model_name', None) or k.__name__})"
        for t, k in classes.items()
        if "epsilon" not in k._param_names()
    ]
    if not_private:
        raise ParameterError(
            "With epsilon every table needs a differentially private model; "
            f"{', '.join(not_private)} has none. Use table_synthesizers='dp_marginal' (small "
            "tables) or a deep model (tvae, ctgan, ...) for those tables."
        )
    learned = list(classes)
    reference = set(getattr(model, "reference_tables", None) or ())
    unit = resolve_unit(model.privacy_unit, md, learned, reference)
    codes = patient_codes(md, tables, order, unit, learned)
    params = model.synthesizer_params
    epsilon, delta = check_budget(params.get("epsilon"), params.get("delta"), len(tables[unit[0]]))
    caps = caps_of(model.max_rows_per_patient, learned, unit[0])
    weights = check_weights(model.privacy_weights, learned)
    gaussian_only = all(issubclass(k, DPMarginalSynthesizer) for k in classes.values())
    rule, shares = plan_budget(epsilon, delta, weights, gaussian_only)
    capped = cap_rows(md, tables, order, codes, caps, rng)
    budget = PatientBudget(unit[0], unit[1], epsilon, delta, rule, caps, weights, shares)
    return capped, budget


#: Context columns are normal scores of probabilities clipped to [1e-6, 1 - 1e-6].
_SCORE_BOUND = 4.8


def helper_bounds(
    params: dict[str, Any], columns: list[str], budget: PatientBudget
) -> dict[str, Any]:
    """A table model's parameters with public bounds for the schema's helper columns, known
    without the data: context scores lie in ``±4.8`` and a row's children in a table number at
    most that table's cap. The user's ``public_bounds`` win."""
    bounds: dict[str, Any] = {}
    for column in columns:
        if column.startswith("__ctx__"):
            bounds[column] = (-_SCORE_BOUND, _SCORE_BOUND)
        elif column.startswith("__n__"):
            child = [t for t in budget.caps if column.startswith(f"__n__{t}__")]
            if child:
                bounds[column] = (0, max(budget.caps[t] for t in child))
    return {**params, "public_bounds": {**bounds, **(params.get("public_bounds") or {})}}
