"""Helpers of the dashboard tests: the app under Streamlit's AppTest, tiny tables as files.

Not named conftest.py: pytest would register it as the module ``conftest`` and hide the
repository's ``tests/conftest.py`` from the tests that import helpers from it.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from streamlit.testing.v1 import AppTest

from clinsynth.dashboard import APP_PATH


def small_table(n: int = 80, seed: int = 0) -> pd.DataFrame:
    """A tiny patient table: numbers, categories, yes/no, missing values."""
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 90, n)
    sex = rng.choice(["F", "M"], n)
    sbp = np.round(100 + 0.6 * age + rng.normal(0, 8, n))
    condition = np.where(age > 60, rng.choice(["diabetes", "healthy"], n), "healthy")
    smoker = rng.random(n) < 0.3
    weight = np.round(rng.normal(75, 12, n), 1)
    weight[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "age": age,
            "sex": sex,
            "sbp": sbp,
            "weight": weight,
            "smoker": smoker,
            "condition": condition,
        }
    )


def csv_upload(df: pd.DataFrame, name: str = "patients.csv") -> tuple[str, bytes, str]:
    """``(name, bytes, mime)`` as ``AppTest.file_uploader(...).set_value`` takes it."""
    return name, df.to_csv(index=False).encode("utf-8"), "text/csv"


def excel_upload(df: pd.DataFrame, name: str = "patients.xlsx") -> tuple[str, bytes, str]:
    buffer = io.BytesIO()
    df.to_excel(buffer, index=False)
    mime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return name, buffer.getvalue(), mime


def new_app() -> AppTest:
    """A fresh dashboard session (its own ``st.session_state``), after its first run."""
    return AppTest.from_file(str(APP_PATH), default_timeout=60).run()


def errors(at: AppTest) -> list[str]:
    """Texts of the ``st.error`` messages on the page."""
    return [e.value for e in at.error]


def no_crash(at: AppTest) -> None:
    """The page shows no stack trace and no unexpected error."""
    assert not at.exception, [e.value for e in at.exception]
    assert not any("Something went wrong" in text for text in errors(at)), errors(at)
