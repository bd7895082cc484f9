"""Hierarchical synthesis of a relational schema with intact keys.

Tables are synthesized parents first. Each parent table's model learns, next to its own columns,
how many rows each of its rows has in every child table, so the number of children follows the
parent's attributes. Each child table's model learns its columns together with a few normal
scores of its parent row (and, through the parent's own context, of its grandparent row), and
is sampled conditioned on the synthetic parents: the Gaussian copula conditions exactly, other
models are matched by context. Keys are regenerated and assigned, never learned, so every
sample has unique primary keys and no orphan, and keys implied by others (a lab result's patient
is its visit's patient) are filled by lookup. Dates that always follow a parent's date in the
real data are learned as gaps and follow it in every sample.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from clinsynth._utils import ProgressCallback, derive_seed, make_rng, report
from clinsynth._version import __version__
from clinsynth.errors import BundleError, DataError, NotFittedError, ParameterError
from clinsynth.metadata import Metadata
from clinsynth.metadata._validate import table_problems
from clinsynth.multitable._conditional import strata_statistics
from clinsynth.multitable._context import projection
from clinsynth.multitable._generate import References, SampleState, generate_table
from clinsynth.multitable._learn import child_counts, date_columns, learn_table
from clinsynth.multitable._patient import (
    PatientBudget,
    check_budget,
    helper_bounds,
    patient_report,
    plan_patient_privacy,
)
from clinsynth.multitable._persist import (
    check_registered,
    jsonable,
    pack_frame,
    unpack_frame,
)
from clinsynth.multitable._plan import plan_links
from clinsynth.multitable._schema import (
    ORPHAN_POLICIES,
    empty_columns,
    orphan_error_problems,
    resolve_orphans,
    topological_order,
)
from clinsynth.multitable._self_groups import describe_self_groups
from clinsynth.multitable._sequence import (
    SEQUENCE_MODEL,
    sequence_frame,
    sequence_tables,
)
from clinsynth.synthesizers import BaseSynthesizer, get_synthesizer

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "gaussian_copula"


class HierarchicalSynthesizer:
    """Synthesize a whole relational schema: parents, children, grandchildren, with intact keys.

    Parameters
    ----------
    metadata : Metadata
        Tables, primary keys and relationships (``Metadata.detect_from_dataframes(tables)``,
        an SDV multi-table JSON, or ``clinsynth.io.read_sql_schema``).
    table_synthesizers : str or dict, optional
        The single-table model of every table (a registry name such as ``"gaussian_copula"``),
        or ``{table: name}`` for some tables (the others use ``"gaussian_copula"``). A value may
        also be a synthesizer class.
    orphans : {"error", "drop", "keep_as_null"}
        What to do with child rows whose key matches no parent row: raise an error listing
        them (counts and examples), drop them (and their own children), or keep them with an
        empty key.
    empty_columns : {"keep", "drop"}
        Columns with no value at all: kept as always-empty columns in the samples, or left
        out. Either way they are not learned (their sdtype may be ``"unknown"``).
    reference_tables : list of str, optional
        Tables copied verbatim into every sample, such as a public vocabulary (OMOP
        ``concept``). Their rows are stored in the saved model: never name a table holding
        patient data here. Keys pointing to them are learned as categories.
    max_context_columns : int
        Parent (and grandparent) columns given to each child model, chosen by correlation with
        the child's columns.
    privacy_unit : str, optional
        With ``epsilon`` (a table-model parameter, e.g. ``epsilon=1.0``): the patient, whom
        the one (ε, δ) budget protects across all tables; the primary key of the patients'
        table (``"patients.patient_id"``). Default: the root table's primary key. See
        :mod:`clinsynth.multitable._patient` and ``docs/PRIVACY.md``.
    max_rows_per_patient : int or dict, optional
        With ``epsilon``: rows one patient keeps in each table below the patients' table
        (``{table: cap}`` for some tables); extra rows are dropped at random. Default 10
        (:data:`~clinsynth.multitable._patient.DEFAULT_MAX_ROWS`).
    privacy_weights : dict, optional
        With ``epsilon``: relative share of the patient's budget per table (default 1 each).
    random_state : int, optional
        Same seed, same data: same samples.
    progress : callable, optional
        ``progress(total, completed, message)`` during fit, one step per table.
    verbose : bool
        Log each table at INFO level.
    **synthesizer_params
        Passed to every table model that accepts them (``epochs=300`` reaches the neural
        models only).

    Attributes
    ----------
    orphans_ : list of dict
        The orphans found at fit time (relationship, count, examples), whatever the policy.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from clinsynth import Metadata
    >>> from clinsynth.multitable import HMASynthesizer
    >>> rng = np.random.default_rng(0)
    >>> patients = pd.DataFrame({"patient_id": np.arange(200), "age": rng.integers(20, 90, 200)})
    >>> visits = pd.DataFrame({"visit_id": np.arange(600),
    ...                        "patient_id": rng.integers(0, 200, 600),
    ...                        "cost": rng.gamma(2.0, 300.0, 600).round(2)})
    >>> tables = {"patients": patients, "visits": visits}
    >>> md = Metadata.detect_from_dataframes(tables)
    >>> synthetic = HMASynthesizer(md, random_state=0).fit(tables).sample(scale=0.5)
    >>> len(synthetic["patients"])
    100
    >>> bool(synthetic["visits"]["patient_id"].isin(synthetic["patients"]["patient_id"]).all())
    True
    """

    _model_name = "hma"

    def __init__(
        self,
        metadata: Metadata,
        *,
        table_synthesizers: str | dict[str, Any] | None = None,
        orphans: Literal["error", "drop", "keep_as_null"] = "error",
        empty_columns: Literal["keep", "drop"] = "keep",
        reference_tables: list[str] | None = None,
        max_context_columns: int = 8,
        privacy_unit: str | None = None,
        max_rows_per_patient: int | dict[str, int] | None = None,
        privacy_weights: dict[str, float] | None = None,
        random_state: int | None = None,
        progress: ProgressCallback | None = None,
        verbose: bool = False,
        **synthesizer_params: Any,
    ) -> None:
        self.metadata = metadata
        self.table_synthesizers = table_synthesizers
        self.orphans = orphans
        self.empty_columns = empty_columns
        self.reference_tables = reference_tables
        self.max_context_columns = max_context_columns
        self.privacy_unit = privacy_unit
        self.max_rows_per_patient = max_rows_per_patient
        self.privacy_weights = privacy_weights
        self.random_state = random_state
        self.progress = progress
        self.verbose = verbose
        self.synthesizer_params = synthesizer_params

    # ------------------------------------------------------------------ params
    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, metadata excluded."""
        return {
            "table_synthesizers": self.table_synthesizers,
            "orphans": self.orphans,
            "empty_columns": self.empty_columns,
            "reference_tables": self.reference_tables,
            "max_context_columns": self.max_context_columns,
            "privacy_unit": self.privacy_unit,
            "max_rows_per_patient": self.max_rows_per_patient,
            "privacy_weights": self.privacy_weights,
            "random_state": self.random_state,
            "progress": self.progress,
            "verbose": self.verbose,
            **self.synthesizer_params,
        }

    def _validate_params(self) -> None:
        name = type(self).__name__
        if not isinstance(self.metadata, Metadata):
            raise ParameterError(
                f"{name} needs a Metadata object as its first argument. Got "
                f"{type(self.metadata).__name__}. Use Metadata.detect_from_dataframes(tables)."
            )
        checks = [
            ("orphans", self.orphans in ORPHAN_POLICIES, f"one of {ORPHAN_POLICIES}"),
            ("empty_columns", self.empty_columns in ("keep", "drop"), "'keep' or 'drop'"),
            (
                "max_context_columns",
                isinstance(self.max_context_columns, int)
                and not isinstance(self.max_context_columns, bool)
                and self.max_context_columns >= 0,
                "an int >= 0",
            ),
            (
                "random_state",
                self.random_state is None
                or (isinstance(self.random_state, int | np.integer) and self.random_state >= 0),
                "None or an int >= 0",
            ),
            (
                "reference_tables",
                self.reference_tables is None
                or (
                    isinstance(self.reference_tables, list | tuple)
                    and all(t in self.metadata.tables for t in self.reference_tables)
                ),
                f"None or a list of table names ({', '.join(self.metadata.tables)})",
            ),
            (
                "table_synthesizers",
                self.table_synthesizers is None
                or isinstance(self.table_synthesizers, str)
                or (
                    isinstance(self.table_synthesizers, dict)
                    and all(t in self.metadata.tables for t in self.table_synthesizers)
                ),
                "None, a model name, or a dict of table name to model name",
            ),
        ]
        for param, ok, expected in checks:
            if not ok:
                raise ParameterError(
                    f"The '{param}' parameter of {name} must be {expected}. "
                    f"Got {getattr(self, param)!r}."
                )
        if self.synthesizer_params.get("epsilon") is not None:
            check_budget(self.synthesizer_params["epsilon"], None, 1)
        else:
            for param in ("privacy_unit", "max_rows_per_patient", "privacy_weights"):
                if getattr(self, param) is not None:
                    raise ParameterError(
                        f"The '{param}' parameter of {name} applies to differential privacy: "
                        f"give epsilon too (e.g. epsilon=1.0), or leave {param} out."
                    )

    def _model_class(self, table: str) -> type[BaseSynthesizer]:
        choice = self.table_synthesizers
        if table in sequence_tables(self.metadata) and not (
            isinstance(choice, dict) and table in choice
        ):
            # A table with a sequence_index is learned as sequences unless named otherwise.
            choice = SEQUENCE_MODEL
        if isinstance(choice, dict):
            choice = choice.get(table, DEFAULT_MODEL)
        choice = choice or DEFAULT_MODEL
        if isinstance(choice, type) and issubclass(choice, BaseSynthesizer):
            return choice
        if not isinstance(choice, str):
            raise ParameterError(
                f"The model of table '{table}' must be a model name (see `clinsynth models`) or "
                f"a synthesizer class. Got {choice!r}."
            )
        return get_synthesizer(choice)

    # ------------------------------------------------------------------ fit
    def fit(self, tables: dict[str, pd.DataFrame]) -> HierarchicalSynthesizer:
        """Learn every table and how the tables relate.

        Validates everything first and raises one error listing every problem (bad columns,
        duplicate keys, orphans unless ``orphans`` says what to do with them).

        Parameters
        ----------
        tables : dict of str to DataFrame
            One DataFrame per table of the metadata. Not modified.
        """
        self._validate_params()
        start = time.perf_counter()
        tables, work_md, empties = self._prepare(tables)
        order = topological_order(work_md)
        reference = set(self.reference_tables or ())
        for name in reference:
            parents = {
                r["parent_table_name"]
                for r in work_md.relationships
                if r["child_table_name"] == name and r["parent_table_name"] != name
            }
            if parents - reference:
                raise ParameterError(
                    f"Reference table '{name}' points to {sorted(parents - reference)}, which "
                    "are synthesized: a table kept verbatim can only point to other reference "
                    "tables. Add them to reference_tables or remove the relationship."
                )
        rng = make_rng(self.random_state)
        classes = {t: self._model_class(t) for t in order if t not in reference}
        params = self._params_by_table(classes)
        self._patient_budget_ = None
        synthetic: dict[str, pd.DataFrame] | None = None
        sequences = [t for t, k in classes.items() if getattr(k, "_sequential", False)]
        if self.synthesizer_params.get("epsilon") is not None:
            tables, self._patient_budget_ = plan_patient_privacy(
                self, work_md, tables, order, classes, make_rng(derive_seed(rng))
            )
            for table, share in self._patient_budget_.shares.items():
                params[table].update(epsilon=share["epsilon"], delta=share["delta"])
            synthetic = {}
        links, ancestors = plan_links(work_md, tables, order, reference)
        counts = child_counts(work_md, tables, links, ancestors)
        self._models_: dict[str, BaseSynthesizer | None] = {}
        self._plan_: dict[str, dict[str, Any]] = {}
        self._reference_data_: dict[str, pd.DataFrame] = {}
        augmented: dict[str, pd.DataFrame] = {}
        date_cache: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
        for step, name in enumerate(order):
            report(
                self.progress,
                len(order) * _STEPS_PER_TABLE,
                step * _STEPS_PER_TABLE,
                f"Fitting table '{name}'",
            )
            df = tables[name]
            if name in reference:
                self._reference_data_[name] = df.reset_index(drop=True)
                self._plan_[name] = {"reference": True, "n_rows": len(df)}
                self._models_[name] = None
                augmented[name] = df
                date_cache[name] = date_columns(work_md.tables[name], df)
                continue
            seed = derive_seed(rng)
            plan, frame, model_md, context = learn_table(
                name,
                work_md,
                tables,
                links[name],
                ancestors[name],
                counts.get(name, {}),
                augmented,
                date_cache,
                empties.get(name, {}),
                make_rng(seed),
                columns_order=list(self.metadata.tables[name].columns),
                max_context=self.max_context_columns,
                encoder_source=synthetic,
                sequence=name in sequences,
            )
            if name in sequences:
                frame, model_md = sequence_frame(
                    name, work_md, tables, links[name], ancestors[name], frame, model_md, plan
                )
            model = None
            if len(frame.columns) and len(frame):
                model = classes[name](
                    Metadata({name: model_md}),
                    random_state=seed,
                    verbose=self.verbose,
                    progress=_table_progress(self.progress, name, step, len(order)),
                    **(
                        params[name]
                        if self._patient_budget_ is None
                        else helper_bounds(params[name], list(frame.columns), self._patient_budget_)
                    ),
                )
                if self._patient_budget_ is not None:
                    model.dp_rows_per_unit = self._patient_budget_.caps[name]
                    if name in sequences:  # a patient has one sequence per row of the parent
                        parent = links[name]["primary"]["parent"]
                        model.dp_sequences_per_unit = self._patient_budget_.caps[parent]
                model.fit(frame)
                model.progress = None  # the caller's callback is not part of the fitted model
                seen = frame
                if synthetic is not None:  # DP: what comes next reads the model, not the rows
                    seen = synthetic[name] = model.sample(min(len(frame), _PRIVATE_SAMPLE))
                    model.reset_sampling()
                if context and name not in sequences:
                    plan["axis"] = projection(seen[context].to_numpy(dtype=np.float64)).tolist()
                    plan["strata"] = strata_statistics(model, seen, context)
            self._models_[name] = model
            self._plan_[name] = plan
            augmented[name] = pd.concat(
                [
                    df.reset_index(drop=True),
                    frame[[c for c in frame.columns if c.startswith("__")]],
                ],
                axis=1,
            )
            date_cache[name] = date_columns(work_md.tables[name], df)
            logger.info("Table '%s' fitted (%d rows).", name, len(df))
        report(self.progress, len(order) * _STEPS_PER_TABLE, len(order) * _STEPS_PER_TABLE, "done")
        self._order_ = order
        self._metadata_used_ = work_md
        self._sample_seed_ = derive_seed(rng)
        self.fit_seconds_ = time.perf_counter() - start
        self._fitted_ = True
        self.reset_sampling()
        return self

    def _prepare(
        self, tables: dict[str, pd.DataFrame]
    ) -> tuple[dict[str, pd.DataFrame], Metadata, dict[str, dict[str, str]]]:
        """Check the tables (all problems at once), drop empty columns, apply the orphan policy."""
        if not isinstance(tables, dict) or not all(
            isinstance(df, pd.DataFrame) for df in tables.values()
        ):
            raise DataError(
                "fit() needs a dict of table name to pandas DataFrame. Read a folder with "
                "clinsynth.io.load_csvs(folder) or a database with clinsynth.io.read_sql_schema."
            )
        md = self.metadata
        problems = [
            f"table '{t}' is in the metadata but not in the data."
            for t in md.tables
            if t not in tables
        ]
        problems += [
            f"table '{t}' is in the data but not in the metadata."
            for t in tables
            if t not in md.tables
        ]
        if problems:
            raise DataError.from_problems("The tables do not match their metadata", problems)
        empties = empty_columns(md, tables)
        work_md = md.copy()
        tables = {name: tables[name].reset_index(drop=True) for name in md.tables}
        for name, columns in empties.items():
            for column in columns:
                work_md.remove_column(column, table_name=name)
            tables[name] = tables[name].drop(columns=list(columns))
        work_md.validate()
        for name, table in work_md.tables.items():
            if len(tables[name]):
                found, notes = table_problems(table, tables[name], f"table '{name}', ")
                problems.extend(found)
                for note in notes:
                    logger.info(note)
        tables, findings = resolve_orphans(work_md, tables, self.orphans)
        if self.orphans == "error" and findings:
            problems.extend(orphan_error_problems(findings))
        if problems:
            raise DataError.from_problems("The tables do not match their metadata", problems)
        self.orphans_ = [
            {
                "parent_table_name": f.parent,
                "parent_primary_key": f.parent_key,
                "child_table_name": f.child,
                "child_foreign_key": f.foreign_key,
                "orphans": f.orphans,
                "rows": f.rows,
                "examples": f.examples,
                "action": self.orphans,
            }
            for f in findings
        ]
        if self.empty_columns == "drop":
            empties = {}
        return tables, work_md, empties

    def _params_by_table(self, classes: dict[str, type[BaseSynthesizer]]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        used: set[str] = set()
        for table, klass in classes.items():
            accepted = set(klass._param_names()) - {"random_state", "verbose", "progress"}
            out[table] = {k: v for k, v in self.synthesizer_params.items() if k in accepted}
            used.update(out[table])
        unused = sorted(set(self.synthesizer_params) - used)
        if unused:
            models = sorted({k._model_name or k.__name__ for k in classes.values()})
            logger.warning(
                "Parameters %s are accepted by none of the table models in use (%s); ignored.",
                unused,
                ", ".join(models),
            )
        return out

    # ------------------------------------------------------------------ sample
    @property
    def is_fitted(self) -> bool:
        return bool(getattr(self, "_fitted_", False))

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet. Call fit(tables) before sampling."
            )

    def reset_sampling(self) -> None:
        """Restart the sampling random stream: the next ``sample`` repeats the first one."""
        self._check_fitted()
        self._sample_rng_ = make_rng(self._sample_seed_)

    def sample(self, scale: float = 1.0) -> dict[str, pd.DataFrame]:
        """Generate a synthetic copy of the schema.

        Parameters
        ----------
        scale : float
            Size relative to the real data: root tables get ``round(scale * rows)`` rows; child
            tables follow from the sampled numbers of children. Reference tables are copied.

        Returns
        -------
        dict of str to DataFrame
            One table per metadata table, columns in the metadata's order.
        """
        self._check_fitted()
        if (
            not isinstance(scale, int | float | np.floating)
            or isinstance(scale, bool)
            or not np.isfinite(scale)
            or scale < 0
        ):
            raise ParameterError(
                f"The 'scale' parameter of sample must be a number >= 0. Got {scale!r}."
            )
        seeds = np.random.SeedSequence(derive_seed(self._sample_rng_)).spawn(len(self._order_))
        state = SampleState()
        references = References(self._metadata_used_, self._reference_data_)
        for name, seed in zip(self._order_, seeds, strict=True):
            generate_table(
                name,
                self._plan_[name],
                self._models_[name],
                float(scale),
                np.random.default_rng(seed),
                state,
                references,
            )
        return {name: state.out[name] for name in self.metadata.tables}

    # ------------------------------------------------------------------ introspection
    def get_table_synthesizer(self, table_name: str) -> BaseSynthesizer | None:
        """The fitted single-table model of a table (None for reference tables and tables
        with nothing to learn). Its columns are the table's own, plus the helper columns:
        ``__n__<child>__<key>`` (children per row) and ``__ctx__<ancestor>__<column>``."""
        self._check_fitted()
        if table_name not in self._models_:
            raise ParameterError(
                f"Table '{table_name}' is not in the schema. Tables: {', '.join(self._models_)}."
            )
        return self._models_[table_name]

    def get_plan(self) -> pd.DataFrame:
        """One row per table: its primary parent, derived and secondary keys (with the columns
        a secondary parent is matched on), keys into its own rows (their groups), inherited
        columns, date rules and context columns, as learned at fit time."""
        self._check_fitted()
        rows = []
        for name in self._order_:
            p = self._plan_[name]
            if p["reference"]:
                rows.append({"table": name, "role": "reference", "rows": p["n_rows"]})
                continue
            primary = p["primary"]
            rows.append(
                {
                    "table": name,
                    "role": "child" if primary else "root",
                    "rows": p["n_rows"],
                    "parent": f"{primary['parent']}.{primary['pk']} <- {primary['fk']}"
                    if primary
                    else None,
                    "derived": [f"{e['fk']} (via {e['parent']})" for e in p["derived"]],
                    "secondary": [f"{e['fk']} -> {e['parent']}" for e in p["secondary"]],
                    "matched_on": [
                        f"{e['fk']}: {f['child']} ~ {e['parent']}.{f['parent']}"
                        + (
                            f" ({f['child']} redrawn from it)"
                            if (e.get("anchor") or {}).get("child") == f["child"]
                            and e["anchor"]["parent"] == f["parent"]
                            else ""
                        )
                        for e in p["secondary"]
                        for f in e.get("match", [])
                    ],
                    "self_groups": [describe_self_groups(e) for e in p["self_fks"]],
                    "inherited": list(p["inherited"]),
                    "date_rules": [
                        f"{e['column']}: {e['mode']}" for e in p["dates"] if e["mode"] != "raw"
                    ],
                    "context": [f["name"].removeprefix("__ctx__") for f in p["context"]],
                    "model": None
                    if self._models_[name] is None
                    else type(self._models_[name])._model_name,
                }
            )
        return pd.DataFrame(rows)

    # ------------------------------------------------------------------ persistence
    def save(self, filepath: str | os.PathLike) -> Path:
        """Save as one bundle folder (or ``.zip``): JSON + tensors, no pickle, no patient row."""
        from clinsynth.io._bundle import save_bundle

        return save_bundle(filepath, *self.to_bundle())

    def to_bundle(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """``(manifest, documents, tensors)``: each table model's own bundle
        (``BaseSynthesizer.to_bundle``) under its prefix, the plan and the reference tables."""
        from clinsynth.io._bundle import MULTI_TABLE, nest_bundle

        self._check_fitted()
        documents: dict[str, Any] = {}
        tensors: dict[str, Any] = {}
        entries: dict[str, Any] = {}
        for i, name in enumerate(self._order_):
            prefix = f"t{i}"
            model = self._models_[name]
            entry: dict[str, Any] = {"prefix": prefix, "model": None}
            if model is not None:
                check_registered(model)
                entry, docs, tens = nest_bundle(prefix, *model.to_bundle())
                documents.update(docs)
                tensors.update(tens)
            if name in self._reference_data_:
                documents[f"reference.{prefix}.json"] = pack_frame(self._reference_data_[name])
            entries[name] = entry
        documents["plan.json"] = jsonable({"order": self._order_, "tables": self._plan_})
        params = {
            k: v
            for k, v in self.get_params().items()
            if k not in ("progress", "verbose") and not callable(v)
        }
        if isinstance(params.get("table_synthesizers"), dict):
            params["table_synthesizers"] = {
                t: (m if isinstance(m, str) else m._model_name)
                for t, m in params["table_synthesizers"].items()
            }
        manifest = {
            "kind": MULTI_TABLE,
            "model": self._model_name,
            "class": type(self).__name__,
            "params": jsonable(params),
            "metadata": self.metadata.to_dict(),
            "metadata_used": self._metadata_used_.to_dict(),
            "tables": entries,
            "fit": {"seconds": self.fit_seconds_, "sample_seed": self._sample_seed_},
            "orphans": jsonable(self.orphans_),
        }
        if self._patient_budget_ is not None:
            manifest["patient_privacy"] = jsonable(self._patient_budget_.to_dict())
            report_ = self.get_privacy_report()
            manifest["privacy"] = jsonable({k: v for k, v in report_.items() if k != "tables"})
        return manifest, documents, tensors

    @classmethod
    def load(cls, filepath: str | os.PathLike) -> HierarchicalSynthesizer:
        """Load a schema model saved by :meth:`save` (``clinsynth.load`` calls this)."""
        from clinsynth.io._bundle import load_bundle

        return cls.from_bundle(*load_bundle(filepath), where=f"Model '{filepath}'")

    @classmethod
    def from_bundle(
        cls,
        manifest: dict[str, Any],
        documents: dict[str, Any],
        tensors: dict[str, Any],
        *,
        where: str = "The model",
    ) -> HierarchicalSynthesizer:
        """Rebuild a schema model from what :meth:`to_bundle` returned (read back and checked
        by ``clinsynth.io._bundle.load_bundle``); each table model through
        ``BaseSynthesizer.from_bundle``, the one reader of table bundles."""
        from clinsynth.io._bundle import BUILD_ERRORS, MULTI_TABLE, bundle_kind, unnest_bundle

        if bundle_kind(manifest) != MULTI_TABLE:
            raise BundleError(f"{where} is a single-table model; load it with clinsynth.load().")
        try:
            obj = cls(Metadata.from_dict(manifest["metadata"]), **manifest["params"])
            obj._metadata_used_ = Metadata.from_dict(manifest["metadata_used"])
            plan = documents["plan.json"]
            obj._order_ = list(plan["order"])
            obj._plan_ = plan["tables"]
            obj._models_ = {}
            obj._reference_data_ = {}
            for name in obj._order_:
                entry = manifest["tables"][name]
                obj._models_[name] = None
                if entry.get("model"):
                    obj._models_[name] = BaseSynthesizer.from_bundle(
                        *unnest_bundle(entry, documents, tensors),
                        where=f"{where}, table '{name}'",
                    )
                ref = documents.get(f"reference.{entry['prefix']}.json")
                if ref is not None:
                    obj._reference_data_[name] = unpack_frame(ref)
            obj.fit_seconds_ = manifest["fit"]["seconds"]
            obj._sample_seed_ = manifest["fit"]["sample_seed"]
            obj.orphans_ = manifest.get("orphans", [])
            patient = manifest.get("patient_privacy")
            obj._patient_budget_ = PatientBudget.from_dict(patient) if patient else None
        except BundleError as exc:  # a document's own check: say which model
            if str(exc).startswith(where):
                raise
            raise BundleError(f"{where}: {exc}", exc.problems) from None
        except (*BUILD_ERRORS, ParameterError) as exc:
            raise BundleError(
                f"{where} is corrupt or incomplete ({type(exc).__name__}: {exc}). "
                f"Fit and save the model again (clinsynth {__version__})."
            ) from None
        obj._fitted_ = True
        obj.reset_sampling()
        return obj

    def get_privacy_report(self) -> dict[str, Any]:
        """What protects the training patients, table by table.

        ``{"differential_privacy": bool, "tables": {table: report}}``, each report that of the
        table's model (``BaseSynthesizer.get_privacy_report``); ``differential_privacy`` is
        true only when every learned table's model is differentially private. Fitted with
        ``epsilon``, the report is the patient's (:func:`~clinsynth.multitable._patient.
        patient_report`): ``guarantee``, ``privacy_unit``, ``epsilon``, ``epsilon_spent``,
        ``delta``, the per-table ``shares`` and ``max_rows_per_patient``, and what is
        ``not_covered``; each table's own report then speaks of its share.
        """
        self._check_fitted()
        tables = {
            name: model.get_privacy_report()
            for name, model in self._models_.items()
            if model is not None
        }
        budget = getattr(self, "_patient_budget_", None)
        if budget is not None:
            return {**patient_report(budget, tables), "tables": tables}
        return {
            "differential_privacy": bool(tables)
            and all(r["differential_privacy"] for r in tables.values()),
            "tables": tables,
        }

    def __repr__(self) -> str:
        tables = ", ".join(self.metadata.tables)
        return f"{type(self).__name__}(tables=[{tables}], orphans={self.orphans!r})"


#: SDV's name for the same idea.
HMASynthesizer = HierarchicalSynthesizer


#: Synthetic rows drawn from a DP table model to fit what its children need (encoders, axis).
_PRIVATE_SAMPLE = 5000

#: Steps each table's fit is divided into when its own progress is forwarded.
_STEPS_PER_TABLE = 1000


def _table_progress(
    progress: ProgressCallback | None, table: str, step: int, n_tables: int
) -> ProgressCallback | None:
    """Forward a table model's ``progress(total, completed, message)`` as overall progress.

    Table ``step`` of ``n_tables`` covers ``_STEPS_PER_TABLE`` steps of the overall bar; the
    message is prefixed with the table's name ("Table 'visits': epoch 3/10 loss 1.2").
    """
    if progress is None:
        return None

    def forward(total: int, completed: int, message: str = "") -> None:
        share = min(max(completed / total, 0.0), 1.0) if total else 0.0
        done = step * _STEPS_PER_TABLE + int(share * (_STEPS_PER_TABLE - 1))
        progress(n_tables * _STEPS_PER_TABLE, done, f"Table '{table}': {message}")

    return forward
