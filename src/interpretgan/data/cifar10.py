"""CIFAR-10 from the official python-pickle batches, read from the ``.tar.gz`` without extracting it.

The batches are pickles, and unpickling can run code: ``SafeUnpickler`` resolves only the three
numpy names an array needs and refuses every other global.
"""

from __future__ import annotations

import io
import logging
import pickle
import tarfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from interpretgan.data import integrity
from interpretgan.data.base import ArrayDataset, DatasetInfo, resize_images
from interpretgan.data.cache import cached
from interpretgan.errors import DataError

logger = logging.getLogger(__name__)

INFO = DatasetInfo(
    name="cifar10",
    num_classes=10,
    channels=3,
    default_image_size=32,
    splits=("train", "test"),
    classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
)

ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
BATCH_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
# Known facts about the official data, checked when the md5 is not the official one.
CLASS_COUNTS = {"train": (5000,) * 10, "test": (1000,) * 10}
FIRST_LABELS = {"train": [6, 9, 9, 4, 1], "test": [3, 8, 8, 0, 6]}
CHANNEL_MEANS = {"train": (0.4914, 0.4822, 0.4465), "test": (0.4942, 0.4851, 0.4504)}
#: integrity.check_fingerprint's values: sha256 (16 hex digits) of images [0, 1, N/2, N-1] and their labels.
FINGERPRINTS = {"train": ("e0e681aa86c87289", [6, 9, 6, 1]), "test": ("d15806572b24b511", [3, 8, 7, 7])}
_MEAN_TOLERANCE = 0.001
_PIXELS = 3 * 32 * 32

try:  # numpy >= 2 moved numpy.core to numpy._core; the batches name the old module.
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle asked for a global outside the allowed numpy names."""


class SafeUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes, ints and numpy arrays; refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise ForbiddenGlobal(f"{module}.{name}") from None


def unpickle_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """A batch's images ``(n, 3072)`` uint8 and labels ``(n,)`` uint8 from its pickle bytes."""
    try:
        batch = SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except ForbiddenGlobal as exc:
        raise DataError(
            f"CIFAR-10 batch {where} asks the unpickler for {exc}, which is refused; "
            "expected only numpy arrays, dicts, lists, bytes and ints."
        ) from None
    except Exception as exc:  # any malformed pickle: EOFError, UnpicklingError, ValueError, ...
        raise DataError(f"CIFAR-10 batch {where} is not a valid pickle ({type(exc).__name__}: {exc}).") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"CIFAR-10 batch {where} is not a dict with b'data' and b'labels' entries.")
    images, labels = batch[b"data"], batch[b"labels"]
    if not (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 2
            and images.shape[1] == _PIXELS):
        shape = getattr(images, "shape", type(images).__name__)
        raise DataError(f"CIFAR-10 batch {where} holds data of shape {shape}, expected uint8 (n, 3072).")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"CIFAR-10 batch {where} holds labels that are not a list of integers.") from None
    if labels.shape != (len(images),):
        raise DataError(f"CIFAR-10 batch {where} holds {labels.shape} labels, expected {len(images)}.")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"CIFAR-10 batch {where} holds labels outside 0-9.")
    return images, labels.astype(np.uint8)


def find(root: Path) -> Path | None:
    """The extracted ``cifar-10-batches-py`` folder if it holds every batch, else the archive, else
    the incomplete folder (so that the error names the missing batch), else None."""
    folder, archive = root / FOLDER, root / ARCHIVE
    if all((folder / name).is_file() for name in BATCH_MD5):
        return folder
    if archive.is_file():
        return archive
    return folder if folder.is_dir() else None


def locate(root: Path, download: bool = False) -> Path:
    """The archive or folder to read, downloading the archive if asked and nothing is found."""
    source = find(root)
    if source is None and download:
        source = integrity.download(URL, root / ARCHIVE, ARCHIVE_MD5)
    if source is None:
        raise DataError(
            f"no CIFAR-10 data found under {root}; expected {root / ARCHIVE} or {root / FOLDER}/ "
            "(pass --download to fetch it)."
        )
    return source


