"""Step 1, Data: upload a table or simulate one with a built-in simulator; preview it."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from clinsynth import Metadata
from clinsynth.dashboard import _state, _ui
from clinsynth.errors import DataError
from clinsynth.io import get_format, load_csvs, read_table

_UPLOAD = "Upload one table"
_UPLOAD_MANY = "Upload linked tables (several CSV files)"
_SIMULATE = "Use built-in example data (no real patient)"
_SIMULATORS = {
    "cohort": "Cohort: 20 clinical measurements and a condition label (one table)",
    "population": "Population: genetic variants, exposures, diseases, labs and medicines "
    "(one table)",
    "hospital": "Hospital: patients, their visits and the visits' lab results (three linked "
    "tables)",
    "trajectories": "Lab trajectories: each patient's lab results over time (one longitudinal "
    "table, several rows per patient)",
}


def _read_private(files: dict[str, bytes], read: Callable[[Path], Any]) -> Any:
    """``read(folder)`` on copies of ``files`` in a private temp folder, deleted at once.

    Error messages name the files, not the folder.
    """
    with tempfile.TemporaryDirectory(prefix="clinsynth-upload-") as folder:
        for name, content in files.items():
            (Path(folder) / Path(name).name).write_bytes(content)
        try:
            return read(Path(folder))
        except DataError as exc:
            message = str(exc).replace(folder + "/", "").replace(folder, "the uploaded files")
            raise DataError(message, exc.problems) from None


def read_upload(name: str, content: bytes) -> pd.DataFrame:
    """Read an uploaded file with :func:`clinsynth.io.read_table`, from a private temp folder."""
    return _read_private({name: content}, lambda folder: read_table(folder / Path(name).name))


def read_uploads(files: dict[str, bytes]) -> dict[str, pd.DataFrame]:
    """Read uploaded CSV files, one table each (named after the file), with
    :func:`clinsynth.io.load_csvs`."""
    csv = get_format("csv").writes[0]  # what load_csvs reads
    others = [name for name in files if Path(name).suffix.lower() != csv]
    if others:
        raise DataError(
            f"Linked tables are read from CSV files only; {', '.join(others)} "
            f"{'is' if len(others) == 1 else 'are'} not CSV. Save every table as CSV and upload "
            "them again."
        )
    if len(files) < 2:
        raise DataError(
            "Linked tables need two or more CSV files (one per table, such as patients.csv and "
            "visits.csv). For a single table, choose 'Upload one table'."
        )
    return _read_private(files, load_csvs)


def _disease_names() -> list[str]:
    from clinsynth.simulate import load_graph

    return [node for node, kind in load_graph().nodes(data="type") if kind == "disease"]


#: Settings that name columns of the previous table: they start afresh with new data.
_PER_TABLE = (
    "keep_num_rows",
    "keep_conditions",
    "keep_target",
    "keep_compare_column",
    "keep_compare_table",
    "keep_compare_link",
    "keep_md_table",
    "keep_preview_table",
    "keep_latent_color",
    "primary_key_choice",
)


def _use(data: pd.DataFrame | dict, source: str, metadata: Metadata | None = None) -> None:
    for key in list(st.session_state.keys()):
        if isinstance(key, str) and key.startswith(_PER_TABLE):  # also the per-table ones
            st.session_state.pop(key, None)
    if metadata is None:
        if isinstance(data, dict):
            metadata = Metadata.detect_from_dataframes(data)
        else:
            from clinsynth.dashboard._longitudinal import propose

            metadata = Metadata.detect_from_dataframe(data)
            propose(data, metadata)  # several rows per patient, ordered: learned as sequences
    if isinstance(data, dict):
        # Parents first everywhere (patients, visits, lab results), not in file-name order.
        order = _ui.parents_first(list(data), metadata.relationships)
        data = {name: data[name] for name in order}
        spec = metadata.to_dict()
        spec["tables"] = {name: spec["tables"][name] for name in order}
        metadata = Metadata.from_dict(spec)
    _state.put("real", data)
    _state.put("metadata", metadata)
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


def _upload_many() -> None:
    st.caption(
        "One CSV file per table, for example patients.csv, visits.csv and lab_results.csv: "
        "each file's name becomes the table's name. Tables are linked through key columns "
        "(a `patient_id` in visits.csv that points to patients.csv). The files are read on "
        "this computer and are not sent anywhere else."
    )
    uploaded = st.file_uploader(
        "Your tables (select all the CSV files at once)",
        key="upload_tables",
        accept_multiple_files=True,
    )
    if not uploaded:
        return
    signature = tuple((f.name, f.size, getattr(f, "file_id", "")) for f in uploaded)
    if st.session_state.get("upload_signature") == signature:
        return  # already read; keep the metadata edits and the model
    try:
        names = [f.name for f in uploaded]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise DataError(
                f"{', '.join(twice)} {'was' if len(twice) == 1 else 'were'} chosen twice. "
                "Remove the extra copy (the × next to the file name): each table is one file."
            )
        tables = read_uploads({f.name: f.getvalue() for f in uploaded})
    except Exception as exc:  # noqa: BLE001 - every failure becomes a message in the page
        st.session_state["upload_signature"] = None
        _ui.show_error(exc, where="Could not use these files.")
        return
    st.session_state["upload_signature"] = signature
    _use(tables, "uploaded files")


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
    picked: list[str] = []
    if kind == "population":
        picked = st.multiselect(
            "Diseases to include (leave empty for all)",
            _disease_names(),
            key="keep_sim_diseases",
            format_func=lambda name: name.replace("_", " "),
        )
    elif kind == "cohort":
        from clinsynth.simulate import COHORT_CONDITIONS

        picked = st.multiselect(
            "Conditions to include (leave empty for all)",
            list(COHORT_CONDITIONS),
            key="keep_sim_conditions",
            format_func=lambda name: name.replace("_", " "),
        )
    if not st.button("Create the example data", type="primary", key="simulate_button"):
        return
    from clinsynth.simulate import (
        simulate_cohort,
        simulate_hospital,
        simulate_lab_trajectories,
        simulate_population,
    )

    try:
        with st.spinner("Simulating patients..."):
            if kind == "population":
                data, md = simulate_population(int(rows), seed=int(seed), diseases=picked or None)
            elif kind == "hospital":
                data, md = simulate_hospital(int(rows), seed=int(seed))
            elif kind == "trajectories":
                data, md = simulate_lab_trajectories(int(rows), seed=int(seed))
            else:
                data, md = simulate_cohort(int(rows), seed=int(seed), conditions=picked or None)
    except Exception as exc:  # noqa: BLE001
        _ui.show_error(exc, where="Could not simulate the data.")
        return
    st.session_state["upload_signature"] = None
    _use(data, f"simulated {kind} ({int(rows)} patients, seed {int(seed)})", md)


def _preview(data: pd.DataFrame | dict) -> None:
    if not isinstance(data, dict):
        st.success(
            f"Using the {st.session_state['source']}: {len(data):,} rows and "
            f"{data.shape[1]} columns.",
            icon=":material/check_circle:",
        )
        st.subheader("Preview (first 100 rows)")
        _ui.preview(data)
        return
    sizes = ", ".join(f"{name} ({_ui.plural(len(df), 'row')})" for name, df in data.items())
    st.success(
        f"Using the {st.session_state['source']}: {_ui.tables_label(len(data))} — {sizes}.",
        icon=":material/check_circle:",
    )
    st.subheader("Preview (first 100 rows)")
    name = _ui.table_picker(data, "keep_preview_table")
    _ui.preview(data[name])


def render() -> None:
    """Draw the Data step."""
    st.header("1. Data")
    st.write(
        "Start from a table of real patients (one row per patient), from several linked tables "
        "(patients, visits, lab results...), or try the tool on built-in example data."
    )
    choice = st.radio(
        "Where does the data come from?",
        (_UPLOAD, _UPLOAD_MANY, _SIMULATE),
        key=_ui.default("keep_data_source", _UPLOAD),
        horizontal=True,
    )
    if choice == _UPLOAD:
        _upload()
    elif choice == _UPLOAD_MANY:
        _upload_many()
    else:
        _simulate()
    data = _state.get("real")
    if data is not None:
        _preview(data)
    _ui.next_step("Data")
