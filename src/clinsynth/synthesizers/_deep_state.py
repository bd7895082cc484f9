"""A deep model's saved state checked before any network is built from it (a bundle is
untrusted input): its parameters against the model's constraints, its JSON state against a
schema, and every tensor against the shape the networks need, found by building them on
torch's ``meta`` device, which allocates nothing (a tampered ``embedding_dim`` of 10**9 costs
no memory and gives a clear error)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from clinsynth.errors import BundleError, ClinsynthError
from clinsynth.io import _schema as S
from clinsynth.io._bundle import check_tensor

if TYPE_CHECKING:
    from clinsynth.synthesizers._deep import DeepSynthesizer

#: Most rows of the saved per-batch loss history.
MAX_HISTORY_ROWS = 10_000_000

STATE = S.mapping(
    {
        "output_dim": S.integer(0, 10**8),
        "batch_loss_columns": S.array(S.text(100), min_len=2, max_len=100),
        "stopped_early": S.boolean(),
        "best_epoch": S.integer(0, 10**9, null=True),
        "trained_precision": S.text(20, null=True, choices=("float32", "bfloat16")),
        "stopped_by_guard": S.integer(0, 10**9, null=True),
        "memorization": S.array(
            S.mapping(
                {
                    "epoch": S.integer(0, 10**9),
                    "dcr_share": S.number(0.0, 1.0),
                    "dcr_share_se": S.number(0.0, 1.0),
                },
                required=("epoch", "dcr_share", "dcr_share_se"),
            ),
            max_len=10_000,
        ),
    },
    required=("output_dim", "batch_loss_columns"),
    extra=True,
    values=S.json_value(),
    keys=S.text(100),
)


def check_params(model: DeepSynthesizer, where: str) -> None:
    """The saved parameters meet the model's constraints (sizes are ints >= 1, ...)."""
    try:
        model._validate_params()
        model._check_params()
    except ClinsynthError as exc:
        raise BundleError(f"{where}: {exc} The bundle was damaged or tampered with.") from None


def expected_shapes(model: DeepSynthesizer) -> dict[str, tuple[int, ...]]:
    """``{tensor name: shape}`` of every network's state, from a build on the meta device."""
    model._meta_build = True
    try:
        with torch.device("meta"):
            model._build_networks(torch.Generator(), torch.device("meta"))
        return {
            f"{name}.{key}": tuple(value.shape)
            for name, net in model._networks().items()
            for key, value in net.state_dict().items()
        }
    finally:
        del model._meta_build  # a switch of this check, not state of the model


def check_tensors(model: DeepSynthesizer, tensors: dict[str, Any], where: str) -> None:
    """Every network tensor present, with the shape the parameters give, finite; nothing else."""
    shapes = expected_shapes(model)
    own = {k for k in tensors if k.split(".", 1)[0] in model._network_names}
    missing = sorted(set(shapes) - own)
    extra = sorted(own - set(shapes))
    if missing or extra:
        raise BundleError(
            f"{where}: the network tensors do not match the model's parameters (missing "
            f"{missing[:5]}, unexpected {extra[:5]}). The bundle was damaged or tampered with; "
            "fit and save the model again."
        )
    for key, shape in shapes.items():
        value = tensors[key]
        check_tensor(tensors, key, shape, where, floating=value.dtype.is_floating_point)


def check_history(tensors: dict[str, Any], columns: list[str], where: str) -> None:
    value = check_tensor(tensors, "history.batch", (None, len(columns)), where, finite=False)
    if value.shape[0] > MAX_HISTORY_ROWS:
        raise BundleError(f"{where}: the loss history has {value.shape[0]:,} rows; too many.")
