"""Each step of the dashboard, driven by Streamlit's AppTest (tiny data, the Gaussian copula)."""

from __future__ import annotations

import pandas as pd
import pytest
from dashdata import csv_upload, errors, excel_upload, new_app, no_crash, small_table
from streamlit.testing.v1 import AppTest


@pytest.fixture
def app() -> AppTest:
    """A fresh dashboard session after its first run."""
    return new_app()


def go(at: AppTest, step: str) -> AppTest:
    return at.radio(key="step").set_value(step).run()


def upload_small(at: AppTest, df: pd.DataFrame | None = None) -> AppTest:
    df = small_table() if df is None else df
    return at.file_uploader(key="upload").set_value(csv_upload(df)).run()


def train(at: AppTest) -> AppTest:
    go(at, "Model")
    return at.button(key="train_button").click().run()


def generate(at: AppTest, rows: int = 50, conditions: str = "") -> AppTest:
    go(at, "Generate")
    at.number_input(key="keep_num_rows").set_value(rows)
    at.text_area(key="keep_conditions").input(conditions)
    return at.button(key="generate_button").click().run()


# ----------------------------------------------------------------------------- data
def test_first_page_is_the_data_step_with_later_steps_locked(app: AppTest) -> None:
    assert app.header[0].value == "1. Data"
    assert app.button(key="next_Data").disabled
    go(app, "Generate")
    assert "First train a model in step 3." in [i.value for i in app.info]
    no_crash(app)


def test_upload_csv_shows_preview_and_detected_metadata(app: AppTest) -> None:
    upload_small(app)
    no_crash(app)
    assert "80 rows and 6 columns" in app.success[0].value
    assert app.dataframe[0].value.shape == (80, 6)
    assert not app.button(key="next_Data").disabled
    app.button(key="next_Data").click().run()
    table = app.data_editor[0].value
    assert list(table["Column"]) == ["age", "sex", "sbp", "weight", "smoker", "condition"]
    assert dict(zip(table["Column"], table["Type"], strict=True))["smoker"] == "boolean"
    assert (table["Check"] == "✓ OK").all()


def test_upload_excel(app: AppTest) -> None:
    app.file_uploader(key="upload").set_value(excel_upload(small_table(30))).run()
    no_crash(app)
    assert "30 rows and 6 columns" in app.success[0].value


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        (("notes.json", b'{"a": 1}', "application/json"), "unsupported type '.json'"),
        (("scan.csv", b"\x89PNG\r\n\x1a\n\x00\x00binary", "text/csv"), "is binary"),
        (("empty.csv", b"", "text/csv"), "is empty"),
        (excel_upload(pd.DataFrame(), "empty.xlsx"), "has no columns"),
        (("header_only.csv", b"age,sex\n", "text/csv"), "no data rows"),
    ],
)
def test_bad_files_show_the_clinsynth_message_and_the_app_keeps_running(
    app: AppTest, file: tuple[str, bytes, str], expected: str
) -> None:
    app.file_uploader(key="upload").set_value(file).run()
    no_crash(app)
    (message,) = errors(app)
    assert expected in message
    assert file[0] in message and "clinsynth-upload-" not in message  # no temp folder path
    assert app.button(key="next_Data").disabled
    upload_small(app)  # a good file afterwards works
    no_crash(app)
    assert not errors(app)
    assert "80 rows" in app.success[0].value


def test_population_simulator_with_chosen_diseases(app: AppTest) -> None:
    app.radio(key="keep_data_source").set_value("Use built-in example data (no real patient)")
    app.run()
    app.selectbox(key="keep_sim_kind").set_value("population").run()
    app.number_input(key="keep_sim_rows").set_value(120)
    app.multiselect(key="keep_sim_diseases").set_value(["type2_diabetes"])
    app.button(key="simulate_button").click().run()
    no_crash(app)
    data = app.session_state["real"]
    assert len(data) == 120
    assert "type2_diabetes" in data.columns and "asthma" not in data.columns
    assert app.session_state["metadata"].primary_key == "patient_id"


def test_cohort_simulator_with_chosen_conditions(app: AppTest) -> None:
    app.radio(key="keep_data_source").set_value("Use built-in example data (no real patient)")
    app.run()
    app.number_input(key="keep_sim_rows").set_value(100)
    app.multiselect(key="keep_sim_conditions").set_value(["healthy", "diabetes"])
    app.button(key="simulate_button").click().run()
    no_crash(app)
    assert set(app.session_state["real"]["condition"]) == {"healthy", "diabetes"}


