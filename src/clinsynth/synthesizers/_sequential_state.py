"""The saved state of the sequential synthesizer: its context copula nested in ``model.json``
(checked before anything is built: a bundle is untrusted input)."""

from __future__ import annotations

from typing import Any

from clinsynth.errors import BundleError
from clinsynth.metadata import Metadata, TableMetadata
from clinsynth.synthesizers import _rules
from clinsynth.synthesizers import _sequence_data as sd
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
    from clinsynth.synthesizers._persist import jsonable_params

    state, tensors = model._get_state()
    params = {k: v for k, v in model.get_params().items() if k not in model._runtime_params}
    return {
        "model": model._model_name,
        "metadata": model.get_metadata().to_dict(),
        "params": jsonable_params(params),
        "transformer": model._transformer_.to_dict(),
        "state": state,
        "rules": _rules.to_json(getattr(model, "_rules_", [])),
        "dtypes": model._dtypes_,
        "seeds": [model._sample_seed_, model._fit_seed_],
    }, tensors


def context_model_from_state(state: dict[str, Any], tensors: dict[str, Any]) -> Any:
    """Rebuild the context model saved by :func:`context_model_state`: the Gaussian copula,
    or the DP marginal model of a model fitted with differential privacy."""
    from clinsynth.synthesizers._copula import GaussianCopulaSynthesizer
    from clinsynth.synthesizers._dp_marginal import DPMarginalSynthesizer

    classes = {"gaussian_copula": GaussianCopulaSynthesizer, "dp_marginal": DPMarginalSynthesizer}
    name = state.get("model", "gaussian_copula")
    if name not in classes:
        raise BundleError(
            f"model.json context_model names the model {name!r}; expected one of {sorted(classes)}."
        )
    metadata = Metadata.from_dict(state["metadata"])
    model = classes[name](metadata, **state["params"])
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
    model._fitted_ = True
    model.reset_sampling()
    return model


def get_state(model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A fitted SequentialSynthesizer as ``(model.json, tensors)``: statistics and weights."""
    context_state, context_tensors = context_model_state(model._context_model_)
    state = {
        "axis": model._axis_.to_dict(),
        "context_columns": model._context_,
        "event_columns": model._event_columns_,
        "bounds": model._bounds_.to_dict(),
        "n_event_rules": model._n_event_rules_,
        "gap_knots": model._gap_knots_,
        "num_sequences": model.num_training_sequences_,
        "max_sequence_length": model.max_sequence_length_,
        "constants": model._constants_,
        "event_table": model._event_table_.to_dict(),
        "event_model_table": model._transformer_._table().to_dict(),
        "context_model": context_state,
        "context_encoder": model._context_encoder_.to_dict(),
        "context_table": model._context_encoder_._table().to_dict(),
    }
    tensors = {f"net.{k}": v.detach().cpu() for k, v in model._net_.state_dict().items()}
    tensors.update({f"context.{k}": v for k, v in context_tensors.items()})
    return state, tensors


def set_state(model: Any, state: dict[str, Any], tensors: dict[str, Any]) -> None:
    """Restore what :func:`get_state` wrote, every field checked first."""
    check_state(state, tensors)
    axis = state["axis"]
    model._axis_ = sd.TimeAxis(
        axis["kind"],
        float(axis["unit"]),
        axis.get("fmt"),
        bool(axis.get("integer")),
        bool(axis.get("text")),
    )
    model._context_ = [str(c) for c in state["context_columns"]]
    model._event_columns_ = [str(c) for c in state["event_columns"]]
    model._bounds_ = sd.Bounds.from_dict(state["bounds"])
    model._n_event_rules_ = int(state["n_event_rules"])
    model._gap_knots_ = [float(v) for v in state["gap_knots"]]
    model.num_training_sequences_ = int(state.get("num_sequences", 0))
    longest = state.get("max_sequence_length")
    if longest is not None and (not isinstance(longest, int) or isinstance(longest, bool)):
        raise BundleError("model.json max_sequence_length must be an int or null.")
    if longest is not None and longest < 1:
        raise BundleError("model.json max_sequence_length must be >= 1.")
    model.max_sequence_length_ = longest
    constants = state.get("constants", {})
    if not isinstance(constants, dict) or not all(
        k in (sd.N_EVENTS, sd.START, sd.RATE) and isinstance(v, int | float)
        for k, v in constants.items()
    ):
        raise BundleError("model.json constants must map the model's own columns to numbers.")
    model._constants_ = dict(constants)
    model._event_table_ = TableMetadata.from_dict(state["event_table"])
    model._transformer_.metadata = TableMetadata.from_dict(state["event_model_table"])
    context_table = TableMetadata.from_dict(state["context_table"])
    model._context_encoder_ = TableTransformer.from_dict(
        state["context_encoder"], context_table, where="model.json context_encoder"
    )
    prefix = "context."
    model._context_model_ = context_model_from_state(
        state["context_model"],
        {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)},
    )
    device = model._device()
    model._net_ = model._build_net(device)
    weights = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
    expected = model._net_.state_dict()
    wrong = [
        k for k in expected if k not in weights or tuple(weights[k].shape) != expected[k].shape
    ]
    if wrong or set(weights) - set(expected):
        raise BundleError(
            f"weights.pt does not fit the event network (tensors {wrong[:3]} missing or of "
            "another shape). Fit and save the model again."
        )
    model._net_.load_state_dict(weights)
    model._net_.to(device).eval()
