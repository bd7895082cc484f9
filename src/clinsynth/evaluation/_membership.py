"""Closeness and membership: the DCR share, and two membership-inference attacks.

Records are rows of the :class:`~clinsynth.evaluation._encoding.FeatureEncoder` matrix
(standardized numbers, scaled one-hot categories; Euclidean distance).

**DCR share against all training records.** The classic DCR share is the share of synthetic rows
whose nearest real record is a training record rather than a holdout record; with equal-size
train and holdout, 0.5 means "no closer to the training patients than to anyone else" and a
copy of the training rows gives 1.0. Subsampling the training set to the holdout's size loses
the copy's twins (a verbatim copy read as 0.74 with a 70/30 split), so every training record is
kept (``N`` of them, ``M`` holdout records) and the sizes are corrected for:

* ``w_i`` = the share of training records among the real records nearest to synthetic row ``i``
  (1 or 0, or the split of a tie: records at the same distance share the row equally);
* ``p = mean(w_i)``. If the synthetic rows are drawn independently of which real records were
  used for training, each of the ``N + M`` real records is equally likely to be the nearest, so
  ``E[p] = p0 = N / (N + M)`` exactly;
* a synthetic set in which a share ``c`` of the rows copies (or hugs) a training record and the
  rest is drawn afresh has ``p = c + (1 - c) p0``, so ``c = (p - p0) / (1 - p0)``;
* ``dcr_share = (1 + c) / 2`` (clipped to [0, 1]) is the value the classic DCR share takes on that
  set with equal sizes: 0.5 for no copying, 1.0 for a verbatim copy, and ``p`` itself when
  ``N = M``.

Its standard error is exact under "no leakage": then, given the real records (unlabelled) and the
synthetic rows, which ``N`` records are the training ones is a uniformly random choice, so with
``m_j`` the share of synthetic rows assigned to real record ``j`` (``p`` sums ``m_j`` over the
training records), ``Var(p) = N M / ((N + M)(N + M - 1)) * sum_j (m_j - 1 / (N + M))²``. This
counts both the synthetic sample's noise and the draw of the real records (some records are
nearest to many synthetic rows, "hubs"). ``dcr_share_se = sd(p) / (2 (1 - p0))``. Identical real
records are grouped before the search; ties between distinct records beyond the ``K`` nearest
are left to the first ``K``.

**Distance membership attack.** Each real record is scored by minus its distance to the nearest
synthetic row; ROC AUC of training records against holdout records.

**Density membership attack (DOMIAS; van Breugel et al., AISTATS 2023).** A record is scored by
``p_synthetic(x) / p_reference(x)``: a model that memorizes its training rows puts more density on
them than the population does. Densities are Gaussian kernel density estimates (Scott's
bandwidth) on a whitened principal-component embedding (at most 8 dimensions) fitted on the
synthetic and reference records. The reference records are the holdout, cross-fitted in two folds
so that no scored record is in its own reference: fold A's density scores fold B's records and
half of the training records, and the other way round. ROC AUC of training against holdout
records; 0.5 means no leakage.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

#: Nearest unique real records looked at per synthetic row (ties among more are left to these).
TIE_NEIGHBORS = 8
#: Dimensions of the embedding the DOMIAS densities are estimated on.
DOMIAS_DIMENSIONS = 8
_BLOCK = 4_000_000


def nearest_distances(reference: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    nn = NearestNeighbors(n_neighbors=min(k, len(reference)), n_jobs=1).fit(reference)
    return nn.kneighbors(queries, return_distance=True)[0]


def dcr_share(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray) -> dict:
    """The size-corrected DCR share, its standard error under no leakage, and its parts."""
    n, m = len(train), len(holdout)
    real = np.vstack([train, holdout])
    unique, inverse = np.unique(real, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    n_train = np.bincount(inverse[:n], minlength=len(unique)).astype(np.float64)
    n_all = np.bincount(inverse, minlength=len(unique)).astype(np.float64)
    nn = NearestNeighbors(n_neighbors=min(TIE_NEIGHBORS, len(unique)), n_jobs=1).fit(unique)
    dist, idx = nn.kneighbors(synthetic, return_distance=True)
    tied = dist <= dist[:, :1] * (1 + 1e-9) + 1e-12
    # a synthetic row's unit of mass is shared by the real records at its smallest distance
    size = np.where(tied, n_all[idx], 0.0)
    mass = size / size.sum(axis=1, keepdims=True)
    w = (np.where(tied, n_train[idx], 0.0)).sum(axis=1) / size.sum(axis=1)
    p = float(w.mean())
    p0 = n / (n + m)
    per_class = np.bincount(idx.ravel(), weights=mass.ravel(), minlength=len(unique))
    per_record = per_class / len(synthetic) / n_all  # m_j of each record of a class
    spread = float((n_all * (per_record - 1 / (n + m)) ** 2).sum())
    var_p = n * m / ((n + m) * (n + m - 1)) * spread if n + m > 1 else 0.0
    copied = (p - p0) / (1 - p0)
    return {
        "dcr_share": float(min(1.0, max(0.0, (1 + copied) / 2))),
        "dcr_share_se": float(np.sqrt(var_p) / (2 * (1 - p0))),
        "dcr_share_raw": p,
        "dcr_share_raw_expected": p0,
    }


def distance_mia(xt: np.ndarray, xh: np.ndarray, xs: np.ndarray) -> dict:
    """Membership AUC of minus the distance to the nearest synthetic row."""
    d_t = nearest_distances(xs, xt, 1)[:, 0]
    d_h = nearest_distances(xs, xh, 1)[:, 0]
    return {"mia_auc": _auc(-d_t, -d_h), "mia_auc_se": auc_null_se(len(xt), len(xh))}


def domias(xt: np.ndarray, xh: np.ndarray, xs: np.ndarray, rng: np.random.Generator) -> dict:
    """DOMIAS-style density-ratio membership AUC, cross-fitted on two folds of the holdout."""
    folds = np.array_split(rng.permutation(len(xh)), 2)
    members = np.array_split(rng.permutation(len(xt)), 2)
    if min(len(f) for f in folds) < 2 or len(xs) < 2:
        return {"domias_auc": float("nan"), "domias_auc_se": float("nan")}
    scores_t, scores_h = [], []
    for k in (0, 1):
        reference, scored = xh[folds[1 - k]], xh[folds[k]]
        embed = _embedding(np.vstack([xs, reference]))
        log_syn = _kde(embed(xs))
        log_ref = _kde(embed(reference))
        for points, out in ((xt[members[k]], scores_t), (scored, scores_h)):
            z = embed(points)
            out.append(log_syn(z) - log_ref(z))
    s_t, s_h = np.concatenate(scores_t), np.concatenate(scores_h)
    return {"domias_auc": _auc(s_t, s_h), "domias_auc_se": auc_null_se(len(s_t), len(s_h))}


def _embedding(fit_on: np.ndarray):
    """Whitened principal components (at most DOMIAS_DIMENSIONS, none of zero variance)."""
    pca = PCA(n_components=min(DOMIAS_DIMENSIONS, *fit_on.shape), svd_solver="full")
    pca.fit(fit_on)
    keep = max(1, int((pca.explained_variance_ > 1e-9 * pca.explained_variance_[0]).sum()))
    components, scale = pca.components_[:keep], np.sqrt(pca.explained_variance_[:keep])
    mean = pca.mean_
    return lambda x: ((x - mean) @ components.T) / scale


def _kde(points: np.ndarray):
    """Log density of a Gaussian KDE with Scott's bandwidth (the points are whitened); exact,
    by blocks of squared distances."""
    n, d = points.shape
    h = float(n ** (-1.0 / (d + 4)))
    norm = np.log(n) + 0.5 * d * np.log(2 * np.pi * h * h)
    sq_points = (points**2).sum(axis=1)

    def log_density(x: np.ndarray) -> np.ndarray:
        out = np.empty(len(x))
        step = max(1, _BLOCK // max(n, 1))
        for start in range(0, len(x), step):  # blocks of queries bound the memory
            xb = x[start : start + step]
            sq = (xb**2).sum(axis=1)[:, None] + sq_points[None, :] - 2 * xb @ points.T
            logk = np.maximum(sq, 0) * (-0.5 / (h * h))
            top = logk.max(axis=1, keepdims=True)
            total = np.exp(logk - top).sum(axis=1)
            out[start : start + len(xb)] = top[:, 0] + np.log(total)
        return out - norm

    return log_density


def _auc(members: np.ndarray, others: np.ndarray) -> float:
    labels = np.r_[np.ones(len(members)), np.zeros(len(others))]
    return float(roc_auc_score(labels, np.r_[members, others]))


def auc_null_se(n1: int, n0: int) -> float:
    """Standard error of a ROC AUC when the two groups do not differ (Mann-Whitney)."""
    return float(np.sqrt((n1 + n0 + 1) / (12 * n1 * n0)))
