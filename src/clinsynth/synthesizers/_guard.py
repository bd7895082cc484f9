"""The memorization guard of the deep models: training stops before the model starts copying.

Deep models trained long on a small, wide table drift toward their training rows: their
synthetic rows end up nearer to training rows than to unseen rows of the same population. The
guard holds a slice of the rows out of training and, a few times during training, measures the
DCR share of a sample (:func:`clinsynth.evaluation._membership.dcr_share`, the report's own
measure: the share of synthetic rows whose nearest real row is a training row, corrected for
the sizes of the two sets; 0.5 when the model does not copy). When the share passes the
threshold by more than its standard error, training stops and the weights of the last check
that passed are kept.

It needs real rows outside the privacy budget, so a differentially private fit does not use it
(its guarantee bounds memorization already).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger("clinsynth")

#: Share of the rows held out of training to watch memorization.
GUARD_FRACTION = 0.1
#: Fewer held-out rows than this make the share too noisy to act on (its standard error is
#: about 0.07 at 80 rows): at least this many are held out ...
GUARD_MIN_ROWS = 80
#: ... and only from tables of this many rows or more (at most a fifth of a table is held out).
GUARD_MIN_TABLE = 400
#: At most this many rows are held out (and compared with as many synthetic rows).
GUARD_MAX_ROWS = 2000
#: Training rows the share is measured against (a random subset of larger tables).
GUARD_MAX_TRAIN = 10_000
#: Synthetic rows generated for each check.
GUARD_SYNTHETIC_ROWS = 500
#: Checks over a training run (the last epoch is always checked).
GUARD_CHECKS = 5


def guard_rows(n_rows: int) -> int:
    """How many of ``n_rows`` the guard holds out; 0 when the table is too small to watch."""
    if n_rows < GUARD_MIN_TABLE:
        return 0
    return min(GUARD_MAX_ROWS, max(GUARD_MIN_ROWS, int(round(n_rows * GUARD_FRACTION))))


def check_every(epochs: int) -> int:
    """Epochs between two checks."""
    return max(1, math.ceil(epochs / GUARD_CHECKS))


class MemorizationGuard:
    """Measure the DCR share of the model's rows against training vs held-out rows.

    Parameters
    ----------
    threshold : float
        Training stops when the share exceeds ``threshold`` by more than its standard error.
    train, holdout : DataFrame
        The model's rows (the columns the transformer learned) used for training, and the
        held-out slice. Only their encoded features are kept, for the length of the fit.
    table : TableMetadata
        The description of those columns.
    generate : callable
        ``generate(n) -> DataFrame`` of ``n`` rows from the model as it is now.
    seed : int
    """

    def __init__(
        self,
        threshold: float,
        train: pd.DataFrame,
        holdout: pd.DataFrame,
        table: Any,
        generate: Callable[[int], pd.DataFrame],
        seed: int,
    ) -> None:
        from clinsynth.evaluation._common import statistical_columns, subsample
        from clinsynth.evaluation._encoding import FeatureEncoder

        self.threshold = threshold
        self.generate = generate
        #: One entry per check: epoch, DCR share and its standard error.
        self.log: list[dict[str, float]] = []
        train = subsample(train, GUARD_MAX_TRAIN, np.random.default_rng(seed))
        self._encoder = FeatureEncoder(table, statistical_columns(table)).fit(train)
        self._x_train = self._encoder.transform(train)
        self._x_holdout = self._encoder.transform(holdout)

    def __call__(self, epoch: int) -> bool:
        """Measure after ``epoch``; True when training may go on."""
        from clinsynth.evaluation._membership import dcr_share

        synthetic = self.generate(GUARD_SYNTHETIC_ROWS)
        closeness = dcr_share(self._x_train, self._x_holdout, self._encoder.transform(synthetic))
        share, se = closeness["dcr_share"], closeness["dcr_share_se"]
        self.log.append({"epoch": epoch, "dcr_share": share, "dcr_share_se": se})
        passed = share > self.threshold + se
        logger.log(
            logging.WARNING if passed else logging.DEBUG,
            "memorization guard after epoch %d: DCR share %.3f (SE %.3f)%s",
            epoch,
            share,
            se,
            f", above {self.threshold}: training stops" if passed else "",
        )
        return not passed


def holdout_split(n_rows: int, seed: int) -> np.ndarray | None:
    """A boolean mask of the rows held out for the guard (None: the guard stays off)."""
    n = guard_rows(n_rows)
    if not n:
        return None
    mask = np.zeros(n_rows, dtype=bool)
    mask[np.random.default_rng(seed).choice(n_rows, size=n, replace=False)] = True
    return mask
