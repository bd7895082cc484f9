"""Linked tables in the dashboard: the hospital simulator and uploaded CSV files, every step."""

from __future__ import annotations

import io
import json
import zipfile

import pandas as pd
import pytest
from dashdata import errors, new_app, no_crash, small_table
from streamlit.testing.v1 import AppTest

import clinsynth

SIMULATE = "Use built-in example data (no real patient)"
UPLOAD_MANY = "Upload linked tables (several CSV files)"


def go(at: AppTest, step: str) -> AppTest:
    return at.radio(key="step").set_value(step).run()


def simulate_hospital(at: AppTest, patients: int = 30) -> AppTest:
    at.radio(key="keep_data_source").set_value(SIMULATE).run()
    at.selectbox(key="keep_sim_kind").set_value("hospital").run()
    at.number_input(key="keep_sim_rows").set_value(patients)
    return at.button(key="simulate_button").click().run()


def test_hospital_tables_through_every_step() -> None:
    at = new_app()
    simulate_hospital(at)
    no_crash(at)
    tables = at.session_state["real"]
    assert sorted(tables) == ["lab_results", "patients", "visits"]
    assert "3 linked tables" in at.success[0].value and "patients (30 rows)" in at.success[0].value
    assert at.selectbox(key="keep_preview_table").value == "patients"
    at.selectbox(key="keep_preview_table").set_value("visits").run()
    assert at.dataframe[0].value.shape[0] == len(tables["visits"])

    # 2. Metadata: the links, and the columns of the chosen table with their key roles.
    go(at, "Metadata")
    no_crash(at)
    links = " ".join(md.value for md in at.markdown)
    for child, column, parent in (
        ("visits", "patient_id", "patients"),
        ("lab_results", "visit_id", "visits"),
        ("lab_results", "patient_id", "patients"),
    ):
        assert (
            f"Each row of **{child}** belongs to one row of **{parent}**: its column `{column}`"
            in links
        )
    options = at.selectbox(key="keep_md_table").options
    assert [o.split(" (")[0] for o in options] == ["patients", "visits", "lab_results"]
    at.selectbox(key="keep_md_table").set_value("visits").run()
    columns = at.data_editor[1].value.set_index("Column")  # [0]: the links
    assert columns.loc["visit_id", "Key"] == "key of this table"
    assert columns.loc["patient_id", "Key"] == "link to patients"
    assert "The metadata fits the data" in at.success[0].value
    # A type changed in the editor changes that table only.
    version = at.session_state["editor_version"]
    row = list(columns.index).index("length_of_stay")
    at.session_state[f"md_editor_{version}_visits"] = {
        "edited_rows": {row: {"Type": "categorical"}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    no_crash(at)
    metadata = at.session_state["metadata"]
    assert metadata.tables["visits"].columns["length_of_stay"]["sdtype"] == "categorical"
    assert at.selectbox(key="keep_md_table").value.startswith("visits")
    assert not at.button(key="next_Metadata").disabled

    # 3. Model: one model for every table, no holdout.
    go(at, "Model")
    assert at.selectbox(key="keep_model").value == "gaussian_copula"
    at.button(key="train_button").click().run()
    no_crash(at)
    assert "trained on 3 linked tables" in at.success[0].value
    assert isinstance(at.session_state["synth"], clinsynth.multitable.HMASynthesizer)

    # 4. Generate at twice the size.
    go(at, "Generate")
    at.number_input(key="keep_scale").set_value(2.0)
    at.button(key="generate_button").click().run()
    no_crash(at)
    synthetic = at.session_state["synthetic"]
    assert len(synthetic["patients"]) == 60
    assert synthetic["visits"]["patient_id"].isin(synthetic["patients"]["patient_id"]).all()
    assert "Synthetic tables generated" in at.success[0].value

    # 5. Compare: the multi-table scores, then the plots of a chosen table.
    go(at, "Compare")
    at.button(key="compare_button").click().run()
    no_crash(at)
    assert [m.label for m in at.metric] == ["Fidelity", "Keys and links"]
    assert 0 <= float(at.metric[0].value) <= 1 and float(at.metric[1].value) > 0.9
    measures = at.dataframe[0].value.set_index("Measure")
    assert {"Cardinality", "Intertable Trends"} <= set(measures.index)
    assert measures.loc[["Primary Keys", "Referential Integrity"], "Score"].tolist() == [
        "1.00",
        "1.00",
    ]  # unique keys, no orphan
    assert (measures["What it checks"] != "").all()
    # Children per parent for each link, then a column of the first table.
    link = at.selectbox(key="keep_compare_link")
    assert link.value == "visits per row of patients"  # parents first
    assert set(link.options) == {
        "visits per row of patients",
        "lab_results per row of visits",
        "lab_results per row of patients",
    }
    assert len(at.get("plotly_chart")) >= 2
    at.selectbox(key="keep_compare_table").set_value("lab_results").run()
    no_crash(at)
    column = at.selectbox(key="keep_compare_column_lab_results")
    assert "RESULTNUMERIC" in column.options
    column.set_value("RESULTNUMERIC").run()
    no_crash(at)

    # 6. Download: one ZIP of CSVs with the metadata and the scores.
    go(at, "Download")
    no_crash(at)
    labels = [b.label for b in at.get("download_button")]
    assert labels[0].startswith("All tables (ZIP of CSV files")
    assert "Model (zip, to make more tables later)" in labels
    assert "Report (HTML, opens in any browser)" in labels


def test_tables_zip_holds_every_table_metadata_and_scores() -> None:
    from clinsynth.dashboard._download import tables_zip
    from clinsynth.simulate import simulate_hospital as simulate

    tables, metadata = simulate(20, seed=1)
    report = clinsynth.multitable.evaluate_multi_table(tables, tables, metadata, per_table=False)
    with zipfile.ZipFile(io.BytesIO(tables_zip(tables, metadata, report))) as archive:
        names = set(archive.namelist())
        assert names == {
            "patients.csv",
            "visits.csv",
            "lab_results.csv",
            "metadata.json",
            "report.json",
        }
        visits = pd.read_csv(archive.open("visits.csv"))
        loaded = clinsynth.Metadata.from_dict(json.loads(archive.read("metadata.json")))
    assert visits.shape == tables["visits"].shape
    assert loaded == metadata


def _many(at: AppTest, files: list[tuple[str, bytes, str]]) -> AppTest:
    at.radio(key="keep_data_source").set_value(UPLOAD_MANY).run()
    return at.file_uploader(key="upload_tables").set_value(files).run()


def _csv(name: str, frame: pd.DataFrame) -> tuple[str, bytes, str]:
    return name, frame.to_csv(index=False).encode("utf-8"), "text/csv"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ([_csv("patients.csv", small_table(10))], "need two or more CSV files"),
        (
            [_csv("patients.csv", small_table(10)), ("visits.xlsx", b"PK\x03\x04", "x")],
            "visits.xlsx is not CSV",
        ),
        (
            [_csv("patients.csv", small_table(10)), _csv("patients.csv", small_table(10))],
            "patients.csv was chosen twice",
        ),
    ],
)
def test_bad_linked_uploads_say_what_to_do(files: list, expected: str) -> None:
    at = _many(new_app(), files)
    no_crash(at)
    (message,) = errors(at)
    assert "Could not use these files." in message and expected in message
    assert at.session_state["real"] is None
    assert at.button(key="next_Data").disabled


