"""Referential checks between tables: orphans and duplicate parent keys."""

from __future__ import annotations

import pandas as pd

from clinsynth.metadata._metadata import Metadata


def relationship_problems(md: Metadata, tables: dict[str, pd.DataFrame]) -> list[str]:
    """One problem per broken relationship, with counts and examples."""
    problems = []
    for rel in md.relationships:
        parent, child = rel["parent_table_name"], rel["child_table_name"]
        pk, fk = rel["parent_primary_key"], rel["child_foreign_key"]
        if parent not in tables or child not in tables:
            continue
        pvalues = tables[parent][pk]
        cvalues = tables[child][fk]
        orphans = cvalues.notna() & ~cvalues.isin(pvalues)
        if orphans.any():
            examples = cvalues[orphans].unique()[:3].tolist()
            problems.append(
                f"table '{child}', column '{fk}': {int(orphans.sum())} of {len(cvalues)} rows "
                f"point to no row of '{parent}.{pk}' (orphans; e.g. {examples}). Drop those rows "
                "or add the missing parents."
            )
    return problems
