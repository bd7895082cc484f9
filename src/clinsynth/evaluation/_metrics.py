"""The metric registry: one :class:`Metric` per headline measure, read by the leaderboard of
``auto``, the CLI and the reports.

A metric names where its value comes from (the report of its family: ``quality``, ``utility``
or ``privacy``), how to read it there, which way is better and what it means in words. Adding
a metric is its computation (in the module of its family, stored in that report's
``metrics``), one :func:`register_metric` entry here, and its test.

>>> m = get_metric("dcr_share")
>>> m.family, m.direction, m.ideal
('privacy', 'lower', 0.5)
>>> [m.name for m in metrics("privacy")]
['dcr_share', 'mia_auc', 'exact_copy_share']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Family = Literal["fidelity", "utility", "privacy"]
#: The report each family's values are read from (``evaluate`` names them so).
REPORT_OF: dict[str, str] = {"fidelity": "quality", "utility": "utility", "privacy": "privacy"}


@dataclass(frozen=True)
class Metric:
    """One measure of a synthetic table.

    Attributes
    ----------
    name : str
        Its key: in the report's ``metrics``, in the leaderboard, in JSON.
    family : {"fidelity", "utility", "privacy"}
    direction : {"higher", "lower"}
        Which way is better (``"lower"`` with an ``ideal``: better down to the ideal).
    label : str
        Its name in words ("DCR share").
    text : str
        One sentence for a report: what it measures.
    read : callable
        ``read(report) -> float or None``: the value in a report of the family (or in a
        plain dict of its metric values).
    ideal : float, optional
        The value of a perfect (or perfectly private) synthetic table, when it is not 0 or 1.
    fmt : str
        How the CLI writes it (a format spec).
    """

    name: str
    family: Family
    direction: Literal["higher", "lower"]
    label: str
    text: str
    read: Callable[[Any], float | None]
    ideal: float | None = None
    fmt: str = ".3f"

    def value(self, report: Any) -> float | None:
        """The value in ``report`` (None when it was not measured, or is NaN)."""
        value = self.read(report)
        if value is None:
            return None
        value = float(value)
        return None if value != value else value

    def describe(self, value: float) -> str:
        """``'DCR share 0.512 (0.5 ideal)'``."""
        ideal = f" ({self.ideal:g} ideal)" if self.ideal is not None else ""
        return f"{self.label} {value:{self.fmt}}{ideal}"


_REGISTRY: dict[str, Metric] = {}


def register_metric(metric: Metric) -> Metric:
    """Add ``metric`` to the registry (its name must be new)."""
    if metric.name in _REGISTRY:
        raise ValueError(f"A metric named {metric.name!r} is already registered.")
    if metric.family not in REPORT_OF:
        raise ValueError(f"Metric {metric.name!r}: unknown family {metric.family!r}.")
    _REGISTRY[metric.name] = metric
    return metric


def get_metric(name: str) -> Metric:
    """The registered metric called ``name`` (KeyError naming the known ones otherwise)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"No metric {name!r}; known: {', '.join(_REGISTRY)}.") from None


def metrics(family: str | None = None) -> list[Metric]:
    """The registered metrics (of one family), in registration order."""
    return [m for m in _REGISTRY.values() if family is None or m.family == family]


def _values(report: Any) -> dict[str, Any]:
    """A report's ``metrics``, or a plain dict of metric values (``memorization_checks``)."""
    return report.metrics if hasattr(report, "metrics") else report


def _key(name: str) -> Callable[[Any], Any]:
    return lambda report: _values(report).get(name)


def _max_of(name: str) -> Callable[[Any], Any]:
    def read(report: Any) -> float | None:
        values = [v for v in (_values(report).get(name) or {}).values() if v == v]
        return max(values) if values else None

    return read


def _mean_of(name: str) -> Callable[[Any], Any]:
    def read(report: Any) -> float | None:
        values = [float(v) for v in (_values(report).get(name) or {}).values() if v is not None]
        values = [v for v in values if v == v]
        return float(np.mean(values)) if values else None

    return read


for _metric in (
    Metric(
        "fidelity",
        "fidelity",
        "higher",
        "Fidelity",
        "The mean of the column shapes and column pair trends scores (SDMetrics' quality score).",
        lambda report: report.get_score(),
    ),
    Metric(
        "column_shapes",
        "fidelity",
        "higher",
        "Column shapes",
        "How alike each column's distribution is in the real and synthetic rows (1 - KS "
        "statistic, or 1 - total variation distance), averaged over the columns.",
        _key("column_shapes"),
    ),
    Metric(
        "column_pair_trends",
        "fidelity",
        "higher",
        "Column pair trends",
        "How alike the correlation (or contingency) of each pair of columns is, averaged over "
        "the pairs.",
        _key("column_pair_trends"),
    ),
    Metric(
        "detection_auc",
        "fidelity",
        "lower",
        "Detection AUC",
        "How well the best classifier tells real from synthetic rows (0.5: it cannot).",
        _max_of("detection_auc"),
        ideal=0.5,
    ),
    Metric(
        "detection_score",
        "fidelity",
        "higher",
        "Detection score",
        "1 - 2 x (detection AUC - 0.5), at most 1: how hard the rows are to tell apart.",
        _key("detection_score"),
    ),
    Metric(
        "utility",
        "utility",
        "higher",
        "ML utility",
        "A model trained on the synthetic rows and tested on real holdout rows, as a share of "
        "the same model trained on real rows (TSTR / TRTR).",
        lambda report: report.get_score(),
    ),
    Metric(
        "tstr",
        "utility",
        "higher",
        "TSTR",
        "Train on synthetic, test on real: the holdout score, averaged over the models.",
        _mean_of("tstr"),
    ),
    Metric(
        "trtr",
        "utility",
        "higher",
        "TRTR",
        "Train on real, test on real: the holdout score the synthetic rows are compared with.",
        _mean_of("trtr"),
    ),
    Metric(
        "dcr_share",
        "privacy",
        "lower",
        "DCR share",
        "The share of synthetic rows closer to a training row than to a holdout row (0.5: the "
        "model is as close to the patients it saw as to others).",
        _key("dcr_share"),
        ideal=0.5,
    ),
    Metric(
        "mia_auc",
        "privacy",
        "lower",
        "membership-inference AUC",
        "How well an attacker holding the synthetic rows tells training patients from holdout "
        "patients by their distance (0.5: not at all).",
        _key("mia_auc"),
        ideal=0.5,
    ),
    Metric(
        "exact_copy_share",
        "privacy",
        "lower",
        "exact copies",
        "The share of synthetic rows equal to a training row.",
        _key("exact_copy_share"),
        fmt=".2%",
    ),
):
    register_metric(_metric)
