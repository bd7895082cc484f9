"""Optional dependencies: each belongs to an extra, and a missing one is named in the error.

=========== ============================================ =========================================
extra       packages                                     what needs them
=========== ============================================ =========================================
dashboard   streamlit                                    ``clinsynth dashboard``
excel       openpyxl                                     reading and writing ``.xlsx``
sql         sqlalchemy, duckdb, duckdb-engine            ``read_sql_schema``, ``--sql`` (DuckDB)
postgres    psycopg2-binary (and the sql extra)          PostgreSQL URLs
umap        umap-learn                                   ``visualize_latent_space(method="umap")``
dask        dask, distributed                            ``clinsynth sample --scheduler``, sampling
                                                         on a Dask cluster
federated   flwr                                         ``clinsynth federate`` (Flower)
=========== ============================================ =========================================
"""

from __future__ import annotations

import importlib
from types import ModuleType

from clinsynth.errors import MissingDependencyError

#: Import name -> (distribution to install, extra that brings it).
PACKAGES: dict[str, tuple[str, str]] = {
    "streamlit": ("streamlit", "dashboard"),
    "openpyxl": ("openpyxl", "excel"),
    "sqlalchemy": ("sqlalchemy", "sql"),
    "duckdb": ("duckdb", "sql"),
    "duckdb_engine": ("duckdb-engine", "sql"),
    "psycopg2": ("psycopg2-binary", "postgres"),
    "umap": ("umap-learn", "umap"),
    "distributed": ("distributed", "dask"),
    "dask": ("dask", "dask"),
    "flwr": ("flwr", "federated"),
}


def require(module: str, purpose: str) -> ModuleType:
    """Import the optional ``module``, or raise the error that names its extra.

    Only the absence of ``module`` itself becomes a :class:`MissingDependencyError`; an error
    inside an installed package propagates unchanged.

    >>> require("json", "Reading JSON").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        root = module.split(".")[0]
        if exc.name is None or exc.name.split(".")[0] != root:
            raise
        package, extra = PACKAGES.get(root, (root, "all"))
        raise MissingDependencyError(
            f"{purpose} needs the optional package '{package}', which is not installed. "
            f"Install it with: pip install clinsynth[{extra}]"
        ) from None