# ----------------------------------------------------------------------------- metadata
def _set_type(app: AppTest, table: pd.DataFrame, column: str, sdtype: str) -> None:
    version = app.session_state["editor_version"]
    row = list(table.index).index(column)
    app.session_state[f"md_editor_{version}"] = {
        "edited_rows": {row: {"Type": sdtype}},
        "added_rows": [],
        "deleted_rows": [],
    }
    app.run()


def test_mixed_type_column_is_flagged_next_to_it_and_fixed_in_the_editor(app: AppTest) -> None:
    df = small_table(60)
    df["sbp"] = df["sbp"].astype(object)
    df.loc[[3, 17], "sbp"] = "not measured"
    upload_small(app, df)
    go(app, "Metadata")
    no_crash(app)
    table = app.data_editor[0].value.set_index("Column")
    # Detection returns metadata the data satisfies: text among the numbers -> categorical.
    assert app.session_state["metadata"].columns["sbp"]["sdtype"] == "categorical"
    assert table.loc["sbp", "Check"] == "✓ OK"
    # Declared numerical in the editable table, the stray values are flagged next to it.
    _set_type(app, table, "sbp", "numerical")
    no_crash(app)
    table = app.data_editor[0].value.set_index("Column")
    assert table.loc["sbp", "Check"].startswith("⚠ Declared numerical but 2 values")
    assert table.loc["age", "Check"] == "✓ OK"
    (message,) = errors(app)
    assert "**sbp**" in message and "'not measured' in row 4" in message
    assert app.button(key="next_Metadata").disabled

    # Declare the column categorical in the editable table: the problem goes away.
    _set_type(app, table, "sbp", "categorical")
    no_crash(app)
    assert not errors(app)
    assert app.session_state["metadata"].columns["sbp"]["sdtype"] == "categorical"
    assert (app.data_editor[0].value["Check"] == "✓ OK").all()
    assert not app.button(key="next_Metadata").disabled


def test_primary_key_choice_and_undo(app: AppTest) -> None:
    df = small_table(40)
    df.insert(0, "record", [f"R{i:04d}" for i in range(40)])
    upload_small(app, df)
    go(app, "Metadata")
    app.selectbox(key="primary_key_choice").set_value("record").run()
    no_crash(app)
    assert app.session_state["metadata"].primary_key == "record"
    app.button[0].click().run()  # undo: back to the detected metadata
    assert app.session_state["metadata"] == app.session_state["detected"]


def test_personal_data_is_marked(app: AppTest) -> None:
    df = small_table(40)
    df["email"] = [f"patient{i}@hospital.org" for i in range(40)]
    upload_small(app, df)
    go(app, "Metadata")
    table = app.data_editor[0].value.set_index("Column")
    assert table.loc["email", "Type"] == "email"
    assert bool(table.loc["email", "Personal data"]) and not bool(table.loc["age", "Personal data"])


# ----------------------------------------------------------------------------- model
def test_train_keeps_data_and_settings_and_can_train_again(app: AppTest) -> None:
    upload_small(app)
    go(app, "Model")
    assert app.selectbox(key="keep_model").value == "gaussian_copula"
    # The training time is said before the click, measured on the data.
    (estimate,) = [i.value for i in app.info if "Training will take" in i.value]
    assert "**a few seconds**" in estimate and "80 rows, model gaussian_copula" in estimate
    app.number_input(key="keep_train_seed").set_value(7)
    app.button(key="train_button").click().run()
    no_crash(app)
    assert "trained on 64 patients" in app.success[0].value  # 20% kept aside
    assert len(app.session_state["holdout"]) == 16
    first = app.session_state["synth"]

    go(app, "Data")  # the settings and the data survive a visit to another step
    go(app, "Model")
    assert app.number_input(key="keep_train_seed").value == 7
    assert app.button(key="train_button").label == "Train the model again"
    app.checkbox(key="keep_holdout").uncheck()
    app.button(key="train_button").click().run()
    no_crash(app)
    assert app.session_state["synth"] is not first
    assert "trained on 80 patients" in app.success[0].value
    assert app.session_state["live_loss_draws"] == 0  # the copula reports no training rounds
    assert "no training curve" in " ".join(c.value for c in app.caption)
    assert app.session_state["real"].shape == (80, 6)


def test_a_long_training_is_announced_before_the_click(app: AppTest, monkeypatch) -> None:
    from clinsynth.dashboard import _estimate

    upload_small(app)
    monkeypatch.setattr(_estimate, "estimate_seconds", lambda *args: 1500.0)
    go(app, "Model")
    (warning,) = [w.value for w in app.warning if "Training will take" in w.value]
    assert "**about 25 minutes**" in warning and "fewer training rounds" in warning


