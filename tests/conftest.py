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


@pytest.fixture
def tiny_data() -> TrainData:
    return TrainData(synthetic_digits(192, seed=0), synthetic_digits(64, seed=1, split="test"), num_classes=4, channels=1)


@pytest.fixture(scope="session")
def data_root() -> Path:
    value = os.environ.get("INTERPRETGAN_DATA")
    if not value or not Path(value).is_dir():
        pytest.skip("INTERPRETGAN_DATA is not set to a data folder; real-data tests need it")
    return Path(value)
