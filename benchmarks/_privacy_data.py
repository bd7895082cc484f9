"""The shared single tables of the privacy benchmarks, each with its sensitive column.

Every single-table CSV of ../shared/data (and the PBC parent table), read as bench_field reads
them, with the column an attacker should not learn (the outcome). :func:`attack_frame` keeps the
statistical columns only, as plain numbers and text (datetimes as days), so that our attacks and
the anonymeter package read the same values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import shared_path

from clinsynth import Metadata

#: Table -> (path under ../shared/data, sensitive column).
TABLES: dict[str, tuple[tuple[str, ...], str]] = {
    "actg175": (("actg175", "actg175.csv"), "cens"),
    "breast_cancer_wisconsin": (
        ("breast_cancer_wisconsin", "breast_cancer_wisconsin.csv"),
        "target",
    ),
    "diabetes_efron": (("diabetes_efron", "diabetes_efron.csv"), "target"),
    "gbsg2": (("gbsg2", "gbsg2.csv"), "cens"),
    "heart_disease_uci": (("heart_disease_uci", "heart_disease_uci.csv"), "num"),
    "heart_failure_clinical": (
        ("heart_failure_clinical", "heart_failure_clinical.csv"),
        "DEATH_EVENT",
    ),
    "lung_ncctg": (("lung_ncctg", "lung_ncctg.csv"), "status"),
    "medicaldata_covid_testing": (
        ("medicaldata_covid_testing", "medicaldata_covid_testing.csv"),
        "result",
    ),
    "pbc": (("mt_pbc", "pbc.csv"), "status"),
    "pima_te": (("pima_indians_diabetes", "Pima_te.csv"), "type"),
    "pima_tr": (("pima_indians_diabetes", "Pima_tr.csv"), "type"),
    "pima_tr2": (("pima_indians_diabetes", "Pima_tr2.csv"), "type"),
    "rhc": (("rhc", "rhc.csv"), "event"),
    "support2": (("support2", "support2.csv"), "hospdead"),
    "whas500": (("whas500", "whas500.csv"), "fstat"),
}


def load_table(name: str) -> tuple[pd.DataFrame, Metadata, str]:
    """The table as read from ../shared/data, its detected metadata and its sensitive column."""
    parts, secret = TABLES[name]
    # thousands: heart_failure_clinical writes platelets as "265,000"
    df = pd.read_csv(shared_path(*parts), thousands=",", low_memory=False)
    df = df.drop(columns=[c for c in df.columns if c.startswith("Unnamed:")])
    md = Metadata.detect_from_dataframe(df)
    if md.get_table().columns[secret]["sdtype"] == "id":
        md.update_column(secret, sdtype="categorical")
    return df, md, secret


def attack_frame(df: pd.DataFrame, md: Metadata) -> tuple[pd.DataFrame, Metadata]:
    """The statistical columns as float64 (numbers; datetimes as days since 1970) or text
    (everything else; missing stays missing), with matching metadata."""
    from clinsynth.evaluation._common import CONTINUOUS, statistical_columns, to_numeric

    table = md.get_table()
    out, spec = {}, {}
    for col in statistical_columns(table):
        kind = table.columns[col]
        if kind["sdtype"] in CONTINUOUS:
            values = to_numeric(df[col], kind)
            if kind["sdtype"] == "datetime":
                values = values / 86_400e9
            out[col] = values
            spec[col] = {"sdtype": "numerical"}
        else:
            text = df[col].astype("string").astype(object)
            out[col] = text.where(df[col].notna(), np.nan)
            spec[col] = {"sdtype": "categorical"}
    frame = pd.DataFrame(out, index=df.index)
    return frame, Metadata.from_dict({"columns": spec})
