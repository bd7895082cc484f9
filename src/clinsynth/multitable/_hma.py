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
from clinsynth.metadata import Metadata, TableMetadata
from clinsynth.metadata._validate import table_problems
from clinsynth.multitable._conditional import sample_conditioned, strata_statistics
from clinsynth.multitable._context import (
    FeatureEncoder,
    encoder_sdtype,
    projection,
    select_features,
)
from clinsynth.multitable._dates import (
    date_format_of,
    decode_dates,
    encode_dates,
    needed_ancestor_bounds,
    plan_dates,
    to_ns,
)
from clinsynth.multitable._persist import (
    jsonable,
    pack_frame,
    pack_model,
    unpack_frame,
    unpack_model,
)
from clinsynth.multitable._plan import inherited_columns, plan_links
from clinsynth.multitable._schema import (
    ORPHAN_POLICIES,
    compose,
    empty_columns,
    link_positions,
    orphan_error_problems,
    resolve_orphans,
    topological_order,
)
from clinsynth.synthesizers import BaseSynthesizer, get_synthesizer
from clinsynth.transform import IdTransformer

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "gaussian_copula"
#: Rows used to choose context columns (correlations are stable long before this).
_SELECTION_ROWS = 100_000


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

    def _model_class(self, table: str) -> type[BaseSynthesizer]:
        choice = self.table_synthesizers
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
        links, ancestors = plan_links(work_md, tables, order, reference)
        rng = make_rng(self.random_state)
        classes = {t: self._model_class(t) for t in order if t not in reference}
        params = self._params_by_table(classes)
        counts = _child_counts(work_md, tables, links, ancestors)
        self._models: dict[str, BaseSynthesizer | None] = {}
        self._plan: dict[str, dict[str, Any]] = {}
        self._reference_data: dict[str, pd.DataFrame] = {}
        augmented: dict[str, pd.DataFrame] = {}
        date_cache: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
        for step, name in enumerate(order):
            report(self.progress, len(order), step, f"Fitting table '{name}'")
            df = tables[name]
            if name in reference:
                self._reference_data[name] = df.reset_index(drop=True)
                self._plan[name] = {"reference": True, "n_rows": len(df)}
                self._models[name] = None
                augmented[name] = df
                date_cache[name] = _date_columns(work_md.tables[name], df)
                continue
            seed = derive_seed(rng)
            plan, frame, model_md, context = self._plan_table(
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
            )
            model = None
            if len(frame.columns) and len(frame):
                model = classes[name](
                    Metadata({name: model_md}),
                    random_state=seed,
                    verbose=self.verbose,
                    **params[name],
                )
                model.fit(frame)
                if context:
                    plan["axis"] = projection(frame[context].to_numpy(dtype=np.float64)).tolist()
                    plan["strata"] = strata_statistics(model, frame, context)
            self._models[name] = model
            self._plan[name] = plan
            augmented[name] = pd.concat(
                [
                    df.reset_index(drop=True),
                    frame[[c for c in frame.columns if c.startswith("__")]],
                ],
                axis=1,
            )
            date_cache[name] = _date_columns(work_md.tables[name], df)
            logger.info("Table '%s' fitted (%d rows).", name, len(df))
        report(self.progress, len(order), len(order), "done")
        self._order = order
        self._metadata_used = work_md
        self._sample_seed = derive_seed(rng)
        self.fit_seconds_ = time.perf_counter() - start
        self._fitted = True
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

    def _plan_table(
        self,
        name: str,
        md: Metadata,
        tables: dict[str, pd.DataFrame],
        link: dict[str, Any],
        chain: dict[str, np.ndarray],
        counts: dict[str, np.ndarray],
        augmented: dict[str, pd.DataFrame],
        date_cache: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]],
        empties: dict[str, str],
        rng: np.random.Generator,
    ) -> tuple[dict[str, Any], pd.DataFrame, TableMetadata, list[str]]:
        """Decide what the table's model learns; build its training frame."""
        table = md.tables[name]
        df = tables[name]
        pk = table.primary_key
        keys = {pk} if pk else set()
        if link["primary"]:
            keys.add(link["primary"]["fk"])
        keys.update(e["fk"] for e in link["derived"] + link["secondary"] + link["self_fks"])
        usable = {a: set(md.tables[a].columns) - _key_columns(md, a) for a in chain}
        inherited = inherited_columns(name, md, tables, chain, keys, usable)
        datetime_cols = [
            c
            for c, s in table.columns.items()
            if s["sdtype"] == "datetime" and c not in keys and c not in inherited
        ]
        own_ns = {c: to_ns(df[c], table.columns[c].get("datetime_format")) for c in datetime_cols}
        formats = {c: date_format_of(df[c], table.columns[c]) for c in datetime_cols}
        bounds = {
            (anc, c): _aligned(ns, ok, chain[anc])
            for anc in chain
            for c, (ns, ok) in date_cache[anc].items()
        }
        dates = plan_dates(own_ns, formats, bounds)
        gaps = encode_dates(dates, own_ns, bounds, rng)
        whole = {e["column"]: e["whole"] for e in dates}

        columns: dict[str, pd.Series | np.ndarray] = {}
        specs: dict[str, dict] = {}
        for column, spec in table.columns.items():
            if column in keys or column in inherited:
                continue
            if column in link["reference_fks"]:
                # Keys of a public vocabulary: every level is kept (none merged as rare).
                spec = {"sdtype": "categorical", "rare_category_threshold": None}
            if column in gaps:
                columns[column] = gaps[column]
                rep = "Int64" if whole[column] else "Float"
                spec = {"sdtype": "numerical", "computer_representation": rep}
            else:
                columns[column] = df[column]
            specs[column] = dict(spec)
        for entry in link["secondary"]:
            if entry["nullable"]:
                entry["has"] = f"__has__{entry['fk']}"
                columns[entry["has"]] = df[entry["fk"]].notna().to_numpy()
                specs[entry["has"]] = {"sdtype": "boolean"}
        for column, values in counts.items():
            columns[column] = values
            specs[column] = {"sdtype": "numerical", "computer_representation": "Int64"}

        context: list[dict[str, Any]] = []
        primary = link["primary"]
        parentless = 0
        if primary:
            pos = chain[primary["parent"]]
            parentless = int((pos < 0).sum())
            context = self._choose_context(md, augmented, chain, columns, specs)
            for feature in context:
                columns[feature["name"]] = feature.pop("values")
                specs[feature["name"]] = {"sdtype": "numerical", "computer_representation": "Float"}
        frame = pd.DataFrame(columns, index=df.index, copy=False)
        plan = {
            "reference": False,
            "n_rows": len(df),
            "parentless": parentless,
            "columns": [
                c for c in self.metadata.tables[name].columns if c in table.columns or c in empties
            ],
            "pk": pk,
            "pk_generator": IdTransformer(pk).fit(df[pk]).to_dict() if pk else None,
            "key_dtypes": {k: str(df[k].dtype) for k in keys},
            "dtypes": {c: str(df[c].dtype) for c in df.columns},
            "empty": dict(empties),
            "inherited": inherited,
            "dates": dates,
            "context": context,
            "counts": list(counts),
            **link,
        }
        model_md = TableMetadata(specs)
        return plan, frame, model_md, [f["name"] for f in context]

    def _choose_context(
        self,
        md: Metadata,
        augmented: dict[str, pd.DataFrame],
        chain: dict[str, np.ndarray],
        columns: dict[str, Any],
        specs: dict[str, dict],
    ) -> list[dict[str, Any]]:
        """Encode the columns of the parent and grandparent... rows for the child rows; keep
        the ones most associated with the child's own columns."""
        if self.max_context_columns == 0 or not columns or not chain:
            return []
        first = next(iter(chain))
        attached = chain[first] >= 0
        n = len(attached)
        rng = np.random.default_rng(0)
        rows = np.sort(rng.permutation(n)[:_SELECTION_ROWS]) if n > _SELECTION_ROWS else None
        candidates: dict[str, dict[str, Any]] = {}
        for anc, pos in chain.items():
            frame = augmented[anc]
            table = md.tables[anc]
            keys = _key_columns(md, anc)
            valid = pos >= 0
            for column in frame.columns:
                if column.startswith("__n__"):
                    sdtype, fmt = "count", None
                elif column in table.columns and column not in keys:
                    sdtype = encoder_sdtype(table.columns[column])
                    fmt = table.columns[column].get("datetime_format")
                else:
                    continue
                if sdtype is None:
                    continue
                encoder = FeatureEncoder.fit(frame[column], sdtype, fmt)
                z_anc = encoder.transform(frame[column], sdtype)
                # 0 (neutral) where a grandparent is missing; NaN only for rows with no parent.
                values = np.where(attached, 0.0, np.nan)
                values[valid] = z_anc[pos[valid]]
                name = f"__ctx__{anc}__{column.lstrip('_')}"
                candidates[name] = {
                    "name": name,
                    "table": anc,
                    "column": column,
                    "sdtype": sdtype,
                    "encoder": encoder.to_dict(),
                    "values": values,
                }
        targets = []
        for column, values in columns.items():
            sdtype = "count" if column.startswith("__n__") else encoder_sdtype(specs[column])
            if sdtype is None:
                continue
            series = values if isinstance(values, pd.Series) else pd.Series(values)
            fmt = specs[column].get("datetime_format") if sdtype == "datetime" else None
            sub = series.iloc[rows] if rows is not None else series
            targets.append(FeatureEncoder.fit(sub, sdtype, fmt).transform(sub, sdtype))
        subset = {
            k: (v["values"][rows] if rows is not None else v["values"])
            for k, v in candidates.items()
        }
        chosen = select_features(subset, targets, self.max_context_columns)
        return [candidates[c] for c in chosen]

    # ------------------------------------------------------------------ sample
    @property
    def is_fitted(self) -> bool:
        return bool(getattr(self, "_fitted", False))

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet. Call fit(tables) before sampling."
            )

    def reset_sampling(self) -> None:
        """Restart the sampling random stream: the next ``sample`` repeats the first one."""
        self._check_fitted()
        self._sample_rng = make_rng(self._sample_seed)

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
        seeds = np.random.SeedSequence(derive_seed(self._sample_rng)).spawn(len(self._order))
        state = _SampleState()
        for name, seed in zip(self._order, seeds, strict=True):
            self._sample_table(name, float(scale), np.random.default_rng(seed), state)
        return {name: state.out[name] for name in self.metadata.tables}

    def _sample_table(
        self, name: str, scale: float, rng: np.random.Generator, state: _SampleState
    ) -> None:
        plan = self._plan[name]
        if plan["reference"]:
            df = self._reference_data[name].copy()
            state.out[name] = df
            state.aug[name] = df
            state.anc[name] = {}
            return
        model = self._models[name]
        primary = plan["primary"]
        context_names = [f["name"] for f in plan["context"]]
        if primary is None:
            n = int(round(scale * plan["n_rows"]))
            rows = self._unconditional(model, n, rng, context_names)
            ppos = np.full(n, -1, dtype=np.int64)
        else:
            parent = primary["parent"]
            count = _count_column(name, primary["fk"])
            counts = state.aug[parent][count].to_numpy(dtype=np.float64, na_value=0.0)
            counts = np.clip(np.nan_to_num(np.round(counts)), 0, None).astype(np.int64)
            ppos = np.repeat(np.arange(len(counts)), counts)
            # Context of every parent row (its own and its ancestors' columns), shared by its
            # children.
            every = np.arange(len(counts))
            parent_anc = {parent: every}
            for a, pos in state.anc[parent].items():
                parent_anc[a] = pos
            parent_ctx = self._context_frame(plan, state, parent_anc)
            if model is None:
                rows = pd.DataFrame(index=range(len(ppos)))
            else:
                rows = sample_conditioned(
                    model,
                    parent_ctx,
                    rng,
                    rows=ppos,
                    axis=np.asarray(plan.get("axis", [])),
                    strata=plan.get("strata"),
                )
            extra = int(round(scale * plan["parentless"]))
            if extra:
                loose = self._unconditional(model, extra, rng, context_names)
                rows = pd.concat([rows, loose], ignore_index=True)
                ppos = np.concatenate([ppos, np.full(extra, -1, dtype=np.int64)])
        rows = rows.reset_index(drop=True)
        n = len(rows)
        anc = {}
        if primary is not None:
            anc[primary["parent"]] = ppos
            for a, pos in state.anc[primary["parent"]].items():
                anc[a] = compose(ppos, pos)
        state.anc[name] = anc

        bounds = {}
        for a, column in needed_ancestor_bounds(plan["dates"]):
            ns, ok = state.dates(a, column, self._metadata_used)
            bounds[(a, column)] = _aligned(ns, ok, anc[a])
        decoded = decode_dates(
            plan["dates"],
            {e["column"]: rows[e["column"]] for e in plan["dates"] if e["column"] in rows},
            bounds,
        )

        pk = plan["pk"]
        if pk:
            gen = IdTransformer.from_dict(plan["pk_generator"])
            state.keys[name] = gen.inverse_transform(np.zeros((n, 0), dtype=np.float32), rng)
        fks: dict[str, pd.Series] = {}
        if primary is not None:
            fks[primary["fk"]] = _take(state.keys[primary["parent"]], ppos)
        for entry in plan["derived"]:
            fks[entry["fk"]] = _take(state.keys[entry["parent"]], anc[entry["parent"]])
        for entry in plan["secondary"]:
            fks[entry["fk"]] = _take(
                state.keys[entry["parent"]],
                self._pick_secondary(name, entry, rows, anc, state, rng),
            )
        for fk in plan["reference_fks"]:
            fks[fk] = self._valid_reference_keys(name, fk, rows[fk], rng)
        for entry in plan["self_fks"]:
            pos = rng.integers(0, max(n, 1), size=n)
            pos[rng.random(n) < entry["null_rate"]] = -1
            fks[entry["fk"]] = _take(state.keys[name], pos if n else pos.astype(np.int64))

        out = {}
        for column in plan["columns"]:
            if column == pk and column not in fks:
                out[column] = state.keys[name]
            elif column in fks:
                out[column] = _restore_key_dtype(fks[column], plan["key_dtypes"].get(column))
            elif column in plan["inherited"]:
                a, source = plan["inherited"][column]
                out[column] = _take(state.out[a][source], anc[a])
            elif column in decoded:
                out[column] = decoded[column]
            elif column in plan["empty"]:
                out[column] = pd.Series([None] * n, dtype=_empty_dtype(plan["empty"][column]))
            elif column in rows.columns:
                out[column] = rows[column].reset_index(drop=True)
            else:  # an empty real table: nothing was learned
                dtype = _empty_dtype(plan.get("dtypes", {}).get(column, "object"))
                out[column] = pd.Series([None] * n, dtype=dtype)
        table = pd.DataFrame(out, index=range(n), copy=False)
        if pk and pk in fks:
            state.keys[name] = table[pk]
        state.out[name] = table
        helpers = [c for c in rows.columns if c.startswith("__n__")]
        state.aug[name] = pd.concat([table, rows[helpers].reset_index(drop=True)], axis=1)

    def _valid_reference_keys(
        self, name: str, fk: str, values: pd.Series, rng: np.random.Generator
    ) -> pd.Series:
        """Keys into a reference table, any value outside it (a level merged as rare by the
        table model) replaced by a random key of the reference table."""
        rel = next(
            r
            for r in self._metadata_used.relationships
            if r["child_table_name"] == name and r["child_foreign_key"] == fk
        )
        keys = self._reference_data[rel["parent_table_name"]][rel["parent_primary_key"]]
        bad = values.notna() & ~values.isin(keys)
        if not bad.any():
            return values.reset_index(drop=True)
        fixed = values.astype(object).copy()
        fixed[bad] = keys.to_numpy()[rng.integers(0, len(keys), int(bad.sum()))]
        return _restore_key_dtype(fixed.reset_index(drop=True), str(keys.dtype))

    def _unconditional(
        self, model: BaseSynthesizer | None, n: int, rng: np.random.Generator, drop: list[str]
    ) -> pd.DataFrame:
        if model is None:
            return pd.DataFrame(index=range(n))
        model._sample_rng = rng
        return model._sample_rows(n).drop(columns=drop, errors="ignore")

    def _context_frame(
        self, plan: dict[str, Any], state: _SampleState, anc: dict[str, np.ndarray]
    ) -> pd.DataFrame:
        """The context scores of the child rows, from their synthetic ancestor rows."""
        columns = {}
        n = len(next(iter(anc.values()))) if anc else 0
        for feature in plan["context"]:
            table = feature["table"]
            encoder = FeatureEncoder.from_dict(feature["encoder"])
            z = encoder.transform(state.aug[table][feature["column"]], feature["sdtype"])
            pos = anc[table]
            values = np.zeros(n)
            values[pos >= 0] = z[pos[pos >= 0]]
            columns[feature["name"]] = values
        return pd.DataFrame(columns, index=range(n))

    def _pick_secondary(
        self,
        name: str,
        entry: dict[str, Any],
        rows: pd.DataFrame,
        anc: dict[str, np.ndarray],
        state: _SampleState,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """A parent row per child row, weighted by the parents' modeled child counts, inside
        the child's ancestor group when there is one."""
        parent = entry["parent"]
        n = len(rows)
        weights = state.aug[parent][_count_column(name, entry["fk"])].to_numpy(
            dtype=np.float64, na_value=0.0
        )
        group = entry.get("group")
        if group is None:
            cand_group = np.zeros(len(weights), dtype=np.int64)
            child_group = np.zeros(n, dtype=np.int64)
        else:
            cand_group = np.arange(len(weights)) if group == parent else state.anc[parent][group]
            child_group = anc[group]
        pick = weighted_group_pick(cand_group, weights, child_group, rng)
        if entry.get("has") and entry["has"] in rows:
            has = rows[entry["has"]].astype("boolean").fillna(False).to_numpy(dtype=bool)
            pick[~has] = -1
        return pick

    # ------------------------------------------------------------------ introspection
    def get_table_synthesizer(self, table_name: str) -> BaseSynthesizer | None:
        """The fitted single-table model of a table (None for reference tables and tables
        with nothing to learn). Its columns are the table's own, plus the helper columns:
        ``__n__<child>__<key>`` (children per row) and ``__ctx__<ancestor>__<column>``."""
        self._check_fitted()
        if table_name not in self._models:
            raise ParameterError(
                f"Table '{table_name}' is not in the schema. Tables: {', '.join(self._models)}."
            )
        return self._models[table_name]

    def get_plan(self) -> pd.DataFrame:
        """One row per table: its primary parent, derived and secondary keys, inherited columns,
        date rules and context columns, as learned at fit time."""
        self._check_fitted()
        rows = []
        for name in self._order:
            p = self._plan[name]
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
                    "inherited": list(p["inherited"]),
                    "date_rules": [
                        f"{e['column']}: {e['mode']}" for e in p["dates"] if e["mode"] != "raw"
                    ],
                    "context": [f["name"].removeprefix("__ctx__") for f in p["context"]],
                    "model": None
                    if self._models[name] is None
                    else type(self._models[name])._model_name,
                }
            )
        return pd.DataFrame(rows)

    # ------------------------------------------------------------------ persistence
    def save(self, filepath: str | os.PathLike) -> Path:
        """Save as one bundle folder (or ``.zip``): JSON + tensors, no pickle, no patient row."""
        from clinsynth.io._bundle import save_bundle

        self._check_fitted()
        documents: dict[str, Any] = {}
        tensors: dict[str, Any] = {}
        entries: dict[str, Any] = {}
        for i, name in enumerate(self._order):
            prefix = f"t{i}"
            model = self._models[name]
            entry: dict[str, Any] = {"prefix": prefix, "model": None}
            if model is not None:
                entry, docs, tens = pack_model(model, prefix)
                documents.update(docs)
                tensors.update(tens)
            if name in self._reference_data:
                documents[f"reference.{prefix}.json"] = pack_frame(self._reference_data[name])
            entries[name] = entry
        documents["plan.json"] = jsonable({"order": self._order, "tables": self._plan})
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
            "kind": "multi_table",
            "model": self._model_name,
            "class": type(self).__name__,
            "params": jsonable(params),
            "metadata": self.metadata.to_dict(),
            "metadata_used": self._metadata_used.to_dict(),
            "tables": entries,
            "fit": {"seconds": self.fit_seconds_, "sample_seed": self._sample_seed},
            "orphans": jsonable(self.orphans_),
        }
        return save_bundle(filepath, manifest, documents, tensors)

    @classmethod
    def load(cls, filepath: str | os.PathLike) -> HierarchicalSynthesizer:
        """Load a schema model saved by :meth:`save` (``clinsynth.load`` calls this)."""
        from clinsynth.io._bundle import load_bundle

        manifest, documents, tensors = load_bundle(filepath)
        if manifest.get("kind") != "multi_table":
            raise BundleError(
                f"Model '{filepath}' is a single-table model; load it with clinsynth.load()."
            )
        try:
            obj = cls(Metadata.from_dict(manifest["metadata"]), **manifest["params"])
            obj._metadata_used = Metadata.from_dict(manifest["metadata_used"])
            plan = documents["plan.json"]
            obj._order = list(plan["order"])
            obj._plan = plan["tables"]
            obj._models = {}
            obj._reference_data = {}
            for name in obj._order:
                entry = manifest["tables"][name]
                obj._models[name] = (
                    unpack_model(entry, documents, tensors) if entry.get("model") else None
                )
                ref = documents.get(f"reference.{entry['prefix']}.json")
                if ref is not None:
                    obj._reference_data[name] = unpack_frame(ref)
            obj.fit_seconds_ = manifest["fit"]["seconds"]
            obj._sample_seed = manifest["fit"]["sample_seed"]
            obj.orphans_ = manifest.get("orphans", [])
        except (KeyError, TypeError, ValueError, ParameterError) as exc:
            raise BundleError(
                f"Model '{filepath}' is corrupt or incomplete ({type(exc).__name__}: {exc}). "
                f"Fit and save the model again (clinsynth {__version__})."
            ) from None
        obj._fitted = True
        obj.reset_sampling()
        return obj

    def __repr__(self) -> str:
        tables = ", ".join(self.metadata.tables)
        return f"{type(self).__name__}(tables=[{tables}], orphans={self.orphans!r})"


