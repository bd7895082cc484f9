"""The command line on a longitudinal table: fit with the sequence words, sample sequences."""

from __future__ import annotations

import pandas as pd

from clinsynth.cli import main
from clinsynth.simulate import simulate_lab_trajectories


def run(args, capsys):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_fit_and_sample_sequences(tmp_path, capsys):
    visits, _ = simulate_lab_trajectories(30, mean_visits=4, seed=0)
    csv = tmp_path / "visits.csv"
    visits.to_csv(csv, index=False)
    model = tmp_path / "model"
    code, out, err = run(
        [
            "fit",
            csv,
            "--sequence-key",
            "patient_id",
            "--sequence-index",
            "day",
            "--epochs",
            "2",
            "--param",
            "hidden_dim=8",
            "-o",
            model,
            "-q",
        ],
        capsys,
    )
    assert code == 0, err
    assert "Fitted sequential" in out
    code, out, err = run(
        ["sample", model, "-n", "5", "-o", tmp_path / "syn.csv", "-q", "--condition", "arm=B"],
        capsys,
    )
    assert code == 0, err
    syn = pd.read_csv(tmp_path / "syn.csv")
    assert syn["patient_id"].nunique() == 5 and (syn["arm"] == "B").all()
    assert "of 5 sequences" in out
    assert (syn.groupby("patient_id")["day"].diff().dropna() > 0).all()


def test_sequence_words_errors_are_one_line(tmp_path, capsys):
    visits, _ = simulate_lab_trajectories(10, mean_visits=3, seed=0)
    csv = tmp_path / "visits.csv"
    visits.to_csv(csv, index=False)
    code, _, err = run(["fit", csv, "--sequence-key", "patient_id", "-o", tmp_path / "m"], capsys)
    assert code == 2 and "Give both --sequence-key" in err and "Traceback" not in err
    code, _, err = run(
        [
            "fit",
            csv,
            "--sequence-key",
            "patient_id",
            "--sequence-index",
            "day",
            "--holdout",
            "0.2",
            "-o",
            tmp_path / "m",
        ],
        capsys,
    )
    assert code == 2 and "would cut patients' sequences" in err
    code, _, err = run(
        ["fit", csv, "--sequence-key", "nope", "--sequence-index", "day", "-o", tmp_path / "m"],
        capsys,
    )
    assert code == 2 and "'nope' is not a column" in err
    assert not (tmp_path / "m").exists()