def test_training_time_estimate_scales_the_probe_to_the_data(monkeypatch) -> None:
    """The probe's timings (made deterministic here: 1 s of set-up + 0.01 s per row and epoch)
    are scaled to the whole table: the set-up by the square root of the rows, each epoch by the
    rows, times the epochs."""
    from clinsynth.dashboard import _estimate
    from clinsynth.simulate import simulate_cohort

    def fake(cls, md, df, params):  # noqa: ANN001, ARG001
        return 1.0 + 0.01 * len(df) * params.get("epochs", 0)

    monkeypatch.setattr(_estimate, "_fit_seconds", fake)
    df, md = simulate_cohort(1600, seed=0)  # 4x the probe's 400 rows
    deep = _estimate.estimate_seconds("tvae", {"epochs": 100}, md, df)
    assert deep == pytest.approx(1.0 * 2 + 100 * 4.0 * 4)
    assert _estimate.estimate_seconds("gaussian_copula", {}, md, df) == pytest.approx(2.0)
    linked = {"a": df, "b": df.head(400)}
    assert _estimate.estimate_seconds("tvae", {"epochs": 100}, md_two(md), linked) == (
        pytest.approx(deep * 1.25)
    )
    # auto: its candidates added up, capped by its time budget.
    assert _estimate.estimate_seconds("auto", {"time_budget": "90s"}, md, df) == 90.0


def md_two(md):  # noqa: ANN001, ANN201
    from clinsynth import Metadata

    table = md.get_table()
    return Metadata({"a": table, "b": table})


def test_training_problem_is_shown_in_the_page(app: AppTest) -> None:
    df = small_table(40)
    df["sbp"] = df["sbp"].astype(object)
    df.loc[5, "sbp"] = "high"
    upload_small(app, df)
    go(app, "Metadata")
    _set_type(app, app.data_editor[0].value.set_index("Column"), "sbp", "numerical")
    train(app)
    assert not app.exception
    (message,) = errors(app)
    assert "Training failed." in message and "column 'sbp'" in message
    assert app.session_state["synth"] is None


def test_differential_privacy_setting_for_models_that_accept_epsilon(
    app: AppTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    import clinsynth

    with_epsilon = [
        name
        for name, cls in clinsynth.list_synthesizers().items()
        if "epsilon" in cls(clinsynth.Metadata()).get_params()
    ]
    if not with_epsilon:
        pytest.skip("No registered model accepts 'epsilon' yet.")
    upload_small(app)
    go(app, "Model")
    name = with_epsilon[0]
    app.selectbox(key="keep_model").set_value(name).run()
    app.checkbox(key=f"keep_dp_{name}").check().run()
    assert app.number_input(key=f"keep_epsilon_{name}").value > 0
    no_crash(app)


# ----------------------------------------------------------------------------- generate
def test_generate_with_conditions_and_seed(app: AppTest) -> None:
    upload_small(app)
    train(app)
    generate(app, rows=40, conditions="sex = F\nage >= 50")
    no_crash(app)
    synthetic = app.session_state["synthetic"]
    assert len(synthetic) == 40
    assert (synthetic["sex"] == "F").all() and (synthetic["age"] >= 50).all()
    assert "40 synthetic patients generated with sex = F, age >= 50" in app.success[0].value
    again = generate(app, rows=40, conditions="sex = F\nage >= 50").session_state["synthetic"]
    pd.testing.assert_frame_equal(synthetic, again)  # same seed, same rows
    app.number_input(key="keep_sample_seed").set_value(5)
    other = generate(app, rows=40, conditions="sex = F\nage >= 50").session_state["synthetic"]
    assert not other.equals(synthetic)
    assert (other["sex"] == "F").all()


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ("age >= 60\nage <= 40", "contradictory range"),
        ("age is old", "Cannot read condition"),
        ("sex = X", "Could not generate the patients."),
    ],
)
def test_conditions_that_cannot_be_met_show_an_error(
    app: AppTest, conditions: str, expected: str
) -> None:
    upload_small(app)
    train(app)
    generate(app, conditions=conditions)
    assert not app.exception
    (message,) = errors(app)
    assert expected in message
    assert app.session_state["synthetic"] is None
    generate(app, conditions="")  # the app keeps running
    no_crash(app)
    assert len(app.session_state["synthetic"]) == 50