def source_files(source: Path, names: tuple[str, ...]) -> list[Path]:
    """The files ``names`` is read from: the archive, or the batch files of an extracted folder."""
    if not source.is_dir():
        return [source]
    paths = [source / name for name in names]
    for path in paths:
        if not path.is_file():
            raise DataError(f"CIFAR-10 batch file {path} not found; expected the official {path.name}.")
    return paths


def _read_members(source: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    if source.is_dir():
        try:
            return {path.name: path.read_bytes() for path in source_files(source, names)}
        except OSError as exc:
            raise DataError(f"cannot read CIFAR-10 batch {exc.filename} ({exc.strerror}).") from None
    found: dict[str, bytes] = {}
    try:
        # Stream mode reads the archive once, front to back, and never writes to disk.
        with tarfile.open(source, mode="r|gz") as tar:
            for member in tar:
                head, _, base = member.name.rpartition("/")
                if member.isfile() and base in names and head.endswith(FOLDER):
                    found[base] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"CIFAR-10 archive {source} is not a valid .tar.gz or is truncated ({exc}).") from None
    missing = [name for name in names if name not in found]
    if missing:
        raise DataError(f"CIFAR-10 archive {source} lacks {FOLDER}/{missing[0]}; expected the official archive.")
    return found


def read_split(
    source: Path, split: str, *, verify: bool = True
) -> tuple[np.ndarray, np.ndarray, str]:
    """Images ``(N, 3, 32, 32)`` uint8, labels ``(N,)`` uint8 and the integrity verdict of ``split``."""
    names = BATCHES[split]
    members = _read_members(source, names)
    parts = [unpickle_batch(members[name], f"{name} in {source}") for name in names]
    images = np.concatenate([p[0] for p in parts]).reshape(-1, 3, 32, 32)
    labels = np.concatenate([p[1] for p in parts])
    if not verify:
        return images, labels, integrity.SKIPPED
    if source.is_dir():
        official = all(integrity.md5_bytes(members[name]) == BATCH_MD5[name] for name in names)
    else:
        official = integrity.file_digest(source) == ARCHIVE_MD5
    if official:
        return images, labels, integrity.OFFICIAL_MD5
    logger.info("CIFAR-10 %s: %s is not the official file; using content checks", split, source)
    _content_checks(source, split, images, labels)
    return images, labels, integrity.CONTENT_CHECKS


def _content_checks(source: Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    integrity.check_counts(source, labels, CLASS_COUNTS[split], INFO.num_classes)
    first = labels[:5].tolist()
    if first != FIRST_LABELS[split]:
        raise integrity.content_failure(source, f"first five {split} labels", first, FIRST_LABELS[split])
    means = [round(float(images[:, c].mean(dtype=np.float64)) / 255.0, 4) for c in range(3)]
    expected = CHANNEL_MEANS[split]
    if any(abs(m - e) > _MEAN_TOLERANCE for m, e in zip(means, expected)):
        raise integrity.content_failure(source, f"per-channel pixel mean of the {split} images", means, list(expected))
    integrity.check_fingerprint(source, source, images, labels, FINGERPRINTS[split])


def load(
    root: Path, split: str, image_size: int, *, verify: bool, download: bool, cache_dir: str | Path | None
) -> ArrayDataset:
    """CIFAR-10 ``split`` as uint8 ``(N, 3, image_size, image_size)`` with int64 labels ``(N,)``."""
    source = locate(root, download)
    files = source_files(source, BATCHES[split])

    def build() -> tuple[np.ndarray, np.ndarray, dict]:
        images, labels, verdict = read_split(source, split, verify=verify)
        x = resize_images(torch.from_numpy(images), image_size).numpy()
        return x, labels.astype(np.int64), {"verdict": verdict, "source": str(source)}

    x, y, meta = cached(
        cache_dir, name=INFO.name, split=split, image_size=image_size,
        sources=files, verify=verify, build=build,
    )
    return ArrayDataset(torch.from_numpy(x), torch.from_numpy(y), INFO.name, split, list(INFO.classes), meta)
