"""Data in and out: CSV, Excel, Parquet, folders of CSVs, SQL schemas (DuckDB, PostgreSQL);
atomic writes; model bundles."""

from clinsynth.io._atomic import atomic_path, atomic_write_text
from clinsynth.io._files import load_csvs, read_data, read_table, write_table, write_tables
from clinsynth.io._sql import mask_url, read_sql_schema, write_sql_schema

__all__ = [
    "atomic_path",
    "atomic_write_text",
    "load_csvs",
    "mask_url",
    "read_data",
    "read_sql_schema",
    "read_table",
    "write_table",
    "write_sql_schema",
    "write_tables",
]
