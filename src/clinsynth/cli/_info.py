"""Commands that describe and show: info (a saved model), models (the registry), demo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from clinsynth.cli._app import app
from clinsynth.cli._console import console, progress_bar


# --------------------------------------------------------------------------- info / models
@app.command()
def info(model: Path = typer.Argument(..., help="A saved model (folder or .zip).")) -> None:
    """Describe a saved model: its type, parameters, training size and privacy budget."""
    from clinsynth.io._bundle import load_bundle

    manifest, documents, _ = load_bundle(model)
    grid = Table(title=f"{model}", show_header=False)
    grid.add_row("model", str(manifest.get("model")))
    grid.add_row("class", str(manifest.get("class", "")))
    grid.add_row("clinsynth version", str(manifest.get("clinsynth_version")))
    grid.add_row("bundle format", str(manifest.get("format_version")))
    fit_info = manifest.get("fit", {})
    if fit_info:
        grid.add_row("training rows", str(fit_info.get("num_training_rows")))
        grid.add_row("fit time (s)", f"{fit_info.get('seconds', 0):.2f}")
    auto = manifest.get("auto")
    if isinstance(auto, dict) and auto.get("chosen"):
        grid.add_row("auto's choice", str(auto["chosen"]))
    state = documents.get("model.json")
    if isinstance(state, dict) and state.get("trained_precision"):
        grid.add_row("trained precision", str(state["trained_precision"]))
    if isinstance(state, dict) and isinstance(state.get("leaf_search"), list):
        tried = ", ".join(
            f"{r['min_leaf']}: {r['dcr_share']:.2f} ± {r['dcr_share_se']:.2f}"
            for r in state["leaf_search"]
        )
        grid.add_row(
            "leaf size (rows)",
            f"{state.get('min_leaf')}"
            + (f" (held-out DCR share by size: {tried})" if tried else ""),
        )
    tables = manifest.get("metadata", {}).get("tables", {})
    grid.add_row(
        "tables", ", ".join(f"{k} ({len(v['columns'])} columns)" for k, v in tables.items())
    )
    for key, value in manifest.get("params", {}).items():
        grid.add_row(f"param {key}", json.dumps(value))
    privacy = manifest.get("privacy")
    if privacy:
        for key, value in privacy.items():
            if key == "shares" and isinstance(value, dict):  # a schema's patient budget
                for name, share in value.items():
                    grid.add_row(f"privacy share of '{name}'", _share(share))
            else:
                grid.add_row(
                    f"privacy {key}", value if isinstance(value, str) else json.dumps(value)
                )
    elif manifest.get("kind") == "multi_table":
        for name, entry in manifest.get("tables", {}).items():
            table_privacy = entry.get("privacy") or {}
            grid.add_row(f"privacy of '{name}'", _guarantee(table_privacy, entry))
    else:
        grid.add_row("privacy", "no differential privacy (no formal guarantee)")
    console.print(grid)
    if isinstance(auto, dict) and auto.get("leaderboard"):
        from clinsynth.synthesizers._auto_board import leaderboard_compact, leaderboard_frame

        compact = leaderboard_compact(leaderboard_frame(auto["leaderboard"]))
        board = Table(title="auto: the candidates")
        for column in compact.columns:
            board.add_column(column)
        for row in compact.itertuples(index=False):
            board.add_row(*row)
        console.print(board)


def _share(share: dict) -> str:
    """One table's share of a patient's budget, in one line."""
    return (
        f"epsilon {share.get('epsilon', 0):.4g} (spent {share.get('epsilon_spent', 0):.4g}), "
        f"delta {share.get('delta', 0):.3g}, up to {share.get('rows_per_patient')} rows "
        f"per patient, weight {share.get('weight')}"
    )


def _guarantee(privacy: dict, entry: dict) -> str:
    """One table's privacy in a schema bundle, in one line."""
    if not entry.get("model"):
        return "reference table (stored verbatim)"
    if privacy.get("differential_privacy"):
        return str(privacy.get("guarantee", "differential privacy"))
    return "no differential privacy (no formal guarantee)"


@app.command()
def models() -> None:
    """List the available synthesizers (the model registry)."""
    from clinsynth import list_synthesizers

    grid = Table(title="clinsynth models")
    grid.add_column("name")
    grid.add_column("class")
    grid.add_column("description")
    for name, cls in list_synthesizers(sequential=True).items():
        doc = (cls.__doc__ or "").strip().splitlines()
        grid.add_row(name, cls.__name__, doc[0] if doc else "")
    console.print(grid)


# --------------------------------------------------------------------------- demo
@app.command()
def demo(
    output: Path = typer.Option(
        Path("demo_output"), "--output", "-o", help="Folder for the results."
    ),
    rows: int = typer.Option(2000, "--rows", "-n", help="Size of the simulated real cohort."),
    model: str = typer.Option(
        "gaussian_copula", "--model", help="Model name (see `clinsynth models`)."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    epochs: int | None = typer.Option(None, "--epochs", help="Training epochs (deep models)."),
) -> None:
    """Run the whole job on built-in data: simulate a cohort, fit, sample, evaluate, report.

    Writes OUTPUT/real.csv, OUTPUT/synthetic.csv, OUTPUT/metadata.json, OUTPUT/model/,
    OUTPUT/report.html and OUTPUT/report.json.
    """
    from clinsynth import get_synthesizer
    from clinsynth.evaluation import evaluate
    from clinsynth.io import write_table
    from clinsynth.simulate import simulate_cohort

    real, md = simulate_cohort(rows, seed=seed)
    holdout_n = max(1, len(real) // 4)
    train, holdout = (
        real.iloc[holdout_n:].reset_index(drop=True),
        real.iloc[:holdout_n].reset_index(drop=True),
    )
    params: dict[str, Any] = {"random_state": seed}
    if epochs is not None:
        params["epochs"] = epochs
    with progress_bar(f"fitting {model}") as update:
        synth = get_synthesizer(model)(md, progress=update, **params)
        synth.fit(train)
    synthetic = synth.sample(len(train))
    output.mkdir(parents=True, exist_ok=True)
    write_table(real, output / "real.csv")
    write_table(synthetic, output / "synthetic.csv")
    md.save_to_json(output / "metadata.json")
    synth.save(output / "model")
    target = "condition" if "condition" in real.columns else None
    result = evaluate(train, synthetic, md, holdout=holdout, target=target, model=synth)
    result.save_html(output / "report.html")
    result.save_json(output / "report.json")
    grid = Table(title=f"clinsynth demo: {model} on a simulated cohort of {rows} patients")
    grid.add_column("evidence")
    grid.add_column("score", justify="right")
    grid.add_column("verdict")
    for _, row in result.summary().iterrows():
        score = "-" if row["Score"] != row["Score"] else f"{row['Score']:.3f}"
        grid.add_row(str(row["Section"]), score, str(row["Verdict"]))
    console.print(grid)
    if result.quality is not None:
        props = result.quality.get_properties()
        console.print(
            "Fidelity: "
            + ", ".join(
                f"{p} {s:.3f}" for p, s in zip(props["Property"], props["Score"], strict=True)
            )
        )
    console.print(
        f"Real data, synthetic data, model and report written to {output}/ "
        f"(open {output / 'report.html'} in a browser)."
    )
