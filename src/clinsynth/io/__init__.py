"""Data in and out: CSV, Excel, Parquet, folders of CSVs, SQL schemas (DuckDB, PostgreSQL);
atomic writes; model bundles; the table of file formats.

The names are imported on first use (PEP 562), so that the CLI can read the table of formats
without loading pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clinsynth.io._atomic import atomic_path, atomic_write_text
    from clinsynth.io._files import load_csvs, read_data, read_table, write_table, write_tables
    from clinsynth.io._formats import FORMATS, FileFormat, format_of, get_format
    from clinsynth.io._sql import read_sql_schema, write_sql_schema
    from clinsynth.io._sql_engine import mask_url

_LAZY = {
    "atomic_path": "_atomic",
    "atomic_write_text": "_atomic",
    "FORMATS": "_formats",
    "FileFormat": "_formats",
    "format_of": "_formats",
    "get_format": "_formats",
    "load_csvs": "_files",
    "mask_url": "_sql_engine",
    "read_data": "_files",
    "read_sql_schema": "_sql",
    "read_table": "_files",
    "write_table": "_files",
    "write_sql_schema": "_sql",
    "write_tables": "_files",
}
__all__ = [
    "FORMATS",
    "FileFormat",
    "atomic_path",
    "atomic_write_text",
    "format_of",
    "get_format",
    "load_csvs",
    "mask_url",
    "read_data",
    "read_sql_schema",
    "read_table",
    "write_sql_schema",
    "write_table",
    "write_tables",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'clinsynth.io' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"clinsynth.io.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
