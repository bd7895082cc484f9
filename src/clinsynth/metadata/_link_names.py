"""Name matching between a child column and a parent's key: exact, stem, role, similar (a
token of the parent's name or its abbreviation); see :mod:`clinsynth.metadata._links`."""

from __future__ import annotations

import re

from clinsynth.metadata._keys import GENERIC_KEYS, singular

_NOT_NAME_TOKENS = frozenset({"id", "key", "ref", "fk", "no", "nr", "number", "uuid", "code"})


def name_match(column: str, key: str, parent: str) -> str | None:
    """How the name of child column ``column`` relates to ``parent.key`` (see the module
    docstring), or None.

    >>> name_match("PERSON_ID", "PERSON_ID", "person"), name_match("PATIENT", "Id", "patients")
    ('exact', 'stem')
    >>> name_match("GENDER_CONCEPT_ID", "CONCEPT_ID", "concept")
    'role'
    >>> name_match("pt_id", "id", "patients")
    'similar'
    """
    lname, lkey = column.lower(), key.lower()
    generic = lkey in GENERIC_KEYS
    if lname == lkey:
        return "stem" if generic else "exact"
    stem = singular(parent).lower()
    if lname in (stem, f"{stem}_id", f"{stem}id", f"{stem}.id", f"{stem}_key"):
        return "stem"
    if not generic and (lname.endswith("_" + lkey) or lname.endswith("." + lkey)):
        return "role"
    targets = {stem, *_tokens(key)} - _NOT_NAME_TOKENS
    for token in _tokens(column):
        for target in targets:
            if len(target) < 3:
                continue
            if token == target or (
                len(token) >= 2 and target.startswith(token) and token[0] == target[0]
            ):
                return "similar"
            if len(token) >= 2 and _abbreviates(token, target):
                return "similar"
    return None


def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return [t for t in re.split(r"[\s_.\-]+", spaced.lower()) if t and t not in _NOT_NAME_TOKENS]


def _abbreviates(short: str, word: str) -> bool:
    """``pt`` for ``patient``, ``enc`` for ``encounter``: same first letter, letters in order."""
    if short[0] != word[0] or len(short) >= len(word):
        return False
    rest = iter(word[1:])
    return all(ch in rest for ch in short[1:])
