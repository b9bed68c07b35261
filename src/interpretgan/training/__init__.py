"""One training loop with pluggable objectives (natural, trades, pgd-at, atta, trades+atta)."""

from interpretgan.training.loop import (
           MemoryTrainStore,
           TrainData,
           TrainStore,
           build_model,
           evaluate,
           load_train_data,
           train_classifier,
)
from interpretgan.training.objectives import ATTA, Natural, Objective, Trades, make_objective

__all__ = [
    "ATTA",
    "MemoryTrainStore",
    "Natural",
    "Objective",
    "TrainData",
    "TrainStore",
    "Trades",
    "build_model",
    "evaluate",
    "load_train_data",
    "make_objective",
    "train_classifier",
]
