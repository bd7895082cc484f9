"""The matched case-control simulator: sets matched on age and sex, a self-referencing key."""

from __future__ import annotations

import numpy as np
import pytest

from clinsynth.errors import ParameterError
from clinsynth.simulate import simulate_case_control


def test_sets_are_matched_and_point_to_their_case():
    tables, md = simulate_case_control(500, seed=4)
    s = tables["subjects"]
    md.validate_data(tables)
    assert s["id"].is_unique and s["case.id"].isin(s["id"]).all()
    sizes = s.groupby("case.id").size()
    assert len(sizes) == 500 and sizes.max() == 5 and 4.4 < sizes.mean() < 4.8
    head = s.set_index("id").loc[s["case.id"]]
    assert (head["case"].to_numpy()).all()  # every set is led by its case
    assert (head["sex"].to_numpy() == s["sex"].to_numpy()).all()
    assert np.abs(head["age"].to_numpy() - s["age"].to_numpy()).max() <= 2
    assert s.loc[s["case"], "bmi"].mean() > s.loc[~s["case"], "bmi"].mean()


def test_same_seed_same_table_and_bad_counts():
    a, _ = simulate_case_control(50, seed=1)
    b, _ = simulate_case_control(50, seed=1)
    assert a["subjects"].equals(b["subjects"])
    with pytest.raises(ParameterError, match="controls_per_case"):
        simulate_case_control(10, controls_per_case=0)
