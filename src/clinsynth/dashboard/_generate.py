"""Step 4, Generate: how many rows, optional conditions (condition = diabetes, age >= 60), seed."""

from __future__ import annotations

import inspect

import pandas as pd
import streamlit as st

from clinsynth.dashboard import _longitudinal, _state, _ui
from clinsynth.synthesizers import BaseSynthesizer
from clinsynth.synthesizers import parse_condition_strings as parse_conditions

_EXAMPLE = "condition = diabetes\nage >= 60"
#: Sampling rounds before giving up on conditions: a condition that no synthetic row meets
#: (say, an age beyond any seen) fails in seconds rather than minutes; rare ones still succeed.
MAX_TRIES = 10


def supports_seed(model: BaseSynthesizer) -> bool:
    """Whether the model's sampling stream can be restarted from a chosen seed."""
    return "seed" in inspect.signature(model.reset_sampling).parameters


def read_conditions(text: str) -> dict:
    """Conditions typed one per line (``column = value``, ``column >= low``, ``column <= high``)."""
    lines = [line.strip() for line in text.replace(";", "\n").splitlines() if line.strip()]
    return parse_conditions(lines) if lines else {}


def generate(
    model: BaseSynthesizer, num_rows: int, conditions: dict, seed: int | None
) -> pd.DataFrame:
    """Sample ``num_rows`` rows (patients, for a model of sequences: each with its events); the
    same seed (or the model's own) gives the same rows."""
    if seed is not None and supports_seed(model):
        model.reset_sampling(seed=seed)
    else:
        model.reset_sampling()
    if "max_tries_per_batch" not in inspect.signature(model.sample).parameters:
        # The sequential model: conditions fix context columns of every patient.
        return model.sample(num_rows, conditions=conditions or None)
    return model.sample(num_rows, conditions=conditions or None, max_tries_per_batch=MAX_TRIES)


def _render_tables(model: object) -> None:
    train: dict[str, pd.DataFrame] = st.session_state["train"]
    sizes = ", ".join(f"{name} ({len(df):,} rows)" for name, df in train.items())
    st.write(
        "Make a synthetic copy of the linked tables, as large as the real data, larger or "
        f"smaller. The real tables: {sizes}."
    )
    scale = _ui.number(
        st,
        "Size compared with the real data (1 = as many patients as the real data, 2 = twice "
        "as many)",
        "keep_scale",
        1.0,
        min_value=0.01,
        max_value=100.0,
        step=0.5,
        help="The first table gets this multiple of its rows; the number of visits, results "
        "and so on of each synthetic patient is drawn by the model.",
    )
    st.caption("The same model always gives the same tables.")
    if st.button("Generate synthetic tables", type="primary", key="generate_button"):
        try:
            with st.spinner("Generating the tables..."):
                model.reset_sampling()  # type: ignore[attr-defined]
                synthetic = model.sample(scale=scale)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001
            _ui.show_error(exc, where="Could not generate the tables.")
        else:
            _state.put("synthetic", synthetic)
            st.session_state["generated_with"] = {"scale": scale}
    synthetic = _state.get("synthetic")
    if synthetic is not None:
        sizes = ", ".join(f"{name} ({len(df):,} rows)" for name, df in synthetic.items())
        st.success(f"Synthetic tables generated: {sizes}.", icon=":material/check_circle:")
        st.subheader("Preview (first 100 rows)")
        name = _ui.table_picker(synthetic, "keep_generated_table")
        _ui.preview(synthetic[name])
    _ui.next_step("Generate")


def render() -> None:
    """Draw the Generate step."""
    st.header("4. Generate synthetic patients")
    if not _ui.needs("Model", "synth", "First train a model in step 3."):
        return
    if isinstance(st.session_state["train"], dict):
        _render_tables(_state.get("synth"))
        return
    model: BaseSynthesizer = _state.get("synth")
    train: pd.DataFrame = st.session_state["train"]
    metadata = _state.get("metadata")
    longitudinal = _longitudinal.is_longitudinal(metadata, train)
    key = metadata.get_table().sequence_key if longitudinal else None
    if key is None:
        st.write(
            "Make as many synthetic patients as you need. Conditions restrict them, for example "
            "to older patients with diabetes."
        )
    else:
        st.write(
            "Make as many synthetic patients as you need, each with a sequence of events (the "
            "model draws how many). Conditions fix columns that are constant within a patient, "
            "for example `sex = F`."
        )
    left, right = st.columns(2)
    num_rows = _ui.number(
        left,
        "Number of synthetic patients" if key is None else "Number of patients (sequences)",
        "keep_num_rows",
        len(train) if key is None else int(train[key].nunique()),
        min_value=1,
        max_value=1_000_000,
        step=100,
    )
    seed: int | None = None
    if supports_seed(model):
        seed = _ui.number(
            right, "Seed (the same seed gives the same patients)", "keep_sample_seed", 0
        )
    else:
        right.caption("The same model always gives the same patients.")
    text = st.text_area(
        "Conditions (optional), one per line",
        key="keep_conditions",
        placeholder=_EXAMPLE,
        help=(
            "Write COLUMN = VALUE for a category or COLUMN >= LOW / COLUMN <= HIGH for a range. "
            if key is None
            else "Write COLUMN = VALUE for a column that is constant within each patient "
            "(sex, treatment arm); ranges are not offered for patients' sequences. "
        )
        + "Columns: "
        + ", ".join(map(str, train.columns)),
    )
    if st.button("Generate synthetic patients", type="primary", key="generate_button"):
        try:
            conditions = read_conditions(text or "")
            with st.spinner(f"Generating {num_rows:,} patients..."):
                synthetic = generate(model, num_rows, conditions, seed)
        except Exception as exc:  # noqa: BLE001 - e.g. conditions that cannot be met
            _ui.show_error(exc, where="Could not generate the patients.")
        else:
            _state.put("synthetic", synthetic)
            st.session_state["generated_with"] = {
                "rows": num_rows,
                "conditions": conditions,
                "seed": seed,
            }
    synthetic = _state.get("synthetic")
    if synthetic is not None:
        used = st.session_state.get("generated_with", {})
        where = ""
        if used.get("conditions"):
            where = " with " + _ui.describe_conditions(used["conditions"])
        count = f"{len(synthetic):,} synthetic patients"
        if key is not None and key in synthetic:
            count = f"{synthetic[key].nunique():,} synthetic patients ({len(synthetic):,} events)"
        st.success(f"{count} generated{where}.", icon=":material/check_circle:")
        st.subheader("Preview (first 100 rows)")
        _ui.preview(synthetic)
    _ui.next_step("Generate")
