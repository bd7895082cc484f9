"""Metadata: column sdtypes, keys, feature groups, relationships; detection and validation."""

from clinsynth.metadata._detect import (
    detect_column,
    detect_datetime_format,
    refers_to_own_key,
)
from clinsynth.metadata._metadata import Metadata
from clinsynth.metadata._sdtypes import KNOWN as SDTYPES
from clinsynth.metadata._sdtypes import PII as PII_SDTYPES
from clinsynth.metadata._sdtypes import is_pii
from clinsynth.metadata._sequences import (
    detect_sequence,
    sequence_index_candidates,
    sequence_key_candidates,
)
from clinsynth.metadata._table import TableMetadata

__all__ = [
    "Metadata",
    "TableMetadata",
    "SDTYPES",
    "PII_SDTYPES",
    "is_pii",
    "detect_column",
    "detect_datetime_format",
    "refers_to_own_key",
    "detect_sequence",
    "sequence_key_candidates",
    "sequence_index_candidates",
]
