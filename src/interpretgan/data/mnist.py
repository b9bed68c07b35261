"""MNIST from the official IDX files (``.gz`` or uncompressed), resized 28 -> 32 as in the paper."""

from __future__ import annotations

import gzip
import logging
import math
import zlib
from pathlib import Path

import numpy as np
import torch

from interpretgan.data import integrity
from interpretgan.data.base import ArrayDataset, DatasetInfo, resize_images
from interpretgan.data.cache import cached
from interpretgan.errors import DataError

logger = logging.getLogger(__name__)

INFO = DatasetInfo(
    name="mnist",
    num_classes=10,
    channels=1,
    default_image_size=32,
    splits=("train", "test"),
    classes=tuple(str(d) for d in range(10)),
)

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# md5 of the official uncompressed files, and of the official .gz archives.
RAW_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
GZ_MD5 = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
# Official per-digit counts, digits 0-9.
CLASS_COUNTS = {
    "train": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    "test": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
}
#: Mean pixel value (in [0, 1]) of the official images of each split: a content check of the images.
PIXEL_MEANS = {"train": 0.1307, "test": 0.1325}
#: integrity.check_fingerprint's values: sha256 (16 hex digits) of images [0, 1, N/2, N-1] and their labels.
FINGERPRINTS = {"train": ("cbab72aca5797054", [5, 0, 3, 8]), "test": ("175f61d7d43556b5", [7, 2, 3, 6])}
_MEAN_TOLERANCE = 0.001
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
SIDE = 28


def find(root: Path) -> Path | None:
    """The folder holding MNIST files: ``MNIST/raw``, ``mnist/raw``, ``MNIST``, ``mnist`` or ``root`` itself."""
    for folder in (root / "MNIST" / "raw", root / "mnist" / "raw", root / "MNIST", root / "mnist", root):
        if any(_file(folder, stem) for stems in FILES.values() for stem in stems):
            return folder
    return None


def _file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def locate(root: Path, split: str, download: bool = False) -> tuple[Path, Path]:
    """Paths of the (images, labels) files of ``split``, downloading the missing ones if asked."""
    folder = find(root)
    if folder is None and download:
        folder = root / "MNIST" / "raw"
    if folder is None:
        raise DataError(
            f"no MNIST files found under {root}; expected {root / 'MNIST' / 'raw'}/{FILES[split][0]}[.gz] "
            "(pass --download to fetch them)."
        )
    paths = []
    for stem in FILES[split]:
        path = _file(folder, stem)
        if path is None and download:
            path = integrity.download(MIRROR + f"{stem}.gz", folder / f"{stem}.gz", GZ_MD5[stem])
        if path is None:
            raise DataError(
                f"MNIST file {folder / stem}[.gz] not found; expected the official {stem}.gz or its contents."
            )
        paths.append(path)
    return paths[0], paths[1]


def read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it ends in ``.gz``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read MNIST file {path} ({exc.strerror or exc}).") from None
    if path.suffix != ".gz":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"MNIST file {path} is not a valid gzip file or is truncated ({exc}).") from None


