"""The clinsynth dashboard (Streamlit entry point).

Run it with ``clinsynth dashboard`` or ``streamlit run <path to this file>``. Six steps, one
after another, in the sidebar; each step's work is kept in the browser session.
"""

from __future__ import annotations

import streamlit as st

import clinsynth
from clinsynth.dashboard import (
    _compare,
    _data,
    _download,
    _generate,
    _metadata,
    _model,
    _state,
    _ui,
)

PAGES = {
    "Data": _data.render,
    "Metadata": _metadata.render,
    "Model": _model.render,
    "Generate": _generate.render,
    "Compare": _compare.render,
    "Download": _download.render,
}


def _sidebar() -> None:
    # Drawn after the page, so that the ticks include what the page has just done.
    with st.sidebar:
        st.title("clinsynth")
        st.caption(
            "Make a synthetic copy of a patient table: same statistics, no real patient. "
            "Your data stays on this computer."
        )
        labels = {
            step: f"{i + 1}. {step}" + ("  ✓" if _state.is_done(step) else "")
            for i, step in enumerate(_state.STEPS)
        }
        # The ticks change the labels; handing the step over explicitly keeps it selected.
        st.session_state["step"] = st.session_state["step"]
        st.radio("Steps", _state.STEPS, key="step", index=None, format_func=labels.get)
        st.divider()
        if st.get_option("browser.gatherUsageStats"):
            # Started without clinsynth's settings (e.g. `streamlit run` on an installed copy).
            st.warning(
                "Streamlit's usage statistics are switched on. Start the dashboard with "
                "`clinsynth dashboard` to switch them off.",
                icon=":material/privacy_tip:",
            )
        st.caption(f"clinsynth {clinsynth.__version__}")


def main() -> None:
    """Draw the page of the current step."""
    st.set_page_config(
        page_title="clinsynth", page_icon=":material/health_and_safety:", layout="wide"
    )
    _state.init()
    try:
        PAGES[st.session_state["step"]]()
    except Exception as exc:  # noqa: BLE001 - the page shows a message, never a stack trace
        _ui.show_error(exc)
    _sidebar()


main()
