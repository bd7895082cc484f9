"""Model bundles: a folder (or a .zip of it) of JSON files and one tensor file. Never pickle.

Layout::

    manifest.json     clinsynth version, bundle format, model name, parameters, metadata
    transformer.json  fitted column statistics (no rows, no identifiers, no personal data)
    model.json        the model's JSON state (copula marginals, network sizes, loss history)
    weights.pt        tensors (state dicts), read with torch.load(weights_only=True)

Writes are atomic: the bundle appears whole or not at all, and an existing bundle is replaced only
after the new one is complete.

A bundle is untrusted input (it may come from someone else): member names must be plain file
names, every member is read with a size cap (a zip member's declared and actual size, and its
compression ratio, are checked while it is streamed, so a zip bomb is refused before it is
inflated), JSON documents are bounded in size and depth (:mod:`clinsynth.io._limits`), and the
manifest is checked against a schema (:data:`MANIFEST_SPEC`) before anything is built from it.
Each loader then checks its own documents and tensors (``TableTransformer.from_dict``, the
models' ``_set_state``).
"""

from __future__ import annotations

import json
import os
import re
import stat
import zipfile
import zlib
from pathlib import Path
from typing import Any

from clinsynth._version import BUNDLE_FORMAT_VERSION, __version__
from clinsynth.errors import BundleError
from clinsynth.io import _schema as S
from clinsynth.io._atomic import atomic_path, recover
from clinsynth.io._limits import MAX_JSON_BYTES, human_bytes, loads_limited, shorten
from clinsynth.io._tensors import (
    WEIGHTS,
    check_tensor,  # noqa: F401  (the state readers import it here)
    load_tensors,
    tensor_bytes,
)

MANIFEST = "manifest.json"
#: The kinds of bundle (``manifest["kind"]``; bundles of format 1 wrote none for one table).
SINGLE_TABLE = "single_table"
MULTI_TABLE = "multi_table"
KINDS = (SINGLE_TABLE, MULTI_TABLE)
#: Largest weights file read.
MAX_WEIGHTS_BYTES = 2 * 2**30
#: Largest bundle (all members together, uncompressed).
MAX_BUNDLE_BYTES = 4 * 2**30
#: Most members in a bundle.
MAX_MEMBERS = 10_000
#: A member over 16 MB that inflates more than this many times its compressed size is refused.
MAX_COMPRESSION_RATIO = 100
_RATIO_FLOOR = 16 * 2**20
#: What a member name may look like: a plain file name.
_MEMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
_CHUNK = 2**20
#: What building a model from a damaged or tampered bundle can still raise once its documents
#: passed their checks; loaders turn each into a BundleError.
BUILD_ERRORS = (
    LookupError,
    TypeError,
    ValueError,
    ArithmeticError,
    AttributeError,
    RuntimeError,
    MemoryError,
)
_AGAIN = "Fit and save the model again."


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
    path = Path(path)
    manifest = {
        "format": "clinsynth-model",
        "format_version": BUNDLE_FORMAT_VERSION,
        "clinsynth_version": __version__,
        **manifest,
    }
    members = {MANIFEST: _dumps(manifest).encode("utf-8")}
    members.update({name: _dumps(doc).encode("utf-8") for name, doc in documents.items()})
    for name in members:
        if not _MEMBER.match(name):
            raise BundleError(f"Cannot save a bundle member named {shorten(name)}.")
    if tensors:
        members[WEIGHTS] = tensor_bytes(tensors)
    if archive if archive is not None else path.suffix.lower() == ".zip":
        with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in sorted(members):
                zf.writestr(name, members[name])
    else:
        with atomic_path(path, directory=True) as tmp:
            for name, raw in members.items():
                (tmp / name).write_bytes(raw)
    return path


