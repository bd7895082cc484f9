"""Our singling-out, linkability and inference risks against the anonymeter package's figures.

Usage::

    .venv/bin/python benchmarks/bench_anonymeter.py [--tables gbsg2,heart_failure_clinical,...]
        [--scenarios null,copula,leaky,copy] [--splits equal,70/30] [--n-attacks 500]
        [--repeats 1]
        [--anonymeter-python /tmp/anon-venv/bin/python] [--out benchmarks/results/anonymeter.csv]

For each shared table (the statistical columns as numbers and text) and each split — 30% of
the rows held out as unseen, the rest cut in two equal halves (``equal``) or into 50% train and
20% control (``70/30``) — and each synthetic set — ``null``: unseen real rows, where no risk is
possible; ``copula``: the Gaussian copula fitted on the training part; ``leaky``: half of it
replaced by training rows copied verbatim; ``copy``: the training rows themselves — our
``evaluate_privacy`` measures the three risks (the secret is the table's outcome; linkability
splits the columns in two halves; inference knows every other column). With
``--anonymeter-python``, the same train / control / synthetic files are written to a temporary
folder and ``_anonymeter_runner.py`` runs anonymeter 1.1.0 on them in that interpreter's own
environment (anonymeter pins numpy < 1.27, so it cannot live beside clinsynth). The table gives
both risks, both main and control success rates, and ``z``: the difference of the two
(unclipped) risks over its standard error. Both sides draw their attacks at random, so
agreement is statistical: ``|z| <= 2`` in about 95% of rows if both implement the same method.
The ``null`` rows show which side raises false alarms.

The anonymeter environment, for instance::

    python3.11 -m venv /tmp/anon-venv
    /tmp/anon-venv/bin/pip install "numpy<1.27" "pandas<2.2" "pyarrow<22" anonymeter==1.1.0
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown  # noqa: E402
from _privacy_data import attack_frame, load_table  # noqa: E402

from clinsynth import GaussianCopulaSynthesizer  # noqa: E402
from clinsynth.evaluation import evaluate_privacy  # noqa: E402

RUNNER = Path(__file__).resolve().parent / "_anonymeter_runner.py"
ATTACKS = ("singling_out", "linkability", "inference")


def splits(frame: pd.DataFrame, layout: str, seed: int) -> dict[str, pd.DataFrame]:
    """Train, control and unseen records: 30% unseen (the ``null`` synthetic set); the other 70%
    split in two equal halves (``equal``) or 50% / 20% of the table (``70/30``)."""
    idx = np.random.default_rng(seed).permutation(len(frame))
    cut = [0, int(0.35 * len(frame)), int(0.7 * len(frame)), len(frame)]
    if layout == "70/30":
        cut[1] = int(0.5 * len(frame))
    parts = [
        frame.iloc[idx[a:b]].reset_index(drop=True) for a, b in zip(cut[:-1], cut[1:], strict=True)
    ]
    return dict(zip(("train", "control", "unseen"), parts, strict=True))


def synthetic_sets(parts: dict, md, scenarios: list[str], seed: int) -> dict:
    train = parts["train"]
    out = {}
    if "null" in scenarios:  # real records the model never saw: no risk is possible
        out["null"] = parts["unseen"].iloc[: len(train)].reset_index(drop=True)
    copula = GaussianCopulaSynthesizer(md, random_state=seed).fit(train).sample(len(train))
    copula = copula.reset_index(drop=True)
    if "copula" in scenarios:
        out["copula"] = copula
    if "leaky" in scenarios:
        rng = np.random.default_rng(seed)
        half = len(train) // 2
        copied = train.iloc[rng.permutation(len(train))[:half]]
        out["leaky"] = pd.concat([copied, copula.iloc[half:]], ignore_index=True)
    if "copy" in scenarios:
        out["copy"] = train.copy()
    return out


def ours(train, control, syn, md, secret, aux, n_attacks, seed) -> dict:
    report = evaluate_privacy(
        train,
        syn,
        md,
        holdout=control,
        sensitive_columns=[secret],
        aux_columns=aux,
        n_attacks=n_attacks,
        max_rows=None,
        random_state=seed,
    )
    m = report.metrics
    return {"singling_out": m["singling_out"], "linkability": m["linkability"],
            "inference": m["inference"][secret]}  # fmt: skip


def theirs(python: str, train, control, syn, md, secret, aux, n_attacks, seed) -> dict:
    categorical = [c for c, s in md.get_table().columns.items() if s["sdtype"] == "categorical"]
    spec = {
        "categorical": categorical,
        "aux_columns": [list(aux[0]), list(aux[1])],
        "secret": secret,
        "inference_aux": [c for c in train.columns if c != secret],
        "n_attacks": n_attacks,
        "seed": seed,
    }
    with tempfile.TemporaryDirectory() as folder:
        for name, df in (("train", train), ("control", control), ("synthetic", syn)):
            df.to_csv(Path(folder) / f"{name}.csv", index=False)
        (Path(folder) / "spec.json").write_text(json.dumps(spec))
        done = subprocess.run(
            [python, str(RUNNER), folder], capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        raise SystemExit(f"anonymeter failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _risk_and_error(res: dict) -> tuple[float, float]:
    """The unclipped risk and its error from the main and control rates (the paper's formula)."""
    r_m, e_m = res["attack_rate"], res["attack_rate_error"]
    r_c, e_c = res["control_rate"], res["control_rate_error"]
    value = (r_m - r_c) / (1 - r_c)
    return value, math.hypot(e_m / (1 - r_c), e_c * (r_m - 1) / (1 - r_c) ** 2)


def compare(table: str, layout: str, scenario: str, mine: dict, other: dict | None) -> list[dict]:
    rows = []
    for attack in ATTACKS:
        a = mine[attack]
        row = {
            "table": table,
            "split": layout,
            "synthetic": scenario,
            "attack": attack,
            "ours_risk": a["risk"],
            "ours_ci": f"{a['ci_low']:.3f}-{a['ci_high']:.3f}",
            "ours_main": a["attack_rate"],
            "ours_control": a["control_rate"],
        }
        if other is not None:
            b = other[attack]
            ra, ea = _risk_and_error(a)
            rb, eb = _risk_and_error(b)
            row |= {
                "anonymeter_risk": b["risk"],
                "anonymeter_ci": f"{b['ci_low']:.3f}-{b['ci_high']:.3f}",
                "anonymeter_main": b["attack_rate"],
                "anonymeter_control": b["control_rate"],
                # errors are 95% half-widths: z = difference over its standard error
                "z": 1.959964 * (ra - rb) / max(math.hypot(ea, eb), 1e-12),
            }
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", default="gbsg2,heart_failure_clinical,whas500,actg175")
    parser.add_argument("--scenarios", default="null,copula,leaky,copy")
    parser.add_argument("--splits", default="equal,70/30")
    parser.add_argument("--n-attacks", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--anonymeter-python", default=None)
    parser.add_argument("--out", default="benchmarks/results/anonymeter.csv")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # third-party fit warnings would drown the table
    scenarios = args.scenarios.split(",")
    rows = []
    for table in args.tables.split(","):
        df, md, secret = load_table(table)
        frame, fmd = attack_frame(df, md)
        cols = list(frame.columns)
        aux = (cols[: len(cols) // 2], cols[len(cols) // 2 :])
        for layout in args.splits.split(","):
            for seed in range(args.repeats):
                parts = splits(frame, layout, seed)
                train, control = parts["train"], parts["control"]
                for scenario, syn in synthetic_sets(parts, fmd, scenarios, seed).items():
                    mine = ours(train, control, syn, fmd, secret, aux, args.n_attacks, seed)
                    other = None
                    if args.anonymeter_python:
                        other = theirs(
                            args.anonymeter_python,
                            train,
                            control,
                            syn,
                            fmd,
                            secret,
                            aux,
                            args.n_attacks,
                            seed,
                        )
                    new = compare(table, layout, scenario, mine, other)
                    print(markdown(new), flush=True)
                    rows += new
    out = pd.DataFrame(rows)
    print("\n## Ours against anonymeter 1.1.0\n")
    print(markdown(rows))
    if "z" in out:
        within = (out["z"].abs() <= 2).mean()
        diff = (out["ours_risk"] - out["anonymeter_risk"]).abs()
        print(
            f"\n{len(out)} comparisons: |z| <= 2 in {within:.0%}; mean |risk difference| "
            f"{diff.mean():.3f}, largest {diff.max():.3f}."
        )
        for (layout, attack), part in out.groupby(["split", "attack"]):
            d = (part["ours_risk"] - part["anonymeter_risk"]).abs()
            print(
                f"- {layout}, {attack}: |z| <= 2 in {(part['z'].abs() <= 2).mean():.0%}, "
                f"mean |difference| {d.mean():.3f}, largest {d.max():.3f}"
            )
        null = out[out["synthetic"] == "null"]
        for who in ("ours", "anonymeter"):
            high = null[f"{who}_ci"].str.split("-").str[0].astype(float)
            print(
                f"- null sets (no risk possible): {who} lower bound above 0 in "
                f"{(high > 0).sum()} of {len(null)}"
            )
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False)


if __name__ == "__main__":
    main()
