"""SequentialSynthesizer: longitudinal records, one sequence of events per patient.

The table's metadata names the patient (``sequence_key``) and the time of each event
(``sequence_index``: a number or a date), SDV's words. Context columns (constant within every
patient: sex, birth year, arm, end of follow-up) are detected, or given, and learned once per
patient by a Gaussian copula together with the number of events and the time of the first one.
(for patients whose follow-up ends: their rate over the follow-up window). The events are
learned by a GRU over each patient's history with a conditional VAE per step
(:mod:`clinsynth.synthesizers.nn._sequence`), on the project's TableTransformer encoding of the
event columns plus the gap since the previous event (a normal score of its log).

Temporal logic holds by construction: gaps are at least one tick of the index's own
resolution, so times strictly increase within a patient; context columns that bound every
real event (end of follow-up, death; birth, enrolment: discovered on the real rows, see
:func:`~clinsynth.synthesizers._sequence_data.discover_bounds`) place the first event in the
allowed window, tell the network the time left, and squeeze a sequence that would still run
past the upper bound into the window. Rules of the metadata on
context columns go to the copula, rules on event columns are reparametrized for the event
network as other models do, and the rules that mix the two are checked on every event row
(patients with a broken row get new events, a bounded number of times).

With ``epsilon`` the patient is the unit of privacy (:mod:`clinsynth.synthesizers.
_sequential_dp`): sequences cut to ``max_sequence_length`` events, the context table learned by
the DP marginal model, the event statistics and gap knots from noisy histograms, and the event
network trained by DP-SGD over whole sequences (one clipped gradient per patient).
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from clinsynth._utils import derive_seed, make_rng, report
from clinsynth.errors import (
    DataError,
    MetadataError,
    ParameterError,
    SamplingError,
    parameter_error,
)
from clinsynth.metadata import Metadata, TableMetadata
from clinsynth.synthesizers import _rules
from clinsynth.synthesizers import _sequence_data as sd
from clinsynth.synthesizers._base import BaseSynthesizer, _is_float, _is_int
from clinsynth.synthesizers._dp import DP_PARAMETERS
from clinsynth.synthesizers._registry import register
from clinsynth.synthesizers._sequential_dp import (
    DEFAULT_MAX_SEQUENCE_LENGTH,
    SequencePrivacy,
    truncate,
)
from clinsynth.synthesizers._sequential_state import get_state, rule_columns, set_state
from clinsynth.synthesizers.nn._sequence import GapCoding, SequenceNet, train, train_private
from clinsynth.synthesizers.nn._spans import SpanLayout
from clinsynth.transform import SpanInfo, TableTransformer

logger = logging.getLogger(__name__)

#: Rounds of new events for patients whose rows break a rule that mixes context and events.
_RULE_ROUNDS = 10
#: Context draws per parent of a schema, the one whose window fits its events kept.
_WINDOW_DRAWS = 16


@register("sequential", aliases=("par",))
class SequentialSynthesizer(BaseSynthesizer):
    """Longitudinal patient records: the events of each patient in time order.

    Parameters
    ----------
    metadata : Metadata
        With ``sequence_key`` and ``sequence_index`` set on the table
        (``metadata.set_sequence_key("patient_id")``, ``set_sequence_index("date")``).
    context_columns : list of str, optional
        Columns constant within each patient, learned once per patient; None detects them.
    epochs : int, optional
        Passes over the patients; None trains for about 2,000 steps (batches), at most 300
        epochs (small tables need many passes, large ones few).
    batch_size : int
        Patients per training step.
    hidden_dim : int
        Width of the GRU state and of the hidden layers.
    latent_dim : int
        Size of each event's latent variable.
    learning_rate : float
    loss_factor : float
        Weight of the reconstruction term against the KL term.
    numerical_encoding : {"quantile", "mode"}
        How the event network sees numbers and dates: normal scores through the empirical
        distribution (one smooth value, the default) or mode-specific normalization (a mixture
        component and a scaled value, as TVAE and CTGAN).
    epsilon : float, optional
        Differential privacy with the patient (the sequence key) as the unit: one
        (epsilon, delta) for all the events of a patient (``docs/PRIVACY.md``, section on
        sequences). None trains without it.
    delta : float, optional
        δ of the guarantee, below ``1/n`` for ``n`` patients; default ``1/(10 n)``.
    max_grad_norm : float
        Clipping norm of each patient's (sequence's) gradient in DP-SGD.
    public_bounds : dict, optional
        Public ranges and category lists of columns, which cost no budget (DP only).
    max_sequence_length : int, optional
        With ``epsilon``: the events kept per patient, the first ones in time (longer
        sequences are cut, which bounds a patient's influence); None gives
        :data:`~clinsynth.synthesizers._sequential_dp.DEFAULT_MAX_SEQUENCE_LENGTH` (32).
        Without ``epsilon`` every event is learned.
    **kwargs
        ``random_state``, ``device``, ``verbose``, ``progress``, ``constraints``, ... as for
        every model.

    Examples
    --------
    >>> from clinsynth.simulate import simulate_lab_trajectories
    >>> from clinsynth import SequentialSynthesizer
    >>> visits, md = simulate_lab_trajectories(60, mean_visits=5, seed=0)
    >>> model = SequentialSynthesizer(md, epochs=2, random_state=0).fit(visits)
    >>> model.sample(3)["patient_id"].nunique()
    3
    """

    #: A model of sequences: left out of ``list_synthesizers()`` unless asked for.
    _sequential: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict[str, tuple[Any, str]]] = {
        "context_columns": (
            lambda v: (
                v is None or (isinstance(v, list | tuple) and all(isinstance(c, str) for c in v))
            ),
            "None or a list of column names",
        ),
        "epochs": (lambda v: v is None or _is_int(1)(v), "None or an int >= 1"),
        "batch_size": (_is_int(1), "an int >= 1"),
        "hidden_dim": (_is_int(1), "an int >= 1"),
        "latent_dim": (_is_int(1), "an int >= 1"),
        "learning_rate": (_is_float(1e-12), "a float > 0"),
        "loss_factor": (_is_float(1e-12), "a float > 0"),
        "numerical_encoding": (lambda v: v in ("mode", "quantile"), "'mode' or 'quantile'"),
        **DP_PARAMETERS,
        "max_sequence_length": (lambda v: v is None or _is_int(2)(v), "None or an int >= 2"),
    }

    def __init__(
        self,
        metadata: Metadata,
        *,
        context_columns: list[str] | None = None,
        epochs: int | None = None,
        batch_size: int = 128,
        hidden_dim: int = 64,
        latent_dim: int = 16,
        learning_rate: float = 2e-3,
        loss_factor: float = 2.0,
        numerical_encoding: str = "quantile",
        epsilon: float | None = None,
        delta: float | None = None,
        max_grad_norm: float = 1.0,
        public_bounds: dict[str, Any] | None = None,
        max_sequence_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(metadata, **kwargs)
        self.numerical_encoding = numerical_encoding
        self.context_columns = context_columns
        self.epochs = epochs
        self.batch_size = batch_size
        self.hidden_dim = hidden_dim
        self.latent_dim = latent_dim
        self.learning_rate = learning_rate
        self.loss_factor = loss_factor
        self.epsilon = epsilon
        self.delta = delta
        self.max_grad_norm = max_grad_norm
        self.public_bounds = public_bounds
        self.max_sequence_length = max_sequence_length

    # ------------------------------------------------------------------ fit
    def _keys(self, table: TableMetadata) -> tuple[str, str]:
        key, index = table.sequence_key, table.sequence_index
        if key is None or index is None:
            raise MetadataError(
                f"{type(self).__name__} needs the table's sequence_key (the patient) and "
                f"sequence_index (the time of each event); got sequence_key={key!r}, "
                f"sequence_index={index!r}. Set them with metadata.set_sequence_key('patient_id') "
                "and metadata.set_sequence_index('date')."
            )
        return key, index

    def _check_options(self) -> None:
        self._validate_params()
        if self.refine:
            raise parameter_error(
                type(self).__name__,
                "refine",
                self.refine,
                "False (refinement works on single rows, not sequences)",
                "Use refine=False.",
            )

    def fit(self, data: pd.DataFrame) -> SequentialSynthesizer:
        """Learn the sequences of ``data`` (rows in any order; ``data`` is not modified)."""

        self._check_options()
        if not isinstance(data, pd.DataFrame):
            raise DataError(f"fit() needs a pandas DataFrame; got {type(data).__name__}.")
        table = self._table_metadata()
        key, index = self._keys(table)
        report(self.progress, 1, 0, "checking the data")
        data = self._checked_data(data, table)
        start = time.perf_counter()
        sd.check_sequences(data, key, index, table)
        rng = make_rng(self.random_state)
        self._fit_seed_, self._sample_seed_ = derive_seed(rng), derive_seed(rng)
        self.num_training_rows_ = int(len(data))
        self.num_training_sequences_ = int(data[key].nunique())
        self._dtypes_ = {c: str(data[c].dtype) for c in table.columns}
        #: The patient-level differential privacy of this fit (None without epsilon).
        self._seq_dp_ = self._sequence_privacy()
        self.privacy_budget_: dict[str, Any] | None = None
        if self._seq_dp_ is None:
            self._axis_ = sd.time_axis(data[index], table.columns[index])
        else:
            self._axis_ = sd.declared_axis(data[index], table.columns[index])
        events = sd.sort_events(data[list(table.columns)], key, index, self._axis_)
        if self._seq_dp_ is not None:
            events = truncate(events, key, self._seq_dp_.max_length)
        others = [c for c in table.columns if c not in (key, index)]
        self._context_ = sd.detect_context(events, key, others, self.context_columns)
        self._event_columns_ = [c for c in others if c not in self._context_]
        self._bounds_ = sd.discover_bounds(events, self._context_, table, self._axis_)
        codes = pd.factorize(events[key])[0]
        lengths = np.bincount(codes)
        first = np.cumsum(lengths) - lengths
        rules = _rules.collect_rules(table, self.constraints)
        rules = _rules.check_real_data(rules, events, table) if rules else []
        context_rules, event_rules, mixed = self._split_rules(rules)
        context = self._fit_context_model(events, first, lengths, table, context_rules, rng)
        encoded, log_gaps = self._fit_event_encoding(events, first, lengths, table, event_rules)
        encoded = self._with_gaps(encoded, log_gaps, first)
        room = self._room(events["__ticks"].to_numpy(), context, first, lengths)
        for rule in mixed:
            rule.min_patients = self.rare_category_threshold
            rule.learn(events, table)
        self._rules_ = event_rules + mixed
        self._n_event_rules_ = len(event_rules)
        self._train(encoded, lengths, room)
        self._seq_dp_ = None  # the budget is in privacy_budget_; the part is not kept
        self._fitted_ = True
        self._refiner_ = None
        self.fit_seconds_ = time.perf_counter() - start
        self.reset_sampling()
        logger.info("%s fitted in %.2f s", type(self).__name__, self.fit_seconds_)
        return self

    def _sequence_privacy(self) -> SequencePrivacy | None:
        """The patient-level budget of this fit (None without ``epsilon``)."""
        self.max_sequence_length_: int | None = None
        if self.epsilon is None:
            return None
        if self.max_sequence_length is None:
            self.max_sequence_length_ = DEFAULT_MAX_SEQUENCE_LENGTH
        else:
            self.max_sequence_length_ = int(self.max_sequence_length)
        return SequencePrivacy(self, self.num_training_sequences_)

    def _by_rate(self) -> bool:
        """Whether the context model learns each patient's event rate over their follow-up
        window (patients with an upper bound) rather than their count. Not with differential
        privacy: the count has public bounds (1 to the events kept), a rate has none, and its
        DP range is mostly noise on a few hundred patients."""
        return bool(self._bounds_.upper) and self.max_sequence_length_ is None

    def _split_rules(self, rules: list) -> tuple[list, list, list]:
        """Rules on context columns only, on event columns only, and the others."""
        context, events = set(self._context_), set(self._event_columns_)
        split: tuple[list, list, list] = ([], [], [])
        for rule in rules:
            columns = rule_columns(rule)
            if columns <= context:
                split[0].append(rule)
            elif columns <= events:
                split[1].append(rule)
            else:
                split[2].append(rule)
        return split

    def _context_table(self, table: TableMetadata, rules: list) -> TableMetadata:
        key = table.sequence_key
        spec = table.columns[key] if table.sdtype(key) == "id" else {"sdtype": "id"}
        columns = {key: dict(spec), **{c: dict(table.columns[c]) for c in self._context_}}
        columns[sd.N_EVENTS] = {"sdtype": "numerical", "computer_representation": "Int64"}
        columns[sd.START] = {"sdtype": "numerical", "computer_representation": "Int64"}
        if self._by_rate():
            columns[sd.RATE] = {"sdtype": "numerical", "computer_representation": "Float"}
        for column in self._constants_:
            del columns[column]
        return TableMetadata(columns, key, constraints=[r.to_dict() for r in rules])

    def _fit_context_model(
        self,
        events: pd.DataFrame,
        first: np.ndarray,
        lengths: np.ndarray,
        table: TableMetadata,
        rules: list,
        rng: np.random.Generator,
    ) -> pd.DataFrame:
        from clinsynth.synthesizers._copula import GaussianCopulaSynthesizer

        key = table.sequence_key
        context = events.iloc[first][[key, *self._context_]].reset_index(drop=True)
        context[sd.N_EVENTS] = lengths.astype(np.int64)
        context[sd.START] = events["__ticks"].to_numpy()[first]
        if self._by_rate():
            _, high = sd.limits(context, self._bounds_, self._axis_)
            context[sd.RATE] = sd.event_rate(lengths, context[sd.START].to_numpy(), high)
        # The same first time (or count) for every patient: a constant, not a copula column
        # (with differential privacy a value read from the data: the DP model learns it).
        self._constants_ = {
            c: context[c].iloc[0].item()
            for c in (sd.N_EVENTS, sd.START, sd.RATE)
            if c in context
            and context[c].notna().all()
            and context[c].nunique() == 1
            and self._seq_dp_ is None
        }
        full, context = context, context.drop(columns=list(self._constants_))
        context_table = self._context_table(table, rules)
        options = {
            "enforce_min_max_values": self.enforce_min_max_values,
            "enforce_rounding": self.enforce_rounding,
            "locale": self.locale,
            "rare_category_threshold": self.rare_category_threshold,
            "random_state": derive_seed(rng),
        }
        dp = self._seq_dp_
        if dp is None:
            model = GaussianCopulaSynthesizer(Metadata({"context": context_table}), **options)
            self._context_model_ = model.fit(context)
        else:
            self._context_model_ = self._private_context_model(context_table, context, options)
        plain = TableMetadata(context_table.columns, key)
        self._context_encoder_ = TableTransformer(
            plain,
            numerical="quantile",
            rare_category_threshold=self.rare_category_threshold,
            privacy=None if dp is None else dp.statistics("encoder", bounds=dp.count_bounds()),
        ).fit(context)
        self._context_encoded_ = self._encode_context(context)
        return full

    def _private_context_model(
        self, context_table: TableMetadata, context: pd.DataFrame, options: dict[str, Any]
    ) -> BaseSynthesizer:
        """The DP marginal model of the per-patient table, with its share of the budget; the
        number of events gets public bounds (at most the events kept) and its ledger joins
        the model's."""
        from clinsynth.synthesizers._dp_marginal import DPMarginalSynthesizer

        dp = self._seq_dp_
        epsilon, delta = dp.context_budget()
        bounds = {c: b for c, b in dp.count_bounds().items() if c in context_table.columns}
        model = DPMarginalSynthesizer(
            Metadata({"context": context_table}),
            epsilon=epsilon,
            delta=delta,
            public_bounds={**bounds, **(self.public_bounds or {})},
            **options,
        )
        model.dp_rows_per_unit = dp.sequences_per_unit
        model.fit(context)
        dp.absorb(model)
        return model

    def _encode_context(self, context: pd.DataFrame) -> np.ndarray:
        columns = self._context_encoder_.column_names
        return self._context_encoder_.transform(context[columns])

    def _event_table(self, table: TableMetadata, rules: list) -> TableMetadata:
        key = table.sequence_key
        columns = {key: {"sdtype": "id"}}
        columns.update({c: dict(table.columns[c]) for c in self._event_columns_})
        return TableMetadata(columns, key, constraints=[r.to_dict() for r in rules])

    def _fit_event_encoding(
        self,
        events: pd.DataFrame,
        first: np.ndarray,
        lengths: np.ndarray,
        table: TableMetadata,
        rules: list,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The event columns encoded by the TableTransformer (rules reparametrized first), and
        the log of each event's gap in ticks (0 for first events)."""
        key = table.sequence_key
        ticks = events["__ticks"].to_numpy()
        gaps = np.diff(ticks, prepend=ticks[0]).astype(np.float64)
        gaps[first] = 1.0
        frame = events[[key, *self._event_columns_]]
        self._event_table_ = self._event_table(table, [])
        frame, model_table = _rules.reparametrize(
            rules, frame, self._event_table_, rare_threshold=self.rare_category_threshold
        )
        dp = self._seq_dp_
        self._transformer_ = TableTransformer(
            model_table,
            numerical=self.numerical_encoding,
            enforce_min_max=self.enforce_min_max_values,
            locale=self.locale,
            rare_category_threshold=self.rare_category_threshold,
            privacy=None if dp is None else dp.statistics("events"),
        )
        # With DP the statistics read one event per patient (sensitivity 1 patient, 1 row).
        seen = frame if dp is None else frame.iloc[dp.one_per_sequence(first, lengths)]
        self._transformer_.fit(seen.reset_index(drop=True))
        if not self.enforce_rounding:
            for column in model_table.columns:
                t = self._transformer_.get_transformer(column)
                if getattr(t, "kind", "") == "numerical":
                    t.decimals = None
        return self._transformer_.transform(frame), np.log(np.maximum(gaps, 1.0))

    def _spans(self) -> list[SpanInfo]:
        """The event network's spans: the encoded event columns, then the log gap."""
        return [*self._transformer_.output_info, SpanInfo(1, "linear", sd.GAP)]

    def _with_gaps(
        self, encoded: np.ndarray, log_gaps: np.ndarray, first: np.ndarray
    ) -> np.ndarray:
        """The encoded events with the gap's normal score as a last column."""
        knots = None
        dp = self._seq_dp_
        if dp is not None:  # one gap per patient with two events or more
            lengths = np.diff(np.r_[first, len(log_gaps)])
            later = first[lengths > 1] + 1
            pick = dp.one_per_sequence(later, lengths[lengths > 1] - 1)
            knots = dp.gap_knots(log_gaps[pick])
        scores, self._gap_knots_ = sd.gap_scores(log_gaps, first, self._fit_seed_, knots)
        return np.concatenate([encoded, scores[:, None].astype(np.float32)], axis=1)

    def _gap_coding(self) -> GapCoding:
        column = int(self._layout_.span_columns(len(self._layout_.spans) - 1)[0])
        return GapCoding(column, self._gap_knots_)

    def _room(
        self, ticks: np.ndarray, context: pd.DataFrame, first: np.ndarray, lengths: np.ndarray
    ) -> np.ndarray:
        """Per real event, the time left before its patient's upper bound after the previous
        event (after the first event's own time for the first), in typical gaps."""
        _, high = sd.limits(context, self._bounds_, self._axis_)
        return sd.room(ticks, high, first, lengths, self._gap_coding_typical())

    def _gap_coding_typical(self) -> float:
        return float(np.exp(self._gap_knots_[len(self._gap_knots_) // 2]))

    # ------------------------------------------------------------------ network
    def _device(self) -> torch.device:
        from clinsynth.synthesizers._deep import torch_device

        return torch_device(self.device)

    def _build_net(self, device: torch.device) -> SequenceNet:
        self._layout_ = SpanLayout(self._spans())
        return SequenceNet(
            self._context_encoder_.output_dim,
            self._layout_.dim,
            self.hidden_dim,
            self.latent_dim,
            self._layout_.n_scalar,
        ).to(device)

    def _train(self, encoded: np.ndarray, lengths: np.ndarray, room: np.ndarray) -> None:
        device = self._device()
        generator = torch.Generator(device=device).manual_seed(self._fit_seed_)
        self._net_ = self._build_net(device)
        self._net_.init_parameters(torch.Generator().manual_seed(self._fit_seed_))
        self._net_.to(device)
        events = torch.from_numpy(np.ascontiguousarray(encoded[:, self._layout_.order]))
        epochs = self.epochs or sd.auto_epochs(len(lengths), self.batch_size)
        self.epochs_trained_ = epochs
        context = torch.from_numpy(self._context_encoded_)
        del self._context_encoded_

        def on_epoch(epoch: int, loss: float) -> None:
            report(self.progress, epochs, epoch + 1, f"epoch {epoch + 1}/{epochs} loss {loss:.3f}")
            if self.verbose:
                print(f"Epoch {epoch + 1}/{epochs} | loss {loss:.4f}", flush=True)

        if self._seq_dp_ is not None:
            self._train_private(events, lengths, context, room, epochs, generator, on_epoch)
            return
        history = train(
            self._net_,
            *self._on_device(events, lengths, context, room),
            self._layout_,
            epochs=epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            loss_factor=self.loss_factor,
            generator=generator,
            on_epoch=on_epoch,
        )
        self._net_.eval()
        self._loss_history_ = pd.DataFrame(
            {"epoch": np.arange(1, len(history) + 1), "loss": history}
        )

    def _on_device(
        self, events: torch.Tensor, lengths: np.ndarray, context: torch.Tensor, room: np.ndarray
    ) -> tuple[torch.Tensor, ...]:
        """The training tensors (events, lengths, context, room) on the model's device."""
        device = self._device()
        return (
            events.to(device),
            torch.from_numpy(lengths.astype(np.int64)).to(device),
            context.to(device),
            torch.from_numpy(room).to(device),
        )

    def _train_private(
        self,
        events: torch.Tensor,
        lengths: np.ndarray,
        context: torch.Tensor,
        room: np.ndarray,
        epochs: int,
        generator: torch.Generator,
        on_epoch: Any,
    ) -> None:
        """DP-SGD over whole sequences (one patient, one clipped gradient), its noise
        calibrated to spend what the other parts left of the budget."""
        n = len(lengths)
        batch = min(int(self.batch_size), n)
        per_epoch = -(-n // batch)
        dp = self._seq_dp_
        private = dp.sgd(self._net_, n, batch, epochs * per_epoch, generator)
        train_private(
            self._net_,
            *self._on_device(events, lengths, context, room),
            self._layout_,
            private,
            epochs=epochs,
            steps_per_epoch=per_epoch,
            learning_rate=self.learning_rate,
            loss_factor=self.loss_factor,
            generator=generator,
            on_epoch=on_epoch,
        )
        self._net_.eval()
        self._loss_history_ = None  # a loss of real rows is not released
        details = private.record(dp.accountant)
        key = self._table_metadata().sequence_key
        self.privacy_budget_ = dp.budget(key, **details, epochs=int(epochs))

    # ------------------------------------------------------------------ sample
    def reset_sampling(self, seed: int | None = None) -> None:
        super().reset_sampling(seed)
        self._context_model_.reset_sampling(seed=derive_seed(self._sample_rng_))

    def sample_from_conditions(self, conditions: pd.DataFrame) -> pd.DataFrame:
        """One sequence per row of ``conditions`` (values of context columns)."""
        return self.sample(context=conditions)

    def sample(  # type: ignore[override]
        self,
        num_sequences: int | None = None,
        *,
        context: pd.DataFrame | None = None,
        conditions: dict[str, Any] | None = None,
        num_rows: int | None = None,
    ) -> pd.DataFrame:
        """Synthetic events of ``num_sequences`` new patients, sorted by patient and time.

        Parameters
        ----------
        num_sequences : int
            How many patients (sequences); their number of events is learned.
        context : DataFrame, optional
            One row per patient to make, with values of context columns (a missing cell is
            free): each sequence follows its row. ``num_sequences`` defaults to its length.
        conditions : dict, optional
            ``{context column: value}`` for every sequence (the other models' word, and the
            command line's ``--condition``): the same as ``context`` with that row repeated.
        num_rows : int, optional
            Another name of ``num_sequences`` (the other models' word).
        """
        self._check_fitted()
        if num_rows is not None:
            if num_sequences is not None:
                raise ParameterError("Give num_sequences or num_rows (the same thing), not both.")
            num_sequences = num_rows
        if conditions:
            if context is not None:
                raise ParameterError("Give context or conditions, not both.")
            context = self._conditions_as_context(conditions, num_sequences)
        if context is not None:
            context = self._check_context(context, num_sequences)
            num_sequences = len(context)
        if num_sequences is None or not _is_int(0)(num_sequences):
            raise ParameterError(
                f"sample() needs the number of sequences, an int >= 0: sample(100). "
                f"Got {num_sequences!r}."
            )
        if context is None:
            patients = self._context_model_.sample(int(num_sequences))
        else:
            patients = self._context_model_.sample_from_conditions(context)
            # Rows made group by group: fresh, unique patient identifiers.
            patients = self._context_model_._transformer_.regenerate_ids(
                patients, self._sample_rng_
            )
        for column, value in self._constants_.items():
            patients[column] = value
        key = self._table_metadata().sequence_key
        patients[key] = sd.unique_keys(patients[key])
        return self._sequences(patients)

    def sample_given_parents(
        self,
        context: pd.DataFrame,
        counts: np.ndarray,
        rng: np.random.Generator,
        *,
        fixed: pd.DataFrame | None = None,
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """The events of one sequence per row of ``context``, with ``counts[i]`` events for
        row ``i`` (0 gives none), drawn from ``rng`` (a schema model's stream for the table).

        ``context`` holds numerical context columns of the model, conditioned on exactly by
        the context copula (with the number of events); ``fixed`` holds context columns whose
        values are copied as they are (a parent's end of follow-up: the window of its events).
        Returns the events (sorted by row, then time; the sequence key holds the row's
        position) and each event's row of ``context``. Events that cannot fit in their window,
        or break a rule after the rounds of new events, are left out.
        """
        self._check_fitted()
        counts = np.asarray(counts, dtype=np.int64)
        keep = np.flatnonzero(counts > 0)
        table = self._table_metadata()
        key = table.sequence_key
        self._sample_rng_ = rng
        if len(keep) == 0:
            empty = pd.DataFrame({c: pd.Series(dtype=object) for c in table.columns})
            return _rules.restore_dtypes(empty, self._dtypes_), np.zeros(0, dtype=np.int64)
        learned = set(self._context_model_._table_metadata().columns)
        given = context.iloc[keep].reset_index(drop=True)
        given[sd.N_EVENTS] = counts[keep]
        if fixed is not None:
            for column in fixed.columns:
                given[column] = fixed[column].iloc[keep].to_numpy()
        # Numbers condition the copula exactly (a patient's own end of follow-up then agrees
        # with the parent's); other fixed values (dates, gaps) are copied after.
        numeric = [
            c
            for c in given.columns
            if c in learned
            and pd.api.types.is_numeric_dtype(given[c])
            and not pd.api.types.is_bool_dtype(given[c])
            and bool(given[c].notna().all())
        ]
        patients = self._windowed_patients(given, numeric, rng)
        patients[key] = np.arange(len(keep), dtype=np.int64)
        events = self._sequences(patients, exact=True)
        return events, keep[events[key].to_numpy(dtype=np.int64)]

    def _windowed_patients(
        self, given: pd.DataFrame, conditioned: list[str], rng: np.random.Generator
    ) -> pd.DataFrame:
        """Patients drawn from the context copula given ``given[conditioned]``, ``given``'s
        values copied in. With an upper bound, :data:`_WINDOW_DRAWS` draws per patient and the
        one whose window holds its given number of events at its learned rate is kept (the
        Gaussian copula alone often draws a follow-up too short for the count, and the events
        would be squeezed into it)."""
        draws = _WINDOW_DRAWS if self._by_rate() and sd.RATE not in self._constants_ else 1
        n = len(given)
        rows = np.tile(np.arange(n), draws)
        patients = self._context_model_.sample_given_context(
            given[conditioned], rng, rows=rows if draws > 1 else None
        )
        for column in given.columns:
            patients[column] = given[column].to_numpy()[rows]
        for column, value in self._constants_.items():
            if column != sd.N_EVENTS:
                patients[column] = value
        if draws == 1:
            return patients
        low, high = sd.limits(patients, self._bounds_, self._axis_)
        start = np.clip(np.rint(patients[sd.START].to_numpy(dtype=np.float64)), low, high)
        implied = sd.event_counts(patients, start, high, True)
        counts = patients[sd.N_EVENTS].to_numpy(dtype=np.float64)
        miss = np.abs(implied - counts).reshape(draws, n)
        best = np.argmin(miss + rng.random(miss.shape) * 1e-3, axis=0)
        return patients.iloc[best * n + np.arange(n)].reset_index(drop=True)

    def _conditions_as_context(self, conditions: dict[str, Any], n: int | None) -> pd.DataFrame:
        ranges = [c for c, v in conditions.items() if isinstance(v, tuple | list)]
        if ranges:
            raise ParameterError(
                f"Conditions of {type(self).__name__} are values of context columns; {ranges} "
                "ask for a range. Give one value per column, or a context DataFrame."
            )
        if n is None or not _is_int(0)(n):
            raise ParameterError(f"sample() needs the number of sequences. Got {n!r}.")
        return pd.DataFrame({c: [v] * int(n) for c, v in conditions.items()})

    def _check_context(self, context: pd.DataFrame, n: int | None) -> pd.DataFrame:
        if not isinstance(context, pd.DataFrame):
            raise ParameterError(
                f"context must be a DataFrame with one row per sequence. Got "
                f"{type(context).__name__}."
            )
        unknown = [c for c in context.columns if c not in self._context_]
        if unknown:
            raise ParameterError(
                f"context names {unknown}, which are not context columns of this model "
                f"(those are: {', '.join(self._context_) or 'none'})."
            )
        if n is not None and n != len(context):
            raise ParameterError(
                f"num_sequences={n} but context has {len(context)} rows: give one of the two, "
                "or as many rows as sequences."
            )
        return context.reset_index(drop=True)

    def _sequences(self, patients: pd.DataFrame, *, exact: bool = False) -> pd.DataFrame:
        """Events for each sampled patient; patients with a row that breaks a rule get new
        events, up to ``_RULE_ROUNDS`` times. ``exact`` (a schema's parents): each patient's
        ``N_EVENTS`` is its number of events (not its rate over the window), as far as the
        window holds them, and a patient may be left with none."""
        table = self._table_metadata()
        rng = self._sample_rng_
        out = self._events(patients, rng, exact)
        mixed = self._rules_[self._n_event_rules_ :]
        if mixed and len(out):
            key = table.sequence_key
            for _ in range(_RULE_ROUNDS):
                bad_rows = ~_rules.valid_rows(mixed, out, table)
                if not bad_rows.any():
                    break
                bad = out[key].iloc[np.flatnonzero(bad_rows)].unique()
                redo = patients[patients[key].isin(bad)].reset_index(drop=True)
                out = pd.concat([out[~out[key].isin(bad)], self._events(redo, rng, exact)])
                order = pd.Categorical(out[key], categories=patients[key].unique())
                out = out.iloc[np.argsort(order.codes, kind="stable")].reset_index(drop=True)
                out = self._fresh_event_ids(out, rng)
            bad_rows = ~_rules.valid_rows(mixed, out, table)
            if bad_rows.any():
                needed = 0 if exact else len(patients)
                out = self._drop_events(out, bad_rows, key, needed, mixed)
        return _rules.restore_dtypes(out, self._dtypes_)

    def _fresh_event_ids(self, out: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        """Identifiers of events (a visit id) made anew: rows of several rounds stay unique."""
        for column in self._event_columns_:
            t = self._transformer_.transformers_.get(column)
            if t is not None and getattr(t, "kind", "") == "id":
                out[column] = t.inverse_transform(np.zeros((len(out), 0)), rng).to_numpy()
        return out

    @staticmethod
    def _drop_events(
        out: pd.DataFrame, bad: np.ndarray, key: str, n_patients: int, rules: list
    ) -> pd.DataFrame:
        """The events that still break a rule after the rounds of new events are left out
        (the others keep their order); a patient left with no event is an error."""
        kept = out[~bad].reset_index(drop=True)
        if kept[key].nunique() < n_patients:
            raise SamplingError(
                f"Some patients have no event that satisfies the rules "
                f"({', '.join(r.describe() for r in rules)}) after {_RULE_ROUNDS} rounds. "
                "Train longer, or check that the rules agree with the data."
            )
        logger.info("%d events that break the rules were left out", int(bad.sum()))
        return kept

    def _events(
        self, patients: pd.DataFrame, rng: np.random.Generator, exact: bool = False
    ) -> pd.DataFrame:
        table = self._table_metadata()
        key, index = table.sequence_key, table.sequence_index
        low, high = sd.limits(patients, self._bounds_, self._axis_)
        start = np.clip(np.rint(patients[sd.START].to_numpy(dtype=np.float64)), low, high)
        by_rate = self._by_rate() and not exact
        lengths = sd.event_counts(patients, start, high, by_rate)
        if self.max_sequence_length_ is not None:  # DP: no longer than the sequences learned
            lengths = np.minimum(lengths, self.max_sequence_length_)
        device = self._device()
        generator = torch.Generator(device=device).manual_seed(derive_seed(rng))
        context = torch.from_numpy(self._encode_context(patients)).to(device)
        with torch.no_grad():
            permuted, made = self._net_.generate(
                context,
                torch.from_numpy(lengths).to(device),
                torch.from_numpy(start).to(device),
                torch.from_numpy(high).to(device),
                self._gap_coding(),
                self._layout_,
                generator,
            )
        encoded = permuted.cpu().numpy()[:, self._layout_.inverse][:, :-1]
        events = self._transformer_.inverse_transform(encoded, random_state=rng)
        if self._n_event_rules_:
            rules = self._rules_[: self._n_event_rules_]
            seen = _rules.tables_seen(rules, self._event_table_)
            events = _rules.reverse(rules, events, self._event_table_, seen)
        who = np.repeat(np.arange(len(patients)), lengths)
        offsets = made.cpu().numpy() - start[who]
        ticks = sd.fit_window(start, offsets, high, who, lengths)
        keep = ticks <= high[who]  # the first event is inside the window (start clipped)
        frame = patients[[key, *self._context_]].iloc[who].reset_index(drop=True)
        frame[index] = self._axis_.from_ticks(ticks.astype(np.int64)).to_numpy()
        for column in self._event_columns_:
            frame[column] = events[column].to_numpy()
        frame = frame[list(table.columns)]
        return frame[keep].reset_index(drop=True) if not keep.all() else frame

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return get_state(self)

    def _set_state(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        set_state(self, state, tensors)

    def get_privacy_report(self) -> dict[str, Any]:
        """The base report, with the rare levels merged in the context columns too."""
        report_ = super().get_privacy_report()
        inner = self._context_model_.get_privacy_report()
        report_["rare_levels_merged"] = {
            **inner.get("rare_levels_merged", {}),
            **report_["rare_levels_merged"],
        }
        if self.privacy_budget_:
            report_["not_covered"] = [
                *report_.get("not_covered", []),
                *self.privacy_budget_.get("sequence_not_covered", []),
            ]
        else:
            report_["guarantee"] = (
                "none: no differential privacy (use epsilon= for a guarantee per patient)"
            )
        report_["generated_columns"] = sorted(
            {*report_["generated_columns"], *inner.get("generated_columns", [])}
        )
        return report_
