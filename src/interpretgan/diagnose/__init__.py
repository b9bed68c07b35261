"""Diagnosis (Section 5): per-layer accuracy and vulnerability (Eq. 5, Table 1), max-pool index
change, label transitions, and the max- vs average-pooling comparison (Tables 2 and 3), on tensors
(:mod:`interpretgan.pipeline.diagnose` and :mod:`interpretgan.pipeline.study` run them on run folders)."""

from interpretgan.diagnose.indices import max_pools, maxpool_index_change
from interpretgan.diagnose.pooling import PAPER_POOLING, POOLING_ATTACKS, binomial_interval, pooling_table
from interpretgan.diagnose.table1 import diagnose
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
    "diagnose",
    "marked_layers",
    "max_pools",
    "maxpool_index_change",
    "paper_model_kind",
    "pooling_table",
    "vulnerability",
    "vulnerability_table",
    "with_paper",
]
