"""The Gaussian copula's saved state checked before anything is built from it (a bundle is
untrusted input): every marginal against its variable, every correlation matrix against the
number of variables, the strata against the levels of their column."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from clinsynth.io import _schema as S
from clinsynth.io._bundle import check_tensor
from clinsynth.synthesizers._marginals import FAMILIES

if TYPE_CHECKING:
    from clinsynth.synthesizers._copula import GaussianCopulaSynthesizer

#: Most levels of a discrete marginal and points of an empirical one a bundle may declare.
MAX_LEVELS = 1_000_000
MAX_POINTS = 100_000
MAX_STRATA = 1_000

_PARAM = S.any_of(
    S.number(finite=False),
    S.boolean(),
    S.array(S.number(), max_len=MAX_POINTS),
    what="a number, true/false or a list of numbers",
)
_MARGINAL = S.any_of(
    S.mapping(
        {
            "kind": S.text(20, choices=("discrete",)),
            "cum": S.array(S.number(0, 1), max_len=MAX_LEVELS),
            "size": S.integer(1, MAX_LEVELS),
        },
        required=("kind", "cum", "size"),
    ),
    S.mapping(
        {
            "kind": S.text(20, choices=("continuous",)),
            "family": S.text(20, choices=FAMILIES),
            "params": S.mapping(values=_PARAM, keys=S.text(30), max_len=20),
        },
        required=("kind", "family", "params"),
    ),
    what="a discrete or continuous marginal as clinsynth writes it",
)
_STATE = S.mapping(
    {
        "stratum_column": S.text(10_000, null=True),
        "groups": S.array(
            S.array(S.integer(0, MAX_LEVELS), max_len=MAX_LEVELS), max_len=MAX_STRATA
        ),
        "weights": S.array(S.number(0, 1), min_len=1, max_len=MAX_STRATA),
        "copulas": S.array(
            S.mapping({"marginals": S.array(_MARGINAL, max_len=100_000)}, required=("marginals",)),
            min_len=1,
            max_len=MAX_STRATA,
        ),
        # Since issue 19: marginals fitted on float64 values (optional: older bundles lack it).
        "exact_values": S.boolean(),
    },
    required=("stratum_column", "groups", "weights", "copulas"),
)
#: Parameters each parametric family needs, and which of them must be positive.
_FAMILY_PARAMS = {
    "norm": (("loc", "scale"), ("scale",)),
    "lognorm": (("s", "loc", "scale"), ("s", "scale")),
    "gamma": (("a", "loc", "scale"), ("a", "scale")),
    "beta": (("a", "b", "loc", "scale"), ("a", "b", "scale")),
    "uniform": (("loc", "scale"), ("scale",)),
}


def check_state(model: GaussianCopulaSynthesizer, state: Any, tensors: dict[str, Any]) -> None:
    """Raise a :class:`~clinsynth.errors.BundleError` naming what in ``state`` or ``tensors``
    does not fit the model's transformer."""
    where = "model.json (gaussian_copula)"
    S.check_json(state, _STATE, where)
    variables = model._variables()
    k = len(variables)
    problems: list[str] = []
    copulas = state["copulas"]
    if not len(copulas) == len(state["weights"]) == max(len(state["groups"]), 1):
        problems.append("copulas, weights and groups must have the same length")
    if abs(sum(state["weights"]) - 1.0) > 1e-6:
        problems.append("the stratum weights must sum to 1")
    for i, copula in enumerate(copulas):
        marginals = copula["marginals"]
        if len(marginals) != k:
            problems.append(
                f"copula {i} has {len(marginals)} marginals for the transformer's {k} variables"
            )
            continue
        for j, ((span, _), marginal) in enumerate(zip(variables, marginals, strict=True)):
            problems.extend(_marginal_problems(f"copula {i}, variable {j}", span, marginal))
    if problems:
        S.raise_problems(problems, where)
    for i in range(len(copulas)):
        key = f"correlation_{i}"
        matrix = check_tensor(tensors, key, (k, k), "weights.pt (gaussian_copula)")
        values = matrix.double().numpy()
        if k and (
            np.abs(values - values.T).max() > 1e-6
            or np.abs(np.diag(values) - 1).max() > 1e-6
            or np.abs(values).max() > 1 + 1e-6
        ):
            S.raise_problems(
                [f"'{key}' is not a correlation matrix (symmetric, unit diagonal, |r| <= 1)"],
                "weights.pt (gaussian_copula)",
            )


def _marginal_problems(at: str, span: Any, marginal: dict[str, Any]) -> list[str]:
    if marginal["kind"] == "discrete":
        size = span.n_levels if span.activation == "label" else span.dim
        if span.activation not in ("label", "softmax"):
            return [f"{at} is discrete, but its variable is a number"]
        if marginal["size"] != size or len(marginal["cum"]) != size - 1:
            return [f"{at} has {marginal['size']} levels where its column has {size}"]
        if np.any(np.diff(marginal["cum"]) < 0):
            return [f"{at}: the cumulative frequencies must not decrease"]
        return []
    if span.activation in ("label", "softmax"):
        return [f"{at} is continuous, but its variable is a category"]
    family, params = marginal["family"], marginal["params"]
    if family in ("empirical", "kde"):
        x, p = params.get("x"), params.get("p")
        if not isinstance(x, list) or not isinstance(p, list):
            return [f"{at}: the {family} marginal needs lists 'x' and 'p'"]
        discrete = bool(params.get("discrete"))
        if len(x) < 1 or len(p) != len(x) + (1 if discrete else 0):
            return [f"{at}: the {family} marginal's 'x' and 'p' do not match"]
        if np.any(np.diff(x) < 0) or np.any(np.diff(p) < 0) or min(p) < 0 or max(p) > 1:
            return [f"{at}: the {family} marginal's points must increase, with p in [0, 1]"]
        return []
    names, positive = _FAMILY_PARAMS[family]
    missing = [n for n in names if not isinstance(params.get(n), int | float)]
    if missing:
        return [f"{at}: the {family} marginal lacks {missing}"]
    if any(not np.isfinite(params[n]) for n in names) or any(params[n] <= 0 for n in positive):
        return [f"{at}: the {family} marginal's parameters are out of range"]
    return []
