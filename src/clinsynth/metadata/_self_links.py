"""Keys into a table's own rows: a case-control set, a manager, a mother, a previous stay."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from clinsynth.metadata._keys import GENERIC_KEYS

#: Column names that say a key points into its own table (a hierarchy, a set, a chain of rows).
SELF_REFERENCE_NAME = re.compile(
    r"manager|supervisor|boss|reports_?to|parent|mother|father|spouse|partner|sibling|"
    r"prev|prior|next|predecessor|successor|referr|mentor|sponsor|head_?of|lead|"
    r"original|duplicate|merged|linked|related|case|match|pair|twin|transfer",
    re.IGNORECASE,
)
#: Least share of a column's values found in its own table's key for a self-reference.
MIN_SELF_CONTAINMENT = 0.9
#: Share of rows pointing to themselves that shows a self-reference whatever its name (the case
#: of a case-control set is in its own set).
MIN_SELF_POINTING = 0.05


def refers_to_own_key(name: str, values: pd.Series, key: pd.Series) -> bool:
    """Whether column ``name`` holds keys of its own table's rows (``manager_id`` ->
    ``staff_id``, ``case.id`` -> ``id`` in a case-control table).

    At least 90% of its values are in ``key``, and: its name says so (``manager``,
    ``parent``, ``previous``, ``case``..., or it ends with ``_<key name>``), or the keys are
    text (UUIDs, codes: they do not match by chance as small integers do), or at least 5% of
    the rows point to themselves (``values`` and ``key`` aligned row by row: the case of a
    matched set is in its own set) and it holds many distinct values (at least 10 and 5% of
    its rows: not a code whose values 1, 2, 3 meet keys 1, 2, 3).

    >>> staff = pd.Series([1, 2, 3, 4, 5])
    >>> refers_to_own_key("manager_id", pd.Series([1, 1, 2, None, 2]), staff)
    True
    >>> refers_to_own_key("hospital_id", pd.Series([1, 1, 2, 2, 1]), staff)
    False
    >>> sets = pd.Series(np.repeat(np.arange(1, 41, 4), 4))  # sets of 4; rows 1, 5, ...: own key
    >>> refers_to_own_key("set_id", sets, pd.Series(np.arange(1, 41)))
    True
    """
    present = values.dropna()
    keys = key.dropna()
    if len(present) == 0 or len(keys) == 0 or pd.api.types.is_bool_dtype(present):
        return False
    numeric = pd.api.types.is_numeric_dtype(keys)
    if pd.api.types.is_numeric_dtype(present) != numeric:
        return False
    if float(present.isin(pd.Index(keys.unique())).mean()) < MIN_SELF_CONTAINMENT:
        return False
    lname, lkey = name.lower(), str(key.name).lower()
    named = bool(SELF_REFERENCE_NAME.search(lname)) or (
        lkey not in GENERIC_KEYS and (lname.endswith("_" + lkey) or lname.endswith("." + lkey))
    )
    if named or not numeric:
        return True
    # Rows pointing to themselves: not a code whose few small values match keys 1, 2, 3...
    distinct = present.nunique()
    return distinct >= max(10, 0.05 * len(present)) and (
        self_pointing_share(values, key) >= MIN_SELF_POINTING
    )


def self_pointing_share(values: pd.Series, key: pd.Series) -> float:
    """Share of the rows with a value whose value is their own key (row by row).

    >>> self_pointing_share(pd.Series([1, 1, None, 4]), pd.Series([1, 2, 3, 4]))
    0.6666666666666666
    """
    if len(values) != len(key):
        return 0.0
    present = values.notna().to_numpy()
    if not present.any():
        return 0.0
    same = values.to_numpy(dtype=object)[present] == key.to_numpy(dtype=object)[present]
    return float(np.mean(same))
