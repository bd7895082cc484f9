"""Referential checks between tables: orphans, key type mismatches and duplicate parent keys.

:func:`find_orphans` measures every relationship (vectorized, one ``isin`` per link) and returns
structured findings; :func:`relationship_problems` words them for
:meth:`~clinsynth.Metadata.validate_data`, with counts, examples and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from clinsynth.metadata._metadata import Metadata

#: Examples quoted per problem.
MAX_EXAMPLES = 3


@dataclass
class OrphanFinding:
    """The rows of one relationship whose foreign key matches no parent key.

    Attributes
    ----------
    parent, parent_key, child, foreign_key : str
        The relationship.
    orphans : int
        Child rows whose non-null key is not a parent key.
    rows : int
        Child rows in total.
    examples : list
        A few distinct orphan key values.
    type_mismatch : bool
        The parent and child keys hold different kinds of values (numbers vs text), which
        usually explains a 100% orphan rate.
    """

    parent: str
    parent_key: str
    child: str
    foreign_key: str
    orphans: int
    rows: int
    examples: list = field(default_factory=list)
    type_mismatch: bool = False

    @property
    def share(self) -> float:
        return self.orphans / self.rows if self.rows else 0.0

    def describe(self) -> str:
        text = (
            f"table '{self.child}', column '{self.foreign_key}': {self.orphans} of {self.rows} "
            f"rows point to no row of '{self.parent}.{self.parent_key}' ({self.share:.1%}; "
            f"orphans; e.g. {self.examples})."
        )
        if self.type_mismatch:
            text += (
                f" The keys hold different kinds of values ('{self.foreign_key}' and "
                f"'{self.parent_key}': numbers vs text); convert one of them."
            )
        return text + " Drop those rows, set their key to empty, or add the missing parents."


def orphan_mask(parent_keys: pd.Series, child_keys: pd.Series) -> pd.Series:
    """True for the child rows whose non-null key is not among ``parent_keys``.

    >>> orphan_mask(pd.Series([1, 2]), pd.Series([1, 3, None])).tolist()
    [False, True, False]
    """
    return child_keys.notna() & ~child_keys.isin(parent_keys.dropna())


def find_orphans(md: Metadata, tables: dict[str, pd.DataFrame]) -> list[OrphanFinding]:
    """Every relationship of ``md`` that has orphan rows in ``tables``.

    Relationships whose tables or key columns are missing from ``tables`` are skipped (other
    checks report those).

    Examples
    --------
    >>> md = Metadata.from_dict({"tables": {
    ...     "p": {"columns": {"id": {"sdtype": "id"}}, "primary_key": "id"},
    ...     "c": {"columns": {"pid": {"sdtype": "id"}}}},
    ...     "relationships": [{"parent_table_name": "p", "parent_primary_key": "id",
    ...                        "child_table_name": "c", "child_foreign_key": "pid"}]})
    >>> found = find_orphans(md, {"p": pd.DataFrame({"id": [1, 2]}),
    ...                           "c": pd.DataFrame({"pid": [1, 2, 7, 7]})})
    >>> found[0].orphans, found[0].examples
    (2, [7])
    """
    findings = []
    for rel in md.relationships:
        parent, child = rel.get("parent_table_name"), rel.get("child_table_name")
        pk, fk = rel.get("parent_primary_key"), rel.get("child_foreign_key")
        if not all(isinstance(tables.get(t), pd.DataFrame) for t in (parent, child)):
            continue
        if pk not in tables[parent].columns or fk not in tables[child].columns:
            continue
        pvalues, cvalues = tables[parent][pk], tables[child][fk]
        orphans = orphan_mask(pvalues, cvalues)
        count = int(orphans.sum())
        if count:
            findings.append(
                OrphanFinding(
                    parent=parent,
                    parent_key=pk,
                    child=child,
                    foreign_key=fk,
                    orphans=count,
                    rows=len(cvalues),
                    examples=[_plain(v) for v in cvalues[orphans].unique()[:MAX_EXAMPLES]],
                    type_mismatch=_kinds_differ(pvalues, cvalues),
                )
            )
    return findings


def relationship_problems(md: Metadata, tables: dict[str, pd.DataFrame]) -> list[str]:
    """One problem per broken relationship (orphans), with counts and examples."""
    return [finding.describe() for finding in find_orphans(md, tables)]


def _kinds_differ(a: pd.Series, b: pd.Series) -> bool:
    a, b = a.dropna(), b.dropna()
    if len(a) == 0 or len(b) == 0:
        return False
    return pd.api.types.is_numeric_dtype(a) != pd.api.types.is_numeric_dtype(b)


def _plain(value: object) -> object:
    value = value.item() if hasattr(value, "item") else value
    # Integer keys read from a CSV column with gaps come as floats: quote them as written.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
