"""Step 1, Data: upload a table or simulate one with a built-in simulator; preview it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from clinsynth import Metadata
from clinsynth.dashboard import _state, _ui
from clinsynth.errors import DataError
from clinsynth.io import read_table

UPLOAD_TYPES = ("csv", "tsv", "txt", "xlsx", "xls", "parquet", "pq")
_UPLOAD = "Upload my own file"
_SIMULATE = "Use built-in example data (no real patient)"
_SIMULATORS = {
    "cohort": "Cohort: 20 clinical measurements and a condition label",
    "population": "Population: genetic variants, exposures, diseases, labs and medicines",
}


def read_upload(name: str, content: bytes) -> pd.DataFrame:
    """Read an uploaded file with :func:`clinsynth.io.read_table`, from a private temp folder.

    The copy is deleted as soon as it is read; error messages name the file, not the folder.
    """
    with tempfile.TemporaryDirectory(prefix="clinsynth-upload-") as folder:
        path = Path(folder) / Path(name).name
        path.write_bytes(content)
        try:
            return read_table(path)
        except DataError as exc:
            message = str(exc).replace(str(path), path.name).replace(folder + "/", "")
            raise DataError(message, exc.problems) from None


def _disease_names() -> list[str]:
    from clinsynth.simulate import load_graph

    return [node for node, kind in load_graph().nodes(data="type") if kind == "disease"]


#: Settings that name columns of the previous table: they start afresh with new data.
_PER_TABLE = (
    "keep_num_rows",
    "keep_conditions",
    "keep_target",
    "keep_compare_column",
    "keep_latent_color",
    "primary_key_choice",
)


def _use(data: pd.DataFrame, source: str, metadata: Metadata | None = None) -> None:
    for key in _PER_TABLE:
        st.session_state.pop(key, None)
    _state.put("real", data)
    _state.put("metadata", metadata or Metadata.detect_from_dataframe(data))
    st.session_state["source"] = source
    st.session_state["detected"] = _state.get("metadata").copy()


def _upload() -> None:
    limit = st.get_option("server.maxUploadSize")
    st.caption(
        f"CSV, Excel (.xlsx, first sheet) or Parquet, up to {limit} MB. The file is read on this "
        "computer and is not sent anywhere else."
    )
    uploaded = st.file_uploader("Your table (one row per patient)", key="upload")
    if uploaded is None:
        return
    signature = (uploaded.name, uploaded.size, getattr(uploaded, "file_id", ""))
    if st.session_state.get("upload_signature") == signature:
        return  # already read; keep the metadata edits and the model
    try:
        data = read_upload(uploaded.name, uploaded.getvalue())
    except Exception as exc:  # noqa: BLE001 - every failure becomes a message in the page
        st.session_state["upload_signature"] = None
        _ui.show_error(exc, where=f"Could not use '{uploaded.name}'.")
        return
    st.session_state["upload_signature"] = signature
    _use(data, f"file '{uploaded.name}'")


def _simulate() -> None:
    kind = st.selectbox(
        "Example data set",
        list(_SIMULATORS),
        format_func=_SIMULATORS.get,
        key=_ui.default("keep_sim_kind", "cohort"),
    )
    left, right = st.columns(2)
    rows = left.number_input(
        "Number of patients",
        min_value=10,
        max_value=200_000,
        step=100,
        key=_ui.default("keep_sim_rows", 1000),
    )
    seed = right.number_input(
        "Seed (same seed, same patients)",
        min_value=0,
        step=1,
        key=_ui.default("keep_sim_seed", 0),
    )
    if kind == "population":
        picked = st.multiselect(
            "Diseases to include (leave empty for all)",
            _disease_names(),
            key="keep_sim_diseases",
            format_func=lambda name: name.replace("_", " "),
        )
    else:
        from clinsynth.simulate import COHORT_CONDITIONS

        picked = st.multiselect(
            "Conditions to include (leave empty for all)",
            list(COHORT_CONDITIONS),
            key="keep_sim_conditions",
            format_func=lambda name: name.replace("_", " "),
        )
    if not st.button("Create the example data", type="primary", key="simulate_button"):
        return
    from clinsynth.simulate import simulate_cohort, simulate_population

    try:
        with st.spinner("Simulating patients..."):
            if kind == "population":
                data, md = simulate_population(int(rows), seed=int(seed), diseases=picked or None)
            else:
                data, md = simulate_cohort(int(rows), seed=int(seed), conditions=picked or None)
    except Exception as exc:  # noqa: BLE001
        _ui.show_error(exc, where="Could not simulate the data.")
        return
    st.session_state["upload_signature"] = None
    _use(data, f"simulated {kind} ({int(rows)} patients, seed {int(seed)})", md)


def render() -> None:
    """Draw the Data step."""
    st.header("1. Data")
    st.write(
        "Start from a table of real patients, one row per patient, or try the tool on built-in "
        "example data."
    )
    choice = st.radio(
        "Where does the data come from?",
        (_UPLOAD, _SIMULATE),
        key=_ui.default("keep_data_source", _UPLOAD),
        horizontal=True,
    )
    if choice == _UPLOAD:
        _upload()
    else:
        _simulate()
    data = _state.get("real")
    if data is not None:
        st.success(
            f"Using the {st.session_state['source']}: {len(data):,} rows and "
            f"{data.shape[1]} columns.",
            icon=":material/check_circle:",
        )
        st.subheader("Preview (first 100 rows)")
        st.dataframe(data.head(100), hide_index=True)
    _ui.next_step("Data")