#: SDV's name for the same idea.
HMASynthesizer = HierarchicalSynthesizer


class _SampleState:
    """What one ``sample`` call has produced so far."""

    def __init__(self) -> None:
        self.out: dict[str, pd.DataFrame] = {}
        self.aug: dict[str, pd.DataFrame] = {}
        self.anc: dict[str, dict[str, np.ndarray]] = {}
        self.keys: dict[str, pd.Series] = {}
        self._dates: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}

    def dates(self, table: str, column: str, md: Metadata) -> tuple[np.ndarray, np.ndarray]:
        if (table, column) not in self._dates:
            fmt = md.tables[table].columns[column].get("datetime_format")
            self._dates[(table, column)] = to_ns(self.out[table][column], fmt)
        return self._dates[(table, column)]


# --------------------------------------------------------------------------- helpers
def _count_column(child: str, fk: str) -> str:
    return f"__n__{child}__{fk}"


def _key_columns(md: Metadata, name: str) -> set[str]:
    keys = {md.tables[name].primary_key} - {None}
    keys |= {r["child_foreign_key"] for r in md.relationships if r["child_table_name"] == name}
    return keys


def _child_counts(
    md: Metadata,
    tables: dict[str, pd.DataFrame],
    links: dict[str, dict[str, Any]],
    ancestors: dict[str, dict[str, np.ndarray]],
) -> dict[str, dict[str, np.ndarray]]:
    """``{parent: {count column: children per parent row}}`` for primary and secondary links."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for child, link in links.items():
        primary = link["primary"]
        if primary:
            pos = ancestors[child][primary["parent"]]
            n = len(tables[primary["parent"]])
            out.setdefault(primary["parent"], {})[_count_column(child, primary["fk"])] = (
                np.bincount(pos[pos >= 0], minlength=n)
            )
        for entry in link["secondary"]:
            parent = tables[entry["parent"]]
            pos = link_positions(parent[entry["pk"]], tables[child][entry["fk"]])
            out.setdefault(entry["parent"], {})[_count_column(child, entry["fk"])] = np.bincount(
                pos[pos >= 0], minlength=len(parent)
            )
    return out


def _date_columns(
    table: TableMetadata, df: pd.DataFrame
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {
        c: to_ns(df[c], s.get("datetime_format"))
        for c, s in table.columns.items()
        if s["sdtype"] == "datetime" and c in df.columns
    }


def _aligned(ns: np.ndarray, ok: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    valid = pos >= 0
    safe = np.where(valid, pos, 0)
    if len(ns) == 0:
        return np.zeros(len(pos), dtype=np.int64), np.zeros(len(pos), dtype=bool)
    return ns[safe], ok[safe] & valid


def _take(values: pd.Series, pos: np.ndarray) -> pd.Series:
    """``values`` at positions ``pos``; missing where ``pos`` is -1."""
    pos = np.asarray(pos, dtype=np.int64)
    valid = pos >= 0
    if len(values) == 0:
        return pd.Series([None] * len(pos), dtype=object)
    taken = values.iloc[np.where(valid, pos, 0)].reset_index(drop=True)
    if valid.all():
        return taken
    if pd.api.types.is_integer_dtype(taken.dtype) and not isinstance(
        taken.dtype, pd.api.extensions.ExtensionDtype
    ):
        taken = taken.astype("Int64")
    elif pd.api.types.is_bool_dtype(taken.dtype):
        taken = taken.astype("boolean")
    return taken.mask(~valid)


def _restore_key_dtype(values: pd.Series, dtype: str | None) -> pd.Series:
    """Foreign keys with the real column's dtype (``Int64`` when an integer key has gaps)."""
    if dtype is None or str(values.dtype) == dtype:
        return values
    try:
        if dtype.startswith(("int", "uint")):
            return values.astype(dtype if values.notna().all() else "Int64")
        if dtype.startswith("float") and pd.api.types.is_numeric_dtype(values):
            return values.astype(dtype)
    except (TypeError, ValueError):
        return values
    return values


