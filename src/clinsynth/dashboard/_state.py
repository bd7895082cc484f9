"""What one browser session holds: the data, metadata, model, synthetic rows and report.

Everything lives in ``st.session_state`` (one per browser tab), never in module globals, so two
tabs never see each other's data. Settings widgets use keys that start with ``keep_``: they keep
their values while their step is not on screen (Streamlit forgets the state of widgets it does
not draw, unless the value is written back on every run).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

#: The steps, in the order a user goes through them.
STEPS = ("Data", "Metadata", "Model", "Generate", "Compare", "Download")
#: Session keys of the work products, each made from the ones before it.
_PRODUCTS = ("real", "metadata", "synth", "synthetic", "evaluation")
KEEP_PREFIX = "keep_"


def init() -> None:
    """Create the session's slots and keep the settings of the steps not on screen."""
    st.session_state.setdefault("step", STEPS[0])
    st.session_state.setdefault("editor_version", 0)
    for key in _PRODUCTS:
        st.session_state.setdefault(key, None)
    st.session_state.setdefault("source", "")
    st.session_state.setdefault("train", None)
    st.session_state.setdefault("holdout", None)
    st.session_state.setdefault("notes", [])
    for key in list(st.session_state.keys()):
        if isinstance(key, str) and key.startswith(KEEP_PREFIX):
            # Writing the value back stops Streamlit from dropping it with the hidden widget.
            st.session_state[key] = st.session_state[key]


def get(key: str) -> Any:
    """A work product of this session (None when not made yet)."""
    return st.session_state.get(key)


def put(key: str, value: Any) -> None:
    """Store a work product and drop everything made from the previous one."""
    st.session_state[key] = value
    forget_after(key)


def forget_after(key: str) -> None:
    """Drop the products made after ``key`` (they no longer match it)."""
    index = _PRODUCTS.index(key)
    for later in _PRODUCTS[index + 1 :]:
        st.session_state[later] = None
    if index < _PRODUCTS.index("synth"):
        st.session_state["train"] = None
        st.session_state["holdout"] = None
    if key == "real":
        st.session_state["editor_version"] += 1


def go_to(step: str) -> None:
    """Switch to ``step`` (used as a button callback, before the page is drawn)."""
    st.session_state["step"] = step


def is_done(step: str) -> bool:
    """Whether a step has produced what the next one needs."""
    product = {
        "Data": "real",
        "Metadata": "metadata",
        "Model": "synth",
        "Generate": "synthetic",
        "Compare": "evaluation",
    }.get(step)
    if step == "Metadata":
        from clinsynth.dashboard._metadata import is_ready

        return is_ready(st.session_state.get("metadata"), st.session_state.get("real"))
    return product is not None and st.session_state.get(product) is not None