def test_uploaded_csvs_are_linked_by_their_keys() -> None:
    from clinsynth.simulate import simulate_hospital as simulate

    tables, _ = simulate(20, seed=3)
    at = _many(new_app(), [_csv(f"{name}.csv", df) for name, df in tables.items()])
    no_crash(at)
    assert list(at.session_state["real"]) == ["patients", "visits", "lab_results"]
    assert "3 linked tables — patients (20 rows)" in at.success[0].value
    assert len(at.session_state["metadata"].relationships) == 3
    assert "clinsynth-upload-" not in " ".join(errors(at))


def test_tables_without_a_link_are_said_to_be_unlinked() -> None:
    other = pd.DataFrame({"site": ["A", "B"], "beds": [10, 20]})
    at = _many(new_app(), [_csv("patients.csv", small_table(20)), _csv("sites.csv", other)])
    no_crash(at)
    assert "2 tables (not linked)" in at.success[0].value
    go(at, "Metadata")
    assert "No link between the tables was found" in at.warning[0].value


def test_links_are_edited_on_the_page_with_their_evidence() -> None:
    """A link detection missed (its column named like nothing of the parent) is added with its
    evidence; a link is removed by unticking it; a table's key is picked."""
    from clinsynth.simulate import simulate_hospital as simulate

    tables, _ = simulate(25, seed=4)
    visits = tables["visits"].rename(columns={"patient_id": "subject"})
    files = [_csv("patients.csv", tables["patients"]), _csv("visits.csv", visits)]
    at = go(_many(new_app(), files), "Metadata")
    no_crash(at)
    metadata = at.session_state["metadata"]
    assert metadata.relationships == []
    links = at.data_editor(key=f"links_editor_{at.session_state['editor_version']}").value
    assert links.empty

    # Add visits.subject -> patients.patient_id: the evidence is shown before the click.
    at.selectbox(key="add_link_child").set_value("visits").run()
    at.selectbox(key="add_link_column").set_value("subject").run()
    at.selectbox(key="add_link_parent").set_value("patients").run()
    shown = " ".join(c.value for c in at.caption)
    assert "100.0% of the values of `visits.subject` are keys of `patients`" in shown
    assert "0 orphans" in shown
    at.button(key="add_link_button").click().run()
    no_crash(at)
    assert at.session_state["metadata"].relationships == [
        {
            "parent_table_name": "patients",
            "parent_primary_key": "patient_id",
            "child_table_name": "visits",
            "child_foreign_key": "subject",
        }
    ]
    version = at.session_state["editor_version"]
    links = at.data_editor(key=f"links_editor_{version}").value
    row = links.iloc[0]
    assert bool(row["Keep"]) and row["Points to"] == "patients.patient_id"
    assert row["Values found"] == 100.0 and row["Orphans"] == 0
    assert row["Evidence"] == "added by hand"
    assert not at.button(key="next_Metadata").disabled

    # Untick it: removed.
    at.session_state[f"links_editor_{version}"] = {
        "edited_rows": {0: {"Keep": False}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    no_crash(at)
    assert at.session_state["metadata"].relationships == []

    # Pick another key for visits: the selectbox of each table.
    version = at.session_state["editor_version"]
    at.selectbox(key=f"table_key_visits_{version}").set_value("visit_id").run()
    assert at.session_state["metadata"].tables["visits"].primary_key == "visit_id"


def test_candidates_detection_left_out_can_be_kept() -> None:
    """A link detection refused (a broken name match) is listed with its evidence, unticked."""
    patients = pd.DataFrame({"patient_id": range(1, 41), "age": range(30, 70)})
    visits = pd.DataFrame(
        {"visit_id": range(100), "patient_id": [i % 40 + 100 for i in range(100)]}
    )
    at = go(
        _many(new_app(), [_csv("patients.csv", patients), _csv("visits.csv", visits)]), "Metadata"
    )
    no_crash(at)
    version = at.session_state["editor_version"]
    links = at.data_editor(key=f"links_editor_{version}").value
    (row,) = links.itertuples(index=False)
    assert not row.Keep and row.Table == "visits" and row.Column == "patient_id"
    assert row._4 == 0.0 and row.Orphans == 100 and row.Evidence.startswith("broken")


# ----------------------------------------------------------------------------- live loss
class _Placeholder:
    """Stands in for ``st.empty()``: keeps the figures it is given."""

    def __init__(self) -> None:
        self.figures: list = []

    def plotly_chart(self, fig) -> None:
        self.figures.append(fig)


def test_live_loss_follows_each_linked_table_in_turn() -> None:
    """HMASynthesizer's forwarded messages ("Table 'x': epoch ...") draw one curve per table."""
    from clinsynth.dashboard._model import LiveLoss

    live = LiveLoss(_Placeholder(), interval=3600.0)  # only first and last epochs are drawn
    live(4000, 0, "Fitting table 'patients'")
    for epoch in (1, 2, 3):
        live(4000, 300 * epoch, f"Table 'patients': epoch {epoch}/3 loss {5 - epoch}.0 ETA 1s")
    assert live.table == "patients" and live.epochs == [1, 2, 3]
    assert live.series["loss"] == [4.0, 3.0, 2.0]
    live(4000, 1000, "Fitting table 'visits'")
    live(4000, 1100, "Table 'visits': epoch 1/2 loss 9.5 ETA 1s")
    assert live.table == "visits" and live.epochs == [1] and live.series == {"loss": [9.5]}
    live(4000, 1999, "Table 'visits': epoch 2/2 loss 8.5 ETA 0s")
    assert live.draws == 4  # first and last epoch of each table
    titles = [f.layout.title.text for f in live.placeholder.figures]
    assert titles[0].startswith("Table patients") and titles[-1].startswith("Table visits")
