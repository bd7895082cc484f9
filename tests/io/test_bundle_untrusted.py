"""Model bundles are untrusted input: every tampered bundle of the corpus is a BundleError from
``clinsynth.load`` (never a torch, numpy or JSON error), before anything big is allocated."""

from __future__ import annotations

import json

import pytest

import clinsynth
from bad_inputs.corpus import CASES, Models, build
from clinsynth.errors import BundleError, DataError
from clinsynth.io import _bundle, _limits
from clinsynth.io import _schema as S

_TAMPERED = [c for c in CASES if c.name.startswith("model_") and c.name != "model_missing"]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    return build(tmp_path_factory.mktemp("tampered"), _TAMPERED)


@pytest.mark.parametrize("case", _TAMPERED, ids=lambda c: c.name)
def test_tampered_bundle_is_a_bundle_error(bundles, case):
    folder = bundles[case.name]
    path = folder / ("model.zip" if (folder / "model.zip").exists() else "model")
    with pytest.raises(BundleError) as error:
        clinsynth.load(path)
    assert len(str(error.value)) < 800


def test_a_valid_bundle_still_loads(bundles, tmp_path):
    models = Models(tmp_path)
    for kind in ("copula", "copula_zip", "tvae", "dp_marginal", "hma"):
        model = clinsynth.load(models.path(kind))
        rows = model.sample(scale=0.1) if kind == "hma" else model.sample(7)
        assert len(rows) > 0


def test_member_size_caps_apply_to_folders_and_zips(tmp_path, monkeypatch):
    models = Models(tmp_path)
    monkeypatch.setattr(_limits, "MAX_JSON_BYTES", 300)
    monkeypatch.setattr(_bundle, "MAX_JSON_BYTES", 300)
    for kind in ("copula", "copula_zip"):
        with pytest.raises(BundleError, match="more than the 300 bytes"):
            clinsynth.load(models.path(kind))


def test_links_in_a_bundle_folder_are_refused(tmp_path):
    bundle = Models(tmp_path).path("copula")
    (bundle / "model.json").unlink()
    (bundle / "model.json").symlink_to("/dev/zero")
    with pytest.raises(BundleError, match="not a plain file"):
        clinsynth.load(bundle)


def test_json_limits_give_clear_errors():
    with pytest.raises(DataError, match="nested deeper than 64"):
        _limits.loads_limited("[" * 200_000 + "]" * 200_000, "x.json", DataError)
    with pytest.raises(DataError, match="nested deeper than 64"):
        _limits.loads_limited("[" * 70 + "]" * 70, "x.json", DataError)
    assert _limits.loads_limited("[" * 60 + "]" * 60, "x.json", DataError) is not None
    with pytest.raises(DataError, match="not valid JSON"):
        _limits.loads_limited(b"\xff\xfe{", "x.json", DataError)


def test_values_are_quoted_short():
    text = _limits.shorten("y" * 10_000_000)
    assert len(text) < 100 and "(10,000,002 characters)" in text
    error = BundleError("bad " + "z" * 5_000_000)
    assert len(str(error)) < 200


def test_schema_lists_every_problem_with_its_place():
    spec = S.mapping(
        {"rows": S.integer(0, 10), "name": S.name(), "items": S.array(S.number(), max_len=2)},
        required=("rows",),
    )
    with pytest.raises(BundleError) as error:
        S.check_json({"name": "../x", "items": [1, 2, 3], "extra": 1}, spec, "doc.json")
    problems = error.value.problems
    assert any("rows is missing" in p for p in problems)
    assert any("name must be a name without path separators" in p for p in problems)
    assert any("items must have 0 to 2 items" in p for p in problems)
    assert any("unexpected entry 'extra'" in p for p in problems)
    assert str(error.value).count("\n") == 0  # one line


def test_manifest_schema_refuses_unsafe_table_names(tmp_path):
    bundle = Models(tmp_path).path("copula")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["metadata"]["tables"]["..\\evil"] = manifest["metadata"]["tables"].pop("table")
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="without path separators"):
        clinsynth.load(bundle)


def test_tensors_a_safe_load_cannot_read_are_refused_at_save(tmp_path):
    """A model's numpy arrays and numbers are saved as tensors that load_bundle reads back;
    what the loader would refuse is refused when saving, naming its key."""
    import numpy as np
    import torch

    from clinsynth.io import _tensors

    raw = _tensors.tensor_bytes({"mean": np.arange(3.0), "n": np.int64(4), "w": torch.ones(2)})
    back = _tensors.load_tensors(tmp_path, raw)
    assert torch.equal(back["mean"], torch.arange(3.0, dtype=torch.float64))
    assert int(back["n"]) == 4 and torch.equal(back["w"], torch.ones(2))
    with pytest.raises(BundleError, match="'levels' is a ndarray"):
        _tensors.tensor_bytes({"levels": np.array(["a", "b"], dtype=object)})
    with pytest.raises(BundleError, match="'nested' is a dict"):
        _tensors.tensor_bytes({"nested": {"a": torch.ones(1)}})
