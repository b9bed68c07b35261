"""The in-memory dataset every loader returns, the dataset description, batching and resizing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from interpretgan.errors import ConfigError, DataError

# Images are resized in chunks so that the float copy stays small (8192 x 3 x 64 x 64 floats = 400 MB).
_RESIZE_CHUNK = 8192


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is, independent of where its files are."""

    name: str
    num_classes: int
    channels: int
    default_image_size: int
    splits: tuple[str, ...]
    classes: tuple[str, ...]


@dataclass
class ArrayDataset:
    """A whole split held in memory.

    ``x`` is uint8 ``(N, C, H, W)`` at the requested image size, ``y`` int64 ``(N,)`` with values in
    ``0..len(classes)-1``. ``meta`` holds provenance: ``verdict`` (which integrity check passed),
    ``source`` (the file or folder read), ``from_cache`` and, for CelebA, ``found``/``listed`` counts.
    """

    x: torch.Tensor
    y: torch.Tensor
    name: str
    split: str
    classes: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.x.dtype != torch.uint8 or self.x.dim() != 4:
            raise DataError(
                f"dataset {self.name}/{self.split} has images of dtype {self.x.dtype} and shape "
                f"{tuple(self.x.shape)}, expected uint8 (N, C, H, W)."
            )
        if self.y.dtype != torch.int64 or self.y.shape != (self.x.shape[0],):
            raise DataError(
                f"dataset {self.name}/{self.split} has labels of dtype {self.y.dtype} and shape "
                f"{tuple(self.y.shape)}, expected int64 ({self.x.shape[0]},)."
            )

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def image_size(self) -> int:
        return int(self.x.shape[-1])

    @property
    def channels(self) -> int:
        return int(self.x.shape[1])

    def class_counts(self) -> list[int]:
        """Number of examples of each class, in the order of ``classes``."""
        return torch.bincount(self.y, minlength=len(self.classes)).tolist()

    def subset(self, n: int | None, seed: int = 0) -> ArrayDataset:
        """The first ``n`` examples after a permutation seeded by ``seed``; ``self`` when ``n`` is None or >= N."""
        if n is None or n >= len(self):
            return self
        if n < 1:
            raise ConfigError(f"subset size must be a positive integer, got {n}.")
        generator = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(self), generator=generator)[:n]
        meta = {**self.meta, "subset": {"n": n, "seed": seed}}
        return ArrayDataset(self.x[idx], self.y[idx], self.name, self.split, list(self.classes), meta)

    def float_batch(self, idx: torch.Tensor | slice | list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``x[idx]`` as float32 in [0, 1], shape ``(B, C, H, W)``, and labels ``y[idx]``, shape ``(B,)``."""
        return self.x[idx].float().div_(255.0), self.y[idx]


def iterate_batches(
    n: int,
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[torch.Tensor]:
    """Yield int64 index tensors of length ``batch_size`` (the last may be shorter unless ``drop_last``).

    With ``shuffle`` the order is ``torch.randperm(n, generator=generator)``, so a seeded generator
    gives the same batches every run.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be a positive integer, got {batch_size}.")
    if n < 0:
        raise ConfigError(f"number of examples must be >= 0, got {n}.")
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]


def check_image_size(image_size: int, option: str = "image_size") -> int:
    """Return ``image_size`` if it is a usable side length, else raise ConfigError."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or not 1 <= image_size <= 4096:
        raise ConfigError(f"{option} must be an integer between 1 and 4096, got {image_size!r}.")
    return image_size


def resize_images(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize uint8 images ``(N, C, H, W)`` to ``(N, C, size, size)``.

    Bilinear with ``align_corners=False`` on float, rounded back to uint8 (the paper's 28 -> 32 MNIST
    resize). Anti-aliasing is used only when shrinking; for enlarging it changes nothing.
    """
    if x.shape[-2:] == (size, size):
        return x
    shrink = size < max(x.shape[-2:])
    out = torch.empty((x.shape[0], x.shape[1], size, size), dtype=torch.uint8)
    for start in range(0, x.shape[0], _RESIZE_CHUNK):
        chunk = x[start : start + _RESIZE_CHUNK].float()
        chunk = F.interpolate(chunk, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)
        out[start : start + _RESIZE_CHUNK] = chunk.round_().clamp_(0, 255).to(torch.uint8)
    return out
