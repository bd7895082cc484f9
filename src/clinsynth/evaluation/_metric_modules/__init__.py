"""Metrics in modules of their own: every module of this package is imported with the registry
(:mod:`clinsynth.evaluation._metrics`), so a new metric is one module here and its test.

A module holds the metric's computation, a function ``compute(real, synthetic, table,
**context) -> float or None``, and registers it::

    from clinsynth.evaluation._metrics import Metric, register_metric

    def mean_match(real, synthetic, table):
        ...

    register_metric(
        Metric("mean_match", "fidelity", "higher", "Mean match", "What it measures.",
               compute=mean_match)
    )

``evaluate_quality`` (``evaluate_utility``, ``evaluate_privacy`` for those families) then runs
it and stores its value in the report's ``metrics``; the HTML report's summary, the
dashboard's comparison, ``clinsynth evaluate`` and the leaderboard of ``auto`` (fidelity and
utility metrics) list it from the registry.
"""