def load_bundle(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Read ``(manifest, documents, tensors)`` from a bundle folder or zip; check its version,
    the size of every member and the manifest's schema."""
    path = Path(path)
    if not path.exists():
        recover(path)  # a replace interrupted by a kill leaves the old copy beside the path
    if not path.exists():
        raise BundleError(f"Model '{path}' does not exist. Check the path, or fit a model first.")
    files = _read_files(path)
    if MANIFEST not in files:
        raise BundleError(
            f"'{path}' is not a clinsynth model (no {MANIFEST}). Give the folder or .zip written "
            "by `clinsynth fit` or `synthesizer.save()`."
        )
    manifest = loads_limited(
        files[MANIFEST], f"Model '{path}' is corrupt: {MANIFEST}", BundleError, _AGAIN
    )
    if not isinstance(manifest, dict) or manifest.get("format") != "clinsynth-model":
        raise BundleError(f"'{path}' is not a clinsynth model (its manifest has another format).")
    version = manifest.get("format_version")
    if not S._is_int(version) or version > BUNDLE_FORMAT_VERSION:
        raise BundleError(
            f"Model '{path}' was saved by clinsynth "
            f"{str(manifest.get('clinsynth_version', '?'))[:40]} in bundle format "
            f"{str(version)[:40]}, newer than this clinsynth {__version__} reads "
            f"(format {BUNDLE_FORMAT_VERSION}). Upgrade clinsynth: pip install -U clinsynth."
        )
    S.check_json(manifest, MANIFEST_SPEC, f"Model '{path}': {MANIFEST}")
    manifest = _UPGRADES.get(version, _same)(manifest)
    documents = {}
    for name, raw in files.items():
        if name.endswith(".json") and name != MANIFEST:
            documents[name] = loads_limited(
                raw, f"Model '{path}' is corrupt: {name}", BundleError, _AGAIN
            )
    tensors = load_tensors(path, files.get(WEIGHTS))
    return manifest, documents, tensors


def bundle_kind(manifest: dict[str, Any]) -> str:
    """What a checked manifest holds: :data:`SINGLE_TABLE` or :data:`MULTI_TABLE`."""
    return manifest.get("kind") or SINGLE_TABLE


def nest_bundle(
    prefix: str, manifest: dict[str, Any], documents: dict[str, Any], tensors: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A table bundle inside a multi-table bundle: its manifest as the table's entry (with
    ``prefix``), its documents as ``<prefix>.<name>``, its tensors as ``<prefix>.<key>``."""
    entry = {"prefix": prefix, **manifest}
    return (
        entry,
        {f"{prefix}.{name}": doc for name, doc in documents.items()},
        {f"{prefix}.{key}": value for key, value in tensors.items()},
    )


def unnest_bundle(
    entry: dict[str, Any], documents: dict[str, Any], tensors: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The table bundle that :func:`nest_bundle` stored under ``entry["prefix"]``."""
    start = len(entry["prefix"]) + 1
    head = entry["prefix"] + "."
    manifest = {k: v for k, v in entry.items() if k != "prefix"}
    return (
        manifest,
        {k[start:]: v for k, v in documents.items() if k.startswith(head)},
        {k[start:]: v for k, v in tensors.items() if k.startswith(head)},
    )


def _same(manifest: dict[str, Any]) -> dict[str, Any]:
    return manifest


def _from_format_1(manifest: dict[str, Any]) -> dict[str, Any]:
    """A format-1 manifest in today's terms. Format 1 wrote no ``kind`` for one table, and a
    schema's table entries held only the model's name, parameters, metadata and fit (no rules,
    dtypes or privacy ledger: those tables load as they were saved, without them)."""
    manifest = {**manifest, "kind": bundle_kind(manifest)}
    if manifest["kind"] == MULTI_TABLE:
        tables = {}
        for name, entry in manifest.get("tables", {}).items():
            if entry.get("model"):
                entry = {"kind": SINGLE_TABLE, "constraints": [], **entry}
            tables[name] = entry
        manifest["tables"] = tables
    return manifest


#: Readers of older bundle formats: each turns a checked manifest of its version into today's.
_UPGRADES = {1: _from_format_1}


def _wanted(name: str) -> bool:
    return name == WEIGHTS or name.endswith(".json")


def _cap(name: str) -> int:
    return MAX_WEIGHTS_BYTES if name == WEIGHTS else MAX_JSON_BYTES


def _too_big(path: Path, name: str, size: int) -> BundleError:
    return BundleError(
        f"Model '{path}': {name} is {human_bytes(size)}, more than the {human_bytes(_cap(name))} "
        "a clinsynth bundle member may be. It was not written by clinsynth, or was tampered with."
    )


def _read_files(path: Path) -> dict[str, bytes]:
    if path.is_dir():
        return _read_folder(path)
    try:
        with zipfile.ZipFile(path) as zf:
            return _read_zip(path, zf)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        NotImplementedError,
        zlib.error,
        RuntimeError,
    ):  # RuntimeError: an encrypted member
        raise BundleError(
            f"'{path}' is not a clinsynth model (not a bundle folder or a readable .zip: it is "
            "damaged, truncated or not a zip). Give the folder or .zip written by `clinsynth fit`."
        ) from None
    except BundleError:
        raise
    except OSError as exc:
        raise BundleError(
            f"Model '{path}' could not be read ({exc.strerror or type(exc).__name__})."
        ) from None


