"""The one exception hierarchy of clinsynth.

Every error raised on purpose by the library is a :class:`ClinsynthError`. Messages say what is
wrong, where (file, table, column, row), what was found and how to fix it. Validation collects all
problems first and raises once; the individual problems are kept in ``error.problems``.
"""

from __future__ import annotations

import re

__all__ = [
    "ClinsynthError",
    "MetadataError",
    "DataError",
    "ParameterError",
    "NotFittedError",
    "BundleError",
    "PrivacyError",
    "SamplingError",
    "FederationError",
    "MissingDependencyError",
]


class ClinsynthError(Exception):
    """Base class of every error clinsynth raises on purpose.

    Parameters
    ----------
    message : str
        One sentence (or a short list) saying what, where and how to fix.
    problems : list of str, optional
        The individual problems when several were collected.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = [_cap(p) for p in problems or []]
        super().__init__(_cap(message))

    @classmethod
    def from_problems(cls, headline: str, problems: list[str]) -> ClinsynthError:
        """Build one error listing every collected problem."""
        if len(problems) == 1:
            return cls(f"{headline}: {problems[0]}", problems)
        lines = "\n".join(f"  - {p}" for p in problems)
        return cls(f"{headline} ({len(problems)} problems):\n{lines}", problems)


class MetadataError(ClinsynthError, ValueError):
    """Metadata is invalid or does not match the data (unknown column, bad sdtype, ...)."""


class DataError(ClinsynthError, ValueError):
    """Input data cannot be read or does not satisfy its metadata."""


class ParameterError(ClinsynthError, ValueError):
    """A parameter of a synthesizer, transformer or function is out of its allowed range."""


class NotFittedError(ClinsynthError, RuntimeError):
    """A method that needs a fitted object was called before ``fit``."""


class BundleError(ClinsynthError, OSError):
    """A saved model cannot be read: missing, corrupt, or written by an incompatible version."""


class PrivacyError(ClinsynthError):
    """A privacy guarantee cannot be met (budget spent, unsafe column, ...)."""


class SamplingError(ClinsynthError):
    """Sampling could not produce the requested rows (impossible condition, rules never met)."""


class FederationError(ClinsynthError):
    """A federated run cannot go on: a site refused (wrong token, data that does not match the
    federation's metadata, too few rows), no site left, or a connection that failed."""


#: A run of this many characters without a space is a value quoted from a file, not prose.
_LONG_RUN = re.compile(r"\S{241,}")
#: Most characters of one message (a list of problems stays readable).
_MAX_MESSAGE = 20_000


def _cap(text: str) -> str:
    """Cut values quoted in a message (a 10 MB string read from a file is never echoed)."""
    text = str(text)
    if len(text) <= 240:
        return text
    text = _LONG_RUN.sub(lambda m: f"{m[0][:80]}... ({len(m[0]):,} characters)", text)
    if len(text) > _MAX_MESSAGE:
        text = f"{text[:_MAX_MESSAGE]}... ({len(text):,} characters in all)"
    return text


def parameter_error(
    owner: str, name: str, value: object, expected: str, fix: str = ""
) -> ParameterError:
    """The one shape of a bad parameter: which parameter of what (``owner``), what it must be,
    what was found, and how to fix it (``fix``, optional when ``expected`` says it).

    Every parameter check of the library raises through here (or :func:`check_param`,
    :func:`unknown_parameters`), so the messages read alike.

    >>> print(parameter_error("TVAESynthesizer", "epochs", 0, "an int >= 1"))
    The 'epochs' parameter of TVAESynthesizer must be an int >= 1. Got 0.
    >>> print(parameter_error("CTGAN", "batch_size", 7, "a multiple of pac (10)", "Use 500."))
    The 'batch_size' parameter of CTGAN must be a multiple of pac (10). Got 7. Use 500.
    """
    message = f"The '{name}' parameter of {owner} must be {expected}. Got {value!r}."
    return ParameterError(f"{message} {fix}" if fix else message)


def check_param(
    owner: str,
    name: str,
    value: object,
    ok: bool,
    expected: str,
    fix: str = "",
) -> None:
    """Raise :func:`parameter_error` when ``ok`` is false.

    >>> check_param("TVAE", "epochs", 3, True, "an int >= 1")
    """
    if not ok:
        raise parameter_error(owner, name, value, expected, fix)


def unknown_parameters(owner: str, unknown: list[str], valid: list[str]) -> ParameterError:
    """The error for parameter names that ``owner`` does not take.

    >>> print(unknown_parameters("TVAESynthesizer", ["epochz"], ["epochs", "batch_size"]))
    TVAESynthesizer has no parameter 'epochz'. Valid: epochs, batch_size.
    """
    shown = ", ".join(repr(n) for n in unknown)
    return ParameterError(f"{owner} has no parameter {shown}. Valid: {', '.join(valid)}.")


class MissingDependencyError(ClinsynthError, ImportError):
    """An optional dependency is not installed; the message names the extra to install
    (``pip install clinsynth[sql]``)."""
