"""The synthesizer contract shared by every model (scikit-learn's rules).

``__init__`` only stores arguments; ``fit`` validates the data against the metadata (every problem
at once), fits the :class:`~clinsynth.transform.TableTransformer` and calls the model's
``_fit(encoded)``; ``sample`` calls ``_sample(n, rng)`` and decodes. A model module implements
``_fit``, ``_sample``, ``_get_state``/``_set_state`` and its parameter constraints, nothing else.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from clinsynth._utils import ProgressCallback, derive_seed, make_rng, report
from clinsynth.errors import (
    BundleError,
    DataError,
    NotFittedError,
    ParameterError,
    SamplingError,
    check_param,
    parameter_error,
)
from clinsynth.metadata import Metadata, TableMetadata
from clinsynth.synthesizers import _persist, _rules, _stream
from clinsynth.synthesizers._conditioning import Conditioning, Rejection
from clinsynth.synthesizers._dp import DifferentialPrivacy, base_privacy_report, restore_budget
from clinsynth.synthesizers._limits import check_param_names, check_sample_size
from clinsynth.transform import TableTransformer

logger = logging.getLogger(__name__)

#: Parameters that are runtime choices, not part of the model (not saved in the bundle).
_RUNTIME_PARAMS = ("progress", "verbose", "device", "constraints")
#: The steps of ``fit`` reported to the progress callback: checking the data, learning the
#: columns, encoding, fitting the model. Models that train in epochs report every epoch
#: themselves: for them the steps are messages at 0% (the bar then counts epochs and never
#: runs backwards).
_FIT_STEPS = 4
#: File names that promise a pickle, which clinsynth never writes: saved as a zip bundle.
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".sav")


def _is_int(minimum: int) -> Any:
    return lambda v: isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= minimum


def _is_float(low: float, high: float | None = None) -> Any:
    return lambda v: (
        isinstance(v, int | float | np.floating)
        and not isinstance(v, bool)
        and v >= low
        and (high is None or v <= high)
    )


class BaseSynthesizer:
    """Base class of every single-table synthesizer.

    Parameters
    ----------
    metadata : Metadata
        The table's metadata (``Metadata.detect_from_dataframe(df)``).
    enforce_min_max_values : bool
        Keep numbers and dates inside the range seen in the real data.
    enforce_rounding : bool
        Round numbers to the decimals seen in the real data.
    locale : str
        Faker locale for fake personal data.
    table_name : str, optional
        Which table of a multi-table ``Metadata``.
    constraints : list, optional
        Clinical rules (:mod:`clinsynth.constraints`) every output row must satisfy, in addition
        to those declared in the metadata.
    rare_category_threshold : int, optional
        Categorical levels held by fewer patients (distinct primary-key values, or rows) are
        merged into one "other" level before training and never stored (default 5); None
        keeps every level. See :class:`~clinsynth.transform.CategoricalTransformer`.
    refine : bool or int
        Refine the model's rows by their density ratio: a classifier learns to tell the real
        rows from the model's, and sampling keeps, of ``refine`` times as many rows as asked
        (3 for True), those the classifier finds most real-like, drawn in proportion to its
        odds (see :mod:`clinsynth.synthesizers._refine`). Costs a classifier's training at fit
        and that many times the sampling; not with differential privacy.
    random_state : int, optional
        Seed: the same seed, data and device give the same rows.
    device : {"cpu", "cuda", "auto"}
        Where torch models train and sample.
    verbose : bool
        Deep models print one line per epoch on stdout (the epoch, its losses and the time
        left), as SDV's do; every model also logs its progress at INFO level.
    progress : callable, optional
        ``progress(total, completed, message)``, called during fit.
    """

    _model_name: ClassVar[str] = ""
    #: Parameters left out of saved bundles (runtime choices such as a local folder).
    _runtime_params: ClassVar[tuple[str, ...]] = _RUNTIME_PARAMS
    #: Encoding the model wants from the TableTransformer.
    _transformer_options: ClassVar[dict[str, Any]] = {"numerical": "mode", "categorical": "onehot"}
    #: Parameter name -> (check, "expected ...") used by the standard parameter error.
    _parameter_constraints: ClassVar[dict[str, tuple[Any, str]]] = {
        "enforce_min_max_values": (lambda v: isinstance(v, bool), "a bool"),
        "enforce_rounding": (lambda v: isinstance(v, bool), "a bool"),
        "random_state": (lambda v: v is None or _is_int(0)(v), "None or an int >= 0"),
        "rare_category_threshold": (lambda v: v is None or _is_int(1)(v), "None or an int >= 1"),
        "refine": (
            lambda v: isinstance(v, bool) or _is_int(2)(v),
            "a bool or an int >= 2 (rows drawn per row kept)",
        ),
        "device": (
            lambda v: (
                isinstance(v, str)
                and (v in ("cpu", "cuda", "auto", "mps") or v.startswith("cuda:"))
            ),
            "'cpu', 'cuda', 'cuda:N' or 'auto'",
        ),
    }

    def __init__(
        self,
        metadata: Metadata,
        *,
        enforce_min_max_values: bool = True,
        enforce_rounding: bool = True,
        locale: str = "en_US",
        table_name: str | None = None,
        constraints: list | None = None,
        rare_category_threshold: int | None = 5,
        refine: bool | int = False,
        random_state: int | None = None,
        device: str = "cpu",
        verbose: bool = False,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.metadata = metadata
        self.constraints = constraints
        self.rare_category_threshold = rare_category_threshold
        self.refine = refine
        self.enforce_min_max_values = enforce_min_max_values
        self.enforce_rounding = enforce_rounding
        self.locale = locale
        self.table_name = table_name
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.progress = progress

    # ------------------------------------------------------------------ params
    @classmethod
    def _param_names(cls) -> list[str]:
        names: list[str] = []
        kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        for klass in cls.__mro__:
            if "__init__" not in klass.__dict__ or klass is object:
                continue
            for p in inspect.signature(klass.__init__).parameters.values():
                if p.kind in kinds and p.name not in ("self", "metadata") and p.name not in names:
                    names.append(p.name)
        return names

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments (scikit-learn style), metadata excluded."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> BaseSynthesizer:
        check_param_names(type(self), params)
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def _validate_params(self) -> None:
        constraints: dict[str, tuple[Any, str]] = {}
        for klass in reversed(type(self).__mro__):
            constraints.update(klass.__dict__.get("_parameter_constraints", {}))
        for name, (check, expected) in constraints.items():
            value = getattr(self, name)
            check_param(type(self).__name__, name, value, check(value), expected)
        if not isinstance(self.metadata, Metadata | TableMetadata):
            raise parameter_error(
                type(self).__name__,
                "metadata",
                type(self.metadata).__name__,
                "a Metadata object (its first argument)",
                "Use Metadata.detect_from_dataframe(data).",
            )

    # ------------------------------------------------------------------ metadata
    def _checked_data(self, data: pd.DataFrame, table: TableMetadata) -> pd.DataFrame:
        """``data`` with the metadata's "missing_values" markers emptied, checked against the
        metadata (one DataError listing every problem; notes such as constant columns logged)."""
        from clinsynth.metadata._validate import clear_missing_values, table_problems

        data = clear_missing_values(data, table)
        if isinstance(self.metadata, Metadata):
            self._validate_metadata(table, data)
        problems, notes = table_problems(table, data)
        if problems:
            raise DataError.from_problems("The data does not match its metadata", problems)
        for note in notes:
            logger.warning(note)
        return data

    def _table_metadata(self) -> TableMetadata:
        if isinstance(self.metadata, TableMetadata):
            return self.metadata
        return self.metadata.get_table(self.table_name)

    def get_metadata(self) -> Metadata:
        if isinstance(self.metadata, TableMetadata):
            return Metadata({self.table_name or "table": self.metadata})
        return self.metadata

    # ------------------------------------------------------------------ fit
    def fit(self, data: pd.DataFrame) -> BaseSynthesizer:
        """Learn the table. Validates ``data`` first and reports every problem at once."""

        self._validate_params()
        if not isinstance(data, pd.DataFrame):
            raise DataError(
                f"fit() needs a pandas DataFrame; got {type(data).__name__}. Read files with "
                "clinsynth.io.read_table(path)."
            )
        table = self._table_metadata()
        stage = self._fit_stage
        stage(0, "checking the data")
        data = self._checked_data(data, table)
        start = time.perf_counter()
        self.num_training_rows_ = int(len(data))
        rng = make_rng(self.random_state)
        self._rules_ = _rules.collect_rules(table, self.constraints)
        self._dtypes_ = {c: str(data[c].dtype) for c in table.columns}
        if self._rules_:
            self._rules_ = _rules.check_real_data(self._rules_, data, table)
        rows = data  # the user's columns, for the refiner
        if self._rules_:
            label = getattr(self, "condition_column", None)  # the model's class label stays
            data, model_table = _rules.reparametrize(
                self._rules_,
                data,
                table,
                rare_threshold=self.rare_category_threshold,
                keep=[label] if label else (),
            )
            for column in set(model_table.columns) - set(table.columns):
                # Joint columns of rules (FixedCombinations) hold keys that must decode back
                # to a combination: no rare-level merging for them.
                model_table.columns[column] = {
                    **model_table.columns[column],
                    "rare_category_threshold": None,
                }
        else:
            model_table = table
        stage(1, f"learning {len(model_table.columns)} columns")
        #: The differential privacy of this fit (None without a budget) and its result.
        self._dp_ = self._differential_privacy()
        self.privacy_budget_: dict[str, Any] | None = None
        self._transformer_ = TableTransformer(
            model_table,
            enforce_min_max=self.enforce_min_max_values,
            locale=self.locale,
            rare_category_threshold=self.rare_category_threshold,
            privacy=self._dp_.plan(len(data)) if self._dp_ is not None else None,
            **self._transformer_options,
        ).fit(data)
        for column in model_table.columns:
            if not self.enforce_rounding:
                t = self._transformer_.get_transformer(column)
                if hasattr(t, "decimals_") and getattr(t, "kind", "") == "numerical":
                    t.decimals_ = None
        self._fit_seed_ = derive_seed(rng)
        self._sample_seed_ = derive_seed(rng)
        stage(2, f"encoding {len(data):,} rows")
        encoded = self._encode_for_fit(data)
        self._loss_history_: pd.DataFrame | None = None
        stage(3, "fitting the model")  # models that train in epochs take the bar over here
        self._fit(encoded)
        self._fitted_ = True
        self._refiner_ = None
        if self.refine:
            self._refiner_ = self._fit_refiner(rows, table, rng)
        stage(_FIT_STEPS, "done")
        self.fit_seconds_ = time.perf_counter() - start
        self.reset_sampling()
        logger.info("%s fitted in %.2f s", type(self).__name__, self.fit_seconds_)
        return self

    def _fit_refiner(
        self, rows: pd.DataFrame, table: TableMetadata, rng: np.random.Generator
    ) -> Any:
        """Fit the density-ratio refiner (``refine``) on the real rows and as many of the
        model's own rows (see :mod:`clinsynth.synthesizers._refine`)."""
        from clinsynth.synthesizers._refine import DensityRatioRefiner

        if self.dp_enabled:
            raise parameter_error(
                type(self).__name__,
                "refine",
                self.refine,
                "False with epsilon (it reads the real rows outside the privacy budget)",
                "Use refine=False.",
            )
        seed = derive_seed(rng)
        self._sample_rng_ = make_rng(seed)
        model_rows = self._sample_rows(len(rows))
        # refine=True (or a caller such as auto trying refinement): 3 rows drawn per row kept.
        oversample = 3 if isinstance(self.refine, bool) else int(self.refine)
        return DensityRatioRefiner(oversample=oversample, seed=seed).fit(
            rows, model_rows, table, rare_category_threshold=self.rare_category_threshold
        )

    def _fit_stage(self, step: int, message: str) -> None:
        """Report step ``step`` of ``_FIT_STEPS`` (see there)."""
        if "epochs" not in self._param_names():
            report(self.progress, _FIT_STEPS, step, message)
        else:
            report(self.progress, 1, int(step == _FIT_STEPS), message)

    def _validate_metadata(self, table: TableMetadata, data: pd.DataFrame) -> None:
        """``Metadata.validate()``, where a column detected ``unknown`` because it is empty
        (as it is in ``data``) is accepted: it stays empty in the synthetic data."""
        metadata = self.metadata
        empty = [
            column
            for column, spec in table.columns.items()
            if spec.get("sdtype") == "unknown"
            and column in data.columns
            and data[column].isna().all()
        ]
        if empty:
            metadata = metadata.copy()
            for column in empty:
                metadata.get_table(self.table_name).columns[column]["sdtype"] = "categorical"
        metadata.validate()

    def _encode_for_fit(self, data: pd.DataFrame) -> np.ndarray:
        return self._transformer_.transform(data)

    # ------------------------------------------------------------------ sample
    @property
    def is_fitted(self) -> bool:
        return bool(getattr(self, "_fitted_", False))

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet. Call fit(data) before sampling."
            )

    def reset_sampling(self, seed: int | None = None) -> None:
        """Restart the sampling random stream: the next ``sample`` repeats the first one.

        Parameters
        ----------
        seed : int, optional
            Start the stream from this seed instead of the model's own (fixed at fit time):
            the same seed gives the same rows, another seed other rows.

        Examples
        --------
        >>> # model.reset_sampling(seed=7); a = model.sample(10)
        >>> # model.reset_sampling(seed=7); b = model.sample(10)  # b equals a
        """
        self._check_fitted()
        if seed is not None and not _is_int(0)(seed):
            raise parameter_error("reset_sampling", "seed", seed, "None or an int >= 0")
        self._sample_rng_ = make_rng(self._sample_seed_ if seed is None else int(seed))

    def sample(
        self,
        num_rows: int | None = None,
        *,
        conditions: dict[str, Any] | None = None,
        max_tries_per_batch: int = 100,
        num_samples: int | None = None,
    ) -> pd.DataFrame:
        """Generate ``num_rows`` synthetic rows.

        Parameters
        ----------
        num_rows : int
        conditions : dict, optional
            ``{column: value}`` for equality, ``{column: (low, high)}`` for a range (either end
            may be None). Exactly ``num_rows`` rows come back, or a
            :class:`~clinsynth.errors.SamplingError` says how many could be made and why.
        max_tries_per_batch : int
            Rounds of generation allowed to meet rare conditions or rules.
        num_samples : int, optional
            Another name of ``num_rows`` (CTGAN's and older SDV code's ``sample(num_samples)``);
            give one of the two.

        Examples
        --------
        >>> # model.sample(1000) == model.sample(num_rows=1000) == model.sample(num_samples=1000)
        """
        self._check_fitted()
        if num_samples is not None:
            if num_rows is not None:
                raise ParameterError(
                    f"Give num_rows or num_samples (the same thing), not both. Got num_rows="
                    f"{num_rows!r} and num_samples={num_samples!r}."
                )
            num_rows = num_samples
        if num_rows is None:
            raise ParameterError("sample() needs the number of rows: sample(1000).")
        check_param("sample", "num_rows", num_rows, _is_int(0)(num_rows), "an int >= 0")
        check_sample_size(self, int(num_rows))  # a clear error, not numpy's MemoryError
        if conditions:
            from clinsynth.synthesizers._conditions import sample_with_conditions

            return sample_with_conditions(self, int(num_rows), conditions, max_tries_per_batch)
        return self._sample_rows(int(num_rows))

    def sample_batches(
        self,
        num_rows: int,
        *,
        batch_size: int = _stream.DEFAULT_BATCH_ROWS,
        seed: int | None = None,
        conditions: dict[str, Any] | None = None,
        max_tries_per_batch: int = 100,
    ) -> Iterator[pd.DataFrame]:
        """Generate ``num_rows`` rows as DataFrames of ``batch_size`` rows (the last may be
        shorter): memory stays flat however many rows are asked for.

        The rows are made in fixed blocks, each with its own random stream
        (:mod:`clinsynth.synthesizers._stream`): the same ``seed`` gives the same rows whatever
        the ``batch_size``, and every chunk meets the model's rules and ``conditions``.
        Generated identifiers continue from chunk to chunk.

        Parameters
        ----------
        num_rows : int
        batch_size : int
            Rows per chunk (default 262,144).
        seed : int, optional
            The run's seed; None draws one from the model's sampling stream (so that two calls
            give different rows, and ``reset_sampling(seed)`` repeats them).
        conditions : dict, optional
            As in :meth:`sample`.
        max_tries_per_batch : int
            As in :meth:`sample`.

        Examples
        --------
        >>> # for chunk in model.sample_batches(10_000_000, seed=7):
        >>> #     chunk.to_parquet(...)
        """
        self._check_fitted()
        _stream.check_batch_args(num_rows, batch_size, seed)
        _stream.check_streamable(self)
        if seed is None:
            seed = derive_seed(self._sample_rng_)
        return _stream.sample_batches(
            self,
            int(num_rows),
            batch_size=int(batch_size),
            seed=int(seed),
            conditions=conditions,
            max_tries_per_batch=max_tries_per_batch,
        )

    def conditioning(self) -> Conditioning:
        """How this model meets ``sample(conditions=...)``: its strategy (see
        :mod:`clinsynth.synthesizers._conditioning`). This default is rejection; a model with a
        native way (truncation, sequential importance, a conditional vector, latent importance,
        diffusion splitting) returns its own.

        Examples
        --------
        >>> BaseSynthesizer.conditioning(None)
        Rejection('rejection')
        """
        return Rejection()

    def sample_from_conditions(self, conditions: pd.DataFrame) -> pd.DataFrame:
        """One synthetic row per row of ``conditions`` (its non-null cells are the condition)."""
        from clinsynth.synthesizers._conditions import sample_from_condition_rows

        self._check_fitted()
        return sample_from_condition_rows(self, conditions)

    def _decode(self, encoded: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        """Encoded rows -> a DataFrame of the user's table (rules' reparametrizations undone)."""
        df = self._transformer_.inverse_transform(encoded, random_state=rng)
        if not getattr(self, "_rules_", None):
            return df
        table = self._table_metadata()
        df = _rules.reverse(self._rules_, df, table, _rules.tables_seen(self._rules_, table))
        return _rules.restore_dtypes(df, self._dtypes_)

    def _valid(self, df: pd.DataFrame) -> np.ndarray:
        if not getattr(self, "_rules_", None):
            return np.ones(len(df), dtype=bool)
        return _rules.valid_rows(self._rules_, df, self._table_metadata())

    def _sample_rows(self, num_rows: int, rng: np.random.Generator | None = None) -> pd.DataFrame:
        """Exactly ``num_rows`` rows that satisfy every rule (rejection for the few that do not
        hold by construction, with batches sized by the measured acceptance rate), drawn from
        ``rng`` (default: the model's sampling stream)."""
        rng = self._sample_rng_ if rng is None else rng
        if num_rows == 0:
            empty = np.zeros((0, self._transformer_.output_dim), dtype=np.float32)
            return self._decode(empty, rng)
        kept: list[pd.DataFrame] = []
        have, tried, batch = 0, 0, num_rows
        for _ in range(100):
            df = self._draw(batch, rng)
            tried += len(df)
            ok = self._valid(df)
            if ok.all() and not kept:
                # The first batch is the answer, as decoded: concat + reset_index would copy
                # (and consolidate) every column, seconds at a million rows.
                return df if df.index.equals(pd.RangeIndex(len(df))) else df.reset_index(drop=True)
            kept.append(df[ok])
            have += int(ok.sum())
            if have >= num_rows:
                break
            rate = max(have / tried, 1.0 / tried)
            batch = int(min(max((num_rows - have) / rate * 1.2, 100), 2_000_000))
        if have < num_rows:
            raise SamplingError(
                f"Only {have} of {tried} generated rows satisfy the rules "
                f"({', '.join(r.describe() for r in self._rules_)}); the model rarely produces "
                "valid rows. Train longer, or check that the rules agree with the data."
            )
        out = pd.concat(kept, ignore_index=True).iloc[:num_rows].reset_index(drop=True)
        return self._regenerate_ids(out, rng) if len(kept) > 1 else out

    def _draw(self, num_rows: int, rng: np.random.Generator) -> pd.DataFrame:
        """``num_rows`` decoded rows of the model: with a refiner (``refine``), kept from
        ``oversample`` times as many by their estimated density ratio."""
        refiner = getattr(self, "_refiner_", None)
        if refiner is None:
            return self._decode(self._sample(num_rows, rng), rng)
        pool = self._decode(self._sample(num_rows * refiner.oversample, rng), rng)
        ok = self._valid(pool)
        if not ok.all():
            pool = pool[ok].reset_index(drop=True)
        return pool.iloc[refiner.select(pool, num_rows, rng)].reset_index(drop=True)

    def _regenerate_ids(self, df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        """Rows assembled from several batches get fresh, unique identifiers."""
        return self._transformer_.regenerate_ids(df, rng)

    # ------------------------------------------------------------------ context (multitable)
    def sample_rows(self, num_rows: int, rng: np.random.Generator) -> pd.DataFrame:
        """``num_rows`` rows that satisfy every rule, drawn from ``rng``, which becomes the
        model's sampling stream (a schema model hands each table model its own stream)."""
        self._check_fitted()
        self._sample_rng_ = rng
        return self._sample_rows(num_rows)

    def sample_given_context(
        self,
        context: pd.DataFrame,
        rng: np.random.Generator,
        *,
        rows: np.ndarray | None = None,
        axis: np.ndarray | None = None,
        strata: list[dict] | None = None,
    ) -> pd.DataFrame:
        """One row per requested context, drawn given it; the context columns dropped.

        ``context`` holds some of the model's own (numerical) columns, one row per distinct
        context (a parent row); ``rows`` gives, for each row to draw, its context row (None:
        one row per context). This default draws rows jointly with the context and pairs them
        with the requested contexts by rank along ``axis`` (a match that uses each drawn row
        once); a model that conditions exactly overrides it (the Gaussian copula, which also
        uses ``strata`` from :meth:`context_strata`).
        """
        from clinsynth.synthesizers._context import rank_matched

        rows = np.arange(len(context)) if rows is None else np.asarray(rows, dtype=np.int64)
        if len(context.columns) == 0 or len(rows) == 0:
            return self.sample_rows(len(rows), rng)
        wanted = context.iloc[rows].reset_index(drop=True)
        return rank_matched(self, wanted, np.zeros(0) if axis is None else axis, rng)

    def context_strata(self, frame: pd.DataFrame, columns: list[str]) -> list[dict]:
        """What :meth:`sample_given_context` needs to know of the training ``frame``'s
        ``columns`` (JSON-able; saved in a schema model's plan). Empty for most models."""
        return []

    # ------------------------------------------------------------------ losses
    def get_loss_values(self) -> pd.DataFrame:
        """Training losses per epoch (empty for models without iterative training)."""
        self._check_fitted()
        if self._loss_history_ is None:
            return pd.DataFrame(columns=["epoch", "loss"])
        return self._loss_history_.copy()

    # ------------------------------------------------------------------ persistence
    def save(self, filepath: str | os.PathLike) -> Path:
        """Save as a bundle folder (or ``.zip``): JSON + tensors, no pickle, no training row.

        A path that promises a pickle (``.pkl``, ``.pickle``, ``.joblib``, ``.sav``; SDV's
        habit) gets a zip bundle under that same name and a warning: the file is not a pickle,
        ``clinsynth.load(path)`` reads it, ``pickle.load`` does not.

        Returns the path written.
        """
        from clinsynth.io._bundle import save_bundle

        self._check_fitted()
        archive = Path(filepath).suffix.lower() in _PICKLE_SUFFIXES
        if archive:
            warnings.warn(
                f"clinsynth never pickles: '{filepath}' is written as a zip bundle (JSON and "
                "tensors) under that name. Load it with clinsynth.load(), not pickle; name it "
                "'.zip' (or a folder) to silence this warning.",
                UserWarning,
                stacklevel=2,
            )
        return save_bundle(filepath, *self.to_bundle(), archive=archive or None)

    @classmethod
    def load(
        cls,
        filepath: str | os.PathLike,
        *,
        device: str = "cpu",
        custom_constraints: dict[str, Any] | None = None,
    ) -> BaseSynthesizer:
        """Load a bundle written by :meth:`save` (checks the format version).

        ``custom_constraints`` gives back the functions of :class:`~clinsynth.constraints.Custom`
        rules by name (a bundle stores no code).
        """
        from clinsynth.io._bundle import load_bundle

        return cls.from_bundle(
            *load_bundle(filepath),
            where=f"Model '{filepath}'",
            device=device,
            custom_constraints=custom_constraints,
        )

    def to_bundle(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """The fitted model as ``(manifest, documents, tensors)``: what :meth:`save` writes,
        and what a multi-table bundle holds for each table."""
        self._check_fitted()
        return _persist.pack(self)

    @classmethod
    def from_bundle(
        cls,
        manifest: dict[str, Any],
        documents: dict[str, Any],
        tensors: dict[str, Any],
        *,
        where: str = "The model",
        device: str = "cpu",
        custom_constraints: dict[str, Any] | None = None,
    ) -> BaseSynthesizer:
        """Rebuild a model from what :meth:`to_bundle` returned (read back by
        ``clinsynth.io._bundle.load_bundle``, which checked the manifest's schema).

        Raises
        ------
        BundleError
            When the bundle is a schema's, names another model class than ``cls``, or its
            documents do not build a model; the message starts with ``where``.
        """
        from clinsynth.io._bundle import SINGLE_TABLE, bundle_kind

        if bundle_kind(manifest) != SINGLE_TABLE:
            raise BundleError(
                f"{where} is a multi-table model; load it with clinsynth.load() or "
                "HierarchicalSynthesizer.load()."
            )
        klass = _persist.model_class(manifest, where)
        if cls is not BaseSynthesizer and not issubclass(klass, cls):
            raise BundleError(
                f"{where} is a {klass.__name__}, not a {cls.__name__}. Load it with "
                f"{klass.__name__}.load() or clinsynth.load()."
            )
        return _persist.unpack(
            manifest,
            documents,
            tensors,
            where=where,
            device=device,
            custom_constraints=custom_constraints,
        )

    def _manifest_extra(self) -> dict[str, Any]:
        """Extra manifest entries: the privacy report (see :meth:`get_privacy_report`)."""
        return {"privacy": self.get_privacy_report()}

    def _load_manifest_extra(self, manifest: dict[str, Any]) -> None:
        """Restore what :meth:`_manifest_extra` wrote: the DP budget (models with more state
        override)."""
        self.privacy_budget_ = restore_budget(manifest)

    # ------------------------------------------------------------------ privacy
    @property
    def dp_enabled(self) -> bool:
        """Whether this model trains with differential privacy (it has an ``epsilon``)."""
        return getattr(self, "epsilon", None) is not None

    def _differential_privacy(self) -> DifferentialPrivacy | None:
        """The differential privacy of a fit, ``self._dp_`` (None without ``epsilon``); a model
        with its own share of the budget for the transformer's statistics overrides."""
        return DifferentialPrivacy.from_model(self)

    def get_privacy_budget(self) -> dict[str, Any] | None:
        """The DP budget of the fitted model (None without differential privacy)."""
        return getattr(self, "privacy_budget_", None)

    def get_privacy_report(self) -> dict[str, Any]:
        """What protects the training patients: JSON-able, saved as ``manifest["privacy"]``.

        Without differential privacy: ``{"differential_privacy": False, ...}`` with the rare
        category threshold, how many levels it merged per column, and the generated (never
        learned) columns. DP models add the budget (see ``docs/PRIVACY.md``).
        """
        self._check_fitted()
        return base_privacy_report(self)

    # ------------------------------------------------------------------ model hooks
    def _fit(self, encoded: np.ndarray) -> None:
        raise NotImplementedError

    def _sample(self, num_rows: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def _get_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(json_state, tensors)`` describing the fitted model."""
        raise NotImplementedError

    def _set_state(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(
            f"{k}={v!r}" for k, v in self.get_params().items() if k not in ("progress",)
        )
        return f"{type(self).__name__}({params})"
