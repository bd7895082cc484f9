"""Patient-level differential privacy of a schema: quality and membership risk at epsilon = 1.

Run:  .venv/bin/python benchmarks/bench_patient_dp.py [--patients 10000] [--epsilon 1]
      [--cap 10] [--only mt_pbc hospital]

For each schema (``mt_pbc`` from ../shared/data: 418 patients and 1,945 lab visits;
``simulate_hospital(patients)``: patients, visits, lab results), 70% of the patients (with all
their rows in every table) train and 30% are held out. Three models:

* ``no DP``: ``HMASynthesizer`` with its default Gaussian copula per table;
* ``no DP (dp_marginal models)``: the same marginal models and cap as the DP run at a huge
  budget (epsilon = 1e6 per patient), to separate the cost of the noise from that of the model
  family and the cap;
* ``patient DP``: ``HMASynthesizer(table_synthesizers="dp_marginal", epsilon=E,
  max_rows_per_patient=C)``: one (E, delta) per patient across all tables.

The DP models get ``public_bounds`` from a data dictionary (numeric ranges and category lists,
computed from the full data only to play that role, as bench_privacy.py does);
``--no-public-bounds`` leaves them to find ranges and levels privately. The metadata is
detected without rule discovery (discovered rules are read outside any budget).

Per model: ``evaluate_multi_table`` quality (against the training tables), its properties, and
the membership attacks of ``evaluate_privacy`` on one record per patient (the root table's
columns, the number of rows the patient has in each other table and the mean of each of their
numbers there): distance attack AUC, DOMIAS AUC, DCR share, training patients against held-out
ones; for the simulator also a control, the same attacks with another simulated population
as the "synthetic" data (no model saw the training patients: the attacks' no-leak level on
these records). Also the epsilon spent. Results go to benchmarks/results/patient_dp.json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import SHARED, markdown  # noqa: E402

from clinsynth import Metadata  # noqa: E402
from clinsynth.evaluation import evaluate_privacy  # noqa: E402
from clinsynth.io import load_csvs  # noqa: E402
from clinsynth.multitable import HMASynthesizer, evaluate_multi_table  # noqa: E402
from clinsynth.multitable._patient import patient_codes, resolve_unit  # noqa: E402
from clinsynth.multitable._schema import topological_order  # noqa: E402


def load(name: str, patients: int) -> tuple[dict[str, pd.DataFrame], Metadata, str]:
    if name == "hospital":
        from clinsynth.simulate import simulate_hospital

        tables, md = simulate_hospital(patients, seed=0)
        return tables, md, f"simulate_hospital({patients:,})"
    tables = load_csvs(SHARED / name)
    # No discovered rules: they are read from the real rows outside any DP budget.
    return tables, Metadata.detect_from_dataframes(tables, discover_rules=False), name


def split_patients(
    tables: dict[str, pd.DataFrame], md: Metadata, frac: float = 0.7, seed: int = 2026
) -> tuple[dict, dict, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Train and holdout schemas, each patient with all their rows on one side. The seed
    differs from the simulator's (0): the same stream would draw the split from the numbers
    that drew the patients, and tell training from held-out patients by their birth dates."""
    order = topological_order(md)
    unit = resolve_unit(None, md, order, set())
    codes = patient_codes(md, tables, order, unit, order)
    n = len(tables[unit[0]])
    train = np.random.default_rng(seed).random(n) < frac
    out = ({}, {}, {}, {})
    for name, df in tables.items():
        member = train[np.minimum(codes[name], n - 1)] & (codes[name] < n)
        for side, keep in ((0, member), (1, ~member)):
            out[side][name] = df[keep].reset_index(drop=True)
            out[side + 2][name] = codes[name][keep]
    return out


def flatten(tables: dict[str, pd.DataFrame], md: Metadata) -> pd.DataFrame:
    """One record per patient: the root row, and per other table the patient's row count and
    the mean of each numeric column (the record a membership attacker would hold)."""
    order = topological_order(md)
    unit_table, unit_key = resolve_unit(None, md, order, set())
    codes = patient_codes(md, tables, order, (unit_table, unit_key), order)
    root = tables[unit_table].drop(columns=[unit_key])
    n = len(root)
    parts = [root.reset_index(drop=True)]
    for name in order:
        if name == unit_table:
            continue
        df, code = tables[name], codes[name]
        mine = code < n
        agg = {f"{name}_rows": np.bincount(code[mine], minlength=n)}
        keys = {md.tables[name].primary_key} | {
            r["child_foreign_key"] for r in md.relationships if r["child_table_name"] == name
        }
        for column, spec in md.tables[name].columns.items():
            if spec["sdtype"] != "numerical" or column in keys:
                continue
            x = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float)[mine]
            ok = ~np.isnan(x)
            total = np.bincount(code[mine][ok], weights=x[ok], minlength=n)
            count = np.bincount(code[mine][ok], minlength=n)
            with np.errstate(invalid="ignore", divide="ignore"):
                agg[f"{name}_{column}_mean"] = np.where(count > 0, total / count, np.nan)
        parts.append(pd.DataFrame(agg))
    return pd.concat(parts, axis=1)


