"""Checks made before a synthesizer starts work: its parameter names, and whether the rows asked
for fit in memory (a clear error saying what is needed, instead of numpy's allocation error
half-way through)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clinsynth.errors import DataError, SamplingError, unknown_parameters
from clinsynth.io._limits import check_memory, count
from clinsynth.metadata import is_pii

if TYPE_CHECKING:
    import pandas as pd

    from clinsynth.metadata import TableMetadata
    from clinsynth.synthesizers._base import BaseSynthesizer

#: Fewest rows a single table is trained on: one row describes no distribution, and its
#: "synthetic" copy would be that patient.
MIN_TRAINING_ROWS = 2

#: Bytes per encoded value (float32) times the copies sampling holds at once (the model's
#: output, its activations, the decoded block), and per decoded cell (values, masks, strings).
_ENCODED_BYTES, _CELL_BYTES, _ROW_BYTES = 12, 48, 64


def check_param_names(cls: type, params: dict[str, Any], *, extra: tuple[str, ...] = ()) -> None:
    """Raise the standard :class:`~clinsynth.errors.ParameterError` for parameters ``cls`` does
    not take (``extra``: names the caller handles itself).

    >>> from clinsynth import GaussianCopulaSynthesizer
    >>> check_param_names(GaussianCopulaSynthesizer, {"bogus": 1})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    clinsynth.errors.ParameterError: GaussianCopulaSynthesizer has no parameter 'bogus'. ...
    """
    valid = [*cls._param_names(), *extra]  # type: ignore[attr-defined]
    unknown = [name for name in params if name not in valid]
    if unknown:
        raise unknown_parameters(cls.__name__, unknown, valid)


def sample_bytes(synth: BaseSynthesizer, num_rows: int) -> int:
    """About how many bytes sampling ``num_rows`` rows from ``synth`` holds at its peak."""
    transformer = synth._transformer_
    width = int(transformer.output_dim)
    columns = len(transformer.column_names)
    return int(num_rows) * (width * _ENCODED_BYTES + columns * _CELL_BYTES + _ROW_BYTES)


def check_rows_memory(num_rows: int, num_columns: int, what: str) -> None:
    """Raise a :class:`~clinsynth.errors.SamplingError` when ``num_rows`` rows of
    ``num_columns`` columns (a whole schema's tables) would not fit in the memory available.

    >>> check_rows_memory(10**3, 5, "Sampling the schema")
    """
    needed = int(num_rows) * (2 * max(int(num_columns), 1) * _CELL_BYTES + _ROW_BYTES)
    if needed < 256 * 2**20:
        return
    check_memory(
        needed,
        f"{what} ({count(num_rows)} rows)",
        "Sample at a smaller --scale, and make a larger set in several runs with different "
        "seeds (--seed).",
        SamplingError,
    )


def check_sample_size(synth: BaseSynthesizer, num_rows: int) -> None:
    """Raise a :class:`~clinsynth.errors.SamplingError` when ``num_rows`` rows would not fit in
    the memory available, saying how much they need."""
    needed = sample_bytes(synth, num_rows)
    if needed < 256 * 2**20:  # small jobs: no need to look
        return
    check_memory(
        needed,
        f"Sampling {count(num_rows)} rows of {len(synth._transformer_.column_names)} columns",
        "Ask for fewer rows (-n), and make a larger set in several runs with different seeds "
        "(--seed).",
        SamplingError,
    )


def check_trainable(table: TableMetadata, data: pd.DataFrame, name: str = "The table") -> None:
    """Refuse, with the reason, a table a model cannot learn anything from: fewer than
    :data:`MIN_TRAINING_ROWS` rows, or only columns that are generated rather than learned
    (identifiers and personal data).

    >>> import pandas as pd
    >>> from clinsynth import Metadata
    >>> df = pd.DataFrame({"patient_id": [1, 2, 3], "visit_id": [7, 8, 9]})
    >>> check_trainable(Metadata.detect_from_dataframe(df).get_table(), df)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    clinsynth.errors.DataError: The table has nothing to learn: ...
    """
    if len(data) < MIN_TRAINING_ROWS:
        raise DataError(
            f"{name} has {len(data)} row{'' if len(data) == 1 else 's'}: a model cannot learn a "
            f"distribution from fewer than {MIN_TRAINING_ROWS}, and a synthetic copy of one row "
            "would be that patient. Give the whole table."
        )
    generated = [
        f"{c} ({spec['sdtype']})"
        for c, spec in table.columns.items()
        if spec.get("sdtype") == "id" or is_pii(spec)
    ]
    if len(generated) == len(table.columns):
        raise DataError(
            f"{name} has nothing to learn: every column is an identifier or personal data "
            f"({', '.join(generated[:5])}{', ...' if len(generated) > 5 else ''}), which clinsynth "
            "generates rather than learns. Declare the columns that carry information as "
            "numerical, categorical, boolean, ordinal or datetime in the metadata."
        )
