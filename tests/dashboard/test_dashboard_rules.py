"""The metadata step lists the rules found in the data, with their support; untick to drop one."""

from __future__ import annotations

import sys
from pathlib import Path

from dashdata import csv_upload, new_app, no_crash

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "constraints"))
from logic_data import logic_table  # noqa: E402

from clinsynth.constraints import constraint_from_dict  # noqa: E402


def test_rules_are_listed_with_support_and_removable() -> None:
    app = new_app()
    app.file_uploader(key="upload").set_value(csv_upload(logic_table(200))).run()
    app.radio(key="step").set_value("Metadata").run()
    no_crash(app)
    rules = app.data_editor[1].value
    assert list(rules.columns) == ["Keep", "Rule", "Kind", "Rows", "Informative rows"]
    assert "dx determines dx_class" in set(rules["Rule"])
    assert rules["Keep"].all() and (rules["Informative rows"] >= 20).all()
    before = len(app.session_state["metadata"].get_table().constraints)

    row = list(rules["Rule"]).index("dx determines dx_class")
    version = app.session_state["editor_version"]
    app.session_state[f"rules_editor_{version}"] = {
        "edited_rows": {row: {"Keep": False}},
        "added_rows": [],
        "deleted_rows": [],
    }
    app.run()
    no_crash(app)
    kept = app.session_state["metadata"].get_table().constraints
    assert len(kept) == before - 1
    assert "dx determines dx_class" not in {constraint_from_dict(c).describe() for c in kept}
    assert "dx determines dx_class" not in set(app.data_editor[1].value["Rule"])