def data_dictionary(tables: dict[str, pd.DataFrame], md: Metadata) -> dict:
    """Public bounds as a data dictionary would give them (computed here from the full data
    only to play that role, as bench_privacy.py does): numeric ranges widened to round numbers
    and category lists, one entry per column name across tables (union of ranges and levels).
    Keys and dates are left out."""
    out: dict = {}
    for name, table in md.tables.items():
        keys = {table.primary_key} | {
            r["child_foreign_key"] for r in md.relationships if r["child_table_name"] == name
        }
        for column, spec in table.columns.items():
            values = tables[name][column].dropna()
            if column in keys or not len(values):
                continue
            if spec["sdtype"] == "numerical":
                low, high = float(values.min()), float(values.max())
                step = 10 ** math.floor(math.log10(max(high - low, 1e-9)))
                low, high = math.floor(low / step) * step, math.ceil(high / step) * step
                old = out.get(column, (low, high))
                out[column] = (min(low, old[0]), max(high, old[1]))
            elif spec["sdtype"] in ("categorical", "boolean"):
                levels = set(out.get(column, [])) | set(values.unique().tolist())
                out[column] = sorted(levels, key=str)
    return out


def run(name: str, args: argparse.Namespace) -> list[dict]:
    tables, md, label = load(name, args.patients)
    public = {} if args.no_public_bounds else {"public_bounds": data_dictionary(tables, md)}
    train, holdout, _, _ = split_patients(tables, md)
    flat_train, flat_hold = flatten(train, md), flatten(holdout, md)
    flat_md = Metadata.detect_from_dataframe(flat_train, discover_rules=False)
    models = {
        "no DP": {},
        "no DP (dp_marginal models)": {
            "table_synthesizers": "dp_marginal",
            "epsilon": 1e6,
            "max_rows_per_patient": args.cap,
            **public,
        },
        "patient DP": {
            "table_synthesizers": "dp_marginal",
            "epsilon": args.epsilon,
            "max_rows_per_patient": args.cap,
            **public,
        },
    }
    rows = []
    if name == "hospital":  # control: a population no model saw, the attacks' no-leak level
        from clinsynth.simulate import simulate_hospital

        other, _ = simulate_hospital(len(train[next(iter(md.tables))]), seed=1)
        control = evaluate_privacy(
            flat_train, flatten(other, md), flat_md, holdout=flat_hold, n_attacks=100
        ).metrics
        rows.append(
            {
                "schema": label,
                "model": "control: another simulated population",
                **{k: None for k in ("epsilon", "epsilon_spent", "cap", "public bounds")},
                **{k: None for k in ("quality", "column shapes", "pair trends")},
                **{k: None for k in ("cardinality", "intertable trends")},
                **{k: control[k] for k in ("mia_auc", "domias_auc", "dcr_share")},
                "fit s": None,
            }
        )
    for model_name, params in models.items():
        start = time.perf_counter()
        model = HMASynthesizer(md, random_state=0, **params).fit(train)
        fit_s = time.perf_counter() - start
        synthetic = model.sample()
        report = evaluate_multi_table(train, synthetic, md, random_state=0)
        props = dict(
            zip(report.get_properties()["Property"], report.get_properties()["Score"], strict=True)
        )
        flat_syn = flatten(synthetic, md)
        privacy = evaluate_privacy(
            flat_train, flat_syn, flat_md, holdout=flat_hold, n_attacks=100, random_state=0
        ).metrics
        budget = model.get_privacy_report()
        rows.append(
            {
                "schema": label,
                "model": model_name,
                "epsilon": budget.get("epsilon"),
                "epsilon_spent": budget.get("epsilon_spent"),
                "cap": params.get("max_rows_per_patient"),
                "public bounds": bool(params.get("public_bounds")),
                "quality": report.get_score(),
                "column shapes": props.get("Column Shapes"),
                "pair trends": props.get("Column Pair Trends"),
                "cardinality": props.get("Cardinality"),
                "intertable trends": props.get("Intertable Trends"),
                "mia_auc": privacy["mia_auc"],
                "domias_auc": privacy["domias_auc"],
                "dcr_share": privacy["dcr_share"],
                "fit s": fit_s,
            }
        )
        print(f"done {label} / {model_name}", file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--cap", type=int, default=10)
    parser.add_argument("--only", nargs="*", default=["mt_pbc", "hospital"])
    parser.add_argument(
        "--no-public-bounds", action="store_true", help="no data dictionary: DP ranges, levels"
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    rows = []
    for name in args.only:
        if name != "hospital" and not (SHARED / name).exists():
            print(f"skipped {name}: {SHARED / name} not found", file=sys.stderr)
            continue
        rows += run(name, args)
    shown = [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]
    print(markdown(shown))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "patient_dp.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
