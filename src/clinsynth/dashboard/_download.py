"""Step 6, Download: synthetic data (CSV, Excel), the HTML report, the metadata, the model."""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import streamlit as st

from clinsynth.dashboard import _state, _ui
from clinsynth.io import write_table, write_tables


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


def button(
    where: st.delta_generator.DeltaGenerator,
    label: str,
    data: bytes | str | Callable[[], bytes],
    file_name: str,
    mime: str,
    *,
    primary: bool = False,
) -> None:
    """A download button; ``data`` may be a function, run only when the user clicks."""
    where.download_button(
        label,
        data=data,
        file_name=file_name,
        mime=mime,
        type="primary" if primary else "secondary",
        key=f"download_{file_name}",
        icon=":material/download:",
        on_click="ignore",  # no rerun: a rerun would drop the file being prepared
    )


def metadata_json(metadata: object) -> str:
    """The metadata as indented JSON (what ``Metadata.load_from_json`` reads)."""
    return json.dumps(metadata.to_dict(), indent=2, default=str)  # type: ignore[attr-defined]


_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def tables_zip(tables: dict[str, pd.DataFrame], metadata: object, report: object = None) -> bytes:
    """A ZIP of one CSV per table (written by :func:`clinsynth.io.write_tables`), the metadata
    JSON and, when given, the comparison's scores (``report.json``)."""
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="clinsynth-download-") as folder:
        written = write_tables(tables, Path(folder) / "tables")
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in tables:
                archive.write(written / f"{name}.csv", f"{name}.csv")
            archive.writestr("metadata.json", metadata_json(metadata))
            if report is not None:
                text = json.dumps(report.to_dict(), indent=2, default=str)  # type: ignore[attr-defined]
                archive.writestr("report.json", text)
    return buffer.getvalue()


def _render_tables(tables: dict[str, pd.DataFrame]) -> None:
    sizes = ", ".join(f"{name} ({len(df):,} rows)" for name, df in tables.items())
    st.write(
        f"The synthetic tables: {sizes}. They hold no real patient; their keys are new and "
        "their links are intact."
    )
    report = _state.get("evaluation")
    # Read now: the download's function runs later, outside this page run and its session.
    metadata = _state.get("metadata")
    st.subheader("Synthetic data")
    button(
        st,
        "All tables (ZIP of CSV files, with the metadata"
        + (" and the scores)" if report is not None else ")"),
        lambda: tables_zip(tables, metadata, report),
        "synthetic_tables.zip",
        "application/zip",
        primary=True,
    )
    _evidence("tables", "--scale 2 -o more_tables/")


def _evidence(what: str, sample_args: str) -> None:
    """The report, metadata and model buttons, and how to make more ``what`` from the model."""
    st.subheader("Evidence and set-up")
    result = _state.get("evaluation")
    left, right = st.columns(2)
    if result is not None:
        button(
            left,
            "Report (HTML, opens in any browser)",
            lambda: report_bytes(result),
            "report.html",
            "text/html",
        )
    else:
        left.info("Run the comparison in step 5 to get the report.", icon=":material/arrow_back:")
    button(
        right,
        "Metadata (JSON)",
        metadata_json(_state.get("metadata")),
        "metadata.json",
        "application/json",
    )
    model = _state.get("synth")
    button(
        st,
        f"Model (zip, to make more {what} later)",
        lambda: model_bytes(model),
        "model.zip",
        "application/zip",
    )
    st.caption(
        "The model file holds the learned statistics, not the training rows; rare categories "
        f"are not stored word for word. Make more {what} from it with "
        f"`clinsynth sample model.zip {sample_args}`."
    )
    holdout = st.session_state.get("holdout")
    if isinstance(holdout, pd.DataFrame):
        # Beside the model, never inside it: the file `clinsynth evaluate --model` looks for.
        button(
            st,
            "Patients kept aside (CSV, real data: keep it with the model, do not share it)",
            lambda: csv_bytes(holdout),
            "model.holdout.csv",
            "text/csv",
        )
        st.caption(
            f"The {len(holdout):,} real patients kept out of training. Save the file next to "
            "model.zip: `clinsynth evaluate real.csv synthetic.csv --model model.zip` finds it "
            "and measures privacy and usefulness against them."
        )


def render() -> None:
    """Draw the Download step."""
    st.header("6. Download")
    if not _ui.needs("Generate", "synthetic", "First generate synthetic patients in step 4."):
        return
    synthetic: pd.DataFrame = _state.get("synthetic")
    if isinstance(synthetic, dict):
        _render_tables(synthetic)
        return
    st.write(
        f"The synthetic table has {len(synthetic):,} rows. It holds no real patient; share it "
        "with the report that shows how faithful and how private it is."
    )
    st.subheader("Synthetic data")
    left, right = st.columns(2)
    button(
        left,
        "Synthetic data (CSV)",
        csv_bytes(synthetic),
        "synthetic.csv",
        "text/csv",
        primary=True,
    )
    button(right, "Synthetic data (Excel)", lambda: excel_bytes(synthetic), "synthetic.xlsx", _XLSX)
    _evidence("patients", "-n 1000 -o more.csv")
