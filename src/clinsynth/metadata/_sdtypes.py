"""The sdtypes clinsynth knows, and which of them are personal data (PII)."""

from __future__ import annotations

#: Statistical sdtypes: learned from the data.
STATISTICAL = ("numerical", "categorical", "ordinal", "boolean", "datetime")
#: Keys: regenerated, never learned or copied.
KEYS = ("id",)
#: Personal data: replaced with realistic fakes, never learned or copied.
PII = ("name", "email", "phone_number", "address", "ssn", "mrn", "text")
#: Every sdtype clinsynth writes. Other sdtypes found in SDV metadata (``first_name``,
#: ``credit_card_number``, ...) are read as PII and faked with the Faker method of that name.
KNOWN = STATISTICAL + KEYS + PII
#: Written by detection when a column's type cannot be told (an empty column).
UNKNOWN = "unknown"

#: Integer and float representations, as SDV names them.
INTEGER_REPRESENTATIONS = ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64")
NUMERICAL_REPRESENTATIONS = ("Float", *INTEGER_REPRESENTATIONS)


def is_pii(column: dict) -> bool:
    """Whether a column's values are personal data that must never be learned or copied.

    >>> is_pii({"sdtype": "email"}), is_pii({"sdtype": "first_name"}), is_pii({"sdtype": "id"})
    (True, True, False)
    """
    sdtype = column.get("sdtype")
    return sdtype in PII or (sdtype not in KNOWN and sdtype != UNKNOWN)
