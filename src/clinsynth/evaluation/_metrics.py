"""The metric registry: one :class:`Metric` per headline measure, read by the leaderboard of
``auto``, the HTML report's summary, the dashboard's comparison and the CLI's summary (all
through :func:`metric_table`).

A metric names where its value comes from (the report of its family: ``quality``, ``utility``
or ``privacy``), how to read it there, which way is better, its threshold where one exists and
what it means in words. Adding a metric is one module in ``evaluation/_metric_modules/`` (its
computation and one :func:`register_metric` call with it as the ``compute`` hook; every module
there is imported with this one) and its test: ``evaluate_quality``, ``evaluate_utility`` and
``evaluate_privacy`` run the hooks of their family and store the values in their report's
``metrics``. The metrics computed inside a family's module (the entries below) read the value
that module stores instead.

>>> m = get_metric("dcr_share")
>>> m.family, m.direction, m.ideal
('privacy', 'lower', 0.5)
>>> m.better, m.threshold_words
('↓ lower is better (0.5 ideal)', "≤ 0.55 (auto's default limit)")
>>> [m.name for m in metrics("privacy")]
['dcr_share', 'mia_auc', 'exact_copy_share']
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from clinsynth.evaluation._common import POOR_BELOW

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
    read : callable, optional
        ``read(report) -> float or None``: the value in a report of the family (or in a
        plain dict of its metric values). By default the report's ``metrics[name]``.
    ideal : float, optional
        The value of a perfect (or perfectly private) synthetic table, when it is not 0 or 1.
    fmt : str
        How the reports write it (a format spec).
    threshold : float, optional
        The value past which (on the worse side of ``direction``) a verdict or a check fails.
    threshold_text : str
        Which verdict or check that threshold is ("below: a poor verdict").
    compute : callable, optional
        ``compute(real, synthetic, table, **context) -> float or None``: the metric's own
        computation, run by its family's evaluation (``table`` is the
        :class:`~clinsynth.metadata.TableMetadata`; utility passes ``holdout`` and ``target``,
        privacy ``holdout``, fidelity nothing). None for the metrics a family module stores
        itself.
    """

    name: str
    family: Family
    direction: Literal["higher", "lower"]
    label: str
    text: str
    read: Callable[[Any], float | None] | None = None
    ideal: float | None = None
    fmt: str = ".3f"
    threshold: float | None = None
    threshold_text: str = ""
    compute: Callable[..., float | None] | None = None

    def __post_init__(self) -> None:
        if self.read is None:
            object.__setattr__(self, "read", _key(self.name))

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

    def format(self, value: float | None) -> str:
        """The value as the reports write it ("—" when not measured)."""
        return "—" if value is None or value != value else f"{value:{self.fmt}}"

    @property
    def better(self) -> str:
        """Which way is better, with an arrow: ``'↓ lower is better (0.5 ideal)'``."""
        arrow = "↑" if self.direction == "higher" else "↓"
        ideal = f" ({self.ideal:g} ideal)" if self.ideal is not None else ""
        return f"{arrow} {self.direction} is better{ideal}"

    @property
    def threshold_words(self) -> str:
        """``'≤ 0.55 (auto's default limit)'``, or "" without a threshold."""
        if self.threshold is None:
            return ""
        sign = "≥" if self.direction == "higher" else "≤"
        why = f" ({self.threshold_text})" if self.threshold_text else ""
        return f"{sign} {self.threshold:g}{why}"


_REGISTRY: dict[str, Metric] = {}


def register_metric(metric: Metric) -> Metric:
    """Add ``metric`` to the registry (its name must be new); :func:`unregister_metric` takes
    it out again."""
    if metric.name in _REGISTRY:
        raise ValueError(f"A metric named {metric.name!r} is already registered.")
    if metric.family not in REPORT_OF:
        raise ValueError(f"Metric {metric.name!r}: unknown family {metric.family!r}.")
    _REGISTRY[metric.name] = metric
    return metric


