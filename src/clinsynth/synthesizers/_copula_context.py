"""The Gaussian copula conditioned on a parent's context (what ``multitable`` asks of a table
model through ``BaseSynthesizer.sample_given_context`` and ``context_strata``).

The context values become normal scores through the model's own marginals, and the other
variables are drawn from the conditional multivariate normal
``N(S_oc S_cc^-1 z_c, S_oo - S_oc S_cc^-1 S_co)``: two matrix products for all rows. A stratified
copula picks each row's stratum from its context (a Gaussian density of the context per
stratum, :func:`strata_statistics`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import special

if TYPE_CHECKING:
    from clinsynth.synthesizers._copula import GaussianCopulaSynthesizer

_EPS = 1e-9


def fitted_copulas(model: GaussianCopulaSynthesizer) -> list | None:
    """The fitted copula strata of the model (None when they are not usable)."""
    parts = getattr(model, "_copulas_", None)
    if not parts or not all(hasattr(c, "fitted") and hasattr(c, "decode") for c in parts):
        return None
    return list(parts)


def strata_statistics(
    model: GaussianCopulaSynthesizer, frame: pd.DataFrame, columns: list[str]
) -> list[dict]:
    """Mean and covariance of the context columns in each stratum of a stratified copula.

    A synthetic parent's context then tells which stratum (say, which lab test) its children
    come from: each stratum is weighted by a Gaussian density of the context. Empty for models
    with a single stratum.
    """
    parts = fitted_copulas(model)
    if parts is None or len(parts) < 2 or not columns:
        return []
    column = model._stratum_column_
    codes = model._transformer_.get_transformer(column).codes(frame[column])
    group_of = np.full(max(codes.max(initial=0), max(max(g) for g in model._groups_ if g)) + 1, -1)
    for g, levels in enumerate(model._groups_):
        group_of[np.asarray(levels, dtype=np.int64)] = g
    x = frame[columns].to_numpy(dtype=np.float64)
    present = ~np.isnan(x).any(axis=1)
    out = []
    for g in range(len(parts)):
        rows = x[present & (group_of[codes] == g)]
        if len(rows) < 2:
            out.append({"mean": [0.0] * len(columns), "cov": np.eye(len(columns)).tolist()})
            continue
        cov = np.atleast_2d(np.cov(rows, rowvar=False)) + 1e-3 * np.eye(len(columns))
        out.append({"mean": rows.mean(axis=0).tolist(), "cov": cov.tolist()})
    return out


def _strata_log_density(
    context: np.ndarray, weights: np.ndarray, strata: list[dict] | None
) -> np.ndarray:
    """Log prior + log Gaussian density of each context row under each stratum."""
    n, k = len(context), len(weights)
    log_p = np.tile(np.log(np.maximum(weights, 1e-300)), (n, 1))
    if strata and len(strata) == k:
        for s, stats in enumerate(strata):
            cov = np.asarray(stats["cov"])
            diff = context - np.asarray(stats["mean"])
            _, logdet = np.linalg.slogdet(cov)
            log_p[:, s] += -0.5 * ((diff @ np.linalg.inv(cov)) * diff).sum(axis=1) - 0.5 * logdet
    return log_p


def copula_conditioned(
    model: GaussianCopulaSynthesizer,
    context: pd.DataFrame,
    rng: np.random.Generator,
    *,
    rows: np.ndarray | None = None,
    strata: list[dict] | None = None,
) -> pd.DataFrame:
    """Draw from a fitted Gaussian copula conditioned on continuous context columns.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from clinsynth import Metadata, GaussianCopulaSynthesizer
    >>> r = np.random.default_rng(0)
    >>> c = r.normal(size=2000)
    >>> df = pd.DataFrame({"ctx": c, "y": 2 * c + r.normal(scale=0.3, size=2000)})
    >>> m = GaussianCopulaSynthesizer(Metadata.detect_from_dataframe(df), random_state=0).fit(df)
    >>> out = copula_conditioned(m, pd.DataFrame({"ctx": [-2.0, 2.0]}), r)
    >>> bool(out["y"][0] < 0 < out["y"][1])
    True
    """
    parts = fitted_copulas(model)
    variables = model._variables()
    rows = np.arange(len(context)) if rows is None else rows
    n = len(rows)
    x = context.to_numpy(dtype=np.float64)
    if len(parts) > 1:
        # The density is a property of the context: computed once per parent row.
        log_p = _strata_log_density(x, np.asarray(model._weights_, dtype=np.float64), strata)
        assign = np.argmax(log_p[rows] + rng.gumbel(size=(n, len(parts))), axis=1)
    else:
        assign = np.zeros(n, dtype=np.int64)
    encoded = np.zeros((n, model._transformer_.output_dim), dtype=np.float32)
    columns = list(context.columns)
    for s, copula in enumerate(parts):
        members = np.flatnonzero(assign == s)
        if len(members) == 0:
            continue
        values = pd.DataFrame(x[rows[members]], columns=columns)
        zt = _conditional_scores(copula, variables, values, rng)
        block = np.zeros((len(members), encoded.shape[1]), dtype=np.float32, order="F")
        copula.decode(zt.astype(np.float32), variables, block, slice(0, len(members)))
        encoded[members] = block
    return model._decode(encoded, rng).drop(columns=list(context.columns), errors="ignore")


def _conditional_scores(
    copula: object, variables: list, context: pd.DataFrame, rng: np.random.Generator
) -> np.ndarray:
    """Normal scores (variables x rows) with the context variables fixed at their values and the
    others drawn from the conditional normal."""
    value_of: dict[str, int] = {}
    null_of: dict[str, int] = {}
    for j, (span, _) in enumerate(variables):
        if span.role == "null":
            null_of[span.column] = j
        elif span.column in context.columns:
            value_of[span.column] = j
    n, k = len(context), len(variables)
    fixed: list[int] = []
    scores: list[np.ndarray] = []
    for column in context.columns:
        x = context[column].to_numpy(dtype=np.float64)
        if column in value_of:
            fixed.append(value_of[column])
            scores.append(_to_scores(copula.fitted[value_of[column]], x, rng))
        if column in null_of:  # the context is present: the "present" level's interval
            j = null_of[column]
            cum = copula.marginals[j]["cum"]
            cut = float(cum[0]) if cum else 1.0
            fixed.append(j)
            scores.append(special.ndtri(np.clip(rng.random(n) * cut, _EPS, 1 - _EPS)))
    free = [j for j in range(k) if j not in set(fixed)]
    corr = np.asarray(copula.correlation, dtype=np.float64)
    zt = np.empty((k, n), dtype=np.float64)
    zc = np.vstack(scores) if scores else np.zeros((0, n))
    zt[fixed] = zc
    if free:
        s_cc = corr[np.ix_(fixed, fixed)] + 1e-6 * np.eye(len(fixed))
        s_oc = corr[np.ix_(free, fixed)]
        gain = np.linalg.solve(s_cc, s_oc.T).T
        cov = corr[np.ix_(free, free)] - gain @ s_oc.T
        zt[free] = gain @ zc + _psd_sqrt(cov) @ rng.standard_normal((len(free), n))
    return zt


def _to_scores(marginal: object, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Values to normal scores through a fitted marginal (the inverse of its ``ppf_z``)."""
    if marginal is None:  # a discrete variable: context columns are numerical, so unused
        return np.zeros(len(x))
    if hasattr(marginal, "_xg"):  # a parametric family, tabulated on a normal-score grid
        return np.interp(x, marginal._xg, marginal._zg)
    # Families kept as quantiles of the data (empirical, kernel-smoothed): values and scores.
    xs, zs = marginal._xs, marginal._zs
    if marginal.params.get("discrete"):
        # Value k owns the probability interval [p_k, p_k+1): draw inside it, interpolating
        # between neighbouring values for values never seen in training.
        ps = special.ndtr(zs)
        lo = np.interp(x, xs, ps[:-1])
        hi = np.interp(x, xs, ps[1:])
        u = lo + rng.random(len(x)) * (hi - lo)
        return special.ndtri(np.clip(u, _EPS, 1 - _EPS))
    return np.interp(x, xs, zs)


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    cov = (cov + cov.T) / 2
    vals, vecs = np.linalg.eigh(cov)
    vals = np.maximum(vals, 0.0)
    # A symmetric square root is as good as a Cholesky factor for drawing, and exists for
    # singular (perfectly explained) blocks.
    return (vecs * np.sqrt(vals)) @ vecs.T
