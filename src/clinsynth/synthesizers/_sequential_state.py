"""The saved state of the sequential synthesizer: its context copula nested in ``model.json``
(checked before anything is built: a bundle is untrusted input)."""

from __future__ import annotations

from typing import Any

from clinsynth.errors import BundleError
from clinsynth.metadata import Metadata
from clinsynth.synthesizers import _rules
from clinsynth.transform import TableTransformer

_KEYS = {
    "axis": dict,
    "context_columns": list,
    "event_columns": list,
    "bounds": dict,
    "n_event_rules": int,
    "gap_knots": list,
    "event_table": dict,
    "event_model_table": dict,
    "context_model": dict,
    "context_encoder": dict,
    "context_table": dict,
}
_CONTEXT_KEYS = {"metadata": dict, "params": dict, "transformer": dict, "state": dict}


def rule_columns(rule: Any) -> set[str]:
    """Every column a rule reads or writes."""
    return set(rule.columns) | set(getattr(rule, "outputs", ()))


def _check(state: Any, keys: dict[str, type], where: str) -> None:
    if not isinstance(state, dict):
        raise BundleError(f"{where} must be an object.")
    problems = [
        f"'{k}' must be a {t.__name__}"
        for k, t in keys.items()
        if not isinstance(state.get(k), t) or isinstance(state.get(k), bool)
    ]
    if problems:
        raise BundleError(f"{where} is damaged: {'; '.join(problems)}.")


def check_state(state: Any, tensors: dict[str, Any]) -> None:
    """The fields and tensors the sequential model needs, each of the right kind."""
    _check(state, _KEYS, "model.json")
    _check(state["context_model"], _CONTEXT_KEYS, "model.json context_model")
    axis = state["axis"]
    if axis.get("kind") not in ("number", "datetime") or not isinstance(
        axis.get("unit"), int | float
    ):
        raise BundleError("model.json axis must name a kind (number, datetime) and a unit.")
    knots = state["gap_knots"]
    if len(knots) < 2 or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in knots
    ):
        raise BundleError("model.json gap_knots must be a list of at least two numbers.")
    if any(b < a for a, b in zip(knots, knots[1:], strict=False)) or not all(
        abs(v) < 1e3 for v in knots
    ):
        raise BundleError("model.json gap_knots must be increasing log gaps.")
    if not float(axis["unit"]) > 0:
        raise BundleError("model.json axis unit must be > 0.")
    if not any(k.startswith("net.") for k in tensors):
        raise BundleError("weights.pt holds no weights of the event network.")


def context_model_state(model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fitted context copula as JSON + tensors (as its own bundle would hold it)."""
    from clinsynth.synthesizers._base import _jsonable_params

    state, tensors = model._get_state()
    params = {k: v for k, v in model.get_params().items() if k not in model._runtime_params}
    return {
        "metadata": model.get_metadata().to_dict(),
        "params": _jsonable_params(params),
        "transformer": model._transformer_.to_dict(),
        "state": state,
        "rules": _rules.to_json(getattr(model, "_rules_", [])),
        "dtypes": model._dtypes_,
        "seeds": [model._sample_seed_, model._fit_seed_],
    }, tensors


def context_model_from_state(state: dict[str, Any], tensors: dict[str, Any]) -> Any:
    """Rebuild the context copula saved by :func:`context_model_state`."""
    from clinsynth.synthesizers._copula import GaussianCopulaSynthesizer

    metadata = Metadata.from_dict(state["metadata"])
    model = GaussianCopulaSynthesizer(metadata, **state["params"])
    model._transformer_ = TableTransformer.from_dict(
        state["transformer"], metadata, where="model.json context_model transformer"
    )
    model._rules_ = _rules.from_json(state.get("rules", []))
    model._dtypes_ = dict(state.get("dtypes", {}))
    seeds = state.get("seeds", [0, 0])
    model._sample_seed_, model._fit_seed_ = int(seeds[0]), int(seeds[1])
    model.fit_seconds_, model.num_training_rows_ = 0.0, 0
    model._loss_history_ = None
    model._refiner_ = None
    model._set_state(state["state"], tensors)
    model._fitted = True
    model.reset_sampling()
    return model
