"""AutoSynthesizer: deterministic choice, privacy gate, leaderboard, bundle, time budget."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from deep_helpers import one_thread_module  # noqa: F401

import clinsynth
from clinsynth import AutoSynthesizer, BaseSynthesizer
from clinsynth.errors import ParameterError, PrivacyError
from clinsynth.synthesizers import _registry
from clinsynth.synthesizers._auto import (
    leaderboard_markdown,
    leaderboard_records,
    parse_duration,
    rank_leaderboard,
)

TABDDPM = {
    "epochs": 3,
    "batch_size": 64,
    "hidden_dims": (32, 32),
    "embedding_dim": 16,
    "num_timesteps": 100,
    "sampling_steps": 10,
}
TIMING = ["fit_seconds", "evaluation_seconds"]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_thread_module):  # noqa: F811
    """Small tensors on shared, busy cores: a second intra-op thread only adds waiting."""


class CopyCat(BaseSynthesizer):
    """A 'model' that releases training rows: perfect fidelity, no privacy."""

    def _fit(self, encoded: np.ndarray) -> None:
        self._rows = encoded.copy()

    def _sample(self, num_rows: int, rng: np.random.Generator) -> np.ndarray:
        return self._rows[rng.integers(len(self._rows), size=num_rows)]

    def _get_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {}, {"rows": torch.from_numpy(self._rows)}

    def _set_state(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        self._rows = tensors["rows"].numpy()


@pytest.fixture
def copycat(monkeypatch):
    monkeypatch.setattr(CopyCat, "_model_name", "copycat")
    monkeypatch.setitem(_registry._REGISTRY, "copycat", CopyCat)
    return "copycat"


@pytest.fixture(scope="module")
def table():
    from conftest import make_mixed_metadata, make_mixed_table

    return make_mixed_table(200, seed=5), make_mixed_metadata()


@pytest.fixture(scope="module")
def fitted(table):
    df, md = table
    auto = AutoSynthesizer(
        md,
        candidates=["gaussian_copula", "tabddpm"],
        candidate_params={"tabddpm": TABDDPM},
        target="sex",
        random_state=0,
    )
    return auto.fit(df)


def test_choice_is_deterministic_and_ranked(fitted, table):
    df, md = table
    again = AutoSynthesizer(
        md, **{k: v for k, v in fitted.get_params().items() if k != "progress"}
    ).fit(df)
    assert again.chosen_ == fitted.chosen_
    pd.testing.assert_frame_equal(
        again.leaderboard_.drop(columns=TIMING), fitted.leaderboard_.drop(columns=TIMING)
    )
    board = fitted.leaderboard_
    # the two candidates and the first-ranked one tried with refinement
    assert list(board["rank"]) == [1, 2, 3] and board.loc[0, "status"] == "chosen"
    assert sum(board["model"].str.endswith("+refine")) == 1
    assert board.loc[0, "model"] == fitted.chosen_
    for column in (
        "fidelity",
        "detection_score",
        "utility",
        "dcr_share",
        "mia_auc",
        "tstr",
        "score_se",
        "privacy_risk",
    ):
        assert board[column].notna().all(), column
    # the ranking of the fitted leaderboard is the documented rule applied to its rows
    again = rank_leaderboard(leaderboard_records(board), fitted.score_tolerance)
    assert list(again["model"]) == list(board["model"])
    assert board.loc[0, "note"].startswith("chosen: ")
    # The target is the class label of the diffusion model.
    assert fitted.leaderboard_.set_index("model").loc["tabddpm", "epochs"] == 3


def test_a_model_that_copies_rows_is_not_chosen(table, copycat):
    df, md = table
    auto = AutoSynthesizer(md, candidates=[copycat, "gaussian_copula"], random_state=0).fit(df)
    board = auto.leaderboard_.set_index("model")
    assert board.loc["copycat", "dcr_share"] > 0.6 or board.loc["copycat", "mia_auc"] > 0.6
    assert not board.loc["copycat", "passes_privacy"]
    assert board.loc["copycat", "status"] == "failed privacy check"
    # the limit applied is in the note: 0.5 + two standard errors of the DCR share on a 140/60
    # split (about 0.07: 0.5 / sqrt(60), widened by the size correction and the draw of the
    # real records)
    limit = float(board.loc["copycat", "note"].split("(limit ")[1].split(")")[0])
    assert 0.6 <= limit <= 0.5 + 2 * 0.075
    assert auto.chosen_.split("+")[0] == "gaussian_copula"  # refined or not
    assert isinstance(auto.model_, clinsynth.GaussianCopulaSynthesizer)
    relaxed = AutoSynthesizer(
        md, candidates=[copycat], max_dcr_share=1.0, max_mia_auc=1.0, random_state=0
    ).fit(df)
    # with the limits lifted the copier passes (refined or not: the winner is tried refined)
    assert relaxed.chosen_.split("+")[0] == "copycat"
    assert relaxed.leaderboard_.loc[0, "passes_privacy"]


def test_no_safe_candidate_raises_with_the_leaderboard(table, copycat):
    df, md = table
    auto = AutoSynthesizer(md, candidates=[copycat], random_state=0)
    with pytest.raises(PrivacyError, match=r"(?s)privacy checks.*copycat.*failed privacy"):
        auto.fit(df)
    assert (
        auto.leaderboard_.loc[0, "passes_privacy"] is False
        or not auto.leaderboard_.loc[0, "passes_privacy"]
    )


def _candidate(model: str, score: float, dcr: float, mia: float, **extra: Any) -> dict:
    return {
        "model": model,
        "score": score,
        "score_se": 0.004,
        "dcr_share": dcr,
        "mia_auc": mia,
        "passes_privacy": True,
        **extra,
    }


def test_a_near_tie_in_score_is_decided_by_privacy():
    rows = [
        _candidate("tabddpm", 0.870, dcr=0.57, mia=0.55),
        _candidate("gaussian_copula", 0.864, dcr=0.52, mia=0.53),
        _candidate("tvae", 0.600, dcr=0.50, mia=0.50),
        _candidate("copycat", 0.990, dcr=0.90, mia=0.80, passes_privacy=False),
    ]
    board = rank_leaderboard(rows, score_tolerance=0.01)
    # tolerance: max(0.01, 2 * sqrt(2) * 0.004 = 0.0113); 0.006 apart is a tie
    assert list(board["model"]) == ["gaussian_copula", "tabddpm", "tvae", "copycat"]
    assert list(board["status"]) == ["chosen", "ok", "ok", "failed privacy check"]
    assert board.loc[0, "privacy_risk"] == pytest.approx(0.03)
    assert board.loc[0, "note"].startswith("chosen: score within 0.011 of the best (tabddpm")
    assert "higher privacy risk (0.070 > 0.030)" in board.loc[1, "note"]
    assert "0.270 below the best" in board.loc[2, "note"]
    # the markdown says why the winner won
    assert "lowest privacy risk of the 2 candidates" in leaderboard_markdown(board)
    # deterministic, whatever the order of the rows
    shuffled = rank_leaderboard(rows[::-1], score_tolerance=0.01)
    pd.testing.assert_frame_equal(shuffled, board)


def test_a_clear_fidelity_win_is_not_overturned_by_privacy():
    rows = [
        _candidate("tabddpm", 0.870, dcr=0.54, mia=0.55),
        _candidate("gaussian_copula", 0.840, dcr=0.50, mia=0.50),
    ]
    board = rank_leaderboard(rows, score_tolerance=0.01)
    assert list(board["model"]) == ["tabddpm", "gaussian_copula"]
    assert board.loc[0, "note"] == (
        "chosen: best score, 0.030 above the next passing candidate (gaussian_copula), beyond "
        "the noise tolerance 0.011"
    )
    # the same gap within a larger measured noise (or a larger floor) is a tie
    noisy = [{**r, "score_se": 0.02} for r in rows]
    assert rank_leaderboard(noisy, score_tolerance=0.01).loc[0, "model"] == "gaussian_copula"
    assert rank_leaderboard(rows, score_tolerance=0.05).loc[0, "model"] == "gaussian_copula"
    # 0 and no noise estimate: the score alone decides, even 0.001 apart
    exact = [{**r, "score_se": None} for r in rows]
    exact[1]["score"] = 0.869
    assert rank_leaderboard(exact, score_tolerance=0.0).loc[0, "model"] == "tabddpm"


def test_score_tolerance_is_checked(table):
    df, md = table
    with pytest.raises(ParameterError, match="'score_tolerance' parameter"):
        AutoSynthesizer(md, score_tolerance=-0.1).fit(df)


def test_leaderboard_files(fitted, tmp_path):
    md_path, json_path = fitted.save_leaderboard(tmp_path / "leaderboard")
    text = md_path.read_text()
    assert text.startswith("| rank | model | status |") and "gaussian_copula" in text
    document = json.loads(json_path.read_text())
    assert document["chosen"] == fitted.chosen_ and document["max_dcr_share"] == 0.55
    assert document["score_tolerance"] == 0.01
    assert [r["model"] for r in document["leaderboard"]] == list(fitted.leaderboard_["model"])


def test_bundle_loads_as_auto_with_its_leaderboard(fitted, tmp_path):
    path = fitted.save(tmp_path / "auto.zip")
    loaded = clinsynth.load(path)
    assert isinstance(loaded, AutoSynthesizer) and loaded.chosen_ == fitted.chosen_
    assert type(loaded.model_) is type(fitted.model_)
    pd.testing.assert_frame_equal(loaded.leaderboard_, fitted.leaderboard_, check_dtype=False)
    fitted.reset_sampling()
    pd.testing.assert_frame_equal(loaded.sample(15), fitted.sample(15))
    assert loaded.get_privacy_report() == fitted.get_privacy_report()


def test_time_budget_cuts_epochs_and_is_respected(table):
    df, md = table
    slow = {**TABDDPM, "epochs": 100_000}
    auto = AutoSynthesizer(
        md,
        candidates=["gaussian_copula", "tabddpm"],
        candidate_params={"tabddpm": slow},
        time_budget="12s",
        random_state=0,
    ).fit(df)
    row = auto.leaderboard_.set_index("model").loc["tabddpm"]
    assert row["status"] == "skipped" or 1 <= row["epochs"] < 100_000
    assert "budget" in row["note"] or "share" in row["note"]


def test_parameters_are_checked_before_training(table):
    df, md = table
    with pytest.raises(ParameterError, match="Unknown model 'nope'"):
        AutoSynthesizer(md, candidates=["nope"]).fit(df)
    with pytest.raises(ParameterError, match="unknown parameters \\['epochz'\\]"):
        AutoSynthesizer(
            md, candidates=["tabddpm"], candidate_params={"tabddpm": {"epochz": 3}}
        ).fit(df)
    with pytest.raises(ParameterError, match="'time_budget' parameter"):
        AutoSynthesizer(md, time_budget="soon").fit(df)
    with pytest.raises(ParameterError, match="'target' parameter"):
        AutoSynthesizer(md, target="outcome").fit(df)


def test_epochs_reach_every_candidate_unless_given_per_model(table):
    df, md = table
    tiny = {k: v for k, v in TABDDPM.items() if k != "epochs"}
    relaxed = {"max_dcr_share": 1.0, "max_mia_auc": 1.0, "random_state": 0}
    auto = AutoSynthesizer(
        md, candidates=["tabddpm"], epochs=2, candidate_params={"tabddpm": tiny}, **relaxed
    ).fit(df)
    assert auto.leaderboard_.loc[0, "epochs"] == 2 and auto.model_.epochs == 2
    own = AutoSynthesizer(
        md,
        candidates=["tabddpm"],
        epochs=2,
        candidate_params={"tabddpm": {**tiny, "epochs": 1}},
        **relaxed,
    ).fit(df)
    assert own.model_.epochs == 1
    with pytest.raises(ParameterError, match="'epochs' parameter"):
        AutoSynthesizer(md, epochs=0).fit(df)


def test_parse_duration():
    assert parse_duration("10m") == 600 and parse_duration("1h") == 3600
    assert parse_duration("90s") == 90 and parse_duration("2m30s") == 150
    assert parse_duration(" 1.5 h ") == 5400 and parse_duration(30) == 30
    for bad in ("ten minutes", "10 parsecs", "", "-5", 0):
        with pytest.raises(ParameterError):
            parse_duration(bad)


def test_cli_fit_auto_prints_the_leaderboard(tmp_path, table, capsys):
    from clinsynth.cli import main

    df, md = table
    data = tmp_path / "patients.csv"
    df.to_csv(data, index=False)
    md.save_to_json(tmp_path / "metadata.json")
    code = main(
        [
            "fit",
            str(data),
            "-m",
            str(tmp_path / "metadata.json"),
            "--model",
            "auto",
            "--time-budget",
            "1m",
            "--target",
            "sex",
            "--param",
            "candidates=gaussian_copula",
            "-o",
            str(tmp_path / "model"),
            "-q",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    # A compact table that fits 80 columns (the full leaderboard is in the bundle).
    table_lines = [line for line in out.splitlines() if "gaussian_copula" in line]
    assert any("chosen" in line for line in table_lines), out
    assert "privacy risk" in out and "verdict" in out and "detection_auc" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "Fitted auto (chose gaussian_copula)" in out
    assert isinstance(clinsynth.load(tmp_path / "model"), AutoSynthesizer)
    code = main(["info", str(tmp_path / "model")])
    out = capsys.readouterr().out
    assert code == 0 and "auto's choice" in out and "gaussian_copula" in out
    code = main(
        [
            "fit",
            str(data),
            "-m",
            str(tmp_path / "metadata.json"),
            "--model",
            "auto",
            "--epochs",
            "1",
            "--param",
            "candidates=tabddpm",
            "--param",
            "max_mia_auc=1.0",
            "--param",
            "max_dcr_share=1.0",
            "-o",
            str(tmp_path / "deep"),
            "-q",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert clinsynth.load(tmp_path / "deep").model_.epochs == 1
    code = main(
        [
            "fit",
            str(data),
            "-m",
            str(tmp_path / "metadata.json"),
            "--time-budget",
            "1m",
            "-o",
            str(tmp_path / "other"),
            "-q",
        ]
    )
    assert code != 0 and "--time-budget needs a model that takes it" in capsys.readouterr().err


def test_evaluation_report_shows_the_leaderboard(fitted, table, tmp_path):
    from clinsynth.evaluation import evaluate

    df, md = table
    result = evaluate(df, fitted.sample(len(df)), md, model=fitted, detection=False)
    assert result.info["model"]["leaderboard"][0]["status"] == "chosen"
    result.save_html(tmp_path / "report.html")
    html = (tmp_path / "report.html").read_text()
    assert "Model choice (leaderboard)" in html and "tabddpm" in html
    assert fitted.chosen_ in html


def test_a_candidate_that_fails_is_reported_and_the_others_go_on(table):
    df, md = table
    broken = {**TABDDPM, "condition_column": "age"}  # numerical: fit refuses it
    auto = AutoSynthesizer(
        md,
        candidates=["tabddpm", "gaussian_copula"],
        candidate_params={"tabddpm": broken},
        random_state=0,
    ).fit(df)
    row = auto.leaderboard_.set_index("model").loc["tabddpm"]
    assert row["status"] == "error" and "condition_column" in row["note"]
    assert auto.chosen_.split("+")[0] == "gaussian_copula"  # refined or not


def test_scoring_reads_a_bounded_subsample(table, monkeypatch):
    """Candidates are scored on at most _EVAL_ROWS validation (and training) rows."""
    from clinsynth.synthesizers import _auto

    df, md = table
    seen: list[tuple[int, int, int]] = []
    score = AutoSynthesizer._score

    def spy(self, train, valid, synthetic, seed):
        seen.append((len(train), len(valid), len(synthetic)))
        return score(self, train, valid, synthetic, seed)

    monkeypatch.setattr(_auto, "_EVAL_ROWS", 12)
    monkeypatch.setattr(AutoSynthesizer, "_score", spy)
    AutoSynthesizer(md, candidates=["gaussian_copula"], random_state=0).fit(df)
    assert seen == [(12, 12, 24), (12, 12, 24)]  # the candidate, then it refined


def test_training_stops_at_a_deadline_after_one_epoch():
    """A deadline already past: one epoch runs, then training stops and says so."""
    from clinsynth.synthesizers.nn import TrainingEngine

    net = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))

    def step(idx):
        loss = net(x[idx]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.detach()}

    engine = TrainingEngine(
        {"net": net},
        {"opt": opt},
        step,
        n_rows=32,
        batch_size=8,
        epochs=50,
        generator=torch.Generator().manual_seed(0),
        deadline=time.perf_counter() - 1.0,
    )
    history = engine.run()
    assert history.epoch["epoch"] == [1]
    assert history.stopped_at_deadline == 1


def test_refit_keeps_the_split_model_when_the_budget_is_spent(table):
    """No time left for the refit: the model fitted on the training split is kept, with a
    note; with time left the chosen model is refitted on every row."""
    df, md = table
    auto = AutoSynthesizer(
        md,
        candidates=["tabddpm"],
        candidate_params={"tabddpm": TABDDPM},
        max_dcr_share=1.0,
        max_mia_auc=1.0,
        random_state=0,
    ).fit(df)
    split_model = auto.model_
    kept = auto._refit("tabddpm", split_model, df, time.perf_counter() - 1.0, 1.4)
    assert kept is split_model
    assert "kept the model fitted on the training split" in auto.refit_note_
    refitted = auto._refit("tabddpm", split_model, df, time.perf_counter() + 3600, 1.4)
    assert refitted is not split_model and refitted.num_training_rows_ == len(df)


def test_the_winner_is_tried_refined_and_ranked_with_the_others(table, tmp_path):
    df, md = table
    auto = AutoSynthesizer(md, candidates=["gaussian_copula"], random_state=0).fit(df)
    board = auto.leaderboard_.set_index("model")
    assert "gaussian_copula+refine" in board.index
    assert (
        board.loc["gaussian_copula+refine", "score"] == board.loc["gaussian_copula+refine", "score"]
    )
    refined = auto.chosen_ == "gaussian_copula+refine"
    assert (auto._refiner_ is not None) == refined and auto.model_.refine == refined
    loaded = clinsynth.load(auto.save(tmp_path / "auto"))
    assert loaded.chosen_ == auto.chosen_
    auto.reset_sampling()
    pd.testing.assert_frame_equal(loaded.sample(20), auto.sample(20))


def test_a_refined_candidate_can_be_named(table):
    df, md = table
    auto = AutoSynthesizer(
        md, candidates=["gaussian_copula+refine"], refine_winner=True, random_state=0
    ).fit(df)
    assert auto.chosen_ == "gaussian_copula+refine" and auto.model_.refine is True
    assert list(auto.leaderboard_["model"]) == ["gaussian_copula+refine"]
    assert auto._refiner_ is not None
