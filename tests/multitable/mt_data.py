"""A small hospital schema built in code for the multi-table tests: patients -> visits -> labs,
patients -> prescriptions.

The data has the structure the multi-table tests check: diabetic and older patients have more
visits, diabetics have higher glucose, a lab result carries its visit's patient, every visit is
after the patient's birth and every lab result lies within its visit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clinsynth import Metadata


def make_hospital(num_patients: int = 300, seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n = num_patients
    age = rng.integers(20, 90, n)
    diabetic = rng.random(n) < 0.15 + 0.4 * (age - 20) / 70
    birth = pd.Timestamp("2020-01-01") - pd.to_timedelta(
        (age * 365.25 + rng.integers(0, 365, n)).astype(int), unit="D"
    )
    patients = pd.DataFrame(
        {
            "patient_id": np.arange(1, n + 1),
            "age": age,
            "sex": rng.choice(["F", "M"], n),
            "diabetic": diabetic,
            "birth_date": pd.Series(birth.strftime("%Y-%m-%d"), dtype=object),
            "region": rng.choice(["north", "south", "east"], n, p=[0.5, 0.3, 0.2]),
        }
    )
    visits_per = 1 + rng.poisson(0.5 + 2.5 * diabetic + (age - 20) / 35)
    pid = np.repeat(np.arange(n), visits_per)
    v = len(pid)
    admission = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, v), unit="D")
    stay = rng.negative_binomial(2, 0.4, v)
    visits = pd.DataFrame(
        {
            "visit_id": [f"V{i:06d}" for i in range(v)],
            "patient_id": pid + 1,
            "admission": admission,
            "discharge": admission + pd.to_timedelta(stay, unit="D"),
            "department": rng.choice(["er", "medicine", "surgery"], v, p=[0.5, 0.3, 0.2]),
            "cost": np.round(500 + 300 * stay + rng.gamma(2.0, 150.0, v), 2),
        }
    )
    labs_per = rng.poisson(1.0 + 0.5 * stay)
    vid = np.repeat(np.arange(v), labs_per)
    m = len(vid)
    lab_day = rng.integers(0, stay[vid] + 1)
    test = rng.choice(["glucose", "creatinine"], m)
    value = np.where(
        test == "glucose",
        95 + 60 * diabetic[pid[vid]] + rng.normal(0, 12, m),
        0.9 + 0.01 * (age[pid[vid]] - 50) + rng.normal(0, 0.15, m),
    )
    labs = pd.DataFrame(
        {
            "lab_id": np.arange(100, 100 + m),
            "visit_id": visits["visit_id"].to_numpy()[vid],
            "patient_id": pid[vid] + 1,
            "lab_date": admission[vid] + pd.to_timedelta(lab_day, unit="D"),
            "test": test,
            "value": np.round(value, 2),
        }
    )
    rx_per = rng.poisson(0.3 + 1.5 * diabetic)
    rpid = np.repeat(np.arange(n), rx_per)
    r = len(rpid)
    prescriptions = pd.DataFrame(
        {
            "rx_id": np.arange(1, r + 1),
            "patient_id": rpid + 1,
            "drug": np.where(
                diabetic[rpid] & (rng.random(r) < 0.8),
                "metformin",
                rng.choice(["statin", "ace_inhibitor"], r),
            ),
            "dose_mg": rng.choice([250, 500, 1000], r),
        }
    )
    return {"patients": patients, "visits": visits, "labs": labs, "prescriptions": prescriptions}


def hospital_metadata() -> Metadata:
    return Metadata.from_dict(
        {
            "tables": {
                "patients": {
                    "primary_key": "patient_id",
                    "columns": {
                        "patient_id": {"sdtype": "id"},
                        "age": {"sdtype": "numerical", "computer_representation": "Int64"},
                        "sex": {"sdtype": "categorical"},
                        "diabetic": {"sdtype": "boolean"},
                        "birth_date": {"sdtype": "datetime", "datetime_format": "%Y-%m-%d"},
                        "region": {"sdtype": "categorical"},
                    },
                },
                "visits": {
                    "primary_key": "visit_id",
                    "columns": {
                        "visit_id": {"sdtype": "id"},
                        "patient_id": {"sdtype": "id"},
                        "admission": {"sdtype": "datetime"},
                        "discharge": {"sdtype": "datetime"},
                        "department": {"sdtype": "categorical"},
                        "cost": {"sdtype": "numerical"},
                    },
                },
                "labs": {
                    "primary_key": "lab_id",
                    "columns": {
                        "lab_id": {"sdtype": "id"},
                        "visit_id": {"sdtype": "id"},
                        "patient_id": {"sdtype": "id"},
                        "lab_date": {"sdtype": "datetime"},
                        "test": {"sdtype": "categorical"},
                        "value": {"sdtype": "numerical"},
                    },
                },
                "prescriptions": {
                    "primary_key": "rx_id",
                    "columns": {
                        "rx_id": {"sdtype": "id"},
                        "patient_id": {"sdtype": "id"},
                        "drug": {"sdtype": "categorical"},
                        "dose_mg": {"sdtype": "categorical"},
                    },
                },
            },
            "relationships": [
                {
                    "parent_table_name": "patients",
                    "parent_primary_key": "patient_id",
                    "child_table_name": "visits",
                    "child_foreign_key": "patient_id",
                },
                {
                    "parent_table_name": "visits",
                    "parent_primary_key": "visit_id",
                    "child_table_name": "labs",
                    "child_foreign_key": "visit_id",
                },
                {
                    "parent_table_name": "patients",
                    "parent_primary_key": "patient_id",
                    "child_table_name": "labs",
                    "child_foreign_key": "patient_id",
                },
                {
                    "parent_table_name": "patients",
                    "parent_primary_key": "patient_id",
                    "child_table_name": "prescriptions",
                    "child_foreign_key": "patient_id",
                },
            ],
        }
    )