def _read_folder(path: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    entries = sorted(path.iterdir())
    if len(entries) > MAX_MEMBERS:
        raise BundleError(f"Model '{path}' holds {len(entries):,} files; not a clinsynth bundle.")
    for entry in entries:
        name = entry.name
        if not _wanted(name):
            continue
        info = entry.lstat()
        if not stat.S_ISREG(info.st_mode):
            raise BundleError(
                f"Model '{path}': {shorten(name)} is not a plain file (a link, folder or device); "
                "a clinsynth bundle holds plain files only."
            )
        if not _MEMBER.match(name):
            continue
        if info.st_size > _cap(name):
            raise _too_big(path, name, info.st_size)
        with open(entry, "rb") as handle:
            raw = handle.read(_cap(name) + 1)
        if len(raw) > _cap(name):
            raise _too_big(path, name, len(raw))
        total += len(raw)
        if total > MAX_BUNDLE_BYTES:
            raise BundleError(f"Model '{path}' is larger than {human_bytes(MAX_BUNDLE_BYTES)}.")
        files[name] = raw
    return files


def _read_zip(path: Path, zf: zipfile.ZipFile) -> dict[str, bytes]:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise BundleError(f"Model '{path}' holds {len(infos):,} members; not a clinsynth bundle.")
    for info in infos:
        if not _MEMBER.match(info.filename):
            raise BundleError(
                f"Model '{path}' holds a member named {shorten(info.filename)}: clinsynth "
                "bundles hold plain file names only (no folders, no '..'). Save the model again "
                "with `clinsynth fit -o model.zip`."
            )
    declared = sum(i.file_size for i in infos if _wanted(i.filename))
    if declared > MAX_BUNDLE_BYTES:
        raise BundleError(
            f"Model '{path}' would inflate to {human_bytes(declared)}, more than the "
            f"{human_bytes(MAX_BUNDLE_BYTES)} a clinsynth bundle may be."
        )
    files: dict[str, bytes] = {}
    for info in infos:
        if not _wanted(info.filename):
            continue
        files[info.filename] = _read_member(path, zf, info)
    return files


def _read_member(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """Stream one member, never inflating past its cap or past what its header declares."""
    name, cap = info.filename, _cap(info.filename)
    if info.file_size > cap:
        raise _too_big(path, name, info.file_size)
    if info.file_size > _RATIO_FLOOR and info.file_size > MAX_COMPRESSION_RATIO * max(
        info.compress_size, 1
    ):
        raise BundleError(
            f"Model '{path}': {name} inflates {info.file_size / max(info.compress_size, 1):,.0f} "
            f"times ({human_bytes(info.compress_size)} to {human_bytes(info.file_size)}), as a "
            "zip bomb does; clinsynth does not write such members. Refused."
        )
    limit = min(cap, info.file_size)
    chunks, size = [], 0
    with zf.open(info) as member:
        while True:
            chunk = member.read(min(_CHUNK, limit + 1 - size))
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise _too_big(path, name, size)
            chunks.append(chunk)
    if size != info.file_size:
        raise BundleError(f"Model '{path}': {name} is truncated or its size is misdeclared.")
    return b"".join(chunks)


def _dumps(doc: Any) -> str:
    return json.dumps(doc, indent=1, allow_nan=True, default=_default)


def _default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


# --------------------------------------------------------------------------- manifest schema
_JSON = S.json_value()
_COLUMN = S.mapping(values=S.json_value(max_items=100_000, max_len=10_000), keys=S.text(200))
_TABLE = S.mapping(
    {
        "columns": S.mapping(values=_COLUMN, keys=S.text(1000), max_len=100_000),
        "primary_key": S.text(1000, null=True),
        "column_groups": _JSON,
        "constraints": S.array(_JSON, max_len=10_000),
    },
    required=("columns",),
    extra=True,
    values=_JSON,
    keys=S.text(200),
)
#: The metadata in a manifest: table names must be safe file names (they become file names when
#: the tables are written to a folder).
METADATA_SPEC = S.mapping(
    {
        "METADATA_SPEC_VERSION": S.text(100),
        "tables": S.mapping(values=_TABLE, keys=S.name(200), max_len=10_000),
        "relationships": S.array(
            S.mapping(values=S.text(1000), keys=S.text(200), max_len=20), max_len=10_000
        ),
    },
    extra=True,
    values=_JSON,
    keys=S.text(200),
)
_FIT = S.mapping(
    {
        "seconds": S.number(0, 10**9),
        "num_training_rows": S.integer(0, 10**10),
        "sample_seed": S.integer(0, 2**63 - 1, null=True),
        "fit_seed": S.integer(0, 2**63 - 1, null=True),
        "dtypes": S.mapping(values=S.text(100), keys=S.text(1000), max_len=100_000),
    },
    extra=True,
    values=_JSON,
    keys=S.text(200),
)
#: What describes one table model: a single-table bundle's manifest, or a table's entry in a
#: schema bundle (the same fields, plus its member prefix).
_MODEL_FIELDS = {
    "format": S.text(100),
    "format_version": S.integer(0, BUNDLE_FORMAT_VERSION),
    "clinsynth_version": S.text(100),
    "kind": S.text(100, null=True, choices=KINDS),
    "model": S.text(100, null=True),
    "class": S.text(200, null=True),
    "params": S.mapping(values=_JSON, keys=S.text(100), max_len=200),
    "metadata": METADATA_SPEC,
    "table_name": S.name(200, null=True),
    "fit": _FIT,
    "constraints": S.array(_JSON, max_len=10_000),
    "privacy": S.mapping(values=_JSON, keys=S.text(200), null=True),
    "auto": S.mapping(values=_JSON, keys=S.text(200), null=True),
}
_TABLE_ENTRY = S.mapping(
    {"prefix": S.text(20, safe_name=True), **_MODEL_FIELDS},
    required=("prefix",),
    extra=True,
    values=_JSON,
    keys=S.text(200),
)
#: What the manifest of every bundle (single- or multi-table) may hold.
MANIFEST_SPEC = S.mapping(
    {
        **_MODEL_FIELDS,
        "metadata_used": METADATA_SPEC,
        "tables": S.mapping(values=_TABLE_ENTRY, keys=S.name(200), max_len=10_000),
    },
    required=("format", "format_version", "metadata"),
    extra=True,
    values=_JSON,
    keys=S.text(200),
)
