"""The architecture's promise for a new model: its module, one registration line, its test.

A model written here, as a user or a new team member would write it from
docs/ARCHITECTURE.md ("Adding a model"), is registered for the test only; every part of the
product that lists or runs models (the registry, the contract, save/load, ``clinsynth.load``,
the CLI's ``models``/``fit``/``sample``, the dashboard's model picker, a schema's table models)
must take it without any other file knowing its name.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

import clinsynth
from clinsynth import Metadata
from clinsynth.cli import main
from clinsynth.synthesizers import BaseSynthesizer, _registry, get_synthesizer, register
from clinsynth.synthesizers._deep import POSITIVE_FLOAT


class IndependentNormalSynthesizer(BaseSynthesizer):
    """Independent normal columns in the encoded space: the smallest model there is."""

    _parameter_constraints: ClassVar[dict[str, tuple[Any, str]]] = {"spread": POSITIVE_FLOAT}

    def __init__(self, metadata: Metadata, *, spread: float = 1.0, **kwargs: Any) -> None:
        super().__init__(metadata, **kwargs)
        self.spread = spread

    def _fit(self, encoded: np.ndarray) -> None:
        self.mean_ = encoded.mean(axis=0)
        self.scale_ = encoded.std(axis=0) * self.spread

    def _sample(self, num_rows: int, rng: np.random.Generator) -> np.ndarray:
        return rng.normal(self.mean_, self.scale_, size=(num_rows, len(self.mean_)))

    def _get_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {}, {"mean": self.mean_, "scale": self.scale_}

    def _set_state(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        self.mean_ = np.asarray(tensors["mean"], dtype=np.float64)
        self.scale_ = np.asarray(tensors["scale"], dtype=np.float64)


@pytest.fixture
def toy_model():
    """Register the model as its module's one line would (``@register("toy_normal")``)."""
    cls = register("toy_normal")(IndependentNormalSynthesizer)
    yield cls
    _registry._REGISTRY.pop("toy_normal", None)


@pytest.fixture
def patients() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 300
    return pd.DataFrame(
        {
            "age": rng.integers(20, 90, n),
            "weight": rng.normal(75, 12, n).round(1),
            "sex": rng.choice(["F", "M"], n),
        }
    )


def test_registry_fit_sample_save_load(toy_model, patients, tmp_path):
    assert get_synthesizer("toy_normal") is toy_model
    assert "toy_normal" in clinsynth.list_synthesizers()
    md = Metadata.detect_from_dataframe(patients)
    model = get_synthesizer("toy_normal")(md, spread=0.5, random_state=7).fit(patients)
    first = model.sample(200)
    assert list(first.columns) == list(patients.columns)
    assert set(first["sex"]) <= {"F", "M"}
    path = model.save(tmp_path / "toy")
    again = clinsynth.load(path)
    assert type(again) is toy_model and again.spread == 0.5
    pd.testing.assert_frame_equal(again.sample(200), first)


def test_bad_parameter_goes_through_the_shared_checks(toy_model, patients):
    from clinsynth.errors import ParameterError

    md = Metadata.detect_from_dataframe(patients)
    with pytest.raises(ParameterError, match="'spread' parameter .* must be a float > 0"):
        toy_model(md, spread=-1.0).fit(patients)


def test_cli_lists_fits_and_samples_it(toy_model, patients, tmp_path, capsys):
    data = tmp_path / "patients.csv"
    patients.to_csv(data, index=False)
    assert main(["models"]) == 0
    assert "toy_normal" in capsys.readouterr().out
    bundle = tmp_path / "m"
    assert main(["fit", str(data), "--model", "toy_normal", "-o", str(bundle)]) == 0
    out = tmp_path / "synthetic.csv"
    assert main(["sample", str(bundle), "-n", "50", "-o", str(out), "--seed", "1"]) == 0
    assert len(pd.read_csv(out)) == 50


def test_dashboard_offers_it(toy_model, patients):
    pytest.importorskip("streamlit")
    from clinsynth.dashboard import _model

    assert _model.describe("toy_normal").startswith("toy_normal — Independent normal columns")


def test_a_schema_uses_it_for_its_tables(toy_model, tmp_path):
    from clinsynth.multitable import HMASynthesizer

    rng = np.random.default_rng(5)
    parents = pd.DataFrame({"pid": np.arange(60), "age": rng.integers(20, 90, 60)})
    children = pd.DataFrame(
        {
            "vid": np.arange(180),
            "pid": rng.integers(0, 60, 180),
            "sbp": rng.normal(130, 15, 180).round(),
        }
    )
    tables = {"patients": parents, "visits": children}
    md = Metadata.detect_from_dataframes(tables)
    model = HMASynthesizer(md, table_synthesizers="toy_normal", random_state=2).fit(tables)
    out = model.sample(scale=1.0)
    assert set(out["visits"]["pid"]) <= set(out["patients"]["pid"])
    again = clinsynth.load(model.save(tmp_path / "schema"))
    pd.testing.assert_frame_equal(again.sample(scale=1.0)["visits"], out["visits"])