def _empty_dtype(dtype: str) -> str:
    if dtype.startswith(("int", "uint")):
        return "Int64"
    if dtype == "bool":
        return "boolean"
    return dtype


def weighted_group_pick(
    cand_group: np.ndarray,
    weights: np.ndarray,
    child_group: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """For each child, a candidate of its group drawn with probability proportional to its
    weight (uniform where a group's weights are all 0); ``-1`` where the group has none.

    >>> pick = weighted_group_pick(np.array([0, 0, 1]), np.array([0.0, 1.0, 1.0]),
    ...                            np.array([0, 1, 2, -1]), np.random.default_rng(0))
    >>> pick.tolist()
    [1, 2, -1, -1]
    """
    n = len(child_group)
    pick = np.full(n, -1, dtype=np.int64)
    valid = cand_group >= 0
    if not valid.any() or n == 0:
        return pick
    idx = np.flatnonzero(valid)
    order = idx[np.argsort(cand_group[idx], kind="stable")]
    groups = cand_group[order]
    w = np.clip(np.nan_to_num(weights[order].astype(np.float64)), 0.0, None)
    size = int(max(groups.max(), child_group.max(initial=-1)) + 1)
    starts = np.searchsorted(groups, np.arange(size), side="left")
    ends = np.searchsorted(groups, np.arange(size), side="right")
    totals = np.bincount(groups, weights=w, minlength=size)
    # Groups whose weights are all zero draw uniformly.
    w = np.where(totals[groups] > 0, w, 1.0)
    cum = np.concatenate([[0.0], np.cumsum(w)])
    ok = (child_group >= 0) & (child_group < size)
    ok[ok] = ends[child_group[ok]] > starts[child_group[ok]]
    g = child_group[ok]
    lo, hi = cum[starts[g]], cum[ends[g]]
    target = lo + rng.random(len(g)) * (hi - lo)
    at = np.searchsorted(cum, target, side="right") - 1
    at = np.clip(at, starts[g], ends[g] - 1)
    pick[ok] = order[at]
    return pick
