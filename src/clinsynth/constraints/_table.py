"""What a rule needs to know of its table: the description of its columns.

Rules depend on this protocol, not on :class:`clinsynth.metadata.TableMetadata` (which satisfies
it), so that the metadata package, which validates and discovers rules, sits above this one and
the two do not import each other.
"""

from __future__ import annotations

from typing import Any, Protocol


class TableLike(Protocol):
    """A table's description: ``columns`` maps each column to its properties (``sdtype``, ...)."""

    columns: dict[str, dict[str, Any]]
    constraints: list[dict[str, Any]]
    primary_key: str | None

    def copy(self) -> TableLike:
        """An independent copy (rules that derive a column remove it from the copy)."""
        ...
