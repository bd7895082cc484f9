"""Repeated lab trajectories: one row per visit, several visits per patient.

Each patient has a context (sex, age at entry, treatment arm, end of follow-up) and visits at
increasing days from 0; at each visit three labs follow log-scale AR(1) processes around the
patient's own level (creatinine drifting up faster in arm B, HbA1c, systolic pressure), and a
kidney stage moves between four states by a Markov chain that mostly stays and rarely goes
back. The follow-up ends after the last visit. Vectorized over patients: the only loop runs
over visit positions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clinsynth.metadata import Metadata
from clinsynth.simulate._common import check_count

#: Kidney stages and the transition matrix of the Markov chain (rows: from, columns: to).
STAGES = ["G1", "G2", "G3", "G4"]
_TRANSITIONS = np.array(
    [
        [0.90, 0.09, 0.01, 0.00],
        [0.04, 0.88, 0.07, 0.01],
        [0.00, 0.04, 0.90, 0.06],
        [0.00, 0.00, 0.05, 0.95],
    ]
)


def simulate_lab_trajectories(
    num_patients: int = 1000, *, mean_visits: float = 20.0, seed: int | None = 0
) -> tuple[pd.DataFrame, Metadata]:
    """Visits of ``num_patients`` patients (about ``mean_visits`` each, at least 2).

    Returns the visits sorted by patient and day, and their metadata with ``sequence_key``
    ``patient_id`` and ``sequence_index`` ``day``.

    >>> visits, metadata = simulate_lab_trajectories(5, mean_visits=4, seed=1)
    >>> visits.groupby("patient_id")["day"].is_monotonic_increasing.all()
    np.True_
    """
    n = check_count("simulate_lab_trajectories", "num_patients", num_patients)
    rng = np.random.default_rng(seed)
    visits = 2 + rng.poisson(max(mean_visits - 2.0, 0.0), n)
    sex = rng.choice(np.array(["F", "M"]), n)
    age = np.round(rng.normal(62, 11, n).clip(18, 95), 1)
    arm = rng.choice(np.array(["A", "B"]), n)
    base_creat = np.log(np.where(sex == "M", 1.0, 0.8)) + rng.normal(0, 0.25, n)
    base_hba1c = np.log(6.2) + rng.normal(0, 0.12, n)
    base_sbp = np.log(120 + 0.4 * (age - 60)) + rng.normal(0, 0.08, n)
    drift = np.where(arm == "B", 0.012, 0.004)
    total, steps = int(visits.sum()), int(visits.max())
    patient = np.repeat(np.arange(n), visits)
    first = np.cumsum(visits) - visits
    day = np.zeros(total, dtype=np.int64)
    labs = np.zeros((3, total))
    stage = np.zeros(total, dtype=np.int64)
    level = np.stack([base_creat, base_hba1c, base_sbp])
    phi, noise = np.array([[0.8], [0.7], [0.6]]), np.array([[0.08], [0.05], [0.05]])
    state = np.zeros((3, n))
    current = rng.choice(4, n, p=[0.45, 0.35, 0.15, 0.05])
    cumulative = np.cumsum(_TRANSITIONS, axis=1)
    gap_scale = rng.uniform(40, 120, n)
    clock = np.zeros(n, dtype=np.int64)
    for t in range(steps):
        rows = first[visits > t] + t
        who = np.flatnonzero(visits > t)
        if t:
            gaps = np.maximum(1, np.rint(rng.gamma(3.0, gap_scale[who] / 3.0))).astype(np.int64)
            clock[who] += gaps
            u = rng.random(len(who))
            current[who] = (u[:, None] > cumulative[current[who]]).sum(axis=1).clip(0, 3)
        state[:, who] = phi * state[:, who] + noise * rng.standard_normal((3, len(who)))
        day[rows] = clock[who]
        labs[:, rows] = level[:, who] + state[:, who]
        labs[0, rows] += drift[who] * t + 0.12 * current[who]
        stage[rows] = current[who]
    followup = clock + np.rint(rng.exponential(90, n)).astype(np.int64) + 1
    ids = np.char.add("P", np.char.zfill(np.arange(1, n + 1).astype(str), 6))
    frame = pd.DataFrame(
        {
            "patient_id": ids[patient],
            "sex": sex[patient],
            "age": age[patient],
            "arm": arm[patient],
            "followup_days": followup[patient],
            "day": day,
            "creatinine": np.round(np.exp(labs[0]), 2),
            "hba1c": np.round(np.exp(labs[1]), 1),
            "sbp": np.rint(np.exp(labs[2])).astype(np.int64),
            "ckd_stage": np.array(STAGES)[stage],
        }
    )
    metadata = Metadata.detect_from_dataframe(frame)
    metadata.update_column("patient_id", sdtype="id")
    metadata.set_sequence_key("patient_id")
    metadata.set_sequence_index("day")
    return frame, metadata
