"""Trains the explainers of a classifier run into an explain run folder at the smoke preset (8 iterations a
layer, all 7 layers in the joint loop), stopped after some iterations or resumed; run alone and under
torchrun by tests/test_distributed.py, which compares the explainers with an uninterrupted run's.

    explain_worker.py CLASSIFIER_RUN RUN_ROOT STOP_AFTER_ITERATIONS|resume [LAYERS]

LAYERS (comma-separated) restricts the training to those layers.
"""

import logging
import sys

import torch

from interpretgan import distributed
from interpretgan.config.presets import resolve_explain_config
from interpretgan.pipeline.explain import create_explain_run, train_run
from interpretgan.pipeline.runs import find_run

classifier_run, root, when = sys.argv[1], sys.argv[2], sys.argv[3]
logging.basicConfig(level=logging.INFO)  # the test reads where a resumed loop starts
distributed.setup(torch.device("cpu"))
layers = sys.argv[4].split(",") if len(sys.argv) > 4 else []
cfg = resolve_explain_config("mnist-sample", "smoke",
                             {"scale_iterations": [2, 2, 2, 2], "n_test": 40, "layers": layers})
run = find_run(root, "e") or create_explain_run(classifier_run, cfg, root, "e")
if when == "resume":
    train_run(run, resume=True, progress=False)
else:
    train_run(run, progress=False, stop_after_iterations=int(when))
distributed.teardown()
