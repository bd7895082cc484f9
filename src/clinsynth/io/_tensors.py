"""The tensor member of a bundle (``weights.pt``): written with ``torch.save``, read with
``torch.load(weights_only=True)`` and checked as untrusted input.

What is written is what the loader accepts, so a model cannot save a bundle it cannot load: a
flat dictionary of named dense real tensors (a model's numeric numpy arrays and numbers become
tensors; anything else is refused when saving, naming its key).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

from clinsynth.errors import BundleError
from clinsynth.io import _schema as S
from clinsynth.io._limits import shorten

WEIGHTS = "weights.pt"
MAX_TENSORS = 10_000


def tensor_bytes(tensors: dict[str, Any]) -> bytes:
    """``tensors`` as the bytes of ``weights.pt``."""
    import torch

    buffer = io.BytesIO()
    torch.save({key: _as_tensor(value, key) for key, value in tensors.items()}, buffer)
    return buffer.getvalue()


def _as_tensor(value: Any, key: str) -> Any:
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray | np.generic) and value.dtype.kind in "biuf":
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, bool | int | float):
        return torch.tensor(value)
    raise BundleError(
        f"The model's tensor '{key}' is a {type(value).__name__}, which a bundle cannot hold: "
        "give a tensor, a numeric numpy array or a number (put other state in the model's JSON "
        "state)."
    )


def load_tensors(path: Path, raw: bytes | None) -> dict[str, Any]:
    """The tensors of ``weights.pt`` (``raw``; None: the bundle has none), read without
    unpickling anything but tensors and checked: named, dense, real, on the CPU."""
    if raw is None:
        return {}
    import torch

    try:
        with warnings.catch_warnings():  # a damaged file's protocol notes: the error says it
            warnings.simplefilter("ignore")
            tensors = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged or unsafe file
        raise BundleError(
            f"Model '{path}' is corrupt ({WEIGHTS} could not be read safely: "
            f"{type(exc).__name__}). Fit and save the model again."
        ) from None
    problems: list[str] = []
    if not isinstance(tensors, dict) or len(tensors) > MAX_TENSORS:
        problems.append("it must hold a dictionary of named tensors")
    else:
        for key, value in tensors.items():
            if not isinstance(key, str) or len(key) > 300:
                problems.append(f"a tensor name {shorten(key)} is not a short string")
            elif not isinstance(value, torch.Tensor):
                problems.append(f"{shorten(key)} is a {type(value).__name__}, not a tensor")
            elif value.dtype.is_complex or value.is_sparse or value.device.type != "cpu":
                problems.append(f"{shorten(key)} is not a dense real tensor")
            if len(problems) >= S.MAX_PROBLEMS:
                break
    if problems:
        S.raise_problems(problems, f"Model '{path}': {WEIGHTS}")
    return tensors


def check_tensor(
    tensors: dict[str, Any],
    key: str,
    shape: tuple[int | None, ...],
    where: str,
    *,
    floating: bool = True,
    finite: bool = True,
) -> Any:
    """``tensors[key]``, checked to exist with ``shape`` (None: any size), floating-point
    (``floating``) and finite (``finite``) values.

    Raises
    ------
    BundleError
        Naming the tensor, the shape expected and the shape found.
    """
    import torch

    value = tensors.get(key)
    if not isinstance(value, torch.Tensor):
        raise BundleError(f"{where}: the tensor '{key}' is missing. Fit and save the model again.")
    ok = value.dim() == len(shape) and all(
        want is None or got == want for got, want in zip(value.shape, shape, strict=True)
    )
    if not ok:
        expected = "x".join("n" if s is None else str(s) for s in shape) or "a scalar"
        raise BundleError(
            f"{where}: the tensor '{key}' has shape {tuple(value.shape)}, where the model needs "
            f"{expected}. The bundle was damaged or tampered with; fit and save the model again."
        )
    if floating and (
        not value.dtype.is_floating_point or (finite and not bool(torch.isfinite(value).all()))
    ):
        raise BundleError(
            f"{where}: the tensor '{key}' must hold {'finite ' if finite else ''}floating-point "
            "numbers. The bundle was damaged or tampered with (or its training diverged); fit "
            "and save the model again."
        )
    return value
