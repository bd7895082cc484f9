"""Multi-table benchmark: HMASynthesizer on real schemas and the hospital simulator.

Run:  .venv/bin/python benchmarks/bench_multitable.py [--patients 100000] [--only NAME ...]

Schemas: ``mt_pbc`` (2 tables), ``mt_synthea_fhir_sample`` (8 tables), ``mt_eunomia_omop``
(10 tables, broken links kept as empty keys, the ``concept`` vocabulary kept verbatim) from
../shared/data, and ``simulate_hospital(patients)`` (3 tables). Each schema runs in its own
process so that the peak memory (max RSS, torch and pandas included) is its own. Prints, per
schema: rows, fit and sample seconds (wall clock, and CPU time, which a shared machine disturbs
less), peak memory, integrity (orphan keys and duplicated primary keys in the sample: both must
be 0) and the multi-table quality properties of ``evaluate_multi_table``. Results also go to
benchmarks/results/multitable.json.

A second table shows how secondary parents follow their child rows (a condition filed under its
patient, with an encounter as a second parent): for the column pair each matched secondary
relationship was fitted on, the Spearman correlation and the median absolute gap between the
child's and the parent's values over linked rows, real vs synthetic. ``--no-match`` picks
secondary parents by their modeled number of children only (the behaviour before matching), for
comparison.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from _common import SHARED, markdown

SCHEMAS = {
    "mt_pbc": {},
    "mt_synthea_fhir_sample": {},
    "mt_eunomia_omop": {"orphans": "keep_as_null", "reference_tables": ["concept"]},
}


def secondary_ties(model, real: dict, synthetic: dict, fits_from=None) -> list[dict]:
    """Per matched secondary relationship: correlation and median gap of its fitted column
    pair over linked rows, real vs synthetic (``fits_from``: where to read the fits when the
    model itself was fitted without matching)."""
    import numpy as np
    import pandas as pd
    from scipy import stats

    from clinsynth.multitable._match import numeric_values

    md = model._metadata_used_
    rows = []
    for child, plan in (fits_from or model)._plan_.items():
        for entry in plan.get("secondary", []):
            for fit in entry.get("match", [])[:1]:
                row = {
                    "child": child,
                    "pair": f"{fit['child']} ~ {entry['parent']}.{fit['parent']}",
                }
                for label, tables in (("real", real), ("synthetic", synthetic)):
                    parent, kids = tables[entry["parent"]], tables[child]
                    pos = pd.Index(parent[entry["pk"]]).get_indexer(kids[entry["fk"]])
                    ok = pos >= 0
                    x = numeric_values(kids[fit["child"]], md.tables[child].columns[fit["child"]])
                    spec = md.tables[entry["parent"]].columns[fit["parent"]]
                    y = numeric_values(parent[fit["parent"]], spec)[pos[ok]]
                    x = x[ok]
                    keep = ~np.isnan(x) & ~np.isnan(y)
                    x, y = x[keep], y[keep]
                    row[f"linked ({label})"] = int(keep.sum())
                    row[f"r ({label})"] = (
                        float(stats.spearmanr(x, y).statistic) if len(x) > 2 else None
                    )
                    row[f"median gap ({label})"] = (
                        float(np.median(np.abs(y - x))) if len(x) else None
                    )
                rows.append(row)
    return rows


def run_one(name: str, patients: int, match: bool = True) -> dict:
    """Fit, sample and evaluate one schema (in the current process)."""
    from clinsynth import Metadata
    from clinsynth.io import load_csvs
    from clinsynth.multitable import HMASynthesizer, evaluate_multi_table

    if not match:  # the baseline: secondary parents weighted by modeled children only
        import clinsynth.multitable._learn as learn

        learn.fit_match = lambda *args, **kwargs: []

    if name == "hospital":
        from clinsynth.simulate import simulate_hospital

        tables, metadata = simulate_hospital(patients, seed=0)
        options: dict = {}
        label = f"simulate_hospital({patients:,})"
    else:
        tables = load_csvs(SHARED / name)
        metadata = Metadata.detect_from_dataframes(tables)
        options = SCHEMAS[name]
        label = name
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start, cpu = time.perf_counter(), time.process_time()
    model = HMASynthesizer(metadata, random_state=0, **options).fit(tables)
    fit_s, fit_cpu = time.perf_counter() - start, time.process_time() - cpu
    start, cpu = time.perf_counter(), time.process_time()
    synthetic = model.sample(scale=1.0)
    sample_s, sample_cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    report = evaluate_multi_table(tables, synthetic, metadata, random_state=0)
    eval_s = time.perf_counter() - start
    fits_from = None
    if not match and any(p.get("secondary") for p in model._plan_.values()):
        import clinsynth.multitable._learn as learn
        from clinsynth.multitable._match import fit_match

        learn.fit_match = fit_match  # the fits matching would use, to measure the same pairs
        fits_from = HMASynthesizer(metadata, random_state=0, **options).fit(tables)
    ties = secondary_ties(model, tables, synthetic, fits_from)
    diag = report.get_details("Referential Integrity")
    keys = report.get_details("Primary Keys")
    props = dict(
        zip(report.get_properties()["Property"], report.get_properties()["Score"], strict=True)
    )
    return {
        "schema": label,
        "tables": len(tables),
        "real rows": sum(len(df) for df in tables.values()),
        "synthetic rows": sum(len(df) for df in synthetic.values()),
        "fit s": fit_s,
        "sample s": sample_s,
        "fit CPU s": fit_cpu,
        "sample CPU s": sample_cpu,
        "peak MiB": peak,
        "MiB before fit": rss_data,
        "orphan keys": int(diag["Orphans"].sum()) if len(diag) else 0,
        "duplicate PKs": int(keys["Duplicated"].sum()) if len(keys) else 0,
        "quality": report.get_score(),
        "column shapes": props.get("Column Shapes"),
        "pair trends": props.get("Column Pair Trends"),
        "cardinality": props.get("Cardinality"),
        "intertable trends": props.get("Intertable Trends"),
        "diagnostic": report.diagnostic.get_score(),
        "evaluate s": eval_s,
        "secondary ties": ties,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--only", nargs="*", help="schemas to run (default: all)")
    parser.add_argument("--no-match", action="store_true", help="baseline secondary picks")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.patients, match=not args.no_match)))
        return
    names = args.only or [*SCHEMAS, "hospital"]
    rows = []
    for name in names:
        if name != "hospital" and not (SHARED / name).exists():
            print(f"skipped {name}: {SHARED / name} not found", file=sys.stderr)
            continue
        done = subprocess.run(
            [sys.executable, __file__, "--one", name, "--patients", str(args.patients)]
            + (["--no-match"] if args.no_match else []),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            print(f"{name} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"done {name}", file=sys.stderr)
    ties = [{"schema": r["schema"], **t} for r in rows for t in r.pop("secondary ties")]
    print(markdown(rows))
    if ties:
        print()
        print(markdown(ties))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    name = "multitable_no_match.json" if args.no_match else "multitable.json"
    (out / name).write_text(json.dumps({"schemas": rows, "secondary_ties": ties}, indent=1))


if __name__ == "__main__":
    main()
