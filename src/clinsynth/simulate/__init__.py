"""Built-in simulators: clinsynth's embedded default data.

- :func:`simulate_population`: patients from a knowledge graph of genetic variants,
  environmental exposures, diseases, labs and medications (one table);
- :func:`simulate_cohort`: 20 clinical features and a condition label with clinically plausible
  correlations and rules that hold on every row (one table);
- :func:`simulate_hospital`: patients, visits and lab results with valid keys and dates
  (three related tables);
- :func:`simulate_case_control`: a case-control study matched 1:4 on age and sex, each
  control's ``case.id`` pointing to its case's row (one table with a self-reference).
- :func:`simulate_lab_trajectories`: repeated lab results per patient over time (one table of
  sequences, for :class:`~clinsynth.SequentialSynthesizer`).

Every simulator returns the data with its :class:`~clinsynth.Metadata`, is vectorized (no loop
over patients) and gives the same data for the same ``seed``. The values are plausible, not
epidemiological: use them for teaching and testing, not to estimate real risks.
"""

from clinsynth.simulate._case_control import simulate_case_control
from clinsynth.simulate._cohort import (
    COHORT_CONDITIONS,
    COHORT_ORDER_RULES,
    COHORT_RANGES,
    simulate_cohort,
)
from clinsynth.simulate._common import egfr_ckd_epi_2021
from clinsynth.simulate._graph import default_graph_path, load_graph
from clinsynth.simulate._hospital import HOSPITAL_ORDER_RULES, simulate_hospital
from clinsynth.simulate._population import simulate_population
from clinsynth.simulate._trajectories import simulate_lab_trajectories

__all__ = [
    "simulate_population",
    "simulate_cohort",
    "simulate_hospital",
    "simulate_case_control",
    "simulate_lab_trajectories",
    "COHORT_CONDITIONS",
    "COHORT_ORDER_RULES",
    "COHORT_RANGES",
    "HOSPITAL_ORDER_RULES",
    "load_graph",
    "default_graph_path",
    "egfr_ckd_epi_2021",
]
