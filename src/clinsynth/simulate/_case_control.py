"""A matched case-control study: one table whose self-reference links each control to its case.

Each case gets up to ``controls_per_case`` controls of the same sex whose age is within two
years of the case's (frequency of full sets: 80%; the others have 1 to ``controls_per_case - 1``
controls, as when a registry runs out of matching controls). The case's ``case.id`` is its own
``id`` and each control's is its case's, so the table has the structure of the sets that
hospitals export from matched designs: groups of about 4.6 rows, 20% of the rows pointing to
themselves, and members that agree on the matching variables. Exposures differ between cases
and controls (smoking raises the odds of being a case; BMI is higher in cases).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clinsynth._utils import make_rng
from clinsynth.metadata import Metadata, TableMetadata
from clinsynth.simulate._common import check_count

#: Share of cases that get their full number of controls.
FULL_SET_SHARE = 0.8
#: Largest difference of age (years) between a case and its controls.
AGE_CALIPER = 2
_SMOKING = np.array(["never", "former", "current"])


def simulate_case_control(
    num_cases: int = 1000,
    *,
    controls_per_case: int = 4,
    seed: int | np.random.Generator | None = None,
) -> tuple[dict[str, pd.DataFrame], Metadata]:
    """Simulate a case-control table matched on age and sex (a self-referencing key).

    Parameters
    ----------
    num_cases : int, default 1000
        Number of cases (matched sets).
    controls_per_case : int, default 4
        Controls of a full set (1:4 matching by default).
    seed : int, numpy.random.Generator or None
        Same seed, same table.

    Returns
    -------
    tables : dict of str to pandas.DataFrame
        ``{"subjects": ...}`` with ``id``, ``case.id`` (the ``id`` of the set's case; the case
        points to itself), ``case`` (bool), ``sex``, ``age``, ``smoking``, ``bmi``. Rows come set
        by set, the case first.
    metadata : Metadata
        The table with primary key ``id`` and the relationship ``case.id -> id``.

    Examples
    --------
    >>> tables, md = simulate_case_control(50, seed=0)
    >>> s = tables["subjects"]
    >>> head = s.set_index("id").loc[s["case.id"]]
    >>> bool((head["sex"].to_numpy() == s["sex"].to_numpy()).all())
    True
    >>> bool((abs(head["age"].to_numpy() - s["age"].to_numpy()) <= 2).all())
    True
    """
    n_cases = check_count("simulate_case_control", "num_cases", num_cases)
    k = check_count("simulate_case_control", "controls_per_case", controls_per_case)
    rng = make_rng(seed)
    case_age = np.clip(np.round(rng.normal(62.0, 11.0, n_cases)), 30, 90).astype(np.int64)
    case_sex = np.where(rng.random(n_cases) < 0.45, "F", "M")
    full = rng.random(n_cases) < FULL_SET_SHARE
    partial = rng.integers(1, k, n_cases) if k > 1 else np.full(n_cases, k)
    controls = np.where(full, k, partial)
    sizes = 1 + controls
    n = int(sizes.sum())
    group = np.repeat(np.arange(n_cases), sizes)
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    is_case = np.zeros(n, dtype=bool)
    is_case[first] = True
    offset = rng.integers(-AGE_CALIPER, AGE_CALIPER + 1, n)
    age = np.clip(case_age[group] + np.where(is_case, 0, offset), 18, 95)
    ids = np.arange(1, n + 1)
    # Smoking raises the odds of being a case; BMI is higher in cases and rises with age.
    p_smoke = np.where(is_case[:, None], [0.35, 0.30, 0.35], [0.50, 0.30, 0.20])
    u = rng.random(n)[:, None]
    smoking = _SMOKING[(u > np.cumsum(p_smoke, axis=1)).sum(axis=1)]
    bmi = np.round(24.5 + 0.04 * (age - 60) + 1.8 * is_case + rng.normal(0.0, 3.5, n), 1)
    subjects = pd.DataFrame(
        {
            "id": ids,
            "case.id": ids[first][group],
            "case": is_case,
            "sex": case_sex[group],
            "age": age,
            "smoking": smoking,
            "bmi": bmi,
        }
    )
    return {"subjects": subjects}, _metadata()


def _metadata() -> Metadata:
    table = TableMetadata(
        {
            "id": {"sdtype": "id"},
            "case.id": {"sdtype": "id"},
            "case": {"sdtype": "boolean"},
            "sex": {"sdtype": "categorical"},
            "age": {"sdtype": "numerical", "computer_representation": "Int64"},
            "smoking": {"sdtype": "categorical"},
            "bmi": {"sdtype": "numerical", "computer_representation": "Float"},
        },
        primary_key="id",
    )
    md = Metadata({"subjects": table})
    md.add_relationship("subjects", "subjects", "id", "case.id")
    return md
