"""A longitudinal table (lab results of each patient over time) through the dashboard's steps."""

from __future__ import annotations

import pandas as pd
import pytest
from dashdata import csv_upload, errors, new_app, no_crash
from streamlit.testing.v1 import AppTest

from clinsynth.dashboard._download import report_bytes
from clinsynth.simulate import simulate_lab_trajectories


def go(at: AppTest, step: str) -> AppTest:
    return at.radio(key="step").set_value(step).run()


def visits(n: int = 60) -> pd.DataFrame:
    data, _ = simulate_lab_trajectories(n, mean_visits=5, seed=0)
    return data


def upload(at: AppTest, data: pd.DataFrame) -> AppTest:
    at.file_uploader(key="upload").set_value(csv_upload(data, "visits.csv")).run()
    return go(at, "Metadata")


@pytest.mark.slow
def test_longitudinal_table_from_upload_to_report() -> None:
    app = upload(new_app(), visits())
    no_crash(app)
    # Proposed from the data: patient_id repeats, day orders each patient's rows.
    table = app.session_state["metadata"].get_table()
    assert (table.sequence_key, table.sequence_index) == ("patient_id", "day")
    assert app.checkbox(key="seq_on_choice").value
    assert app.selectbox(key="seq_key_choice").value == "patient_id"
    assert app.selectbox(key="seq_index_choice").value == "day"
    assert not errors(app) and not app.button(key="next_Metadata").disabled

    go(app, "Model")
    (only,) = app.selectbox(key="keep_seq_model").options
    assert only.startswith("sequential — ")
    assert "keep_holdout" not in [c.key for c in app.checkbox]  # no patients kept aside
    # The training time is measured on whole patients (a sample of rows would cut sequences).
    assert any("model sequential; measured" in i.value for i in app.info), [
        i.value for i in app.info
    ]
    app.number_input(key="keep_epochs_sequential").set_value(2)
    app.number_input(key="keep_batch_sequential").set_value(32)
    app.button(key="train_button").click().run()
    no_crash(app)
    assert type(app.session_state["synth"]).__name__ == "SequentialSynthesizer"
    assert app.session_state["holdout"] is None
    assert "trained on 60 patients (" in app.success[0].value
    assert app.session_state["live_loss_draws"] >= 1  # the progress follows the rounds

    go(app, "Generate")
    assert app.number_input(key="keep_num_rows").label == "Number of patients (sequences)"
    assert app.number_input(key="keep_num_rows").value == 60  # as many as in training
    app.number_input(key="keep_num_rows").set_value(20)
    # Conditions fix a column constant per patient; a range is refused with the model's words.
    app.text_area(key="keep_conditions").input("sex = F")
    app.button(key="generate_button").click().run()
    no_crash(app)
    assert (app.session_state["synthetic"]["sex"] == "F").all()
    app.text_area(key="keep_conditions").input("age >= 60")
    app.button(key="generate_button").click().run()
    (message,) = errors(app)
    assert "Could not generate the patients." in message and "ask for a range" in message
    app.text_area(key="keep_conditions").input("")
    app.button(key="generate_button").click().run()
    no_crash(app)
    synthetic = app.session_state["synthetic"]
    assert synthetic["patient_id"].nunique() == 20 and len(synthetic) > 20
    assert f"20 synthetic patients ({len(synthetic):,} events)" in app.success[0].value

    go(app, "Compare")
    app.button(key="compare_button").click().run()
    no_crash(app)
    sequences = app.session_state["evaluation"].figures["sequences"]
    assert (sequences["key"], sequences["index"]) == ("patient_id", "day")
    assert "Sequences over time" in [h.value for h in app.subheader]
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Temporal-logic violations"] == "0"
    assert 0 <= float(metrics["Events per patient (KS)"]) <= 1
    charts = [c for c in app.get("plotly_chart") if "trajectory_chart" in (c.key or "")]
    assert len(charts) == len(sequences["trajectories"]) >= 1
    # The HTML report that step 6 offers has the section too.
    html = report_bytes(app.session_state["evaluation"]).decode("utf-8")
    assert "Sequences over time" in html

    go(app, "Download")
    no_crash(app)
    labels = [b.label for b in app.download_button]
    assert "Synthetic data (CSV)" in labels and "Model (zip, to make more patients later)" in labels
    assert "Report (HTML, opens in any browser)" in labels


