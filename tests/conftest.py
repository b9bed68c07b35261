"""Shared fixtures: a tiny learnable synthetic dataset and the data root (skip when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from torch import nn

from interpretgan.data import ArrayDataset
from interpretgan.models import TappedModel, make_pool, register
from interpretgan.training import TrainData


@register("tiny-test")
class TinyNet(TappedModel):
    """A two-stage CNN small enough to train in a fraction of a second (tests only)."""

    def __init__(self, *, pool="max", in_channels=1, num_classes=4, image_size=16, dropout=0.0):
        super().__init__(dict(pool=pool, in_channels=in_channels, num_classes=num_classes, image_size=image_size, dropout=dropout))
        self.stages = nn.ModuleDict({
            "conv1": nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(), make_pool(pool)),
            "fc1": nn.Sequential(nn.Flatten(), nn.Linear(8 * (image_size // 2) ** 2, 32), nn.ReLU(), nn.Dropout(dropout)),
            "fc2": nn.Linear(32, num_classes),
        })


def synthetic_digits(n: int, size: int = 16, num_classes: int = 4, seed: int = 0, split: str = "train") -> ArrayDataset:
    """Class k is a bright bar at a class-specific position plus noise: learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % num_classes
    x = torch.rand(n, 1, size, size, generator=g) * 0.3
    for k in range(num_classes):
        rows = slice(2 + 3 * k, 4 + 3 * k)
        x[y == k, :, rows, 2:-2] += 0.7
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    return ArrayDataset(x, y.long(), "synthetic", split, [str(k) for k in range(num_classes)])


@pytest.fixture(scope="module")
def one_thread():
    """Small tensors: one thread is faster and leaves the other core alone (use with ``usefixtures``)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_data() -> TrainData:
    return TrainData(synthetic_digits(192, seed=0), synthetic_digits(64, seed=1, split="test"), num_classes=4, channels=1)


@pytest.fixture(scope="session")
def data_root() -> Path:
    value = os.environ.get("INTERPRETGAN_DATA")
    if not value or not Path(value).is_dir():
        pytest.skip("INTERPRETGAN_DATA is not set to a data folder; real-data tests need it")
    return Path(value)


@pytest.fixture(scope="session")
def sample_explain_run(tmp_path_factory):
    """A SmallCNN on the embedded MNIST sample (random weights with a non-zero last layer) and a
    smoke explain run of all its layers: the input of the diagnosis, baselines and report tests."""
    from interpretgan.config import resolve_explain_config
    from interpretgan.explain import create_explain_run, train_run
    from interpretgan.models import create_model
    from interpretgan.runs import Run, save_model

    root = tmp_path_factory.mktemp("sample-explain")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        f = create_model("smallcnn")
        nn.init.normal_(f.stages["fc3"].weight, std=0.3)  # TRADES' zero last layer would give one label
        cls_run = Run.create(root, "cls", "train", {"dataset": "mnist-sample", "model": "smallcnn", "pool": "max",
                                                   "objective": "natural"})
        save_model(cls_run.ckpt_dir, f)
        cfg = resolve_explain_config("mnist-sample", "smoke", {"scale_iterations": [2], "n_test": 40, "eval_batch_size": 20})
        run = create_explain_run(cls_run, cfg, root / "explain")
        train_run(run, progress=False)
    return run
