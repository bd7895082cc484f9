"""Sampling child rows given their parents' context, through the table model's public
contract: ``sample_given_context`` (the Gaussian copula conditions exactly, any other model
draws rows jointly with the context and pairs them by rank) and ``context_strata``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clinsynth.synthesizers import BaseSynthesizer


def sample_conditioned(
    model: BaseSynthesizer,
    context: pd.DataFrame,
    rng: np.random.Generator,
    *,
    rows: np.ndarray | None = None,
    axis: np.ndarray | None = None,
    strata: list[dict] | None = None,
) -> pd.DataFrame:
    """One row per requested context, context columns dropped.

    ``context`` holds the model's context columns, one row per distinct context (a parent
    row); ``rows`` gives, for each row to generate, its context row (children of one parent share
    it), or None for one row per context. ``strata`` (from :func:`strata_statistics`) lets a
    stratified copula pick each row's stratum from its context; ``axis`` orders contexts for rank
    matching.
    """
    return model.sample_given_context(context, rng, rows=rows, axis=axis, strata=strata)


def strata_statistics(
    model: BaseSynthesizer, frame: pd.DataFrame, columns: list[str]
) -> list[dict]:
    """What the model needs to know of the context in its training ``frame`` (a stratified
    copula: the context's mean and covariance in each stratum); saved in the plan."""
    return model.context_strata(frame, columns)
