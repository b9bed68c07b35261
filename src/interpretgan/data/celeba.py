"""CelebA faces labelled by the ``Male`` attribute, from the official aligned-image layout.

Only the ids whose image file exists are used, so a partial copy of ``img_align_celeba`` works;
``meta["found"]`` and ``meta["listed"]`` say how many of the split's listed ids were found. The
annotation files have official md5s; the images have none that applies to every copy, so they are
checked by decoding them.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from interpretgan.data import integrity
from interpretgan.data.base import ArrayDataset, DatasetInfo
from interpretgan.data.cache import cached
from interpretgan.errors import DataError

logger = logging.getLogger(__name__)

INFO = DatasetInfo(
    name="celeba",
    num_classes=2,
    channels=3,
    default_image_size=64,
    splits=("train", "val", "test"),
    classes=("female", "male"),
)

ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
IMAGE_FOLDER = "img_align_celeba"
ANNOTATION_MD5 = {
    ATTR_FILE: "75e246fa4810816ffd6ee81facbd244c",
    PARTITION_FILE: "d32c9cbf5e040fd4025c592c306e6668",
}
LABEL_ATTRIBUTE = "Male"
SPLIT_CODES = {"train": "0", "val": "1", "test": "2"}
# Facts about the official annotations, checked when their md5 is not the official one.
OFFICIAL_ROWS = 202_599
OFFICIAL_MALES = 84_434  # rows of list_attr_celeba.txt with Male = 1
OFFICIAL_SPLIT_SIZES = {"train": 162_770, "val": 19_867, "test": 19_962}
NUM_ATTRIBUTES = 40
_MAX_WORKERS = 8


def find(root: Path) -> Path | None:
    """The CelebA folder: ``celeba``, ``CelebA`` or ``root`` itself, whichever holds the partition file."""
    for folder in (root / "celeba", root / "CelebA", root):
        if (folder / PARTITION_FILE).is_file() or (folder / IMAGE_FOLDER).is_dir():
            return folder
    return None


def locate(root: Path, download: bool = False) -> Path:
    """The CelebA folder under ``root``; CelebA cannot be downloaded automatically."""
    folder = find(root)
    if folder is not None:
        return folder
    if download:
        raise DataError(
            "CelebA cannot be downloaded automatically (it is served from Google Drive); download "
            f"{IMAGE_FOLDER}, {ATTR_FILE} and {PARTITION_FILE} by hand into {root / 'celeba'}."
        )
    raise DataError(f"no CelebA data found under {root}; expected {root / 'celeba' / PARTITION_FILE}.")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise DataError(f"CelebA annotation file {path} not found; expected the official {path.name}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"CelebA annotation file {path} cannot be read as ASCII text ({exc}).") from None


def read_partition(folder: Path) -> tuple[list[str], list[str]]:
    """Image names and their split codes ("0" train, "1" val, "2" test), in file order."""
    path = folder / PARTITION_FILE
    names, codes = [], []
    for lineno, line in enumerate(_read_text(path).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise DataError(f"CelebA file {path} line {lineno} is {line!r}, expected '<image>.jpg <0|1|2>'.")
        names.append(parts[0])
        codes.append(parts[1])
    return names, codes


def read_labels(folder: Path) -> tuple[dict[str, int], list[str]]:
    """``Male`` label (1 male, 0 female) of every image, and the lines of attribute rows (for content checks)."""
    path = folder / ATTR_FILE
    lines = _read_text(path).splitlines()
    try:
        declared = int(lines[0])
        header = lines[1].split()
    except (IndexError, ValueError):
        raise DataError(f"CelebA file {path} does not start with a row count and an attribute header.") from None
    if LABEL_ATTRIBUTE not in header:
        raise DataError(f"CelebA file {path} has no '{LABEL_ATTRIBUTE}' column in its header.")
    column = 1 + header.index(LABEL_ATTRIBUTE)
    rows = [line for line in lines[2:] if line.strip()]
    if len(rows) != declared:
        raise DataError(f"CelebA file {path} declares {declared} rows but holds {len(rows)}; it may be truncated.")
    labels: dict[str, int] = {}
    for lineno, row in enumerate(rows, 3):
        parts = row.split()
        if len(parts) != len(header) + 1 or parts[column] not in ("1", "-1"):
            raise DataError(
                f"CelebA file {path} line {lineno} is malformed; expected an image name and "
                f"{len(header)} values of 1 or -1."
            )
        labels[parts[0]] = 1 if parts[column] == "1" else 0
    return labels, rows


def _verify_annotations(folder: Path, codes: list[str], attr_rows: list[str], labels: dict[str, int]) -> str:
    paths = [folder / name for name in ANNOTATION_MD5]
    if all(integrity.file_digest(p) == ANNOTATION_MD5[p.name] for p in paths):
        return integrity.OFFICIAL_MD5
    logger.warning("CelebA annotations in %s are not the official files; using content checks", folder)
    attr_path, partition_path = paths
    if len(attr_rows) != OFFICIAL_ROWS:
        raise integrity.content_failure(attr_path, "number of rows", len(attr_rows), OFFICIAL_ROWS)
    widths = {len(row.split()) for row in attr_rows}
    if widths != {NUM_ATTRIBUTES + 1}:
        raise integrity.content_failure(attr_path, "set of row widths", sorted(widths), [NUM_ATTRIBUTES + 1])
    sizes = {split: codes.count(code) for split, code in SPLIT_CODES.items()}
    if sizes != OFFICIAL_SPLIT_SIZES:
        raise integrity.content_failure(partition_path, "split sizes", sizes, OFFICIAL_SPLIT_SIZES)
    males = sum(labels.values())  # the label itself: a flipped or shifted column changes it
    if males != OFFICIAL_MALES:
        raise integrity.content_failure(attr_path, f"number of '{LABEL_ATTRIBUTE}' faces", males, OFFICIAL_MALES)
    return integrity.CONTENT_CHECKS


def decode_image(path: Path, size: int) -> np.ndarray:
    """One face as uint8 ``(size, size, 3)``: centre-cropped to a square, then resized (bicubic)."""
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError... for broken files
        raise DataError(f"CelebA image {path} cannot be decoded; expected a valid JPEG ({exc}).") from None
    w, h = img.size
    side = min(w, h)
    if w != h:
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
    if side != size:
        img = img.resize((size, size), Image.BICUBIC)
    return np.asarray(img, dtype=np.uint8)


def decode_images(paths: list[Path], size: int) -> np.ndarray:
    """Decode ``paths`` on a thread pool (PIL releases the GIL while decoding) into ``(N, 3, size, size)``."""
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    workers = max(1, min(_MAX_WORKERS, os.cpu_count() or 1))
    bounds = np.linspace(0, len(paths), 4 * workers + 1, dtype=int)

    def work(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            out[i] = decode_image(paths[i], size)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(work, bounds[:-1], bounds[1:]))
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def load(
    root: Path, split: str, image_size: int, *, verify: bool, download: bool, cache_dir: str | Path | None
) -> ArrayDataset:
    """CelebA ``split`` as uint8 ``(N, 3, image_size, image_size)``, labels ``(N,)`` 1 male / 0 female."""
    folder = locate(root, download)
    image_dir = folder / IMAGE_FOLDER
    try:
        present = {entry.name for entry in os.scandir(image_dir) if entry.is_file()}
    except OSError as exc:
        raise DataError(f"CelebA image folder {image_dir} cannot be listed ({exc.strerror or exc}).") from None
    names, codes = read_partition(folder)
    listed = [name for name, code in zip(names, codes) if code == SPLIT_CODES[split]]
    found = [name for name in listed if name in present]
    logger.info("CelebA %s: found %d of the %d listed images in %s", split, len(found), len(listed), image_dir)
    if not found:
        raise DataError(
            f"none of the {len(listed)} CelebA {split} images listed in {PARTITION_FILE} is in {image_dir}."
        )
    paths = [image_dir / name for name in found]
    if not (folder / ATTR_FILE).is_file():
        raise DataError(f"CelebA annotation file {folder / ATTR_FILE} not found; expected the official {ATTR_FILE}.")

    def build() -> tuple[np.ndarray, np.ndarray, dict]:
        labels, attr_rows = read_labels(folder)
        missing = next((name for name in found if name not in labels), None)
        if missing is not None:
            raise DataError(f"CelebA file {folder / ATTR_FILE} has no row for {missing}.")
        verdict = _verify_annotations(folder, codes, attr_rows, labels) if verify else integrity.SKIPPED
        start = time.perf_counter()
        x = decode_images(paths, image_size)
        logger.info("CelebA %s: decoded %d images in %.1f s", split, len(paths), time.perf_counter() - start)
        y = np.array([labels[name] for name in found], dtype=np.int64)
        meta = {"verdict": verdict, "source": str(folder), "found": len(found), "listed": len(listed)}
        return x, y, meta

    sources = [folder / ATTR_FILE, folder / PARTITION_FILE, *paths]
    x, y, meta = cached(
        cache_dir, name=INFO.name, split=split, image_size=image_size,
        sources=sources, verify=verify, build=build,
    )
    return ArrayDataset(torch.from_numpy(x), torch.from_numpy(y), INFO.name, split, list(INFO.classes), meta)