# ----------------------------------------------------------------------------- compare
def test_compare_shows_scores_verdicts_and_plots(app: AppTest) -> None:
    upload_small(app)
    train(app)
    generate(app, rows=64)
    go(app, "Compare")
    assert app.selectbox(key="keep_target").value == "condition"
    app.button(key="compare_button").click().run()
    no_crash(app)
    assert [m.label for m in app.metric] == ["Diagnostic", "Fidelity", "ML utility", "Privacy"]
    assert all(0 <= float(m.value) <= 1 for m in app.metric)
    verdicts = " ".join(md.value for md in app.markdown)
    assert "risk" in verdicts
    # the headline metrics, as the registry lists them (clinsynth.evaluation.metrics)
    from clinsynth.evaluation import metrics

    table = next(df.value for df in app.dataframe if "Better" in df.value.columns)
    assert list(table["Metric"]) == [m.label for m in metrics()]
    charts = app.get("plotly_chart")
    assert len(charts) == 3  # the picked column and the two correlation maps
    app.selectbox(key="keep_compare_column").set_value("sex").run()
    no_crash(app)
    assert app.session_state["evaluation"] is not None


def test_compare_without_holdout_says_what_is_not_measured(app: AppTest) -> None:
    upload_small(app)
    go(app, "Model")
    app.checkbox(key="keep_holdout").uncheck()
    app.button(key="train_button").click().run()
    generate(app)
    go(app, "Compare")
    app.button(key="compare_button").click().run()
    no_crash(app)
    values = {m.label: m.value for m in app.metric}
    assert values["Privacy"] == "not measured" and values["ML utility"] == "not measured"


def test_latent_space_for_models_that_encode(app: AppTest) -> None:
    import clinsynth

    if (
        not hasattr(clinsynth, "visualize_latent_space")
        or "tvae" not in clinsynth.list_synthesizers()
    ):
        pytest.skip("No latent-space model (tvae) or visualize_latent_space in this build.")
    upload_small(app)
    go(app, "Model")
    app.selectbox(key="keep_model").set_value("tvae").run()
    app.number_input(key="keep_epochs_tvae").set_value(3)
    app.number_input(key="keep_batch_tvae").set_value(32)
    app.button(key="train_button").click().run()
    no_crash(app)
    assert len(app.session_state["synth"].get_loss_values()) == 3
    # The live curve was drawn during training: after the first and after the last round
    # at least (and at most every 0.5 s in between); then the model's own curve replaces it.
    assert 2 <= app.session_state["live_loss_draws"] <= 3
    assert len(app.get("plotly_chart")) == 1  # the loss curve
    generate(app)
    go(app, "Compare")
    app.button(key="compare_button").click().run()
    no_crash(app)
    assert "What the model learned (latent space)" in [h.value for h in app.subheader]
    assert len(app.get("plotly_chart")) == 4
    assert app.selectbox(key="keep_latent_color").value == "condition"


# ----------------------------------------------------------------------------- download
def test_download_step_offers_every_file(app: AppTest) -> None:
    upload_small(app)
    train(app)
    generate(app)
    go(app, "Download")
    labels = [b.label for b in app.download_button]
    assert labels == [
        "Synthetic data (CSV)",
        "Synthetic data (Excel)",
        "Metadata (JSON)",
        "Model (zip, to make more patients later)",
        "Patients kept aside (CSV, real data: keep it with the model, do not share it)",
    ]
    assert "Run the comparison in step 5" in app.info[0].value
    kept = [b for b in app.download_button if "kept aside" in b.label][0]
    assert kept.key == "download_model.holdout.csv"  # the name `clinsynth evaluate` looks for
    go(app, "Compare")
    app.button(key="compare_button").click().run()
    go(app, "Download")
    assert "Report (HTML, opens in any browser)" in [b.label for b in app.download_button]
    no_crash(app)


# ----------------------------------------------------------------------------- sessions
def test_two_sessions_do_not_share_data() -> None:
    first, second = new_app(), new_app()
    upload_small(first)
    second.run()
    assert first.session_state["real"] is not None
    assert second.session_state["real"] is None
    go(second, "Metadata")
    assert "First choose the data in step 1." in [i.value for i in second.info]


def test_new_data_forgets_the_old_model(app: AppTest) -> None:
    upload_small(app)
    train(app)
    generate(app)
    go(app, "Data")
    app.file_uploader(key="upload").set_value(csv_upload(small_table(50, seed=1), "b.csv")).run()
    no_crash(app)
    assert app.session_state["synth"] is None and app.session_state["synthetic"] is None
    assert len(app.session_state["real"]) == 50
