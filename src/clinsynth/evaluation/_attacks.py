"""Simplified attacks in the manner of anonymeter (Giomi et al., PoPETs 2023).

Each attack is run once against records of the training set (members) and once against records of
the holdout (control), drawn in equal numbers. The control success rate is what an attacker gets
from the synthetic data's general patterns alone; only the excess on members is privacy risk:

``risk = (rate_members - rate_control) / (1 - rate_control)``, clipped to [0, 1],

with a conservative 95% interval: the Wilson intervals of both rates carried through the same
formula (lower bound: members' lower bound against control's upper bound). A risk whose lower
bound is 0 is not measurable with this many attacks. Own simplified versions, not anonymeter's
code:

* **Singling out** — predicates are combinations of up to three column values (numbers cut into
  the training percentiles) that match exactly one synthetic record. An attack succeeds when the
  predicate matches exactly one record of the target table (train subsample or holdout, of equal
  size). With ``quasi_identifiers``, the predicates use only those columns.
* **Linkability** — the columns are split in two halves the attacker holds separately. A target
  record is linked when its nearest synthetic record on the first half is also its nearest on the
  second half.
* **Inference** — for a sensitive column, the attacker knows every other column, takes the nearest
  synthetic record and reads its sensitive value. Success: the same category, or a number within
  0.1 training standard deviations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from clinsynth.evaluation._common import CONTINUOUS, to_numeric
from clinsynth.evaluation._encoding import FeatureEncoder
from clinsynth.metadata import TableMetadata

Z95 = 1.959964


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float, float]:
    """Rate and 95% Wilson score interval of ``successes`` out of ``n``.

    >>> [round(v, 3) for v in wilson(5, 10)]
    [0.5, 0.237, 0.763]
    """
    if n == 0:
        return float("nan"), 0.0, 1.0
    p = successes / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return p, float(max(0.0, centre - half)), float(min(1.0, centre + half))


def attack_risk(members: np.ndarray, control: np.ndarray) -> dict:
    """Risk of an attack from boolean success arrays on members and on control records."""
    rate, low, high = wilson(int(members.sum()), len(members))
    control_rate, c_low, c_high = wilson(int(control.sum()), len(control))

    def norm(r: float, c: float) -> float:
        if np.isnan(r) or np.isnan(c):
            return float("nan")
        if c >= 1:
            return 0.0
        return float(min(1.0, max(0.0, (r - c) / (1 - c))))

    return {
        "risk": norm(rate, control_rate),
        "ci_low": norm(low, c_high),
        "ci_high": norm(high, c_low),
        "attack_rate": rate,
        "control_rate": control_rate,
        "n_attacks": len(members),
    }


def _codes(
    frames: list[pd.DataFrame], table: TableMetadata, columns: list[str]
) -> list[np.ndarray]:
    """Integer codes per column, shared across frames: percentiles of the first frame for numbers,
    categories (missing included) for the rest."""
    out = [np.empty((len(f), len(columns)), dtype=np.int64) for f in frames]
    for j, col in enumerate(columns):
        spec = table.columns[col]
        if spec["sdtype"] in CONTINUOUS:
            values = [to_numeric(f[col], spec) for f in frames]
            ref = values[0][~np.isnan(values[0])]
            edges = np.unique(np.quantile(ref, np.linspace(0.01, 0.99, 99))) if len(ref) else []
            for o, v in zip(out, values, strict=True):
                o[:, j] = np.where(np.isnan(v), -1, np.searchsorted(edges, v, side="right"))
        else:
            both = pd.concat([f[col] for f in frames], ignore_index=True)
            joint, _ = pd.factorize(both, use_na_sentinel=False)
            start = 0
            for o, f in zip(out, frames, strict=True):
                o[:, j] = joint[start : start + len(f)]
                start += len(f)
    return out


def singling_out(
    train: pd.DataFrame,
    control: pd.DataFrame,
    synthetic: pd.DataFrame,
    table: TableMetadata,
    columns: list[str],
    *,
    n_attacks: int,
    rng: np.random.Generator,
    n_subsets: int = 60,
) -> tuple[dict, list[str]]:
    """Singling-out risk; also the columns most often in successful member predicates."""
    ct, cc, cs = _codes([train, control, synthetic], table, columns)
    width = min(3, len(columns))
    base = np.maximum(np.max(np.vstack([ct, cc, cs]), axis=0) + 2, 2)
    found_t, found_c, used = [], [], []
    for _ in range(n_subsets):
        subset = np.sort(rng.choice(len(columns), size=width, replace=False))
        mult = np.cumprod(np.r_[1, base[subset][:-1]]).astype(np.int64)

        def key(c, subset=subset, mult=mult):
            return (c[:, subset] + 1) @ mult

        ks, kt, kc = key(cs), key(ct), key(cc)
        uniq, counts = np.unique(ks, return_counts=True)
        preds = uniq[counts == 1]
        if len(preds) == 0:
            continue
        vt, nt = np.unique(kt, return_counts=True)
        vc, nc = np.unique(kc, return_counts=True)
        found_t.append(_count_of(preds, vt, nt) == 1)
        found_c.append(_count_of(preds, vc, nc) == 1)
        used.append(np.repeat(subset[None, :], len(preds), axis=0))
    if not found_t:
        return attack_risk(np.zeros(0, bool), np.zeros(0, bool)), []
    st, sc, cols = np.concatenate(found_t), np.concatenate(found_c), np.vstack(used)
    pick = rng.permutation(len(st))[:n_attacks]
    st, sc, cols = st[pick], sc[pick], cols[pick]
    hits = np.bincount(cols[st].ravel(), minlength=len(columns)) if st.any() else np.zeros(1)
    top = [columns[i] for i in np.argsort(-hits)[:2] if hits[i] > 0]
    return attack_risk(st, sc), top


def _count_of(keys: np.ndarray, values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(values, keys)
    pos = np.minimum(pos, len(values) - 1)
    return np.where(values[pos] == keys, counts[pos], 0)


def _nearest(
    table: TableMetadata, columns: list[str], fit_on: pd.DataFrame, synthetic: pd.DataFrame, k: int
):
    enc = FeatureEncoder(table, columns).fit(fit_on)
    nn = NearestNeighbors(n_neighbors=min(k, len(synthetic)), n_jobs=1)
    return enc, nn.fit(enc.transform(synthetic))


def linkability(
    train: pd.DataFrame,
    control: pd.DataFrame,
    synthetic: pd.DataFrame,
    table: TableMetadata,
    columns: list[str],
    *,
    aux_columns: tuple[list[str], list[str]] | None = None,
    n_neighbors: int = 1,
) -> dict:
    """Linkability risk: records re-linked across two halves of the columns via synthetic data."""
    if aux_columns is None:
        half = len(columns) // 2
        aux_columns = (columns[:half], columns[half:])
    a_cols, b_cols = aux_columns
    enc_a, nn_a = _nearest(table, list(a_cols), train, synthetic, n_neighbors)
    enc_b, nn_b = _nearest(table, list(b_cols), train, synthetic, n_neighbors)

    def links(target: pd.DataFrame) -> np.ndarray:
        ia = nn_a.kneighbors(enc_a.transform(target), return_distance=False)
        ib = nn_b.kneighbors(enc_b.transform(target), return_distance=False)
        return (ia[:, :, None] == ib[:, None, :]).any(axis=(1, 2))

    out = attack_risk(links(train), links(control))
    out["aux_columns"] = [list(a_cols), list(b_cols)]
    return out


def inference(
    train: pd.DataFrame,
    control: pd.DataFrame,
    synthetic: pd.DataFrame,
    table: TableMetadata,
    secret: str,
    aux: list[str],
    *,
    k: int = 1,
    fit_on: pd.DataFrame | None = None,
) -> tuple[dict, float, float]:
    """Inference of ``secret`` from ``aux`` through the ``k`` nearest synthetic records.

    Returns the attack risk and the accuracies on members and on control records.
    """
    fit_on = train if fit_on is None else fit_on
    enc, nn = _nearest(table, aux, fit_on, synthetic, k)
    spec = table.columns[secret]
    if spec["sdtype"] in CONTINUOUS:
        synth_values = to_numeric(synthetic[secret], spec)
        ref = to_numeric(fit_on[secret], spec)
        std = float(np.nanstd(ref)) if np.isfinite(ref).sum() > 1 else 0.0
        tol = 0.1 * std if std > 0 else 0.0

        def correct(target: pd.DataFrame) -> np.ndarray:
            idx = nn.kneighbors(enc.transform(target), return_distance=False)
            guesses = synth_values[idx]
            present = ~np.isnan(guesses)
            guess = np.where(present, guesses, 0.0).sum(1) / np.maximum(present.sum(1), 1)
            guess[present.sum(1) == 0] = np.nan
            truth = to_numeric(target[secret], spec)
            return np.abs(guess - truth) <= tol
    else:
        both = pd.concat([synthetic[secret], train[secret], control[secret]], ignore_index=True)
        codes, uniques = pd.factorize(both, use_na_sentinel=False)
        n_s, n_t = len(synthetic), len(train)
        synth_codes = codes[:n_s]
        truth_codes = {"train": codes[n_s : n_s + n_t], "control": codes[n_s + n_t :]}
        n_levels = max(len(uniques), 1)

        def correct(target: pd.DataFrame, which: str = "train") -> np.ndarray:
            idx = nn.kneighbors(enc.transform(target), return_distance=False)
            votes = synth_codes[idx]
            rows = np.repeat(np.arange(len(votes)), votes.shape[1])
            tally = np.bincount(rows * n_levels + votes.ravel(), minlength=len(votes) * n_levels)
            guess = tally.reshape(len(votes), n_levels).argmax(axis=1)
            return guess == truth_codes[which]

        hit_t, hit_c = correct(train, "train"), correct(control, "control")
        return attack_risk(hit_t, hit_c), float(hit_t.mean()), float(hit_c.mean())
    hit_t, hit_c = correct(train), correct(control)
    return attack_risk(hit_t, hit_c), float(hit_t.mean()), float(hit_c.mean())
