"""Data in and out: CSV, Excel, Parquet, folders of CSVs; atomic writes; model bundles."""

from clinsynth.io._atomic import atomic_path, atomic_write_text
from clinsynth.io._files import load_csvs, read_data, read_table, write_table, write_tables

__all__ = [
    "atomic_path",
    "atomic_write_text",
    "load_csvs",
    "read_data",
    "read_table",
    "write_table",
    "write_tables",
]
