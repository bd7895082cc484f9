"""`clinsynth detect` shows the keys with their evidence; `fit` refuses ambiguous links and
warns loudly when the tables are not linked."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from clinsynth.cli import main


def run(args, capsys):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _folder(tmp_path, ambiguous: bool):
    rng = np.random.default_rng(0)
    folder = tmp_path / "tables"
    folder.mkdir()
    pd.DataFrame({"rownames": np.arange(1, 41), "beds": rng.integers(5, 30, 40)}).to_csv(
        folder / "wards.csv", index=False
    )
    if ambiguous:
        pd.DataFrame({"rownames": np.arange(1, 41), "grade": rng.integers(1, 5, 40)}).to_csv(
            folder / "doctors.csv", index=False
        )
    stays = pd.DataFrame(
        {
            "stay_id": np.arange(300),
            "ref_id": np.resize(np.arange(1, 41), 300) + (0 if ambiguous else 1000),
            "staff_id": np.arange(300) + 5000,
            "los": rng.gamma(2.0, 2.0, 300).round(1),
        }
    )
    stays.to_csv(folder / "stays.csv", index=False)
    return folder


def test_detect_prints_every_candidate_with_its_evidence(tmp_path, capsys):
    folder = _folder(tmp_path, ambiguous=True)
    out_path = tmp_path / "metadata.json"
    code, out, err = run(["detect", folder, "-o", out_path], capsys)
    assert code == 0, err
    assert "Links found from the data" in out
    assert "stays.ref_id -> wards.rownames" in out and "ambiguous" in out
    assert "Choose: stays.ref_id could point to" in out
    assert "key 'rownames'" in out and "export artefact" in out
    saved = json.loads(out_path.read_text())
    assert saved["detection"]["ambiguous"][0]["child_foreign_key"] == "ref_id"
    # Fitting with the ambiguity unresolved: one line, exit 2.
    code, _, err = run(["fit", folder, "-o", tmp_path / "model", "-q"], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "'ref_id' could point to" in err and "choose one" in err
    # Resolved in the JSON: the fit goes through.
    saved["relationships"].append(
        {
            "parent_table_name": "wards",
            "parent_primary_key": "rownames",
            "child_table_name": "stays",
            "child_foreign_key": "ref_id",
        }
    )
    out_path.write_text(json.dumps(saved))
    code, out, err = run(
        ["fit", folder, "-m", out_path, "-o", tmp_path / "model", "-q", "--orphans", "drop"],
        capsys,
    )
    assert code == 0, err
    assert "INDEPENDENT" not in out


def test_fitting_unlinked_tables_warns_loudly(tmp_path, capsys):
    folder = _folder(tmp_path, ambiguous=False)
    code, out, err = run(["fit", folder, "-o", tmp_path / "model", "-q"], capsys)
    assert code == 0, err
    assert "NO RELATIONSHIP was found between the 2 tables" in err
    assert "fitted as INDEPENDENT tables" in out
