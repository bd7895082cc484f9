"""Step 6, Download: synthetic data (CSV, Excel), the HTML report, the metadata, the model."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import streamlit as st

from clinsynth.dashboard import _state, _ui
from clinsynth.io import write_table


def _via_file(name: str, write: Callable[[Path], object]) -> bytes:
    """Bytes of a file written by the library into a private temp folder (then deleted)."""
    with tempfile.TemporaryDirectory(prefix="clinsynth-download-") as folder:
        path = Path(folder) / name
        write(path)
        return path.read_bytes()


def csv_bytes(data: pd.DataFrame) -> bytes:
    """The table as UTF-8 CSV."""
    return data.to_csv(index=False).encode("utf-8")


def excel_bytes(data: pd.DataFrame) -> bytes:
    """The table as an Excel workbook (written by :func:`clinsynth.io.write_table`)."""
    return _via_file("synthetic.xlsx", lambda path: write_table(data, path))


def model_bytes(model: object) -> bytes:
    """The fitted model as a zip bundle (JSON and tensors; no training record inside)."""
    return _via_file("model.zip", model.save)  # type: ignore[attr-defined]


def report_bytes(result: object) -> bytes:
    """The self-contained HTML report of an evaluation."""
    return _via_file("report.html", result.save_html)  # type: ignore[attr-defined]


def render() -> None:
    """Draw the Download step."""
    st.header("6. Download")
    if not _ui.needs("Generate", "synthetic", "First generate synthetic patients in step 4."):
        return
    synthetic: pd.DataFrame = _state.get("synthetic")
    st.write(
        f"The synthetic table has {len(synthetic):,} rows. It holds no real patient; share it "
        "with the report that shows how faithful and how private it is."
    )
    st.subheader("Synthetic data")
    left, right = st.columns(2)
    left.download_button(
        "Synthetic data (CSV)",
        data=csv_bytes(synthetic),
        file_name="synthetic.csv",
        mime="text/csv",
        type="primary",
        key="download_csv",
        icon=":material/download:",
        on_click="ignore",  # no rerun: a rerun would drop the file being prepared
    )
    right.download_button(
        "Synthetic data (Excel)",
        data=lambda: excel_bytes(synthetic),
        file_name="synthetic.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        key="download_excel",
        icon=":material/download:",
        on_click="ignore",  # no rerun: a rerun would drop the file being prepared
    )
    st.subheader("Evidence and set-up")
    result = _state.get("evaluation")
    left, right = st.columns(2)
    if result is not None:
        left.download_button(
            "Report (HTML, opens in any browser)",
            data=lambda: report_bytes(result),
            file_name="report.html",
            mime="text/html",
            key="download_report",
            icon=":material/download:",
            on_click="ignore",  # no rerun: a rerun would drop the file being prepared
        )
    else:
        left.info("Run the comparison in step 5 to get the report.", icon=":material/arrow_back:")
    right.download_button(
        "Metadata (JSON)",
        data=json.dumps(_state.get("metadata").to_dict(), indent=2, default=str),
        file_name="metadata.json",
        mime="application/json",
        key="download_metadata",
        icon=":material/download:",
        on_click="ignore",  # no rerun: a rerun would drop the file being prepared
    )
    model = _state.get("synth")
    st.download_button(
        "Model (zip, to make more patients later)",
        data=lambda: model_bytes(model),
        file_name="model.zip",
        mime="application/zip",
        key="download_model",
        icon=":material/download:",
        on_click="ignore",  # no rerun: a rerun would drop the file being prepared
    )
    st.caption(
        "The model file holds the learned statistics, not the training rows; rare categories "
        "are not stored word for word. Make more patients from it with "
        "`clinsynth sample model.zip -n 1000 -o more.csv`."
    )
