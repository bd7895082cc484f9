"""Fixtures of the multi-table tests (the data is built in code by ``mt_data``)."""

from __future__ import annotations

import pandas as pd
import pytest

from clinsynth import Metadata

from .mt_data import hospital_metadata, make_hospital


@pytest.fixture(scope="session")
def hospital() -> dict[str, pd.DataFrame]:
    return make_hospital(400, seed=1)


@pytest.fixture()
def hospital_md() -> Metadata:
    return hospital_metadata()
