"""Secondary parents follow the child row: a condition filed under its patient gets an encounter
near its onset (numbers: matching), or its onset is redrawn from the encounter's date (dates:
anchoring), never any encounter of that patient."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clinsynth import Metadata
from clinsynth.multitable import HMASynthesizer


def _clinic(
    n_patients: int = 60, seed: int = 0, dates: bool = False
) -> tuple[dict[str, pd.DataFrame], Metadata]:
    rng = np.random.default_rng(seed)
    patients = pd.DataFrame({"pid": np.arange(n_patients), "age": rng.integers(20, 90, n_patients)})
    per = rng.integers(4, 10, n_patients)
    enc_pid = np.repeat(patients["pid"].to_numpy(), per)
    start = rng.integers(0, 3650, len(enc_pid)).astype(float)  # days over ten years
    encounters = pd.DataFrame(
        {
            "eid": np.arange(len(enc_pid)),
            "pid": enc_pid,
            "start": start,
            "cost": rng.gamma(2, 50, len(enc_pid)),
        }
    )
    # Each condition is recorded at one of its patient's encounters, on that day (a few not
    # linked to any encounter, so the patient is the condition's primary parent).
    pick = rng.integers(0, len(encounters), 4 * n_patients)
    linked = rng.random(len(pick)) > 0.1
    conditions = pd.DataFrame(
        {
            "cid": np.arange(len(pick)),
            "pid": encounters["pid"].to_numpy()[pick],
            "eid": pd.Series(pick, dtype="Int64").where(linked),
            "onset": encounters["start"].to_numpy()[pick] + rng.normal(0, 0.5, len(pick)),
            "severity": rng.choice(["mild", "severe"], len(pick)),
        }
    )
    if dates:  # the same days as dates, and a resolution date that follows the onset
        day0 = pd.Timestamp("2010-01-01")
        encounters["start"] = day0 + pd.to_timedelta(encounters["start"], unit="D")
        onset = day0 + pd.to_timedelta(np.round(conditions["onset"].clip(lower=0)), unit="D")
        conditions["onset"] = onset.dt.strftime("%Y-%m-%d")
        resolved = onset + pd.to_timedelta(rng.integers(1, 60, len(onset)), unit="D")
        conditions["resolved"] = resolved.dt.strftime("%Y-%m-%d")
    tables = {"patients": patients, "encounters": encounters, "conditions": conditions}
    md = Metadata.detect_from_dataframes(tables)
    for name, pk in (("patients", "pid"), ("encounters", "eid"), ("conditions", "cid")):
        md.update_column(pk, table_name=name, sdtype="id")
        md.set_primary_key(pk, table_name=name)
    md.update_column("eid", table_name="conditions", sdtype="id")
    md.update_column("pid", table_name="encounters", sdtype="id")
    md.update_column("pid", table_name="conditions", sdtype="id")
    md.relationships.clear()
    md.add_relationship("patients", "encounters", "pid", "pid")
    md.add_relationship("patients", "conditions", "pid", "pid")
    md.add_relationship("encounters", "conditions", "eid", "eid")
    return tables, md


def _gaps(tables: dict[str, pd.DataFrame], shuffle: np.random.Generator | None = None):
    cond = tables["conditions"].dropna(subset=["eid"])
    enc = tables["encounters"].set_index("eid")
    eids = cond["eid"].to_numpy()
    if shuffle is not None:  # another encounter of the same patient: the unmatched baseline
        by_patient = tables["encounters"].groupby("pid")["eid"].apply(np.asarray)
        eids = np.array([shuffle.choice(by_patient[p]) for p in cond["pid"]])
    start, onset = enc.loc[eids, "start"], cond["onset"]
    if not pd.api.types.is_numeric_dtype(onset):  # dates: gaps in days
        gap = pd.to_datetime(onset).to_numpy() - pd.to_datetime(start).to_numpy()
        return np.abs(gap / np.timedelta64(1, "D"))
    return np.abs(start.to_numpy() - onset.to_numpy())


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_secondary_parent_is_matched_on_the_tied_columns():
    tables, md = _clinic()
    model = HMASynthesizer(md, random_state=0).fit(tables)
    plan = model.get_plan().set_index("table")
    assert plan.loc["conditions", "secondary"] == ["eid -> encounters"]
    assert plan.loc["conditions", "matched_on"] == ["eid: onset ~ encounters.start"]
    synthetic = model.sample()
    cond, enc = synthetic["conditions"], synthetic["encounters"]
    # Consistent: the matched encounter belongs to the condition's patient.
    linked = cond.dropna(subset=["eid"])
    owner = enc.set_index("eid").loc[linked["eid"], "pid"].to_numpy()
    assert (owner == linked["pid"].to_numpy()).all()
    matched = np.median(_gaps(synthetic))
    unmatched = np.median(_gaps(synthetic, shuffle=np.random.default_rng(1)))
    # The synthetic onset is drawn from the patient, not from an encounter, so an exact match
    # rarely exists; the pick is the likeliest among encounters drawn by their modeled number
    # of conditions (which keeps encounters without conditions).
    assert unmatched > 3 * matched


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_date_tied_to_its_secondary_parent_is_redrawn_from_it():
    tables, md = _clinic(dates=True)
    model = HMASynthesizer(md, random_state=0).fit(tables)
    plan = model.get_plan().set_index("table")
    assert plan.loc["conditions", "matched_on"] == [
        "eid: onset ~ encounters.start (onset redrawn from it)"
    ]
    synthetic = model.sample()
    gaps = _gaps(synthetic)
    assert np.median(gaps) <= 1.0 and np.mean(gaps <= 2) > 0.9  # real: within a day
    assert np.median(_gaps(synthetic, shuffle=np.random.default_rng(1))) > 300
    cond = synthetic["conditions"]
    # The resolution date moved with the onset, and the learned order still holds.
    assert (pd.to_datetime(cond["resolved"]) >= pd.to_datetime(cond["onset"])).all()
    held = (pd.to_datetime(cond["resolved"]) - pd.to_datetime(cond["onset"])).dt.days
    assert held.between(1, 59).mean() > 0.95
