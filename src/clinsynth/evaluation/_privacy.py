"""``evaluate_privacy``: how much does the synthetic data reveal about the training patients?

Every measure compares the training records (which the model saw) with holdout records (real
patients it never saw): what the synthetic data tells about anyone from the population is not a
leak; only what it tells about the training patients beyond that is.

* **Re-identification risks as Giomi et al. define them** (the anonymeter method, PoPETs 2023):
  singling out, linkability and inference, each the main attack's success beyond the control's,
  with a 95% interval (:mod:`clinsynth.evaluation._attacks`, :mod:`._singling_out`).
* **DCR share** against all training records, corrected for the sizes of train and holdout, with
  its standard error (:mod:`clinsynth.evaluation._membership`). 0.5 is ideal; 1.0 is a copy.
* **NNDR** — distance to the nearest training record over the distance to the second nearest; the
  share of synthetic rows below the holdout's 5th percentile (0.05 expected; informational).
* **Exact copies** — share of synthetic rows identical to a training row (all statistical columns,
  all rows), beyond the share of holdout rows that happen to equal a training row.
* **Membership inference** — by distance to the nearest synthetic row, and by density ratio
  (DOMIAS); ROC AUC of training against holdout records. 0.5 = no leakage.

Verdicts ("low", "medium", "high") only call a risk medium or high when it stands out from
sampling noise (by two standard errors, or by the lower bound of an attack's interval). The score
is the lowest of the property scores (1 = no measurable risk). ``report.statement`` says it all in
one paragraph for a data-protection officer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clinsynth._utils import ProgressCallback, report
from clinsynth.errors import DataError, ParameterError
from clinsynth.evaluation._attacks import inference, linkability, mixed_tables
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
from clinsynth.evaluation._membership import dcr_share, distance_mia, domias, nearest_distances
from clinsynth.evaluation._metrics import compute_metrics
from clinsynth.evaluation._privacy_text import attack_table, risk_rows, statement
from clinsynth.evaluation._reports import PrivacyReport
from clinsynth.evaluation._singling_out import singling_out
from clinsynth.metadata import Metadata


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


def _check_columns(
    columns: list[str],
    sensitive: list[str],
    quasi_identifiers: list[str] | None,
    aux_columns: object,
) -> None:
    for name, given in (("sensitive_columns", sensitive), ("quasi_identifiers", quasi_identifiers)):
        bad = [c for c in given or [] if c not in columns]
        if bad:
            raise ParameterError(
                f"The '{name}' parameter of evaluate_privacy must name statistical columns of the "
                f"metadata ({', '.join(columns)}). Got {bad!r}."
            )
    if aux_columns is None:
        return
    ok = (
        isinstance(aux_columns, list | tuple)
        and len(aux_columns) == 2
        and all(isinstance(part, list | tuple) and len(part) > 0 for part in aux_columns)
    )
    if ok:
        bad = [c for part in aux_columns for c in part if c not in columns]
        ok = not bad and not set(aux_columns[0]) & set(aux_columns[1])
    if not ok:
        raise ParameterError(
            "The 'aux_columns' parameter of evaluate_privacy must be two non-empty lists of "
            f"distinct statistical columns ({', '.join(columns)}), one per database the attacker "
            f"holds. Got {aux_columns!r}."
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
        Real records from the same population that the synthesizer never saw (the control).
    sensitive_columns : list of str, optional
        Columns an attacker should not learn (diagnosis, HIV status...): the inference risk is
        measured for each.
    quasi_identifiers : list of str, optional
        Columns an attacker may know (age, sex, postcode...): the singling-out predicates and the
        inference attacks use them. Every statistical column (other than the secret) by default.
    aux_columns : (list, list), optional
        The two column sets of the linkability attack; the two halves of the columns by default.
    max_rows : int or None
        Rows drawn from the holdout and from the synthetic data for the distances, the
        membership attacks and the attackers' synthetic data; every training row is kept (a
        synthetic row copied from any of them must find its twin). Exact copies and the
        singling-out counts use every real row.
    n_attacks : int
        Singling-out predicates, and training and holdout records attacked per linkability and
        inference risk (at most the holdout's size). More attacks narrow the intervals.
    random_state : int, optional
    progress : callable, optional
        ``progress(total, completed, message)``.

    Returns
    -------
    PrivacyReport
        Properties per risk, ``metrics`` with ``dcr_share`` (and ``dcr_share_se``), ``mia_auc``,
        ``domias_auc``, ``exact_copy_share``, ``singling_out``, ``linkability``, ``inference``...,
        ``get_details("Risks")`` with a verdict and advice per risk, and ``statement``: one
        paragraph for a data-protection officer.

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
    _check_columns(columns, sensitive, quasi_identifiers, aux_columns)
    rng = np.random.default_rng(random_state)
    sampling = Sampling()
    total = 5
    report(progress, total, 0, "Exact copies")

    cols_keys = row_keys(train, table, columns)
    copy_share = float(np.isin(row_keys(synth, table, columns), cols_keys).mean())
    baseline = float(np.isin(row_keys(hold, table, columns), cols_keys).mean())

    h = subsample(hold, max_rows, rng)
    s = subsample(synth, max_rows, rng)
    t = subsample(train, len(h), rng)  # members for the balanced membership attacks
    if (len(h), len(s)) != (len(hold), len(synth)):
        sampling.record("Distances, membership and attacks", holdout=len(h), synthetic=len(s))
    enc = FeatureEncoder(table, columns).fit(train)
    x_train, xt, xh, xs = enc.transform(train), enc.transform(t), enc.transform(h), enc.transform(s)
    report(progress, total, 1, "Distances to closest records")

    d_st = nearest_distances(x_train, xs, 2)
    d_sh = nearest_distances(xh, xs, 1)[:, 0]
    closeness = dcr_share(x_train, xh, xs)
    nndr_s = _nndr(d_st)
    nndr_h = _nndr(nearest_distances(x_train, xh, 2))
    p5 = float(np.quantile(nndr_h, 0.05))
    report(progress, total, 2, "Membership inference")

    membership = {**distance_mia(xt, xh, xs), **domias(xt, xh, xs, rng)}
    report(progress, total, 3, "Singling out and linkability")

    # every real row: singling-out predicates are counted on all of them (cheap), and a holdout
    # cut to max_rows would widen the extrapolation of the control rate
    na = min(n_attacks, len(hold), len(train))
    m_train, m_hold, m_syn = mixed_tables([train, hold, s], table, columns)
    targets = m_train.rows(rng.permutation(len(train))[:na])
    controls = m_hold.rows(rng.permutation(len(hold))[:na])
    qi = list(quasi_identifiers) if quasi_identifiers else columns
    so_cols = [columns.index(c) for c in qi]
    so = singling_out(
        m_train.select(so_cols),
        m_hold.select(so_cols),
        m_syn.select(so_cols),
        n_attacks=n_attacks,
        rng=rng,
    )
    if aux_columns is None and len(columns) > 1:
        half = len(columns) // 2
        aux_columns = (columns[:half], columns[half:])
    link = (
        linkability(targets, controls, m_syn, aux_columns, rng=rng)
        if aux_columns is not None
        else None
    )
    report(progress, total, 4, "Inference")

    inferences = {}
    for col in sensitive:
        aux = [c for c in qi if c != col]
        if aux:
            inferences[col] = inference(targets, controls, m_syn, col, aux, rng=rng)

    metrics = {
        **closeness,
        **membership,
        "dcr_train_median": float(np.median(d_st[:, 0])),
        "dcr_holdout_median": float(np.median(d_sh)),
        "nndr_synthetic_median": float(np.median(nndr_s)),
        "nndr_holdout_median": float(np.median(nndr_h)),
        "nndr_below_holdout_p5_share": float(np.mean(nndr_s < p5)),
        "nndr_below_holdout_p5_se": float(np.sqrt(0.05 * 0.95 / len(nndr_s))),
        "exact_copy_share": copy_share,
        "holdout_copy_share_baseline": baseline,
        "singling_out": so,
        "linkability": link,
        "inference": inferences,
        "rows": {"train": len(train), "holdout": len(hold), "synthetic": len(synth)},
        **compute_metrics("privacy", train, synth, table, holdout=hold),
    }
    risks, properties = risk_rows(metrics)
    details = {
        "Risks": risks,
        "Distance To Closest Record": pd.DataFrame(
            [
                {
                    key: metrics[key]
                    for key in (
                        "dcr_share",
                        "dcr_share_se",
                        "dcr_share_raw",
                        "dcr_share_raw_expected",
                        "dcr_train_median",
                        "dcr_holdout_median",
                        "nndr_synthetic_median",
                        "nndr_holdout_median",
                        "nndr_below_holdout_p5_share",
                    )
                }
            ]
        ),
        "Membership Inference": pd.DataFrame(
            [{k: metrics[k] for k in ("mia_auc", "mia_auc_se", "domias_auc", "domias_auc_se")}]
        ),
        "Exact Copies": pd.DataFrame(
            [{"exact_copy_share": copy_share, "holdout_copy_share_baseline": baseline}]
        ),
        "Re-identification Attacks": attack_table(metrics),
        "DCR Histogram": _histogram(d_st[:, 0], d_sh),
    }
    notes = []
    if not sensitive:
        notes.append(
            "No sensitive columns were named, so inference risk was not measured. Name the "
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
        statement=statement(metrics, risks),
    )


def memorization_checks(
    real_train: pd.DataFrame,
    synthetic: pd.DataFrame,
    metadata: Metadata,
    *,
    holdout: pd.DataFrame,
    max_rows: int | None = 10_000,
    random_state: int | None = 0,
) -> dict[str, float]:
    """The two memorization signals of :func:`evaluate_privacy` alone, computed the same way:
    the DCR share against every training row (with its standard error) and the distance
    membership-inference AUC (with its standard error). For a model search that scores many
    candidates: the attacks (singling out, linkability, inference, DOMIAS) are left out.

    >>> import numpy as np, pandas as pd
    >>> from clinsynth import Metadata
    >>> rng = np.random.default_rng(0)
    >>> train, holdout = (pd.DataFrame({"x": rng.normal(size=200)}) for _ in range(2))
    >>> md = Metadata.detect_from_dataframe(train)
    >>> memorization_checks(train, train, md, holdout=holdout)["dcr_share"]
    1.0
    """
    table, train, synth, hold = check_release_inputs(metadata, real_train, synthetic, holdout)
    columns = statistical_columns(table)
    if not columns:
        raise DataError(
            "The metadata has no statistical column to measure privacy on. Declare the sdtypes "
            "of the columns (numerical, categorical, ...)."
        )
    rng = np.random.default_rng(random_state)
    h = subsample(hold, max_rows, rng)
    s = subsample(synth, max_rows, rng)
    t = subsample(train, len(h), rng)
    enc = FeatureEncoder(table, columns).fit(train)
    x_train, xt, xh, xs = enc.transform(train), enc.transform(t), enc.transform(h), enc.transform(s)
    closeness = dcr_share(x_train, xh, xs)
    membership = distance_mia(xt, xh, xs)
    return {
        "dcr_share": closeness["dcr_share"],
        "dcr_share_se": closeness["dcr_share_se"],
        "mia_auc": membership["mia_auc"],
        "mia_auc_se": membership["mia_auc_se"],
    }
