"""The embedded MNIST sample: 500 train digits and 100 test digits per class, shipped in the package.

It lets the smoke preset, the tests and the examples run without a data root. It is built by
``scripts/build_mnist_sample.py`` from the official MNIST files, and its sha256 is checked on load.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from interpretgan.data import integrity, mnist
from interpretgan.data.base import ArrayDataset, DatasetInfo
from interpretgan.data.cache import atomic_write
from interpretgan.errors import DataError

INFO = DatasetInfo(
    name="mnist-sample",
    num_classes=mnist.INFO.num_classes,
    channels=mnist.INFO.channels,
    default_image_size=mnist.INFO.default_image_size,
    splits=mnist.INFO.splits,
    classes=mnist.INFO.classes,
)

SAMPLE_FILE = "mnist_sample.npz"
SAMPLE_SHA256 = "d0f9a1d39078b1b66ff5e277024775b99979cd00b5a720799f3787b1d1d0ba8a"
PER_CLASS = {"train": 500, "test": 100}
SEED = 0


def sample_path() -> Path:
    """Where the embedded sample lives, inside the installed package."""
    return Path(__file__).with_name(SAMPLE_FILE)


def read_sample(
    split: str, path: Path | None = None, *, verify: bool = True
) -> tuple[np.ndarray, np.ndarray, str]:
    """The sample's 28x28 digits ``(N, 28, 28)`` uint8, labels ``(N,)`` uint8 and the integrity verdict."""
    path = path or sample_path()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(
            f"the embedded MNIST sample {path} cannot be read ({exc.strerror or exc}); reinstall interpretgan "
            "or rebuild it with scripts/build_mnist_sample.py."
        ) from None
    if verify:
        got = hashlib.sha256(data).hexdigest()
        if got != SAMPLE_SHA256:
            raise DataError(
                f"the embedded MNIST sample {path} has sha256 {got}, expected {SAMPLE_SHA256}; "
                "reinstall interpretgan or rebuild it with scripts/build_mnist_sample.py."
            )
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            digits, labels = npz[f"x_{split}"], npz[f"y_{split}"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"the embedded MNIST sample {path} is not a readable sample file ({exc}).") from None
    n = PER_CLASS[split] * INFO.num_classes
    well_formed = (digits.dtype, digits.shape, labels.dtype, labels.shape) == (
        np.uint8, (n, mnist.SIDE, mnist.SIDE), np.uint8, (n,)
    )
    if not well_formed or labels.max() >= INFO.num_classes:
        raise DataError(
            f"the embedded MNIST sample {path} holds {split} arrays of shape {digits.shape} and {labels.shape}, "
            f"expected uint8 ({n}, 28, 28) digits and ({n},) labels 0-9."
        )
    if not verify:
        return digits, labels, integrity.SKIPPED
    integrity.check_counts(path, labels, (PER_CLASS[split],) * INFO.num_classes, INFO.num_classes)
    return digits, labels, integrity.SHA256_MATCH


def load(split: str, image_size: int, *, verify: bool = True, path: Path | None = None) -> ArrayDataset:
    """Sample ``split`` as uint8 ``(N, 1, image_size, image_size)``, resized like MNIST, labels ``(N,)`` int64."""
    path = path or sample_path()
    digits, labels, verdict = read_sample(split, path, verify=verify)
    x = mnist.to_images(digits, image_size)
    meta = {"verdict": verdict, "source": str(path), "from_cache": False}
    return ArrayDataset(x, torch.from_numpy(labels.astype(np.int64)), INFO.name, split, list(INFO.classes), meta)


def select(labels: np.ndarray, per_class: int, seed: int = SEED) -> np.ndarray:
    """Indices of ``per_class`` examples of each class, drawn with a seeded generator, in ascending order."""
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False) for c in range(10)]
    return np.sort(np.concatenate(chosen))


def write_sample(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as a deflate-compressed ``.npz`` with fixed timestamps, so a rebuild is byte-identical."""
    with atomic_write(path) as f, zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buffer.getvalue(), compresslevel=9)