def test_bad_sequence_choices_show_the_message_and_block_the_next_step() -> None:
    data = visits(30)
    data["week"] = data["day"] // 7  # two visits of a patient in one week: ties
    data.insert(0, "visit_id", [f"V{i:05d}" for i in range(len(data))])  # one row per value
    app = upload(new_app(), data)
    assert app.selectbox(key="seq_key_choice").value == "patient_id"
    assert app.selectbox(key="seq_index_choice").value == "day"
    assert not errors(app)

    app.selectbox(key="seq_index_choice").set_value("week").run()
    no_crash(app)
    (message,) = errors(app)
    assert "The sequence index 'week' has ties" in message and "merge or drop" in message
    assert app.button(key="next_Metadata").disabled

    app.selectbox(key="seq_key_choice").set_value("visit_id").run()
    no_crash(app)
    (message,) = errors(app)
    assert "every patient ('visit_id') has exactly one event" in message.lower()
    assert app.button(key="next_Metadata").disabled

    # Not longitudinal after all: the words go, every model is offered again.
    app.checkbox(key="seq_on_choice").uncheck().run()
    no_crash(app)
    table = app.session_state["metadata"].get_table()
    assert table.sequence_key is None and table.sequence_index is None
    assert not errors(app)
    go(app, "Model")
    models = app.selectbox(key="keep_model")
    assert models.value == "gaussian_copula" and len(models.options) > 1
    assert not any(o.startswith("sequential") for o in models.options)


def test_lab_trajectories_simulator_gives_a_longitudinal_table() -> None:
    app = new_app()
    app.radio(key="keep_data_source").set_value("Use built-in example data (no real patient)")
    app.run()
    app.selectbox(key="keep_sim_kind").set_value("trajectories").run()
    app.number_input(key="keep_sim_rows").set_value(1000)
    app.button(key="simulate_button").click().run()
    no_crash(app)
    assert app.session_state["real"]["patient_id"].nunique() == 1000
    go(app, "Metadata")
    no_crash(app)
    assert app.checkbox(key="seq_on_choice").value and not errors(app)
    assert app.selectbox(key="seq_index_choice").value == "day"
    go(app, "Model")
    no_crash(app)
    # The model's own choice of rounds for 1,000 patients (about 2,000 batches of 128).
    assert app.number_input(key="keep_epochs_sequential").value == 250


def test_a_linked_table_is_declared_over_time() -> None:
    """Linked tables: a child table's rows become events over time of its parent's rows."""
    at = new_app()
    at.radio(key="keep_data_source").set_value("Use built-in example data (no real patient)").run()
    at.selectbox(key="keep_sim_kind").set_value("hospital").run()
    at.number_input(key="keep_sim_rows").set_value(30)
    at.button(key="simulate_button").click().run()
    go(at, "Metadata")
    at.selectbox(key="keep_md_table").set_value("visits").run()
    no_crash(at)
    assert not at.checkbox(key="seq_linked_on_visits").value
    proposal = "`admission_date` orders the rows of each `patient_id`"
    assert any(proposal in c.value for c in at.caption)
    at.checkbox(key="seq_linked_on_visits").check().run()
    no_crash(at)
    visits = at.session_state["metadata"].tables["visits"]
    assert (visits.sequence_key, visits.sequence_index) == ("patient_id", "admission_date")
    assert at.selectbox(key="seq_linked_index_visits").value == "admission_date"
    assert not errors(at) and not at.button(key="next_Metadata").disabled
    # A column with ties within a patient cannot order the events: said, and the step waits.
    at.selectbox(key="seq_linked_index_visits").set_value("length_of_stay").run()
    assert any("Table 'visits'" in e for e in errors(at)), errors(at)
    assert at.button(key="next_Metadata").disabled
    at.selectbox(key="seq_linked_index_visits").set_value("admission_date").run()
    assert not errors(at)
    # lab_results has two parents: the link is chosen, patients' or visits'.
    at.selectbox(key="keep_md_table").set_value("lab_results").run()
    at.checkbox(key="seq_linked_on_lab_results").check().run()
    assert at.selectbox(key="seq_linked_key_lab_results").options == [
        "visit_id (rows of visits)",
        "patient_id (rows of patients)",
    ]
    at.checkbox(key="seq_linked_on_lab_results").uncheck().run()
    assert at.session_state["metadata"].tables["lab_results"].sequence_index is None
    go(at, "Model")
    assert any("Rows over time (visits, step 2)" in c.value for c in at.caption)
    # The declared schema trains: the visits as each patient's sequence of events.
    from clinsynth.multitable import HMASynthesizer

    metadata = at.session_state["metadata"]
    model = HMASynthesizer(metadata, synthesizer_params={"epochs": 2}, random_state=0)
    model.fit(at.session_state["real"])
    assert type(model.get_table_synthesizer("visits")).__name__ == "SequentialSynthesizer"
