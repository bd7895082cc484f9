"""Foreign keys found from the data: inclusion of values, ranked by name similarity.

A child column ``c`` is a candidate foreign key into a parent table ``p`` (primary key ``k``)
when the non-null values of ``c`` are found among the values of ``k``. The *inclusion* is the
share of the child's non-null rows whose value is a key of ``p`` (the rest are *orphans*). The
name decides how much inclusion is asked for:

========= ============================================================ ==============
match     the child column's name                                        inclusion
========= ============================================================ ==============
exact     is ``k``, a specific name (``PERSON_ID``)                      any (> 0)
stem      is ``k`` generic (``id``), or names the parent (``patient``,   >= 50%
          ``patient_id``, ``PATIENT`` -> ``patients.Id``)
role      ends with ``_k`` (``GENDER_CONCEPT_ID`` -> ``CONCEPT_ID``)     >= 90%
similar   holds the parent's name or an abbreviation (``pt_id``,         >= 90%
          ``patient_ref``)
values    says nothing of the parent: a key-named column (``id``) or     >= 95%
          text keys (UUIDs) found in ``k``
========= ============================================================ ==============

Shipped extracts have broken links, so an exact name needs only some overlap: its orphans are
reported (and ``orphans=`` of the multi-table model says what to do with them). An exact, stem
or role match below its threshold is reported as *broken* and not linked
(``staff_schedule.staff_id`` holds none of ``staff.staff_id``; OMOP's ``GENDER_CONCEPT_ID``
values are not in a vocabulary extract); a merely similar name below its threshold is a
coincidence and is not reported. Each column links to the best candidate (strongest name, then most
inclusion); when two candidates tie, the column is *ambiguous*: nothing is linked, the options
are listed and validation asks the user to choose. A link that would close a cycle of tables
is left out and reported. Keys into the table's own rows (a case-control set, a manager, a
previous stay) are found by :func:`clinsynth.metadata._self_links.refers_to_own_key`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clinsynth.metadata._keys import KeyEvidence, key_named, singular
from clinsynth.metadata._link_checks import ids_to_codes
from clinsynth.metadata._link_choice import (
    MIN_INCLUSION,
    LinkCandidate,
    add_without_cycles,
    choose_links,
)
from clinsynth.metadata._link_names import name_match
from clinsynth.metadata._metadata import Metadata
from clinsynth.metadata._self_links import (
    SELF_REFERENCE_NAME,
    refers_to_own_key,
    self_pointing_share,
)

#: Share of the parent's keys that numbers linked by values alone must use: a few small codes
#: (8507, 8532) fall inside any large range of integer keys by chance.
MIN_VALUES_COVERAGE = 0.5


def detect_links(
    data: dict[str, pd.DataFrame], md: Metadata, evidence: dict[str, KeyEvidence]
) -> tuple[list[dict], list[LinkCandidate], list[dict]]:
    """Relationships, every candidate with its evidence, and the ambiguous columns.

    ``md`` holds the detected tables with their primary keys; linked and ambiguous columns get
    the sdtype ``id``, id-named columns that link nowhere and repeat few values become
    ``categorical`` codes. See the module docstring for the rules.
    """
    parents = _parent_keys(data, md)
    artefacts = {(t, a["column"]) for t, e in evidence.items() for a in e.artefacts}
    own_keys = {
        (t, n["column"])  # a column named after its own table is its (broken) key, not a link
        for t, e in evidence.items()
        for n in e.not_unique
        if _named_after(n["column"], t)
    }
    by_column: dict[tuple[str, str], list[LinkCandidate]] = {}
    for child, ctable in md.tables.items():
        if child not in data:
            continue
        for column, spec in ctable.columns.items():
            if column == ctable.primary_key or column not in data[child].columns:
                continue
            if (child, column) in artefacts or (child, column) in own_keys:
                continue
            found = _candidates(child, column, spec, data[child], parents, md)
            if found:
                by_column[(child, column)] = found
    chosen, ambiguous = choose_links(by_column)
    relationships = add_without_cycles(chosen, md)
    candidates = [c for found in by_column.values() for c in found]
    candidates += _not_key_candidates(data, md, evidence, by_column)
    for link in relationships:
        md.tables[link["child_table_name"]].columns[link["child_foreign_key"]] = {"sdtype": "id"}
    for item in ambiguous:
        md.tables[item["child_table_name"]].columns[item["child_foreign_key"]] = {"sdtype": "id"}
    keep = {(r["child_table_name"], r["child_foreign_key"]) for r in relationships}
    keep |= {(a["child_table_name"], a["child_foreign_key"]) for a in ambiguous}
    ids_to_codes(data, md, keep)
    order = {name: i for i, name in enumerate(md.tables)}
    relationships.sort(
        key=lambda r: (
            order[r["parent_table_name"]],
            order[r["child_table_name"]],
            r["child_foreign_key"],
        )
    )
    return relationships, candidates, ambiguous


def _parent_keys(data: dict[str, pd.DataFrame], md: Metadata) -> dict[str, tuple]:
    """Per table with a key: (key name, index of its values, numeric?, number of keys)."""
    out = {}
    for name, table in md.tables.items():
        pk = table.primary_key
        if pk is None or name not in data or pk not in data[name].columns:
            continue
        values = data[name][pk].dropna()
        if len(values) == 0:
            continue
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        out[name] = (pk, pd.Index(values.unique()), numeric, len(values))
    return out


def _named_after(column: str, table: str) -> bool:
    stem = singular(table).lower()
    return column.lower() in (f"{stem}_id", f"{stem}id", stem)


def _candidates(
    child: str,
    column: str,
    spec: dict,
    frame: pd.DataFrame,
    parents: dict[str, tuple],
    md: Metadata,
) -> list[LinkCandidate]:
    series = frame[column]
    if spec["sdtype"] in ("datetime", "boolean", "text", "unknown"):
        return []
    values = series.dropna()
    if len(values) == 0 or pd.api.types.is_bool_dtype(values):
        return []
    numeric = pd.api.types.is_numeric_dtype(values)
    if numeric and not _whole(values):
        return []
    counts = values.value_counts(sort=False)
    found = []
    for parent, (pk, index, pnumeric, n_keys) in parents.items():
        if parent == child:
            own = _self_candidate(child, column, series, frame, pk, counts)
            if own is not None:
                found.append(own)
            continue
        match = name_match(column, pk, parent)
        if match is None:
            if not _values_may_link(spec, numeric, counts, len(values)):
                continue
            match = "values"
        if numeric != pnumeric:
            if match in ("exact", "stem"):
                found.append(
                    LinkCandidate(
                        child, column, parent, pk, match, 0.0, len(values), len(values),
                        status="broken",
                        note=f"'{column}' and '{pk}' hold different kinds of values "
                        "(numbers vs text); convert one of them to link",
                    )
                )  # fmt: skip
            continue
        inside = counts.index.isin(index)
        kept = int(counts.to_numpy()[inside].sum())
        inclusion = kept / len(values)
        coverage = float(inside.sum()) / max(n_keys, 1)
        if match == "values" and (
            inclusion < MIN_INCLUSION["values"] or (numeric and coverage < MIN_VALUES_COVERAGE)
        ):
            continue
        if match == "similar" and inclusion < MIN_INCLUSION[match]:
            continue  # a coincidence of names, not a broken link
        found.append(
            LinkCandidate(
                child, column, parent, pk, match, inclusion, len(values) - kept, len(values),
                coverage=coverage,
            )
        )  # fmt: skip
    for cand in found:
        if cand.status == "candidate" and not cand.accepted:
            cand.status = "broken"
            needed = MIN_INCLUSION[cand.match]
            cand.note = (
                f"the name says '{cand.parent}.{cand.key}' but {cand.inclusion:.0%} of its values "
                f"are there ({f'at least {needed:.0%}' if needed else 'some'} needed): not linked"
            )
    return found


def _values_may_link(spec: dict, numeric: bool, counts: pd.Series, rows: int) -> bool:
    """Whether a column whose name says nothing of a parent may link by its values alone:
    key-named numbers that repeat (a unique column is a key of its own table, and small
    integers match any counter), or text keys."""
    if len(counts) < 2:
        return False
    if numeric:
        return spec["sdtype"] == "id" and len(counts) < rows
    return spec["sdtype"] in ("id", "mrn", "email", "categorical")


def _self_candidate(
    child: str,
    column: str,
    series: pd.Series,
    frame: pd.DataFrame,
    pk: str,
    counts: pd.Series,
) -> LinkCandidate | None:
    if not key_named(column) and not SELF_REFERENCE_NAME.search(column):
        return None
    key = frame[pk]
    if not refers_to_own_key(column, series, key):
        return None
    if _is_artefact_key(key) and not SELF_REFERENCE_NAME.search(column):
        return None
    inside = counts.index.isin(pd.Index(key.dropna().unique()))
    kept = int(counts.to_numpy()[inside].sum())
    rows = int(counts.sum())
    share = self_pointing_share(series, key)
    note = f"a key into its own rows; {share:.0%} of the rows point to themselves"
    return LinkCandidate(
        child, column, child, pk, "self", kept / rows, rows - kept, rows,
        coverage=float(inside.sum()) / max(key.notna().sum(), 1), note=note,
    )  # fmt: skip


def _is_artefact_key(key: pd.Series) -> bool:
    from clinsynth.metadata._keys import artefact_kind

    return artefact_kind(str(key.name), key) is not None


def _not_key_candidates(
    data: dict[str, pd.DataFrame],
    md: Metadata,
    evidence: dict[str, KeyEvidence],
    by_column: dict[tuple[str, str], list[LinkCandidate]],
) -> list[LinkCandidate]:
    """Same-named columns that point to a column which is not the parent's key: a unique
    column of the parent (``staff_schedule.staff_name`` -> ``staff.staff_name``) or part of
    its composite key (``patients.service`` -> ``services_weekly``'s (week, service))."""
    out = []
    linked = {k for k, found in by_column.items() if any(c.status == "linked" for c in found)}
    for parent, ptable in md.tables.items():
        if parent not in data:
            continue
        composite = set(evidence.get(parent, KeyEvidence()).composite_key or ())
        pframe = data[parent]
        for pcol in ptable.columns:
            if pcol == ptable.primary_key or pcol not in pframe.columns:
                continue
            pvalues = pframe[pcol].dropna()
            if len(pvalues) == 0 or pd.api.types.is_numeric_dtype(pvalues):
                continue
            if ptable.columns[pcol]["sdtype"] in ("datetime", "text", "unknown"):
                continue
            unique = None
            for child, ctable in md.tables.items():
                if child == parent or child not in data or (child, pcol) in linked:
                    continue
                if pcol not in ctable.columns or pcol == ctable.primary_key:
                    continue
                if unique is None:
                    unique = pvalues.is_unique and len(pvalues) == len(pframe)
                if not unique and pcol not in composite:
                    break
                cvalues = data[child][pcol].dropna()
                if len(cvalues) == 0:
                    continue
                inclusion = float(cvalues.isin(pd.Index(pvalues.unique())).mean())
                if inclusion < (0.5 if unique else 0.9):
                    continue
                if unique:
                    note = (
                        f"'{parent}.{pcol}' identifies the rows of '{parent}' but is not its key "
                        f"('{ptable.primary_key}'): make it the key of '{parent}' to link on it"
                    )
                else:
                    note = (
                        f"'{pcol}' is part of the composite key "
                        f"({', '.join(evidence[parent].composite_key or [])}) of '{parent}': "
                        "links to a composite key are not modeled (it stays a category)"
                    )
                out.append(
                    LinkCandidate(
                        child, pcol, parent, pcol, "exact", inclusion,
                        int(round((1 - inclusion) * len(cvalues))), len(cvalues),
                        status="not a key", note=note,
                    )
                )  # fmt: skip
    return out


def _whole(values: pd.Series) -> bool:
    if pd.api.types.is_integer_dtype(values):
        return True
    array = np.asarray(values, dtype=np.float64)
    return bool(np.all(array == np.round(array)))
