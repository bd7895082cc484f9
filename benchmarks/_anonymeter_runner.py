"""Run the anonymeter package on the files that bench_anonymeter.py wrote.

Runs inside an environment of its own (anonymeter 1.1.0 pins numpy < 1.27 and pyarrow < 22),
never imports clinsynth, and prints one JSON object: per attack, the risk, its interval and the
main, control and baseline success rates with their errors. ``spec.json`` in the folder names
the categorical columns, the linkability column sets, the inference secret and its auxiliary
columns, the number of attacks and the seed.

Usage::

    /path/to/anon-venv/bin/python benchmarks/_anonymeter_runner.py FOLDER
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import pandas as pd


def _summary(evaluator, seconds: float) -> dict:
    risk = evaluator.risk()
    res = evaluator.results()
    out = {"risk": float(risk.value), "ci_low": float(risk.ci[0]), "ci_high": float(risk.ci[1])}
    for name in ("attack_rate", "control_rate", "baseline_rate"):
        rate = getattr(res, name)
        out[name] = float(rate.value)
        out[name + "_error"] = float(rate.error)
    out["seconds"] = round(seconds, 2)
    return out


def main(folder: Path) -> dict:
    from anonymeter.evaluators import (
        InferenceEvaluator,
        LinkabilityEvaluator,
        SinglingOutEvaluator,
    )

    spec = json.loads((folder / "spec.json").read_text())
    dtypes = {c: "object" for c in spec["categorical"]}
    names = ("train", "control", "synthetic")
    ori, control, syn = (pd.read_csv(folder / f"{n}.csv", dtype=dtypes) for n in names)
    n = spec["n_attacks"]
    out = {}
    start = time.perf_counter()
    so = SinglingOutEvaluator(
        ori=ori, syn=syn, control=control, n_attacks=n, n_cols=3, seed=spec["seed"]
    ).evaluate(mode="multivariate")
    out["singling_out"] = _summary(so, time.perf_counter() - start)
    start = time.perf_counter()
    link = LinkabilityEvaluator(
        ori=ori,
        syn=syn,
        control=control,
        aux_cols=tuple(spec["aux_columns"]),
        n_attacks=min(n, len(control), len(ori)),
        n_neighbors=1,
    ).evaluate(n_jobs=1)
    out["linkability"] = _summary(link, time.perf_counter() - start)
    start = time.perf_counter()
    inf = InferenceEvaluator(
        ori=ori,
        syn=syn,
        control=control,
        aux_cols=spec["inference_aux"],
        secret=spec["secret"],
        regression=spec["secret"] not in spec["categorical"],
        n_attacks=min(n, len(control), len(ori)),
    ).evaluate(n_jobs=1)
    out["inference"] = _summary(inf, time.perf_counter() - start)
    return out


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        print(json.dumps(main(Path(sys.argv[1]))))
