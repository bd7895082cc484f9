"""TableMetadata: the columns (sdtypes and properties), primary key, column groups, sequence
words and rules of one table, and its SDV V1 JSON form."""

from __future__ import annotations

import copy
from typing import Any

from clinsynth.errors import MetadataError
from clinsynth.metadata._sdtypes import KNOWN, is_pii


class TableMetadata:
    """Columns, primary key, feature groups and rules of one table.

    Parameters
    ----------
    columns : dict
        ``{column_name: {"sdtype": ..., **properties}}`` in column order.
    primary_key : str, optional
    column_groups : dict of str to list of str, optional
        Feature groups (e.g. ``{"genetic": [...], "clinical": [...]}``) used by models that
        encode groups separately.
    constraints : list of dict, optional
        Declared rules, in the JSON form of :mod:`clinsynth.constraints`.
    sequence_key : str, optional
        SDV's word: the column naming the entity (patient) whose rows form one sequence.
    sequence_index : str, optional
        SDV's word: the column (number or date) that orders the rows of a sequence.
    """

    def __init__(
        self,
        columns: dict[str, dict] | None = None,
        primary_key: str | None = None,
        column_groups: dict[str, list[str]] | None = None,
        constraints: list[dict] | None = None,
        sequence_key: str | None = None,
        sequence_index: str | None = None,
    ) -> None:
        self.columns: dict[str, dict] = {k: dict(v) for k, v in (columns or {}).items()}
        self.primary_key = primary_key
        self.column_groups: dict[str, list[str]] = {
            k: list(v) for k, v in (column_groups or {}).items()
        }
        self.constraints: list[dict] = copy.deepcopy(list(constraints or []))
        self.sequence_key = sequence_key
        self.sequence_index = sequence_index

    # ------------------------------------------------------------------ views
    @property
    def column_names(self) -> list[str]:
        return list(self.columns)

    def sdtype(self, column: str) -> str:
        return self.columns[column]["sdtype"]

    def columns_of(self, *sdtypes: str) -> list[str]:
        """Names of the columns whose sdtype is one of ``sdtypes``."""
        return [c for c, spec in self.columns.items() if spec["sdtype"] in sdtypes]

    @property
    def pii_columns(self) -> list[str]:
        return [c for c, spec in self.columns.items() if is_pii(spec)]

    # ------------------------------------------------------------------ json
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"columns": copy.deepcopy(self.columns)}
        if self.primary_key is not None:
            out["primary_key"] = self.primary_key
        if self.column_groups:
            out["column_groups"] = copy.deepcopy(self.column_groups)
        if self.constraints:
            out["constraints"] = copy.deepcopy(self.constraints)
        for word in ("sequence_key", "sequence_index"):
            if getattr(self, word) is not None:
                out[word] = getattr(self, word)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "table") -> TableMetadata:
        if not isinstance(data, dict) or not isinstance(data.get("columns"), dict):
            raise MetadataError(
                f"Metadata of {where} has no 'columns' object. Each table needs "
                '{"columns": {"name": {"sdtype": ...}}}.'
            )
        columns = {}
        for name, spec in data["columns"].items():
            if not isinstance(spec, dict) or "sdtype" not in spec:
                raise MetadataError(
                    f"Column '{name}' of {where} has no 'sdtype'. Give it one of: "
                    f"{', '.join(KNOWN)}."
                )
            columns[name] = normalize_sdv_column(dict(spec))
        return cls(
            columns=columns,
            primary_key=data.get("primary_key"),
            column_groups=data.get("column_groups"),
            constraints=data.get("constraints"),
            sequence_key=data.get("sequence_key"),
            sequence_index=data.get("sequence_index"),
        )

    def copy(self) -> TableMetadata:
        return TableMetadata.from_dict(self.to_dict())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TableMetadata) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        kinds: dict[str, int] = {}
        for spec in self.columns.values():
            kinds[spec["sdtype"]] = kinds.get(spec["sdtype"], 0) + 1
        summary = ", ".join(f"{k}={v}" for k, v in kinds.items())
        return f"TableMetadata({len(self.columns)} columns: {summary}; key={self.primary_key!r})"


def normalize_sdv_column(spec: dict) -> dict:
    """Read SDV's spellings: categorical columns with an order are ordinal."""
    if spec.get("sdtype") == "categorical" and ("order" in spec or "order_by" in spec):
        if "order" in spec:
            spec["sdtype"] = "ordinal"
        else:
            # SDV's order_by ("numerical_value"/"alphabetical") gives no explicit levels:
            # the levels are sorted from the data when the transformer is fitted.
            spec["sdtype"] = "ordinal"
            spec["order"] = None
    return spec