def unregister_metric(name: str) -> Metric:
    """Take the metric called ``name`` out of the registry (and return it)."""
    metric = get_metric(name)
    del _REGISTRY[name]
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


def import_metric_modules(package: str) -> list[str]:
    """Import every module of ``package`` (each registers its metrics); their names."""
    path = importlib.import_module(package).__path__
    names = [f"{package}.{info.name}" for info in pkgutil.iter_modules(path)]
    for name in names:
        importlib.import_module(name)
    return names


def compute_metrics(
    family: str, real: pd.DataFrame, synthetic: pd.DataFrame, table: Any, **context: Any
) -> dict[str, float | None]:
    """The values of the ``family``'s metrics that have a ``compute`` hook, by name (what a
    family's evaluation adds to its report's ``metrics``)."""
    out: dict[str, float | None] = {}
    for metric in metrics(family):
        if metric.compute is not None:
            value = metric.compute(real, synthetic, table, **context)
            out[metric.name] = None if value is None else float(value)
    return out


#: The columns of :func:`metric_table`.
TABLE_COLUMNS = ["Metric", "Key", "Family", "Value", "Better", "Threshold", "What it measures"]


def metric_table(reports: Mapping[str, Any], *, text: bool = False) -> pd.DataFrame:
    """One row per registered metric whose family's report is in ``reports``.

    Parameters
    ----------
    reports : mapping of str to report
        The reports by name (``quality``, ``utility``, ``privacy``), e.g.
        ``EvaluationResult.reports``; a family whose report is missing is left out.
    text : bool
        Write ``Value`` as the reports show it (the metric's format, "—" when not measured)
        instead of a number (None when not measured).

    Returns
    -------
    DataFrame
        Columns :data:`TABLE_COLUMNS`, in registration order.
    """
    rows = []
    for metric in metrics():
        report = reports.get(REPORT_OF[metric.family])
        if report is None:
            continue
        value = metric.value(report)
        rows.append(
            (
                metric.label,
                metric.name,
                metric.family,
                metric.format(value) if text else value,
                metric.better,
                metric.threshold_words,
                metric.text,
            )
        )
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


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
        threshold=POOR_BELOW,
        threshold_text="below: a poor verdict",
    ),
    Metric(
        "column_shapes",
        "fidelity",
        "higher",
        "Column shapes",
        "How alike each column's distribution is in the real and synthetic rows (1 - KS "
        "statistic, or 1 - total variation distance), averaged over the columns.",
    ),
    Metric(
        "column_pair_trends",
        "fidelity",
        "higher",
        "Column pair trends",
        "How alike the correlation (or contingency) of each pair of columns is, averaged over "
        "the pairs.",
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
    ),
    Metric(
        "utility",
        "utility",
        "higher",
        "ML utility",
        "A model trained on the synthetic rows and tested on real holdout rows, as a share of "
        "the same model trained on real rows (TSTR / TRTR).",
        lambda report: report.get_score(),
        threshold=POOR_BELOW,
        threshold_text="below: a poor verdict",
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
        "The share of synthetic rows that lie closer to a training patient than to a comparable "
        "new patient (the holdout), corrected for the sizes of both groups. 0.5 means the "
        "synthetic data is no closer to the training patients than to anyone else; 1 means it "
        "copies them.",
        ideal=0.5,
        threshold=0.55,
        threshold_text="auto's default limit",
    ),
    Metric(
        "mia_auc",
        "privacy",
        "lower",
        "Membership-inference AUC",
        "How well an attacker can tell, from the synthetic data alone, whether a given person "
        "was in the training data, by their distance to the nearest synthetic row (ROC AUC; 0.5 "
        "= no better than a coin toss).",
        ideal=0.5,
        threshold=0.6,
        threshold_text="auto's default limit",
    ),
    Metric(
        "exact_copy_share",
        "privacy",
        "lower",
        "Exact copies",
        "The share of synthetic rows identical to a training row.",
        fmt=".2%",
    ),
):
    register_metric(_metric)

#: The metrics in modules of their own (see that package).
import_metric_modules("clinsynth.evaluation._metric_modules")
