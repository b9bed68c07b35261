"""Checksums, verdicts and checked downloads.

A dataset split passes integrity when its files have the official md5 (verdict ``OFFICIAL_MD5``) or,
failing that, when its content matches the known facts about the official data (``CONTENT_CHECKS``).
``verify=False`` skips both (``SKIPPED``); structural errors (bad magic, truncation) always raise.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from interpretgan.errors import DataError

logger = logging.getLogger(__name__)

OFFICIAL_MD5 = "ok (official md5)"
CONTENT_CHECKS = "ok (content checks)"
SHA256_MATCH = "ok (sha256)"
SKIPPED = "skipped checks"

_CHUNK = 1 << 20


def md5_bytes(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def file_digest(path: Path, algorithm: str = "md5") -> str:
    """Hex digest of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm, usedforsecurity=False)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise DataError(f"cannot read {path} to compute its {algorithm} ({exc.strerror or exc}).") from None
    return digest.hexdigest()


def combine_verdicts(verdicts: Sequence[str]) -> str:
    """One verdict for several files or splits: the weakest check that any of them passed."""
    for weakest in (SKIPPED, CONTENT_CHECKS):
        if weakest in verdicts:
            return weakest
    return verdicts[0] if verdicts else SKIPPED


def content_failure(path: Path, what: str, got: object, expected: object) -> DataError:
    """The error for a file whose md5 is not official and whose content differs from the official data."""
    return DataError(
        f"{path} is not the official data: its md5 differs and its {what} is {got} instead of {expected} "
        "(pass --no-verify to skip the checks)."
    )


def check_counts(path: Path, labels: np.ndarray, expected: Sequence[int], num_classes: int) -> None:
    """Content check: the number of labels and the per-class counts equal the official ones."""
    if len(labels) != sum(expected):
        raise content_failure(path, "number of labels", len(labels), sum(expected))
    counts = np.bincount(labels, minlength=num_classes).tolist()
    if counts != list(expected):
        raise content_failure(path, "per-class label count", counts, list(expected))


def check_fingerprint(images_path: Path, labels_path: Path, images: np.ndarray, labels: np.ndarray,
                      expected: tuple[str, list[int]]) -> None:
    """Content check: the first two, the middle and the last image of a split are the official ones
    (sha256 of their bytes, first 16 hex digits) and carry the official labels, so that images
    shuffled against their labels fail (counts and means cannot see that)."""
    n = len(labels)
    idx = [0, 1, n // 2, n - 1]
    digest = hashlib.sha256(np.ascontiguousarray(images[idx]).tobytes()).hexdigest()[:16]
    if digest != expected[0]:
        raise content_failure(images_path, f"fingerprint of images {idx}", digest, expected[0])
    got = labels[idx].tolist()
    if got != list(expected[1]):
        raise content_failure(labels_path, f"labels of images {idx}", got, list(expected[1]))


def fetch_url(url: str, dest: Path) -> None:
    """Download ``url`` to ``dest`` (overwritten). Tests replace this function to work offline."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as f:
            shutil.copyfileobj(response, f, _CHUNK)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataError(f"could not download {url} to {dest} ({reason}).") from None


def download(url: str, dest: Path, md5: str) -> Path:
    """Fetch ``url`` into ``dest`` and check its official ``md5``; on any failure no file is left behind."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {dest.parent} to download into ({exc.strerror or exc}).") from None
    partial = dest.with_name(f"{dest.name}.part{os.getpid()}")
    logger.info("downloading %s to %s", url, dest)
    try:
        fetch_url(url, partial)
        got = file_digest(partial)
        if got != md5:
            raise DataError(
                f"the download of {url} has md5 {got}, expected the official {md5}; the file was deleted."
            )
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)
    return dest
