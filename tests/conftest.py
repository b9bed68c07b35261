"""Shared fixtures: a tiny learnable synthetic dataset and the data root (skip when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from interpretgan.data import ArrayDataset
from interpretgan.models import TappedModel, make_pool, register
from interpretgan.training import TrainData


@register("tiny-test")
class TinyNet(TappedModel):
    """A two-stage CNN small enough to train in a fraction of a second (tests only)."""

    def __init__(self, *, pool="max", in_channels=1, num_classes=4, image_size=16, dropout=0.0):
        super().__init__(
            dict(pool=pool, in_channels=in_channels, num_classes=num_classes, image_size=image_size, dropout=dropout)
        )
        self.stages = nn.ModuleDict(
            {
                "conv1": nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(), make_pool(pool)),
                "fc1": nn.Sequential(
                    nn.Flatten(), nn.Linear(8 * (image_size // 2) ** 2, 32), nn.ReLU(), nn.Dropout(dropout)
                ),
                "fc2": nn.Linear(32, num_classes),
            }
        )


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


#: The attack tests' problem (test_attacks, test_autoattack): classes are the quadrant holding a blob.
K = 4
SIZE = 16


def make_blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images (n, 1, 16, 16) in [0, 1]: a Gaussian blob in quadrant ``y``, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, K, (n,), generator=g)
    cy = 4.0 + 8.0 * (y // 2).float() + torch.rand(n, generator=g) * 2 - 1
    cx = 4.0 + 8.0 * (y % 2).float() + torch.rand(n, generator=g) * 2 - 1
    r = torch.arange(SIZE, dtype=torch.float32)
    d2 = (r.view(1, -1, 1) - cy.view(-1, 1, 1)) ** 2 + (r.view(1, 1, -1) - cx.view(-1, 1, 1)) ** 2
    x = torch.exp(-d2 / 6.0) + 0.15 * torch.randn(n, SIZE, SIZE, generator=g)
    return x.clamp(0, 1).unsqueeze(1), y


class TinyCNN(nn.Module):
    """Two conv stages (BatchNorm, dropout: modes to restore) and a head over :func:`make_blobs`'s ``K`` classes."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(16 * 4 * 4, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, K))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@pytest.fixture(scope="module")
def trained(one_thread) -> TinyCNN:
    """:class:`TinyCNN` trained for 300 seeded Adam steps on the blobs (one per test module), in eval mode."""
    torch.manual_seed(0)
    model = TinyCNN()
    x, y = make_blobs(2048, seed=1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(2)
    model.train()
    for _ in range(300):
        idx = torch.randint(0, len(x), (64,), generator=g)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    for p in model.parameters():
        p.grad = None
    return model


@pytest.fixture
def tiny_data() -> TrainData:
    return TrainData(
        synthetic_digits(192, seed=0), synthetic_digits(64, seed=1, split="test"), num_classes=4, channels=1
    )


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
    from interpretgan.config.presets import resolve_explain_config
    from interpretgan.models import create_model
    from interpretgan.pipeline.checkpoints import save_model
    from interpretgan.pipeline.explain import create_explain_run, train_run
    from interpretgan.pipeline.runs import Run

    root = tmp_path_factory.mktemp("sample-explain")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        f = create_model("smallcnn")
        nn.init.normal_(f.stages["fc3"].weight, std=0.3)  # TRADES' zero last layer would give one label
        cls_run = Run.create(root, "cls", "train", {"dataset": "mnist-sample", "model": "smallcnn", "pool": "max",
                                                   "objective": "natural"})
        save_model(cls_run.ckpt_dir, f)
        cfg = resolve_explain_config(
            "mnist-sample", "smoke", {"scale_iterations": [2], "n_test": 40, "eval_batch_size": 20}
        )
        run = create_explain_run(cls_run, cfg, root / "explain")
        train_run(run, progress=False)
    return run
