"""AutoSynthesizer: fit several models, measure fidelity and privacy, keep the best safe one.

The rows are split once (``validation_size`` held out, seeded). Each candidate model is fitted on
the training split and samples two independent sets of as many rows as the validation split has;
each set is scored against the validation rows with the evaluation suite: the fidelity score
(Column Shapes and Column Pair Trends) and the detection score (can a classifier tell them
apart?); with a ``target``, ML utility (train on synthetic, test on real) of the first set
joins both. The candidate's score is the mean over the two sets, and their difference measures
its noise. Privacy is measured against
the same split: the DCR share (the share of synthetic rows closer to a training row than to a
validation row; 0.5 when the model does not memorize) and the membership-inference AUC (0.5:
training rows are no closer to the synthetic data than unseen rows).

The choice respects measurement noise: among the candidates that pass both privacy checks, those
whose score is within the noise of the best one are tied on fidelity, and the one with the lowest
privacy risk wins (see :class:`AutoSynthesizer`). It is refitted on every row and samples from
then on; the comparison, with a note on why each candidate ranks where it does, is kept as
``leaderboard_`` and saved in the bundle's manifest.

With a ``time_budget``, candidates train in order, each within an even share of what is left
(the refit of the winner counts as one more share, scaled by the data it will see). A model
trained by epochs first trains two epochs to measure the cost of one, then trains as many epochs
as its share allows (at most its own ``epochs``), rounded down to a coarse grid so that similar
machines choose the same number; a model that cannot train a tenth of its epochs in its share is
skipped. Without a time budget every candidate trains with its own parameters and the choice is
fully determined by ``random_state``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from clinsynth._utils import derive_seed, make_rng, report
from clinsynth.errors import (
    BundleError,
    ClinsynthError,
    DataError,
    PrivacyError,
    parameter_error,
)
from clinsynth.evaluation._metrics import get_metric
from clinsynth.metadata import Metadata
from clinsynth.synthesizers._auto_board import (
    LEADERBOARD_COLUMNS,
    LEADERBOARD_PRIVACY,
    _mean,
    leaderboard_frame,
    leaderboard_markdown,
    leaderboard_records,
    rank_leaderboard,
)
from clinsynth.synthesizers._auto_budget import (
    _MIN_EPOCH_FRACTION,
    _EpochClock,
    _floor_to_grid,
    _is_duration,
    parse_duration,
)
from clinsynth.synthesizers._base import BaseSynthesizer, _is_float
from clinsynth.synthesizers._conditioning import Conditioning, Delegated
from clinsynth.synthesizers._persist import jsonable_params
from clinsynth.synthesizers._registry import get_synthesizer, list_synthesizers, register

logger = logging.getLogger(__name__)

#: Validation rows (and as many training rows) that score each candidate at most: a subsample
#: keeps scoring to seconds on large tables without changing the measures' meaning.
_EVAL_ROWS = 2000
#: The leaderboard's suffix of a candidate refined by its density ratio.
_REFINED = "+refine"
#: Candidates tried by default, in this order (those registered).
DEFAULT_CANDIDATES = ("gaussian_copula", "cart", "tvae", "ctgan", "tabddpm")
#: Options of the AutoSynthesizer passed on to every candidate.
_SHARED = (
    "enforce_min_max_values",
    "enforce_rounding",
    "locale",
    "table_name",
    "constraints",
    "rare_category_threshold",
    "refine",
    "random_state",
    "device",
    "verbose",
)

__all__ = [
    "LEADERBOARD_COLUMNS",
    "AutoSynthesizer",
    "leaderboard_frame",
    "leaderboard_markdown",
    "leaderboard_records",
    "parse_duration",
    "rank_leaderboard",
]


def _head_sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """At most ``n`` rows of ``frame``, drawn without replacement with ``seed``."""
    if len(frame) <= n:
        return frame
    rows = np.sort(np.random.default_rng(seed).permutation(len(frame))[:n])
    return frame.iloc[rows].reset_index(drop=True)


@register("auto")
class AutoSynthesizer(BaseSynthesizer):
    """Choose the synthesizer by measured fidelity and privacy, within a time budget.

    Parameters
    ----------
    metadata : Metadata
    candidates : list of str, optional
        Registered model names to try, in order (or one comma-separated text); default:
        gaussian_copula, cart, tvae, ctgan and tabddpm (those registered).
    epochs : int, optional
        Epochs of every candidate trained by epochs (TVAE, CTGAN, TabDDPM...): the most it
        trains, fewer when a ``time_budget`` cuts them. None: each model's own default.
        ``candidate_params`` overrides it per model.
    candidate_params : dict, optional
        Parameters per candidate, e.g. ``{"tabddpm": {"epochs": 500}}``.
    time_budget : float or str, optional
        Seconds for the whole fit (``"10m"``, ``"1h"`` also work), including the refit of the
        winner; None trains every candidate with its own parameters.
    target : str, optional
        A column to predict: adds ML utility (TSTR against TRTR) to the score, and becomes the
        ``condition_column`` of candidates that have one (when categorical).
    validation_size : float
        Share of rows held out to score the candidates.
    max_dcr_share : float
        A candidate whose DCR share exceeds this is not chosen (0.5 means no memorization). On a
        small validation split the measure is noisy (its standard error, computed exactly from
        the split with the size correction, is about 0.5 / sqrt(validation rows) or a little
        more: 0.07 with 60 rows, 0.016 with 1,000), so the limit applied is the larger of this
        and 0.5 plus two standard errors: a candidate fails when its excess stands out from the
        noise. The leaderboard's note gives the limit applied to a candidate that failed.
    max_mia_auc : float
        A candidate whose membership-inference AUC exceeds this (and 0.5 plus two standard
        errors) is not chosen.
    score_tolerance : float
        The smallest difference of validation scores taken as a real difference in fidelity.
        The tolerance applied is the larger of this and two standard errors of a difference of
        two candidates' scores, estimated from the two synthetic sets each candidate is scored
        on (pooled over the candidates; the utility part is measured on the first set only, so
        the estimate covers the fidelity and detection parts): on a validation split of a few
        dozen rows the scores move by several hundredths from one synthetic sample to the
        next. The candidates that
        pass the privacy checks and score within the tolerance of the best one are tied, and
        the tie goes to the lowest privacy risk: the larger of ``|DCR share - 0.5|`` and
        ``MIA AUC - 0.5`` (then the higher score, then the order of ``candidates``). A clear
        fidelity win is never overturned by privacy. The leaderboard's notes say why the chosen
        candidate won and why each other passing one lost; 0 with no noise estimate decides by
        score alone.
    refit : bool
        Refit the winner on every row (True), or keep the model fitted on the training split.
    refine_winner : bool
        Also try the winner refined by its density ratio (``refine``, see
        :mod:`clinsynth.synthesizers._refine`): the refiner is fitted on the training split,
        the refined rows are scored like a candidate (``<model>+refine`` in the leaderboard)
        and ranked with the others, so the refinement is kept only when it scores better
        beyond the noise or ties with a lower privacy risk. Skipped for DP models and when the
        time budget has no room for it.
    **kwargs
        ``random_state``, ``device``, ``constraints``, ... passed on to every candidate.

    Attributes
    ----------
    leaderboard_ : DataFrame
        One row per candidate: the scores, privacy measures, epochs, times and status.
    chosen_ : str
        The name of the chosen model.
    model_ : BaseSynthesizer
        The chosen, fitted model (it makes every sample).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from clinsynth import Metadata
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"age": rng.normal(60, 10, 300).round(),
    ...                    "sex": rng.choice(["F", "M"], 300)})
    >>> auto = AutoSynthesizer(Metadata.detect_from_dataframe(df), candidates=["gaussian_copula"],
    ...                        random_state=0).fit(df)
    >>> auto.chosen_, auto.sample(3).shape
    ('gaussian_copula', (3, 2))
    """

    _parameter_constraints: ClassVar[dict[str, tuple[Any, str]]] = {
        "candidates": (
            lambda v: (
                v is None
                or (isinstance(v, str) and v.strip() != "")
                or (
                    isinstance(v, list | tuple)
                    and len(v) > 0
                    and all(isinstance(c, str) for c in v)
                )
            ),
            "None or a non-empty list of model names (or one text, comma-separated)",
        ),
        "epochs": (
            lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1),
            "None or an int >= 1",
        ),
        "candidate_params": (
            lambda v: (
                v is None or (isinstance(v, dict) and all(isinstance(p, dict) for p in v.values()))
            ),
            "None or a dict of model name to a dict of parameters",
        ),
        "time_budget": (_is_duration, "None, seconds > 0 or a duration such as '10m'"),
        "target": (lambda v: v is None or isinstance(v, str), "None or a column name"),
        "validation_size": (lambda v: _is_float(0.05, 0.8)(v), "a float in [0.05, 0.8]"),
        "max_dcr_share": (_is_float(0.0, 1.0), "a float in [0, 1]"),
        "max_mia_auc": (_is_float(0.0, 1.0), "a float in [0, 1]"),
        "score_tolerance": (_is_float(0.0, 1.0), "a float in [0, 1]"),
        "refit": (lambda v: isinstance(v, bool), "a bool"),
        "refine_winner": (lambda v: isinstance(v, bool), "a bool"),
        "progress": (lambda v: v is None or callable(v), "None or a callable"),
    }

    def __init__(
        self,
        metadata: Metadata,
        *,
        candidates: list[str] | tuple[str, ...] | None = None,
        epochs: int | None = None,
        candidate_params: dict[str, dict[str, Any]] | None = None,
        time_budget: float | str | None = None,
        target: str | None = None,
        validation_size: float = 0.3,
        max_dcr_share: float = 0.55,
        max_mia_auc: float = 0.6,
        score_tolerance: float = 0.01,
        refit: bool = True,
        refine_winner: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(metadata, **kwargs)
        self.candidates = candidates
        self.epochs = epochs
        self.candidate_params = candidate_params
        self.time_budget = time_budget
        self.target = target
        self.validation_size = validation_size
        self.max_dcr_share = max_dcr_share
        self.max_mia_auc = max_mia_auc
        self.score_tolerance = score_tolerance
        self.refit = refit
        self.refine_winner = refine_winner

    # ------------------------------------------------------------------ candidates
    def _candidate_names(self) -> list[str]:
        if self.candidates is None:
            registered = list_synthesizers()
            return [name for name in DEFAULT_CANDIDATES if name in registered]
        given = self.candidates
        if isinstance(given, str):  # "gaussian_copula,tabddpm" from the command line
            given = [c.strip() for c in given.split(",") if c.strip()]
        names = []
        for name in given:
            refined = name.endswith(_REFINED)  # "tabddpm+refine": that model with refine on
            cls = get_synthesizer(name[: -len(_REFINED)] if refined else name)
            if cls is type(self):
                raise parameter_error(
                    type(self).__name__, "candidates", given, "other models than 'auto'"
                )
            names.append(cls._model_name + (_REFINED if refined else ""))
        return names

    def _make_candidate(self, name: str, **override: Any) -> BaseSynthesizer:
        if name.endswith(_REFINED):  # a refined winner: the model with refine on
            override = {"refine": True, **override}
            name = name[: -len(_REFINED)]
        cls = get_synthesizer(name)
        params: dict[str, Any] = {k: getattr(self, k) for k in _SHARED}
        accepted = cls._param_names()
        table = self._table_metadata()
        if (
            self.target is not None
            and "condition_column" in accepted
            and table.columns[self.target]["sdtype"] in ("categorical", "boolean", "ordinal")
        ):
            params["condition_column"] = self.target
        if self.epochs is not None and "epochs" in accepted:
            params["epochs"] = self.epochs
        given = dict((self.candidate_params or {}).get(name, {}))
        unknown = sorted(set(given) - set(accepted))
        if unknown:
            raise parameter_error(
                type(self).__name__,
                "candidate_params",
                {name: given},
                f"parameters that {cls.__name__} takes, without the unknown parameters {unknown}",
                f"Valid: {', '.join(accepted)}.",
            )
        params.update(given)
        params.update(override)
        model = cls(self.metadata, **params)
        model._validate_params()
        return model

    def _check_target(self) -> None:
        table = self._table_metadata()
        if self.target is not None and self.target not in table.columns:
            raise parameter_error(
                type(self).__name__,
                "target",
                self.target,
                "a column of the table",
                f"Columns: {', '.join(table.columns)}.",
            )

    # ------------------------------------------------------------------ fit
    def fit(self, data: pd.DataFrame) -> AutoSynthesizer:
        """Fit and score every candidate, choose the best safe one and refit it on ``data``."""
        from clinsynth.metadata._validate import table_problems

        self._validate_params()
        self._check_target()
        if not isinstance(data, pd.DataFrame):
            raise DataError(f"fit() needs a pandas DataFrame; got {type(data).__name__}.")
        table = self._table_metadata()
        if isinstance(self.metadata, Metadata):
            self.metadata.validate()
        problems, _ = table_problems(table, data)
        if problems:
            raise DataError.from_problems("The data does not match its metadata", problems)
        names = self._candidate_names()
        for name in names:  # every parameter problem before any training
            self._make_candidate(name)
        if len(data) < 20:
            raise DataError(
                f"AutoSynthesizer needs at least 20 rows to hold out a validation split; got "
                f"{len(data)}. Choose a model yourself for such a small table."
            )
        start = time.perf_counter()
        budget = None if self.time_budget is None else parse_duration(self.time_budget)
        deadline = None if budget is None else start + budget
        rng = make_rng(self.random_state)
        perm = rng.permutation(len(data))
        n_valid = max(5, int(round(len(data) * self.validation_size)))
        valid = data.iloc[perm[:n_valid]].reset_index(drop=True)
        train = data.iloc[perm[n_valid:]].reset_index(drop=True)
        eval_seed = derive_seed(rng)
        # Scoring reads at most _EVAL_ROWS validation rows and as many training rows: its cost
        # stays a few seconds whatever the table's size.
        eval_valid = _head_sample(valid, _EVAL_ROWS, eval_seed)
        eval_train = _head_sample(train, _EVAL_ROWS, eval_seed + 1)
        refit_scale = len(data) / len(train) if self.refit else 0.0
        rows: list[dict[str, Any]] = []
        models: dict[str, BaseSynthesizer] = {}
        eval_times: list[float] = []
        total = len(names) + 1
        for i, name in enumerate(names):
            report(self.progress, total, i, f"fitting {name}")
            row: dict[str, Any] = {"model": name}
            rows.append(row)
            try:
                model = self._fit_candidate(
                    name, train, row, deadline, len(names) - i, refit_scale, eval_times
                )
                if model is None:
                    continue
                began = time.perf_counter()
                model.reset_sampling()
                # Two sets of len(eval_valid) rows for fidelity and utility; the privacy
                # measures read the first len(eval_train) rows.
                synthetic = model.sample(max(len(eval_train), 2 * len(eval_valid)))
                row.update(self._score(eval_train, eval_valid, synthetic, eval_seed))
            except Exception as exc:  # a failing candidate is reported; the others go on
                logger.warning("candidate %s failed: %s: %s", name, type(exc).__name__, exc)
                row.update(status="error", note=f"{type(exc).__name__}: {exc}")
                continue
            row["evaluation_seconds"] = round(time.perf_counter() - began, 3)
            eval_times.append(row["evaluation_seconds"])
            models[name] = model
        self.leaderboard_ = rank_leaderboard(rows, self.score_tolerance)
        self._thresholds_ = {
            "max_dcr_share": self.max_dcr_share,
            "max_mia_auc": self.max_mia_auc,
            "score_tolerance": self.score_tolerance,
        }
        passing = self.leaderboard_[self.leaderboard_["status"] == "chosen"]
        if not models:
            raise ClinsynthError.from_problems(
                "No candidate model could be fitted and scored; give a larger time_budget or "
                "other candidates",
                _candidate_problems(self.leaderboard_),
            )
        if passing.empty:
            raise PrivacyError.from_problems(
                "No candidate model passed the privacy checks (DCR share <= "
                f"{self.max_dcr_share}, membership-inference AUC <= {self.max_mia_auc}, each "
                "widened to 0.5 plus two standard errors on a small validation split); train "
                "longer or other models, or relax the thresholds knowingly",
                _candidate_problems(self.leaderboard_),
            )
        chosen = str(passing["model"].iloc[0])
        if self.refine_winner:
            refined = self._try_refinement(
                chosen, models[chosen], train, eval_train, eval_valid, eval_seed, deadline
            )
            if refined is not None:
                rows.append(refined)
                self.leaderboard_ = rank_leaderboard(rows, self.score_tolerance)
                passing = self.leaderboard_[self.leaderboard_["status"] == "chosen"]
                winner = str(passing["model"].iloc[0])
                base = models[chosen]
                if winner != refined["model"]:
                    base._refiner_ = None  # the refinement did not pay: sample unrefined
                models[refined["model"]] = base
                chosen = winner
        report(self.progress, total, total - 1, f"refitting {chosen} on every row")
        model = models[chosen]
        #: How the chosen model was refitted on every row, or why it was not (None: as planned).
        self.refit_note_: str | None = None
        if self.refit:
            model = self._refit(chosen, model, data, deadline, refit_scale)
        self._adopt(model, chosen, len(data))
        self.fit_seconds_ = time.perf_counter() - start
        report(self.progress, total, total, "done")
        logger.info("AutoSynthesizer chose %s in %.1f s", chosen, self.fit_seconds_)
        return self

    def _try_refinement(
        self,
        name: str,
        model: BaseSynthesizer,
        train: pd.DataFrame,
        eval_train: pd.DataFrame,
        eval_valid: pd.DataFrame,
        seed: int,
        deadline: float | None,
    ) -> dict[str, Any] | None:
        """Fit a density-ratio refiner on the chosen candidate and score the refined rows
        like a candidate (``<name>+refine``); None when refinement does not apply or there is
        no time for it. The model keeps the refiner (the caller drops it if it loses)."""
        if getattr(model, "dp_enabled", False) or model.refine:
            return None
        row: dict[str, Any] = {"model": name + _REFINED, "epochs": None}
        board = self.leaderboard_.set_index("model")
        if name in board.index and not pd.isna(board.loc[name, "epochs"]):
            row["epochs"] = int(board.loc[name, "epochs"])
        began = time.perf_counter()
        scoring = float(board.loc[name, "evaluation_seconds"]) if name in board.index else 0.0
        if deadline is not None and deadline - began < 3 * scoring:
            return None  # no room: a refiner costs about a scoring, then a scoring
        table = self._table_metadata()
        rows = train[model._valid(train)].reset_index(drop=True)
        try:
            model._refiner_ = model._fit_refiner(rows, table, make_rng(seed))
            model.reset_sampling()
            synthetic = model.sample(max(len(eval_train), 2 * len(eval_valid)))
            row.update(self._score(eval_train, eval_valid, synthetic, seed))
        except Exception as exc:  # the refinement is an option: report it, keep the winner
            logger.warning("refining %s failed: %s: %s", name, type(exc).__name__, exc)
            model._refiner_ = None
            return None
        spent = time.perf_counter() - began
        row["fit_seconds"] = round(float(board.loc[name, "fit_seconds"]) + spent, 3)
        row["evaluation_seconds"] = round(spent, 3)
        return row

    def _refit(
        self,
        name: str,
        fitted: BaseSynthesizer,
        data: pd.DataFrame,
        deadline: float | None,
        refit_scale: float,
    ) -> BaseSynthesizer:
        """Refit the chosen candidate on every row, within what is left of the budget.

        Without a budget: with the epochs the candidate trained. With one: with as many of them
        as the time left allows (its measured fit time scaled to every row); when not even a
        tenth of them fits (or, for a model without epochs, its whole fit), the model fitted on
        the training split is kept and ``refit_note_`` says so.
        """
        row = self.leaderboard_.set_index("model").loc[name]
        epochs = None if pd.isna(row["epochs"]) else int(row["epochs"])
        if deadline is None:
            override = {} if epochs is None else {"epochs": epochs}
            return self._make_candidate(name, **override).fit(data)
        left = deadline - time.perf_counter()
        cost = float(row["fit_seconds"]) * refit_scale
        keep = (
            f"kept the model fitted on the training split: refitting it on every row needs "
            f"~{cost:.0f} s and {max(left, 0):.0f} s of the time budget were left"
        )
        override: dict[str, Any] = {}
        if epochs is not None:
            per_epoch = cost / max(epochs, 1)
            affordable = min(epochs, _floor_to_grid(left / max(per_epoch, 1e-9)))
            if affordable < max(1, math.ceil(_MIN_EPOCH_FRACTION * epochs)):
                self.refit_note_ = keep
                logger.warning("AutoSynthesizer %s", keep)
                return fitted
            override["epochs"] = affordable
            if affordable < epochs:
                self.refit_note_ = f"refitted with {affordable} of {epochs} epochs (time budget)"
        elif cost > left:
            self.refit_note_ = keep
            logger.warning("AutoSynthesizer %s", keep)
            return fitted
        model = self._make_candidate(name, **override)
        model._deadline = deadline
        return model.fit(data)

    def _fit_candidate(
        self,
        name: str,
        train: pd.DataFrame,
        row: dict[str, Any],
        deadline: float | None,
        remaining: int,
        refit_scale: float,
        eval_times: list[float],
    ) -> BaseSynthesizer | None:
        """Fit one candidate within its share of the budget (None when it is skipped).

        The share is what is left divided among the candidates still to come and the refit of
        the winner (weighted by the rows it will see); it pays for the fit, the sampling and
        the scoring (the longest scoring measured so far). A model trained by epochs is timed
        on two epochs first, then trains as many epochs as fit in what is left of its share,
        and stops at the end of it whatever happens (a deadline checked between epochs).
        """
        model = self._make_candidate(name)
        has_epochs = "epochs" in type(model)._param_names()
        row["epochs"] = int(model.epochs) if has_epochs else None
        began = time.perf_counter()
        if deadline is None:
            model.fit(train)
            _record_fit(row, model, began, int(model.epochs) if has_epochs else None)
            return model
        left = deadline - began
        share = left / (remaining + refit_scale)
        eval_guess = max(eval_times) if eval_times else 0.0
        if left <= eval_guess:
            row.update(
                status="skipped",
                epochs=None,
                note=f"the time budget was spent ({max(left, 0):.0f} s left)",
            )
            return None
        if not has_epochs:
            model.fit(train)
            _record_fit(row, model, began, None)
            return model
        wanted = int(model.epochs)
        probe_epochs = min(2, wanted)
        clock = _EpochClock()
        probe = self._make_candidate(name, epochs=probe_epochs, progress=clock)
        probe._deadline = began + share
        probe.fit(train)
        spent = time.perf_counter() - began
        per_epoch = spent / probe_epochs
        if probe_epochs == 2 and {1, 2} <= set(clock.times):
            per_epoch = max(clock.times[2] - clock.times[1], 1e-6)
        overhead = max(spent - probe_epochs * per_epoch, 0.0)
        # The probe is spent: the real fit starts afresh within what is left of the share.
        affordable = (share - spent - eval_guess - overhead) / per_epoch
        epochs = min(wanted, _floor_to_grid(affordable))
        if epochs < max(1, math.ceil(_MIN_EPOCH_FRACTION * wanted)):
            row.update(
                status="skipped",
                epochs=None,
                fit_seconds=round(spent, 3),
                note=f"needs ~{overhead + per_epoch * wanted * _MIN_EPOCH_FRACTION:.0f} s "
                f"for a tenth of its {wanted} epochs; its share of the time budget was "
                f"{share:.0f} s",
            )
            return None
        if epochs == probe_epochs:
            model = probe
            model.progress = None
        else:
            model = self._make_candidate(name, epochs=epochs)
            model._deadline = began + share - eval_guess
            model.fit(train)
        _record_fit(row, model, began, epochs)
        if row["epochs"] < wanted:
            row["note"] = f"epochs cut from {wanted} to {row['epochs']} to fit the time budget"
        return model

    def _score(
        self, train: pd.DataFrame, valid: pd.DataFrame, synthetic: pd.DataFrame, seed: int
    ) -> dict[str, Any]:
        from clinsynth.evaluation._privacy import memorization_checks

        table = self._table_metadata()
        n = len(valid)
        # The memorization signals only (DCR share, distance membership inference): the full
        # privacy evaluation's attacks cost more than the fit of a fast candidate.
        privacy = memorization_checks(
            train, synthetic.iloc[: max(len(train), n)], table, holdout=valid, random_state=seed
        )
        # Two independent synthetic sets: their mean is the score, their difference its noise
        # (see score_tolerance). Utility, the costliest part (it trains on the real rows too),
        # is measured on the first set only and counts for both.
        first = self._score_set(train, valid, synthetic.iloc[:n], seed)
        second = self._score_set(train, valid, synthetic.iloc[n : 2 * n], seed + 1, first)
        halves = [first, second]
        out: dict[str, Any] = {}
        for key in halves[0]:
            values = [h.get(key) for h in halves]
            if key == "note":
                out[key] = next((v for v in values if v), None)
            elif all(v is None for v in values):
                out[key] = None
            else:
                out[key] = _mean(values)
        scores = [h["score"] for h in halves]
        out["score_se"] = None if None in scores else abs(scores[0] - scores[1]) / 2
        for name in LEADERBOARD_PRIVACY:  # memorization_checks: the privacy metrics' dict
            out[name] = get_metric(name).value(privacy)
        if out.get("note") is None:
            out.pop("note", None)
        dcr_limit = max(self.max_dcr_share, 0.5 + 2 * privacy["dcr_share_se"])
        mia_limit = max(self.max_mia_auc, 0.5 + 2 * privacy["mia_auc_se"])
        out["passes_privacy"] = bool(out["dcr_share"] <= dcr_limit and out["mia_auc"] <= mia_limit)
        if not out["passes_privacy"]:
            limits = (
                f"DCR share {out['dcr_share']:.3f} (limit {dcr_limit:.3f}), membership-inference "
                f"AUC {out['mia_auc']:.3f} (limit {mia_limit:.3f})"
            )
            out["note"] = f"{out['note']}; {limits}" if out.get("note") else limits
        return out

    def _score_set(
        self,
        train: pd.DataFrame,
        valid: pd.DataFrame,
        synthetic: pd.DataFrame,
        seed: int,
        utility_of: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Fidelity, detection and utility of one synthetic set, and their mean (the score).

        With ``utility_of`` (another set's scores) its utility is reused, not measured.
        """
        from clinsynth.evaluation import evaluate_quality, evaluate_utility
        from clinsynth.evaluation._metrics import metrics

        table = self._table_metadata()
        synthetic = synthetic.reset_index(drop=True)
        quality = evaluate_quality(valid, synthetic, table, random_state=seed)
        out: dict[str, Any] = {m.name: m.value(quality) for m in metrics("fidelity")}
        out.update({m.name: None for m in metrics("utility")})
        out["note"] = None
        parts = [out["fidelity"], out["detection_score"]]
        if self.target is not None and utility_of is not None:
            out.update({m.name: utility_of[m.name] for m in metrics("utility")})
            out["note"] = utility_of["note"]
            parts.append(out["utility"])
        elif self.target is not None:
            try:
                utility = evaluate_utility(
                    train, synthetic, table, target=self.target, holdout=valid, random_state=seed
                )
            except DataError as exc:  # e.g. no synthetic row has the target: no utility
                out["note"] = f"utility not measured: {exc}"
                out["utility"] = 0.0
            else:
                out.update({m.name: m.value(utility) for m in metrics("utility")})
            parts.append(out["utility"])
        measured = [p for p in parts if p is not None and p == p]
        out["score"] = float(np.mean(measured)) if measured else None
        return out

    def _adopt(self, model: BaseSynthesizer, name: str, num_rows: int) -> None:
        """Sample through ``model`` from now on (the base class decodes with its transformer)."""
        self.model_ = model
        self.chosen_ = name
        self._transformer_ = model._transformer_
        self._rules_ = getattr(model, "_rules_", [])
        self._dtypes_ = getattr(model, "_dtypes_", {})
        self._loss_history_ = getattr(model, "_loss_history_", None)
        self._refiner_ = getattr(model, "_refiner_", None)
        self.num_training_rows_ = int(num_rows)
        rng = make_rng(self.random_state)
        self._fit_seed_ = derive_seed(rng)
        self._sample_seed_ = derive_seed(rng)
        self._fitted_ = True
        self.reset_sampling()

    # ------------------------------------------------------------------ sampling
    def _sample(self, num_rows: int, rng: np.random.Generator) -> np.ndarray:
        return self.model_._sample(num_rows, rng)

    def conditioning(self) -> Conditioning:
        """The chosen model's strategy, its rows taken as candidates (see
        :class:`~clinsynth.synthesizers._conditioning.Delegated`)."""
        self._check_fitted()
        return Delegated(self.model_.conditioning())

    def get_privacy_report(self) -> dict[str, Any]:
        """The chosen model's privacy report (see :meth:`BaseSynthesizer.get_privacy_report`)."""
        self._check_fitted()
        return self.model_.get_privacy_report()

    # ------------------------------------------------------------------ leaderboard
    def save_leaderboard(self, path_stem: str | os.PathLike) -> tuple[Path, Path]:
        """Write the leaderboard as ``<stem>.md`` (a table) and ``<stem>.json``.

        Returns the two paths.
        """
        from clinsynth.io._atomic import atomic_write_text

        self._check_fitted()
        stem = Path(path_stem)
        md, js = stem.with_name(stem.name + ".md"), stem.with_name(stem.name + ".json")
        atomic_write_text(md, leaderboard_markdown(self.leaderboard_) + "\n")
        document = {
            "chosen": self.chosen_,
            **self._thresholds_,
            "leaderboard": leaderboard_records(self.leaderboard_),
        }
        atomic_write_text(js, json.dumps(document, indent=1, allow_nan=False) + "\n")
        return md, js

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        model = self.model_
        state, tensors = model._get_state()
        params = {k: v for k, v in model.get_params().items() if k not in model._runtime_params}
        return {"chosen": self.chosen_, "params": jsonable_params(params), "state": state}, tensors

    def _set_state(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        from clinsynth.io import _schema as S

        spec = S.mapping(
            {
                "chosen": S.text(100),
                "params": S.mapping(values=S.json_value(), keys=S.text(100), max_len=200),
                "state": S.mapping(extra=True),
            },
            required=("chosen", "params", "state"),
        )
        S.check_json(state, spec, "model.json (auto)")
        chosen = str(state["chosen"])
        cls = get_synthesizer(chosen[: -len(_REFINED)] if chosen.endswith(_REFINED) else chosen)
        if cls is type(self):
            raise BundleError("model.json (auto): the chosen model cannot be 'auto' itself.")
        model = cls(self.metadata, **state["params"], device=self.device)
        for attr in (
            "_transformer_",
            "_rules_",
            "_dtypes_",
            "fit_seconds_",
            "num_training_rows_",
            "_sample_seed_",
            "_fit_seed_",
            "_loss_history_",
        ):
            setattr(model, attr, getattr(self, attr))
        model._set_state(state["state"], tensors)
        model._fitted_ = True
        self.model_, self.chosen_ = model, state["chosen"]

    def _manifest_extra(self) -> dict[str, Any]:
        return {
            **super()._manifest_extra(),
            "auto": {
                "chosen": self.chosen_,
                "refit_note": getattr(self, "refit_note_", None),
                **self._thresholds_,
                "leaderboard": leaderboard_records(self.leaderboard_),
            },
        }

    def _load_manifest_extra(self, manifest: dict[str, Any]) -> None:
        auto = manifest["auto"]
        self._thresholds_ = {
            k: auto[k] for k in ("max_dcr_share", "max_mia_auc", "score_tolerance") if k in auto
        }
        self.leaderboard_ = leaderboard_frame(auto["leaderboard"])
        self.refit_note_ = auto.get("refit_note")
        self.model_._load_manifest_extra(manifest)
        self.model_.reset_sampling()


def _candidate_problems(board: pd.DataFrame) -> list[str]:
    """One line per candidate: its name, status and note (the leaderboard in words)."""
    lines = []
    for row in board.to_dict(orient="records"):
        note = row.get("note")
        has_note = isinstance(note, str) and note
        lines.append(f"{row['model']}: {row['status']}" + (f" ({note})" if has_note else ""))
    return lines


def _record_fit(
    row: dict[str, Any], model: BaseSynthesizer, began: float, epochs: int | None
) -> None:
    """The fit's seconds and, for a model trained by epochs, the epochs it really trained
    (early stopping or a deadline can end it sooner)."""
    row["fit_seconds"] = round(time.perf_counter() - began, 3)
    if epochs is not None:
        history = getattr(model, "_loss_history_", None)
        trained = len(history) if history is not None and len(history) else epochs
        row["epochs"] = min(epochs, trained)
