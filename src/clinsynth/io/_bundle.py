"""Model bundles: a folder (or a .zip of it) of JSON files and one tensor file. Never pickle.

Layout::

    manifest.json     clinsynth version, bundle format, model name, parameters, metadata
    transformer.json  fitted column statistics (no rows, no identifiers, no personal data)
    model.json        the model's JSON state (copula marginals, network sizes, loss history)
    weights.pt        tensors (state dicts), read with torch.load(weights_only=True)

Writes are atomic: the bundle appears whole or not at all, and an existing bundle is replaced only
after the new one is complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from clinsynth._version import BUNDLE_FORMAT_VERSION, __version__
from clinsynth.errors import BundleError
from clinsynth.io._atomic import atomic_path

MANIFEST = "manifest.json"
WEIGHTS = "weights.pt"


def save_bundle(
    path: str | os.PathLike,
    manifest: dict[str, Any],
    documents: dict[str, Any],
    tensors: dict[str, Any] | None = None,
    *,
    archive: bool | None = None,
) -> Path:
    """Write a bundle to ``path`` (a folder, or a zip archive when it ends in ``.zip`` or
    ``archive`` is true)."""
    import torch

    path = Path(path)
    manifest = {
        "format": "clinsynth-model",
        "format_version": BUNDLE_FORMAT_VERSION,
        "clinsynth_version": __version__,
        **manifest,
    }

    def write_folder(folder: Path) -> None:
        (folder / MANIFEST).write_text(_dumps(manifest), encoding="utf-8")
        for name, doc in documents.items():
            (folder / name).write_text(_dumps(doc), encoding="utf-8")
        if tensors:
            torch.save(
                {k: v.detach().cpu() if hasattr(v, "detach") else v for k, v in tensors.items()},
                folder / WEIGHTS,
            )

    if archive if archive is not None else path.suffix.lower() == ".zip":
        staging = Path(tempfile.mkdtemp(prefix=".clinsynth-bundle-"))
        try:
            write_folder(staging)
            with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
                for file in sorted(staging.iterdir()):
                    zf.write(file, file.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    else:
        with atomic_path(path, directory=True) as tmp:
            write_folder(tmp)
    return path


def load_bundle(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Read ``(manifest, documents, tensors)`` from a bundle folder or zip; check its version."""
    path = Path(path)
    if not path.exists():
        raise BundleError(f"Model '{path}' does not exist. Check the path, or fit a model first.")
    files = _read_files(path)
    if MANIFEST not in files:
        raise BundleError(
            f"'{path}' is not a clinsynth model (no {MANIFEST}). Give the folder or .zip written "
            "by `clinsynth fit` or `synthesizer.save()`."
        )
    try:
        manifest = json.loads(files[MANIFEST])
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BundleError(
            f"Model '{path}' is corrupt ({MANIFEST} is not valid JSON). Fit and save the model "
            "again."
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != "clinsynth-model":
        raise BundleError(f"'{path}' is not a clinsynth model (its manifest has another format).")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > BUNDLE_FORMAT_VERSION:
        raise BundleError(
            f"Model '{path}' was saved by clinsynth {manifest.get('clinsynth_version', '?')} in "
            f"bundle format {version}, newer than this clinsynth {__version__} reads "
            f"(format {BUNDLE_FORMAT_VERSION}). Upgrade clinsynth: pip install -U clinsynth."
        )
    documents = {}
    for name, raw in files.items():
        if name.endswith(".json") and name != MANIFEST:
            try:
                documents[name] = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise BundleError(
                    f"Model '{path}' is corrupt ({name} is not valid JSON). Fit and save the "
                    "model again."
                ) from None
    tensors = _load_tensors(path, files.get(WEIGHTS))
    return manifest, documents, tensors


def _read_files(path: Path) -> dict[str, bytes]:
    if path.is_dir():
        return {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}
    try:
        with zipfile.ZipFile(path) as zf:
            return {name: zf.read(name) for name in zf.namelist() if "/" not in name.strip("/")}
    except (zipfile.BadZipFile, OSError):
        raise BundleError(
            f"'{path}' is not a clinsynth model (not a bundle folder or a readable .zip). Give "
            "the folder or .zip written by `clinsynth fit`."
        ) from None


def _load_tensors(path: Path, raw: bytes | None) -> dict[str, Any]:
    if raw is None:
        return {}
    import io

    import torch

    try:
        return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged or unsafe file
        raise BundleError(
            f"Model '{path}' is corrupt ({WEIGHTS} could not be read safely: "
            f"{type(exc).__name__}). Fit and save the model again."
        ) from None


def _dumps(doc: Any) -> str:
    return json.dumps(doc, indent=1, allow_nan=True, default=_default)


def _default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")
