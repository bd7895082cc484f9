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
from clinsynth.metadata._sdtypes import (
    INTEGER_REPRESENTATIONS,
    KNOWN,
    NUMERICAL_REPRESENTATIONS,
    STATISTICAL,
    UNKNOWN,
    is_pii,
)

logger = logging.getLogger(__name__)

SPEC_VERSION = "V1"
DEFAULT_TABLE = "table"


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
            columns[name] = _normalize_sdv_column(dict(spec))
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


def _normalize_sdv_column(spec: dict) -> dict:
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
        table.columns[column_name] = _normalize_sdv_column(spec)

    def add_column(
        self, column_name: str, *, sdtype: str, table_name: str | None = None, **props
    ) -> None:
        table = self.get_table(table_name)
        if column_name in table.columns:
            raise MetadataError(
                f"Column '{column_name}' already exists; use update_column to change it."
            )
        table.columns[column_name] = _normalize_sdv_column({"sdtype": sdtype, **props})

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
            problems.extend(_table_problems(name, table, multi=len(self.tables) > 1))
            where = f"table '{name}', " if len(self.tables) > 1 else ""
            problems.extend(rule_problems(table, where))
        problems.extend(_relationship_problems(self))
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


def _table_problems(name: str, table: TableMetadata, multi: bool) -> list[str]:
    where = f"table '{name}', " if multi else ""
    problems = []
    for col, spec in table.columns.items():
        sdtype = spec.get("sdtype")
        at = f"{where}column '{col}'"
        markers = spec.get("missing_values")
        if markers is not None and (
            not isinstance(markers, list)
            or not all(
                isinstance(m, str | int | float) and not isinstance(m, bool) for m in markers
            )
        ):
            problems.append(
                f"{at}: 'missing_values' must be a list of the texts or numbers that mean "
                f"missing, e.g. ['.', 'NA', -99]. Got {markers!r}."
            )
        if sdtype == UNKNOWN:
            problems.append(
                f"{at}: its type could not be detected (the column is empty). Drop the column, "
                "or declare its sdtype to keep it as an empty column."
            )
        elif not isinstance(sdtype, str):
            problems.append(f"{at}: sdtype must be a string. Got {sdtype!r}.")
        elif sdtype == "numerical":
            rep = spec.get("computer_representation", "Float")
            if rep not in NUMERICAL_REPRESENTATIONS:
                problems.append(
                    f"{at}: computer_representation {rep!r} is not one of "
                    f"{', '.join(NUMERICAL_REPRESENTATIONS)}."
                )
        elif sdtype == "ordinal":
            order = spec.get("order")
            if order is not None and (
                not isinstance(order, list) or len(set(map(str, order))) != len(order)
            ):
                problems.append(f"{at}: 'order' must be a list of distinct levels. Got {order!r}.")
        elif sdtype == "datetime":
            fmt = spec.get("datetime_format")
            if fmt is not None and (not isinstance(fmt, str) or "%" not in fmt):
                problems.append(
                    f"{at}: datetime_format must be a strftime format such as '%Y-%m-%d'. "
                    f"Got {fmt!r}."
                )
    pk = table.primary_key
    if pk is not None:
        if pk not in table.columns:
            problems.append(f"{where}primary key '{pk}' is not a column of the table.")
        elif (
            table.columns[pk]["sdtype"] in STATISTICAL
            and table.columns[pk]["sdtype"] != "numerical"
        ):
            problems.append(
                f"{where}primary key '{pk}' has sdtype '{table.columns[pk]['sdtype']}'; "
                "declare it as 'id' (or a PII type such as 'mrn')."
            )
    problems += _sequence_problems(where, table)
    seen: dict[str, str] = {}
    for group, cols in table.column_groups.items():
        for col in cols:
            if col not in table.columns:
                problems.append(f"{where}column group '{group}' names '{col}', not a column.")
            elif col in seen:
                problems.append(
                    f"{where}column '{col}' is in two groups ('{seen[col]}' and '{group}')."
                )
            seen[col] = group
    return problems


def _sequence_problems(where: str, table: TableMetadata) -> list[str]:
    """The sequence key names a column; the sequence index a number or date column."""
    problems = []
    key, index = table.sequence_key, table.sequence_index
    for word, column in (("sequence_key", key), ("sequence_index", index)):
        if column is not None and (not isinstance(column, str) or column not in table.columns):
            problems.append(f"{where}{word} {column!r} is not a column of the table.")
    if isinstance(index, str) and index in table.columns:
        sdtype = table.columns[index]["sdtype"]
        if sdtype not in ("numerical", "datetime"):
            problems.append(
                f"{where}sequence_index '{index}' has sdtype '{sdtype}'; it must be numerical "
                "or datetime (the time or order of each event)."
            )
    if index is not None and key is None:
        problems.append(f"{where}sequence_index '{index}' needs a sequence_key (the patient).")
    if key is not None and key == index:
        problems.append(f"{where}sequence_key and sequence_index are the same column '{key}'.")
    return problems


def _relationship_problems(md: Metadata) -> list[str]:
    problems = []
    keys = ("parent_table_name", "parent_primary_key", "child_table_name", "child_foreign_key")
    for i, rel in enumerate(md.relationships):
        if not all(k in rel for k in keys):
            problems.append(f"relationship {i + 1} lacks one of {', '.join(keys)}: {rel}.")
            continue
        parent, child = rel["parent_table_name"], rel["child_table_name"]
        if parent not in md.tables:
            problems.append(
                f"relationship {i + 1}: parent table '{parent}' is not in the metadata."
            )
        elif md.tables[parent].primary_key != rel["parent_primary_key"]:
            problems.append(
                f"relationship {i + 1}: '{rel['parent_primary_key']}' is not the primary key of "
                f"'{parent}' (that is {md.tables[parent].primary_key!r})."
            )
        if child not in md.tables:
            problems.append(f"relationship {i + 1}: child table '{child}' is not in the metadata.")
        elif rel["child_foreign_key"] not in md.tables[child].columns:
            problems.append(
                f"relationship {i + 1}: foreign key '{rel['child_foreign_key']}' is not a column "
                f"of '{child}'."
            )
    # Cycles make a hierarchical synthesis order impossible.
    graph: dict[str, set[str]] = {}
    for rel in md.relationships:
        if rel.get("parent_table_name") != rel.get("child_table_name"):
            graph.setdefault(rel.get("parent_table_name"), set()).add(rel.get("child_table_name"))
    cycle = _find_cycle(graph)
    if cycle:
        problems.append(
            f"the relationships form a cycle ({' -> '.join(cycle)}); remove one of them."
        )
    return problems


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def integer_representation(rep: str | None) -> bool:
    return rep in INTEGER_REPRESENTATIONS