def parse_idx(data: bytes, path: Path, magic: int) -> np.ndarray:
    """Parse an unsigned-byte IDX file: big-endian magic, big-endian dims, then the data."""
    kind = "images" if magic == IMAGES_MAGIC else "labels"
    if len(data) < 4:
        raise DataError(f"MNIST file {path} is truncated: it has {len(data)} bytes, fewer than an IDX header.")
    got = int.from_bytes(data[:4], "big")
    if got != magic:
        raise DataError(f"MNIST file {path} has IDX magic number {got}, expected {magic} for an {kind} file.")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"MNIST file {path} is truncated inside its IDX header.")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(dims)
    if len(data) != expected:
        state = "truncated" if len(data) < expected else "longer than its header says"
        raise DataError(
            f"MNIST file {path} is {state}: its header {dims} needs {expected} bytes, the file has {len(data)}."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_split(
    root: Path, split: str, *, verify: bool = True, download: bool = False
) -> tuple[np.ndarray, np.ndarray, str]:
    """Read the official 28x28 images ``(N, 28, 28)`` uint8, labels ``(N,)`` uint8 and the integrity verdict."""
    return read_files(*locate(root, split, download), split, verify=verify)


def read_files(
    images_path: Path, labels_path: Path, split: str, *, verify: bool
) -> tuple[np.ndarray, np.ndarray, str]:
    """``read_split`` for known paths."""
    raw_images, raw_labels = read_bytes(images_path), read_bytes(labels_path)
    images = parse_idx(raw_images, images_path, IMAGES_MAGIC)
    labels = parse_idx(raw_labels, labels_path, LABELS_MAGIC)
    if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        raise DataError(f"MNIST file {images_path} holds images of shape {images.shape[1:]}, expected (28, 28).")
    official_n = sum(CLASS_COUNTS[split])
    if labels.ndim == 1 and len(labels) == official_n != len(
        images
    ):  # e.g. the test images in place of the train images
        raise DataError(
            f"MNIST file {images_path} holds {len(images)} images, expected the {official_n} {split} images "
            f"that {labels_path.name} labels."
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"MNIST file {labels_path} holds {len(labels)} labels, expected {len(images)} to match {images_path.name}."
        )
    if len(labels) and labels.max() > 9:
        raise DataError(f"MNIST file {labels_path} holds the label {labels.max()}, expected digits 0-9.")
    if not verify:
        return images, labels, integrity.SKIPPED
    mismatched = [
        path
        for path, raw in ((images_path, raw_images), (labels_path, raw_labels))
        if not _official(path, raw)
    ]
    if not mismatched:
        return images, labels, integrity.OFFICIAL_MD5
    # Every MNIST file has an official md5 (of the .gz and of its contents), so a mismatch always
    # stops; the content checks only say what differs.
    integrity.check_counts(labels_path, labels, CLASS_COUNTS[split], INFO.num_classes)
    mean = round(float(images.mean(dtype=np.float64)) / 255.0, 4)
    if abs(mean - PIXEL_MEANS[split]) > _MEAN_TOLERANCE:  # the labels alone say nothing of the images
        raise integrity.content_failure(images_path, "pixel mean", mean, PIXEL_MEANS[split])
    integrity.check_fingerprint(images_path, labels_path, images, labels, FINGERPRINTS[split])
    names = " and ".join(str(p) for p in mismatched)
    raise DataError(f"MNIST file {names} is not the official data: its md5 differs, though its counts, pixel mean and "
                    "fingerprint match (some images or labels were changed); expected the official files "
                    "(pass --no-verify to use it anyway).")


def _official(path: Path, raw: bytes) -> bool:
    stem = path.name.removesuffix(".gz")
    if integrity.md5_bytes(raw) == RAW_MD5[stem]:
        return True
    return path.suffix == ".gz" and integrity.file_digest(path) == GZ_MD5[stem]


def to_images(digits: np.ndarray, image_size: int) -> torch.Tensor:
    """28x28 digits ``(N, 28, 28)`` uint8 as a tensor ``(N, 1, image_size, image_size)`` uint8."""
    return resize_images(torch.from_numpy(np.array(digits, dtype=np.uint8))[:, None], image_size)


def load(
    root: Path, split: str, image_size: int, *, verify: bool, download: bool, cache_dir: str | Path | None
) -> ArrayDataset:
    """MNIST ``split`` as uint8 ``(N, 1, image_size, image_size)`` with int64 labels ``(N,)``."""
    images_path, labels_path = locate(root, split, download)

    def build() -> tuple[np.ndarray, np.ndarray, dict]:
        images, labels, verdict = read_files(images_path, labels_path, split, verify=verify)
        meta = {"verdict": verdict, "source": str(images_path.parent)}
        return to_images(images, image_size).numpy(), labels.astype(np.int64), meta

    x, y, meta = cached(
        cache_dir, name=INFO.name, split=split, image_size=image_size,
        sources=(images_path, labels_path), verify=verify, build=build,
    )
    return ArrayDataset(torch.from_numpy(x), torch.from_numpy(y), INFO.name, split, list(INFO.classes), meta)
