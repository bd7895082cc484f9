"""Metadata: what each column means, the keys, and how tables relate.

A :class:`Metadata` holds one or more tables (:class:`TableMetadata`) and the relationships between
them, like SDV 2's ``Metadata``. Single-table users never name the table: every method takes
``table_name=None`` and uses the only table.

The JSON form is SDV's multi-table ``V1`` spec, plus two optional keys per table that SDV ignores
(``column_groups``, ``constraints``). SDV's single-table (``SINGLE_TABLE_V1``) and multi-table
files load unchanged.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from clinsynth.errors import MetadataError
from clinsynth.metadata._checks import relationship_problems, table_problems
from clinsynth.metadata._sdtypes import INTEGER_REPRESENTATIONS
from clinsynth.metadata._table import TableMetadata, normalize_sdv_column

logger = logging.getLogger(__name__)

SPEC_VERSION = "V1"
DEFAULT_TABLE = "table"


class Metadata:
    """The metadata of one table or of a relational schema.

    Parameters
    ----------
    tables : dict of str to TableMetadata, optional
    relationships : list of dict, optional
        Each ``{"parent_table_name", "parent_primary_key", "child_table_name",
        "child_foreign_key"}`` as in SDV.
    detection : dict, optional
        How detection found the keys (``"tables"``, ``"links"`` with their inclusion and
        orphans, ``"ambiguous"`` columns to resolve); kept in the JSON as ``"detection"``.

    Examples
    --------
    >>> import pandas as pd
    >>> from clinsynth import Metadata
    >>> df = pd.DataFrame({"age": [34, 51, 67, 45, 72, 38, 59, 61, 44, 50, 70, 33],
    ...                    "sex": list("MFFMFMFMMFFM")})
    >>> md = Metadata.detect_from_dataframe(df)
    >>> md.columns["sex"]["sdtype"]
    'categorical'
    >>> md.update_column("age", sdtype="numerical", computer_representation="Int64")
    """

    def __init__(
        self,
        tables: dict[str, TableMetadata] | None = None,
        relationships: list[dict] | None = None,
        detection: dict | None = None,
    ) -> None:
        self.tables: dict[str, TableMetadata] = dict(tables or {})
        self.relationships: list[dict] = copy.deepcopy(list(relationships or []))
        self.detection: dict | None = copy.deepcopy(detection) if detection else None

    # ------------------------------------------------------------ construction
    @classmethod
    def detect_from_dataframe(
        cls, data: pd.DataFrame, table_name: str = DEFAULT_TABLE, *, discover_rules: bool = True
    ) -> Metadata:
        """Detect column sdtypes and the primary key of one DataFrame, and the rules every row
        obeys (stored in ``constraints``, each with its support and ``"discovered": true``;
        remove any you do not want, see :func:`clinsynth.constraints.discover_rules`)."""
        from clinsynth.metadata._detect import detect_table

        md = cls({table_name: detect_table(data, table_name)})
        if discover_rules:
            md._discover_rules({table_name: data})
        return md

    @classmethod
    def detect_from_dataframes(
        cls, data: dict[str, pd.DataFrame], *, discover_rules: bool = True
    ) -> Metadata:
        """Detect every table, then the keys and relationships between them (and each table's
        rules).

        Keys come from the data (unique, present, named like keys; export artefacts such as
        ``rownames`` flagged), links from the inclusion of a column's values in another table's
        key, ranked by name similarity; the evidence is kept in ``detection`` (see
        :func:`clinsynth.metadata._detect.detect_relationships`). Tables that link to no other
        table are named in a warning; ambiguous links are left for the user to choose
        (:meth:`validate` lists them).
        """
        from clinsynth.metadata._detect import detect_relationships, detect_table
        from clinsynth.metadata._link_checks import unlinked_warning

        tables = {name: detect_table(df, name) for name, df in data.items()}
        md = cls(tables)
        md.relationships = detect_relationships(data, md)
        warning = unlinked_warning(md)
        if warning:
            logger.warning(warning)
        if discover_rules:
            md._discover_rules(data)
        return md

    def _discover_rules(self, data: dict[str, pd.DataFrame]) -> None:
        from clinsynth.constraints import discover_rules

        for name, df in data.items():
            table = self.tables[name]
            table.constraints = [r.to_dict() for r in discover_rules(df, table)]

    @classmethod
    def detect_from_csvs(cls, folder_name: str | os.PathLike) -> Metadata:
        """Detect the metadata of every CSV file in a folder (one table per file)."""
        from clinsynth.io._files import load_csvs

        return cls.detect_from_dataframes(load_csvs(folder_name))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metadata:
        """Build from a dict in clinsynth's or SDV's (single- or multi-table) JSON form."""
        if not isinstance(data, dict):
            raise MetadataError("Metadata must be a JSON object with 'tables' or 'columns'.")
        if "tables" in data:
            if not isinstance(data["tables"], dict):
                raise MetadataError("Metadata 'tables' must be an object of table name to table.")
            tables = {
                name: TableMetadata.from_dict(t, where=f"table '{name}'")
                for name, t in data["tables"].items()
            }
            detection = data.get("detection")
            return cls(
                tables,
                data.get("relationships") or [],
                detection if isinstance(detection, dict) else None,
            )
        if "columns" in data:  # SDV SINGLE_TABLE_V1, or a bare table
            return cls({DEFAULT_TABLE: TableMetadata.from_dict(data)})
        raise MetadataError(
            "Metadata JSON has neither 'tables' (multi-table) nor 'columns' (single table). "
            "Create it with `clinsynth detect DATA -o metadata.json`."
        )

    @classmethod
    def load_from_json(cls, filepath: str | os.PathLike) -> Metadata:
        """Load metadata saved by clinsynth or by SDV (single- or multi-table JSON)."""
        path = Path(filepath)
        if not path.exists():
            raise MetadataError(f"Metadata file '{path}' does not exist.")
        from clinsynth.io._limits import MAX_JSON_BYTES, loads_limited

        try:
            with open(path, "rb") as handle:  # never more than the limit into memory
                raw = handle.read(MAX_JSON_BYTES + 1)
        except OSError as exc:
            raise MetadataError(
                f"Metadata file '{path}' could not be read ({exc.strerror or exc})."
            ) from None
        # Bounded in size and depth: a metadata file may come from someone else.
        data = loads_limited(
            raw,
            f"Metadata file '{path}'",
            MetadataError,
            "Recreate it with `clinsynth detect DATA -o metadata.json`.",
        )
        try:
            return cls.from_dict(data)
        except MetadataError as exc:
            raise MetadataError(f"In '{path}': {exc}", exc.problems) from None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "METADATA_SPEC_VERSION": SPEC_VERSION,
            "tables": {name: t.to_dict() for name, t in self.tables.items()},
            "relationships": copy.deepcopy(self.relationships),
        }
        if self.detection:
            out["detection"] = copy.deepcopy(self.detection)
        return out

    def save_to_json(self, filepath: str | os.PathLike, *, overwrite: bool = True) -> None:
        """Write the metadata as JSON (atomically: a failed write leaves no partial file)."""
        from clinsynth.io._atomic import atomic_write_text

        path = Path(filepath)
        if path.exists() and not overwrite:
            raise MetadataError(f"'{path}' already exists. Pass overwrite=True to replace it.")
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, default=_json_default) + "\n")

    def copy(self) -> Metadata:
        return Metadata.from_dict(self.to_dict())

    # ------------------------------------------------------------ table access
    @property
    def table_names(self) -> list[str]:
        return list(self.tables)

    def get_table(self, table_name: str | None = None) -> TableMetadata:
        """The metadata of ``table_name``; the only table when ``table_name`` is None."""
        if table_name is None:
            if len(self.tables) != 1:
                raise MetadataError(
                    f"This metadata has {len(self.tables)} tables "
                    f"({', '.join(self.tables) or 'none'}); name the table you mean."
                )
            return next(iter(self.tables.values()))
        if table_name not in self.tables:
            raise MetadataError(
                f"Table '{table_name}' is not in the metadata. Tables: {', '.join(self.tables)}."
            )
        return self.tables[table_name]

    def single_table_name(self) -> str:
        self.get_table()
        return next(iter(self.tables))

    @property
    def columns(self) -> dict[str, dict]:
        """The columns of the only table (single-table metadata)."""
        return self.get_table().columns

    @property
    def primary_key(self) -> str | None:
        return self.get_table().primary_key

    @property
    def column_groups(self) -> dict[str, list[str]]:
        return self.get_table().column_groups

    # ------------------------------------------------------------ editing
    def update_column(
        self, column_name: str, *, table_name: str | None = None, sdtype: str | None = None, **props
    ) -> None:
        """Change a column's sdtype and/or properties (``computer_representation``,
        ``datetime_format``, ``order``, ...). Changing the sdtype drops the old properties."""
        table = self.get_table(table_name)
        if column_name not in table.columns:
            raise MetadataError(
                f"Column '{column_name}' is not in table '{self._name_of(table)}'. "
                f"Columns: {', '.join(table.columns)}."
            )
        spec = table.columns[column_name]
        if sdtype is not None and sdtype != spec["sdtype"]:
            spec = {"sdtype": sdtype}
        spec.update(props)
        table.columns[column_name] = normalize_sdv_column(spec)

    def add_column(
        self, column_name: str, *, sdtype: str, table_name: str | None = None, **props
    ) -> None:
        table = self.get_table(table_name)
        if column_name in table.columns:
            raise MetadataError(
                f"Column '{column_name}' already exists; use update_column to change it."
            )
        table.columns[column_name] = normalize_sdv_column({"sdtype": sdtype, **props})

    def remove_column(self, column_name: str, *, table_name: str | None = None) -> None:
        table = self.get_table(table_name)
        if column_name not in table.columns:
            raise MetadataError(f"Column '{column_name}' is not in the metadata.")
        del table.columns[column_name]
        table.constraints = [c for c in table.constraints if not _names(c, column_name)]
        if table.primary_key == column_name:
            table.primary_key = None
        for word in ("sequence_key", "sequence_index"):
            if getattr(table, word) == column_name:
                setattr(table, word, None)
        for group in table.column_groups.values():
            if column_name in group:
                group.remove(column_name)

    def set_primary_key(self, column_name: str | None, *, table_name: str | None = None) -> None:
        table = self.get_table(table_name)
        if column_name is not None and column_name not in table.columns:
            raise MetadataError(
                f"Primary key '{column_name}' is not a column of table '{self._name_of(table)}'."
            )
        table.primary_key = column_name

    def set_sequence_key(self, column_name: str | None, *, table_name: str | None = None) -> None:
        """SDV's word: the column naming the patient whose rows form one sequence."""
        self._set_sequence_word("sequence_key", column_name, table_name)

    def set_sequence_index(self, column_name: str | None, *, table_name: str | None = None) -> None:
        """SDV's word: the number or date column ordering the rows of each sequence."""
        self._set_sequence_word("sequence_index", column_name, table_name)

    def _set_sequence_word(self, word: str, column: str | None, table_name: str | None) -> None:
        table = self.get_table(table_name)
        if column is not None and column not in table.columns:
            raise MetadataError(
                f"The {word} '{column}' is not a column of table '{self._name_of(table)}'. "
                f"Columns: {', '.join(list(table.columns)[:20])}."
            )
        setattr(table, word, column)

    def set_column_groups(
        self, groups: dict[str, list[str]], *, table_name: str | None = None
    ) -> None:
        table = self.get_table(table_name)
        table.column_groups = {k: list(v) for k, v in groups.items()}

    def add_relationship(
        self,
        parent_table_name: str,
        child_table_name: str,
        parent_primary_key: str,
        child_foreign_key: str,
    ) -> None:
        self.relationships.append(
            {
                "parent_table_name": parent_table_name,
                "parent_primary_key": parent_primary_key,
                "child_table_name": child_table_name,
                "child_foreign_key": child_foreign_key,
            }
        )

    def _name_of(self, table: TableMetadata) -> str:
        for name, t in self.tables.items():
            if t is table:
                return name
        return "?"

    def suggest_constraints(
        self, data: pd.DataFrame | None = None, *, table_name: str | None = None
    ) -> list:
        """Clinical rules the column names suggest (blood pressure pair, date order, BMI formula,
        physiological ranges, ...), kept only when ``data`` (if given) obey them. Nothing is
        applied: pass the ones you want as ``constraints=[...]`` or add their ``to_dict()`` to
        ``get_table().constraints``.
        """
        from clinsynth.constraints import suggest_constraints

        return suggest_constraints(self.get_table(table_name), data)

    # ------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check the metadata itself; raise one :class:`MetadataError` listing every problem."""
        from clinsynth.io._paths import unsafe_file_name

        problems: list[str] = []
        if not self.tables:
            problems.append("the metadata has no tables.")
        from clinsynth.constraints import rule_problems

        for name, table in self.tables.items():
            if unsafe_file_name(name):
                problems.append(
                    f"table name {str(name)[:80]!r} cannot be a file name (it is empty, hidden or "
                    "holds a path separator or one of : * ? < > |); its synthetic table could be "
                    "written outside the output folder. Rename the table."
                )
            problems.extend(table_problems(name, table, multi=len(self.tables) > 1))
            where = f"table '{name}', " if len(self.tables) > 1 else ""
            problems.extend(rule_problems(table, where))
        problems.extend(relationship_problems(self))
        from clinsynth.metadata._link_checks import ambiguity_problems

        problems.extend(ambiguity_problems(self))
        if problems:
            raise MetadataError.from_problems("The metadata is invalid", problems)

    def validate_data(self, data: pd.DataFrame | dict[str, pd.DataFrame]) -> list[str]:
        """Check data against the metadata; raise one :class:`~clinsynth.errors.DataError`
        listing every problem. Returns the warnings (constant columns, ...) that do not stop
        synthesis."""
        from clinsynth.metadata._validate import validate_data

        return validate_data(self, data)

    # ------------------------------------------------------------ dunder
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Metadata) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        if len(self.tables) == 1:
            return f"Metadata({next(iter(self.tables.values()))!r})"
        return f"Metadata(tables={list(self.tables)}, relationships={len(self.relationships)})"


def _names(rule: dict, column: str) -> bool:
    """Whether a rule's JSON form names ``column`` (removing a column removes its rules)."""
    from clinsynth.constraints import constraint_from_dict

    try:
        return column in constraint_from_dict(rule).columns
    except MetadataError:
        return False


def _json_default(value: Any) -> Any:
    """Make numpy scalars in properties (e.g. ordinal levels) JSON-serializable."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


def integer_representation(rep: str | None) -> bool:
    return rep in INTEGER_REPRESENTATIONS
