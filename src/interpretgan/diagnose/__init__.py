"""Diagnosis (Section 5): per-layer accuracy and vulnerability (Eq. 5, Table 1), max-pool index
change, label transitions, and the max- vs average-pooling study (Tables 2 and 3)."""

from interpretgan.diagnose.indices import max_pools, maxpool_index_change
from interpretgan.diagnose.runner import diagnose_one, diagnose_run, vulnerability_markdown
from interpretgan.diagnose.study import PAPER_POOLING, POOLING_ATTACKS, binomial_interval, pooling_study, pooling_table
from interpretgan.diagnose.vulnerability import (
    PAPER_INDEX_CHANGE,
    PAPER_TABLE1,
    combine_runs,
    defined_drops,
    marked_layers,
    paper_model_kind,
    vulnerability,
    vulnerability_table,
    with_paper,
)

__all__ = [
    "PAPER_INDEX_CHANGE",
    "PAPER_POOLING",
    "PAPER_TABLE1",
    "POOLING_ATTACKS",
    "binomial_interval",
    "combine_runs",
    "defined_drops",
    "diagnose_one",
    "diagnose_run",
    "marked_layers",
    "max_pools",
    "maxpool_index_change",
    "paper_model_kind",
    "pooling_study",
    "pooling_table",
    "vulnerability",
    "vulnerability_markdown",
    "vulnerability_table",
    "with_paper",
]
