"""One training loop with pluggable objectives (natural, trades, pgd-at, atta, trades+atta)."""

from interpretgan.training.loop import TrainData, build_model, evaluate, fit, fit_in, load_train_data
from interpretgan.training.objectives import ATTA, Natural, Objective, Trades, make_objective

__all__ = ["ATTA", "Natural", "Objective", "TrainData", "Trades", "build_model", "evaluate", "fit", "fit_in", "load_train_data", "make_objective"]
