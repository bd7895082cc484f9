"""The HTML report's sequences section: single table, schema child table, command line."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from clinsynth import Metadata
from clinsynth.cli import main
from clinsynth.evaluation import evaluate, evaluate_sequences
from clinsynth.evaluation._html import _fmt
from clinsynth.multitable import evaluate_multi_table
from clinsynth.simulate import simulate_lab_trajectories

CONTEXT = ["patient_id", "sex", "age", "arm", "followup_days"]


@pytest.fixture(scope="module")
def pair():
    """Real visits, and 'synthetic' visits of other patients with one visit moved past its
    patient's end of follow-up (one known violation)."""
    real, md = simulate_lab_trajectories(60, mean_visits=5, seed=0)
    synthetic, _ = simulate_lab_trajectories(50, mean_visits=4, seed=1)
    synthetic["patient_id"] = synthetic["patient_id"].str.replace("P", "S")
    last = synthetic.groupby("patient_id").tail(1).index[0]
    synthetic.loc[last, "day"] = synthetic.loc[last, "followup_days"] + 3
    return real, synthetic, md


def _section(text: str, start: str) -> str:
    at = text.index(start)
    end = text.find("<section id=", at + 1)
    return text[at : end if end > 0 else len(text)]


def _cells(html: str, label: str) -> list[str]:
    """The cells of the table row whose first cell is ``label``."""
    row = re.search(rf"<tr><td>{re.escape(label)}</td>(.*?)</tr>", html)
    assert row, label
    return re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))


def test_single_table_report_has_the_sequences_section(pair, tmp_path):
    real, synthetic, md = pair
    result = evaluate(real, synthetic, md, detection=False)
    data = result.figures["sequences"]
    assert data["upper_bounds"] == ["followup_days"]
    expected = evaluate_sequences(real, synthetic, md, upper_bounds=["followup_days"])
    assert data["measures"]["events_per_patient_ks"] == pytest.approx(
        expected["events_per_patient_ks"]
    )
    assert expected["events_per_patient_ks"] > 0.1  # 4 against 5 visits on average
    path = tmp_path / "report.html"
    result.save_html(path)
    section = _section(path.read_text(), "<section id='sequences'>")
    assert "Sequences over time" in section
    assert _cells(section, "Events per patient (KS)") == [_fmt(expected["events_per_patient_ks"])]
    assert _cells(section, "Time between events (KS)") == [_fmt(expected["gap_ks"])]
    assert _cells(section, "Temporal-logic violations") == ["1"]
    assert _cells(section, "after followup_days") == ["1"]
    assert _cells(section, "not after the patient&#x27;s previous event") == ["0"]
    for column in ("creatinine", "hba1c", "sbp"):
        lag = expected["lag1"][column]
        cells = _cells(section, column)
        assert cells[:3] == [
            _fmt(lag["real"]),
            _fmt(lag["synthetic"]),
            _fmt(lag["synthetic"] - lag["real"]),
        ]
    assert _cells(section, "ckd_stage") == [_fmt(expected["transitions"]["ckd_stage"])]
    # three trajectory figures (one per lab), each with its real and synthetic panels
    assert section.count('class="plotly-graph-div"') == 3
    assert "creatinine: 5 patients each" in section


def test_no_section_without_the_sequence_words(pair, tmp_path):
    real, synthetic, _ = pair
    md = Metadata.detect_from_dataframe(real)
    result = evaluate(real, synthetic, md, detection=False)
    assert "sequences" not in result.figures
    result.save_html(tmp_path / "r.html")
    assert "<section id='sequences'>" not in (tmp_path / "r.html").read_text()


def _schema(visits: pd.DataFrame) -> dict[str, pd.DataFrame]:
    patients = visits[CONTEXT].drop_duplicates("patient_id").reset_index(drop=True)
    events = visits.drop(columns=CONTEXT[1:]).reset_index(drop=True)
    events.insert(0, "visit_id", np.arange(len(events)))
    return {"patients": patients, "visits": events}


def test_multi_table_report_has_the_section_for_the_sequence_child(pair, tmp_path):
    real, synthetic, _ = pair
    real_tables, synthetic_tables = _schema(real), _schema(synthetic)
    md = Metadata.detect_from_dataframes(real_tables)
    md.set_sequence_key("patient_id", table_name="visits")
    md.set_sequence_index("day", table_name="visits")
    report = evaluate_multi_table(real_tables, synthetic_tables, md)
    data = report.figures["tables"]["visits"]["sequences"]
    assert data["upper_bounds"] == ["patients.followup_days"]
    assert data["measures"]["violations"] == {
        "not_increasing": 0,
        "after_patients.followup_days": 1,
    }
    assert "sequences" not in report.figures["tables"]["patients"]
    path = tmp_path / "schema.html"
    report.save_html(path)
    section = _section(path.read_text(), "<section id='table-visits'>")
    assert "Sequences over time" in section
    assert _cells(section, "Temporal-logic violations") == ["1"]
    ks = data["measures"]["events_per_patient_ks"]
    assert _cells(section, "Events per patient (KS)") == [_fmt(ks)]
    assert "Sequences over time" not in _section(path.read_text(), "<section id='table-patients'>")


def test_cli_evaluate_with_sequence_metadata(pair, tmp_path, capsys):
    real, synthetic, md = pair
    real.to_csv(tmp_path / "real.csv", index=False)
    synthetic.to_csv(tmp_path / "synthetic.csv", index=False)
    md.save_to_json(tmp_path / "md.json")
    out = tmp_path / "report.html"
    code = main(
        [
            "evaluate",
            str(tmp_path / "real.csv"),
            str(tmp_path / "synthetic.csv"),
            "-m",
            str(tmp_path / "md.json"),
            "--no-detection",
            "-o",
            str(out),
            "-q",
        ]
    )
    assert code == 0, capsys.readouterr().err
    section = _section(out.read_text(), "<section id='sequences'>")
    assert _cells(section, "Temporal-logic violations") == ["1"]


def test_cli_evaluate_takes_the_sequence_words_from_the_model(pair, tmp_path, capsys):
    from clinsynth import SequentialSynthesizer

    real, synthetic, md = pair
    model = SequentialSynthesizer(md, epochs=1, hidden_dim=8, latent_dim=2, random_state=0)
    path = model.fit(real).save(tmp_path / "model")
    real.to_csv(tmp_path / "real.csv", index=False)
    synthetic.to_csv(tmp_path / "synthetic.csv", index=False)
    out = tmp_path / "report.html"
    args = [tmp_path / "real.csv", tmp_path / "synthetic.csv", "--no-detection", "-q"]
    code = main(["evaluate", *map(str, args), "--model", str(path), "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    section = _section(out.read_text(), "<section id='sequences'>")
    assert _cells(section, "after followup_days") == ["1"]
