"""Relational synthesis on top of the single-table synthesizers.

- :class:`HierarchicalSynthesizer` (alias :data:`HMASynthesizer`): fit a whole schema (parents,
  children, grandchildren, several parents per table), sample it at any scale with unique
  primary keys, no orphan, consistent multi-parent keys and date order kept.
- :func:`evaluate_multi_table`: keys, orphans and cardinality (diagnostic) and fidelity per
  table, of the children-per-parent distributions and of parent-child correlations (quality).
"""

from clinsynth.evaluation import MultiTableReport
from clinsynth.multitable._evaluation import evaluate_multi_table
from clinsynth.multitable._hma import HierarchicalSynthesizer, HMASynthesizer

__all__ = [
    "HierarchicalSynthesizer",
    "HMASynthesizer",
    "MultiTableReport",
    "evaluate_multi_table",
]
