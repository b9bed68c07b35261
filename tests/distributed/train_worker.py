"""Trains a SmallCNN without dropout (so that the ranks draw no masks of their own) on the embedded MNIST
sample; run alone and under torchrun by tests/test_distributed.py, which compares the weights.

    train_worker.py OBJECTIVE OUT.safetensors BATCH_SIZE plain|augment [RUN_ROOT STOP_AFTER_EPOCHS|resume]

With RUN_ROOT the training goes into a run folder there (stopped after that many epochs, or resumed).
"""

import sys

import torch
from safetensors.torch import save_file

from interpretgan import distributed
from interpretgan.config.presets import resolve_train_config
from interpretgan.pipeline.runs import Run, find_run
from interpretgan.pipeline.train import RunTrainStore
from interpretgan.training import build_model, load_train_data, train_classifier

objective, out, batch_size, augment = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "augment"
distributed.setup(torch.device("cpu"))
cfg = resolve_train_config("mnist-sample", objective, "smoke", {
    "model_kwargs": {"dropout": 0.0}, "n_train": 192, "n_test": 64, "batch_size": batch_size, "augment": augment,
})
store, stop, resume = None, None, False
if len(sys.argv) > 5:
    root, when = sys.argv[5], sys.argv[6]
    run = find_run(root, "w") or Run.create(root, "w", "train", cfg.to_dict())
    store, resume = RunTrainStore(run), when == "resume"
    stop = None if resume else int(when)
data = load_train_data(cfg)
start = build_model(cfg, data).state_dict()
res = train_classifier(cfg, store, data=data, progress=False, resume=resume, stop_after_epochs=stop)
if distributed.is_main():  # the trained weights and, under "start.", the initial ones
    weights = {**res["model"].state_dict(), **{f"start.{k}": v for k, v in start.items()}}
    save_file({k: v.contiguous() for k, v in weights.items()}, out)
distributed.teardown()
