"""How a model meets a condition: the strategy it declares through ``conditioning()``.

Every synthesizer answers :meth:`BaseSynthesizer.conditioning` with one of three strategies, and
:func:`clinsynth.synthesizers._conditions.sample_with_conditions` drives it through its public
methods only:

* :class:`Rejection` (the default): no native way; the model's plain rows are filtered, with
  batches sized by the measured acceptance rate.
* :class:`Candidates`: the model generates rows *under* the condition, which are then checked and
  topped up by rejection (``candidates``). Truncation of the copula's Gaussian, sequential
  importance resampling of the trees, the conditional vector of the conditional WGAN-GP.
* :class:`CheckedRows`: the model returns rows that already meet the condition and every rule,
  within a number of rounds (``rows``). Importance resampling in the noise space of TVAE,
  HVAE-GAN and CTGAN (``_latent_conditioning``), splitting of TabDDPM's reverse diffusion
  (``_diffusion_conditioning``).

A strategy holds the model's own algorithm (a bound method); the math stays in the model's module.
``parsed`` is what :func:`~clinsynth.synthesizers._conditions.parse_conditions` returns: column ->
``("eq", value)`` or ``("range", low, high)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Rows drawn under a condition: encoded rows, decoded rows, or None for "not this condition".
Drawn = np.ndarray | pd.DataFrame | None


@dataclass
class ConditionedRows:
    """What a :class:`CheckedRows` strategy returns.

    ``rows`` all meet the condition and every rule (there may be fewer than asked when the
    budget ran out); ``draws`` rows were generated in ``rounds`` rounds; ``details`` (counts of
    the method's phases) are added to ``conditioning_stats_``.
    """

    rows: pd.DataFrame
    draws: int
    rounds: int
    method: str
    details: dict[str, int] = field(default_factory=dict)


class Conditioning:
    """A model's way of meeting a condition. This base is rejection: no native way.

    Attributes
    ----------
    kind : str
        What the strategy does, in words ("rejection", "truncation", "latent importance", ...).
    checks_rows : bool
        True when :meth:`rows` returns rows already checked against the condition and the rules;
        otherwise :meth:`candidates` returns rows generated under the condition, to be checked.
    """

    kind: str = "rejection"
    checks_rows: bool = False

    def candidates(self, num_rows: int, parsed: dict[str, Any], rng: np.random.Generator) -> Any:
        """``num_rows`` rows generated under the condition (encoded array or DataFrame), a
        :class:`ConditionedRows` (a wrapper around a checking strategy), or None when the model
        has no native way for this condition."""
        return None

    def rows(
        self,
        num_rows: int,
        parsed: dict[str, Any],
        rng: np.random.Generator,
        max_rounds: int,
    ) -> ConditionedRows | None:
        """Rows meeting the condition and every rule, in at most ``max_rounds`` rounds, or None
        when the model has no native way for this condition."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.kind!r})"


class Rejection(Conditioning):
    """No native way: :func:`sample_with_conditions` filters the model's plain rows."""


class Candidates(Conditioning):
    """The model generates rows under the condition; they are checked and topped up.

    Parameters
    ----------
    kind : str
        The method in words, e.g. ``"truncation"``.
    draw : callable
        ``draw(num_rows, parsed, rng)`` -> encoded rows, a DataFrame, or None when this
        condition has no native way (then rejection meets it).

    Examples
    --------
    >>> import numpy as np
    >>> c = Candidates("constant", lambda n, parsed, rng: np.zeros((n, 1)))
    >>> c.candidates(3, {}, np.random.default_rng(0)).shape, c.checks_rows
    ((3, 1), False)
    """

    def __init__(self, kind: str, draw: Callable[..., Any]) -> None:
        self.kind = kind
        self._draw = draw

    def candidates(self, num_rows: int, parsed: dict[str, Any], rng: np.random.Generator) -> Any:
        return self._draw(num_rows, parsed, rng)


class CheckedRows(Conditioning):
    """The model returns rows that already meet the condition and every rule.

    Parameters
    ----------
    kind : str
        The method in words, e.g. ``"latent importance"``.
    draw : callable
        ``draw(num_rows, parsed, rng, max_rounds=...)`` -> :class:`ConditionedRows`, or None.
    """

    checks_rows = True

    def __init__(self, kind: str, draw: Callable[..., ConditionedRows | None]) -> None:
        self.kind = kind
        self._draw = draw

    def rows(
        self,
        num_rows: int,
        parsed: dict[str, Any],
        rng: np.random.Generator,
        max_rounds: int,
    ) -> ConditionedRows | None:
        return self._draw(num_rows, parsed, rng, max_rounds=max_rounds)


class Delegated(Conditioning):
    """Another model's strategy used as candidates (auto, around the model it chose).

    A checking strategy is asked for its rows in one call with ``max_rounds`` rounds; what it
    returns is a :class:`ConditionedRows`, taken as is.
    """

    def __init__(self, inner: Conditioning, max_rounds: int = 100) -> None:
        self.inner = inner
        self.kind = inner.kind
        self._max_rounds = max_rounds

    def candidates(self, num_rows: int, parsed: dict[str, Any], rng: np.random.Generator) -> Any:
        if self.inner.checks_rows:
            return self.inner.rows(num_rows, parsed, rng, max_rounds=self._max_rounds)
        return self.inner.candidates(num_rows, parsed, rng)


def encoded_targets(
    transformer: Any, variables: list[tuple[Any, int]], parsed: dict[str, Any]
) -> dict[int, tuple] | None:
    """Conditions in the terms of a model that encodes levels as codes and numbers as values
    (``numerical="identity"``, ``categorical="label"``: the copula, the trees).

    Returns variable index -> ``("level", code)`` or ``("range", low, high)`` in the encoded
    units (dates as seconds; None for an open end); a range also makes its column's missing-value
    indicator ``("level", 0)`` (present). None when a condition cannot be said so (then
    rejection meets it).

    >>> import numpy as np, pandas as pd
    >>> from clinsynth import Metadata, CARTSynthesizer
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"sex": ["F", "M"] * 50, "age": rng.normal(60, 10, 100).round(1)})
    >>> model = CARTSynthesizer(Metadata.detect_from_dataframe(df), random_state=0).fit(df)
    >>> targets = encoded_targets(model._transformer_, model._variables(),
    ...                           {"sex": ("eq", "M"), "age": ("range", 20, None)})
    >>> sorted(targets.values())
    [('level', 1), ('range', 20, None)]
    """
    index = {(span.column, span.role): j for j, (span, _) in enumerate(variables)}
    targets: dict[int, tuple] = {}
    for column, cond in parsed.items():
        column_transformer = transformer.get_transformer(column)
        if cond[0] == "eq" and hasattr(column_transformer, "levels_"):
            j = index.get((column, "category"))
            key = column_transformer._key_or_none(cond[1])
            codes = [
                i
                for i, v in enumerate(column_transformer.levels_)
                if column_transformer._key_or_none(v) == key
            ]
            if j is None or not codes:
                return None
            targets[j] = ("level", codes[0])
        elif (
            cond[0] == "range"
            and (column, "value") in index
            and column_transformer.kind in ("numerical", "datetime")
        ):
            low, high = cond[1], cond[2]
            if column_transformer.kind == "datetime":
                low, high = (
                    None if v is None else pd.Timestamp(v).value / 1e9 for v in (low, high)
                )
            targets[index[(column, "value")]] = ("range", low, high)
            if (column, "null") in index:  # a value in range is a present value
                targets[index[(column, "null")]] = ("level", 0)
        else:
            return None
    return targets
