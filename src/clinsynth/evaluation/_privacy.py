"""``evaluate_privacy``: how much does the synthetic data reveal about the training patients?

Every measure compares the training records (which the model saw) with holdout records (real
patients it never saw). Synthetic data that is as close to the holdout as to the training records
reveals nothing specific about the training patients. Records are encoded as standardized numbers
and one-hot categories fitted on the training data (:mod:`clinsynth.evaluation._encoding`), and
compared with the Euclidean distance. The training set is subsampled to the holdout's size so that
"closer to train than to holdout" has a fair 50% baseline.

* **DCR share** — share of synthetic rows closer to their nearest training record than to their
  nearest holdout record (ties count half). 0.5 is ideal; 1.0 means every row hugs a patient.
* **NNDR** — distance to the nearest training record divided by the distance to the second
  nearest; a small ratio means a synthetic row is close to one specific patient. Compared with the
  holdout's ratios: the share of synthetic rows below the holdout's 5th percentile (0.05 expected).
* **Exact copies** — share of synthetic rows identical to a training row (over all statistical
  columns, all rows), beyond the share of holdout rows that happen to equal a training row.
* **Membership inference** — the attacker scores each record by its distance to the nearest
  synthetic row; the ROC AUC of telling training records from holdout records. 0.5 = no leakage.
* **Attribute inference** (``sensitive_columns``) — k-nearest-neighbour (k=5) guesses of the
  sensitive value from the other columns through the synthetic data; risk is the accuracy gained
  on training records over holdout records, normalized as in anonymeter.
* **Singling out, linkability, inference** — see :mod:`clinsynth.evaluation._attacks`.

Verdicts ("low", "medium", "high") only call a risk medium or high when it stands out from
sampling noise (by two standard errors, or by the lower bound of an attack's interval).
The score is the lowest of the property scores (1 = no measurable risk): ``1 - 2 * excess`` where
the excess is ``dcr_share - 0.5`` (and ``mia_auc - 0.5``) beyond two standard errors,
``1 - excess copy share / (1 - baseline)``, and ``1 - lower bound of the risk`` for each attack.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from clinsynth._utils import ProgressCallback, report
from clinsynth.errors import DataError, ParameterError
from clinsynth.evaluation._attacks import inference, linkability, singling_out
from clinsynth.evaluation._common import (
    Sampling,
    check_positive_int,
    check_release_inputs,
    row_keys,
    single_threaded,
    statistical_columns,
    subsample,
)
from clinsynth.evaluation._encoding import FeatureEncoder
from clinsynth.evaluation._privacy_text import risk_rows
from clinsynth.evaluation._reports import PrivacyReport
from clinsynth.metadata import Metadata


def _nn(reference: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    nn = NearestNeighbors(n_neighbors=min(k, len(reference)), n_jobs=1).fit(reference)
    return nn.kneighbors(queries, return_distance=True)[0]


def _nndr(d: np.ndarray) -> np.ndarray:
    if d.shape[1] < 2:
        return np.ones(len(d))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = d[:, 0] / d[:, 1]
    return np.where(d[:, 1] == 0, 1.0, ratio)


def _histogram(a: np.ndarray, b: np.ndarray, bins: int = 40) -> pd.DataFrame:
    top = float(np.quantile(np.r_[a, b], 0.99)) if len(a) + len(b) else 1.0
    edges = np.linspace(0.0, top if top > 0 else 1.0, bins + 1)
    ca = np.histogram(np.minimum(a, edges[-1]), edges)[0]
    cb = np.histogram(np.minimum(b, edges[-1]), edges)[0]
    return pd.DataFrame(
        {"Bin Start": edges[:-1], "Bin End": edges[1:], "To Train": ca, "To Holdout": cb}
    )


@single_threaded
def evaluate_privacy(
    real_train: pd.DataFrame,
    synthetic: pd.DataFrame,
    metadata: Metadata,
    *,
    holdout: pd.DataFrame,
    sensitive_columns: list[str] | None = None,
    quasi_identifiers: list[str] | None = None,
    aux_columns: tuple[list[str], list[str]] | None = None,
    max_rows: int | None = 10_000,
    n_attacks: int = 500,
    random_state: int | None = 0,
    progress: ProgressCallback | None = None,
) -> PrivacyReport:
    """Measure the privacy risk of releasing ``synthetic`` against a real holdout.

    Parameters
    ----------
    real_train, synthetic : DataFrame
        The real records the synthesizer was trained on, and the synthetic records to release.
    metadata : Metadata
        Single-table metadata; id and PII columns are left out of the distances.
    holdout : DataFrame
        Real records from the same population that the synthesizer never saw.
    sensitive_columns : list of str, optional
        Columns an attacker should not learn (diagnosis, HIV status...): attribute-inference and
        inference risks are measured for them.
    quasi_identifiers : list of str, optional
        Columns an attacker may know (age, sex, postcode...): the singling-out predicates and the
        inference attacks use them. Every statistical column (other than the secret) by default.
    aux_columns : (list, list), optional
        The two column sets of the linkability attack; the two halves of the columns by default.
    max_rows : int or None
        Rows drawn from the holdout, the training data (to the holdout's size) and the synthetic
        data for the distance-based measures; exact copies use every row.
    n_attacks : int
        Attacks per anonymeter-style risk.
    random_state : int, optional
    progress : callable, optional
        ``progress(total, completed, message)``.

    Returns
    -------
    PrivacyReport
        Properties per risk, ``metrics`` with ``dcr_share``, ``mia_auc``, ``exact_copy_share``...,
        and ``get_details("Risks")`` with a verdict and advice per risk.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from clinsynth import Metadata
    >>> rng = np.random.default_rng(0)
    >>> train, holdout = (
    ...     pd.DataFrame({"age": rng.normal(60, 10, 300), "bmi": rng.normal(27, 4, 300),
    ...                   "sex": rng.choice(["F", "M"], 300)})
    ...     for _ in range(2)
    ... )
    >>> md = Metadata.detect_from_dataframe(train)
    >>> copy = evaluate_privacy(train, train, md, holdout=holdout)
    >>> copy.metrics["dcr_share"], copy.metrics["exact_copy_share"]
    (1.0, 1.0)
    """
    table, train, synth, hold = check_release_inputs(metadata, real_train, synthetic, holdout)
    check_positive_int("evaluate_privacy", "max_rows", max_rows)
    check_positive_int("evaluate_privacy", "n_attacks", n_attacks, allow_none=False)
    columns = statistical_columns(table)
    if not columns:
        raise DataError(
            "The metadata has no statistical column to measure privacy on. Declare the sdtypes "
            "of the columns (numerical, categorical, ...)."
        )
    sensitive = list(sensitive_columns or [])
    for name, given in (("sensitive_columns", sensitive), ("quasi_identifiers", quasi_identifiers)):
        bad = [c for c in given or [] if c not in columns]
        if bad:
            raise ParameterError(
                f"The '{name}' parameter of evaluate_privacy must name statistical columns of the "
                f"metadata ({', '.join(columns)}). Got {bad!r}."
            )
    rng = np.random.default_rng(random_state)
    sampling = Sampling()
    total = 5
    report(progress, total, 0, "Exact copies")

    cols_keys = row_keys(train, table, columns)
    copy_share = float(np.isin(row_keys(synth, table, columns), cols_keys).mean())
    baseline = float(np.isin(row_keys(hold, table, columns), cols_keys).mean())

    h = subsample(hold, max_rows, rng)
    t = subsample(train, len(h), rng)
    s = subsample(synth, max_rows, rng)
    if (len(t), len(h), len(s)) != (len(train), len(hold), len(synth)):
        sampling.record(
            "Distances, membership and attacks", train=len(t), holdout=len(h), synthetic=len(s)
        )
    enc = FeatureEncoder(table, columns).fit(train)
    xt, xh, xs = enc.transform(t), enc.transform(h), enc.transform(s)
    report(progress, total, 1, "Distances to closest records")

    d_st = _nn(xt, xs, 2)
    d_sh = _nn(xh, xs, 1)[:, 0]
    dcr_t = d_st[:, 0]
    dcr_share = float(np.mean(dcr_t < d_sh) + 0.5 * np.mean(dcr_t == d_sh))
    nndr_s = _nndr(d_st)
    nndr_h = _nndr(_nn(xt, xh, 2))
    p5 = float(np.quantile(nndr_h, 0.05))
    nndr_low = float(np.mean(nndr_s < p5))
    report(progress, total, 2, "Membership inference")

    d_ts = _nn(xs, xt, 1)[:, 0]
    d_hs = _nn(xs, xh, 1)[:, 0]
    labels = np.r_[np.ones(len(d_ts)), np.zeros(len(d_hs))]
    mia_auc = float(roc_auc_score(labels, -np.r_[d_ts, d_hs]))
    report(progress, total, 3, "Singling out and linkability")

    na = min(n_attacks, len(h))
    at = t.iloc[rng.permutation(len(t))[:na]]
    ah = h.iloc[rng.permutation(len(h))[:na]]
    qi = list(quasi_identifiers) if quasi_identifiers else columns
    so, so_cols = singling_out(t, h, s, table, qi, n_attacks=n_attacks, rng=rng)
    link = (
        linkability(at, ah, s, table, columns, aux_columns=aux_columns)
        if len(columns) > 1
        else None
    )
    report(progress, total, 4, "Inference")

    inferences = {}
    for col in sensitive:
        aux = [c for c in (quasi_identifiers or columns) if c != col]
        if not aux:
            continue
        knn_risk, acc_t, acc_h = inference(at, ah, s, table, col, aux, k=5, fit_on=train)
        nn_risk, _, _ = inference(at, ah, s, table, col, aux, k=1, fit_on=train)
        inferences[col] = {
            "attribute_inference": {**knn_risk, "accuracy_train": acc_t, "accuracy_holdout": acc_h},
            "inference": nn_risk,
            "quasi_identifiers": aux,
        }

    metrics = {
        "dcr_share": dcr_share,
        # standard errors under "no leakage", used so that noise is not called a risk
        "dcr_share_se": float(0.5 / np.sqrt(min(len(s), len(h)))),
        "mia_auc_se": float(np.sqrt((len(t) + len(h) + 1) / (12 * len(t) * len(h)))),
        "dcr_train_median": float(np.median(dcr_t)),
        "dcr_holdout_median": float(np.median(d_sh)),
        "nndr_synthetic_median": float(np.median(nndr_s)),
        "nndr_holdout_median": float(np.median(nndr_h)),
        "nndr_below_holdout_p5_share": nndr_low,
        "exact_copy_share": copy_share,
        "holdout_copy_share_baseline": baseline,
        "mia_auc": mia_auc,
        "singling_out": {**so, "columns_most_used": so_cols},
        "linkability": link,
        "inference": inferences,
    }
    risks, properties = risk_rows(metrics)
    details = {
        "Risks": risks,
        "Distance To Closest Record": pd.DataFrame(
            [
                {
                    "dcr_share": dcr_share,
                    "dcr_train_median": metrics["dcr_train_median"],
                    "dcr_holdout_median": metrics["dcr_holdout_median"],
                    "nndr_synthetic_median": metrics["nndr_synthetic_median"],
                    "nndr_holdout_median": metrics["nndr_holdout_median"],
                    "nndr_below_holdout_p5_share": nndr_low,
                }
            ]
        ),
        "Membership Inference": pd.DataFrame([{"mia_auc": mia_auc}]),
        "Exact Copies": pd.DataFrame(
            [{"exact_copy_share": copy_share, "holdout_copy_share_baseline": baseline}]
        ),
        "DCR Histogram": _histogram(dcr_t, d_sh),
    }
    notes = []
    if not sensitive:
        notes.append(
            "No sensitive columns were named, so attribute inference was not measured. Name the "
            "columns an attacker must not learn (e.g. a diagnosis) with sensitive_columns."
        )
    if len(h) < 100:
        notes.append(
            f"The holdout has only {len(h)} rows: the privacy figures are rough. Keep at least a "
            "few hundred real records out of training to measure privacy."
        )
    report(progress, total, total, "Privacy done")
    return PrivacyReport(
        properties,
        details,
        metrics=metrics,
        sampling=sampling.notes,
        notes=notes,
        score=min((v for v in properties.values() if v is not None), default=None),
    )
