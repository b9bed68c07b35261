"""On-disk cache of decoded, resized splits as ``.npy`` files, keyed by the source files' fingerprint.

An entry is three files, ``<key>.x.npy``, ``<key>.y.npy`` and ``<key>.json`` (written last, so an
interrupted write leaves no usable entry). The key holds the dataset, split, image size, a hash of
the source paths, and a hash of their sizes, inodes, mtimes and ctimes: a changed source gets a new
key (the ctime also changes when a file is rewritten in place and its mtime set back, which a
size-and-mtime check misses), and storing a new entry removes the entries of older versions of the
same sources. The cache never lives in the data root unless the caller asks for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from interpretgan.data.integrity import SKIPPED
from interpretgan.errors import DataError
from interpretgan.io import atomic_path

logger = logging.getLogger(__name__)

# Bump when a loader changes what it stores (decoding, resizing), so old entries are not reused.
CACHE_FORMAT = 1
CACHE_ENV = "INTERPRETGAN_CACHE"


def resolve_cache_dir(value: str | Path | None) -> Path:
    """``value``, else ``$INTERPRETGAN_CACHE``, else ``~/.cache/interpretgan``."""
    if value:
        return Path(value).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "interpretgan"


@contextmanager
def atomic_write(path: Path) -> Iterator[IO[bytes]]:
    """Open a temporary file beside ``path`` for writing; it replaces ``path`` only if the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        yield f


def fingerprint(paths: Iterable[Path]) -> tuple[str, str]:
    """(hash of the absolute paths, hash of the paths with their sizes, inodes, mtimes and ctimes)."""
    where = hashlib.sha1(usedforsecurity=False)
    state = hashlib.sha1(usedforsecurity=False)
    for path in paths:
        try:
            st = path.stat()
        except OSError as exc:
            raise DataError(f"cannot read {path} ({exc.strerror or exc}).") from None
        name = str(path.absolute()).encode()
        where.update(name + b"\0")
        state.update(name + f"\0{st.st_size}\0{st.st_ino}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0".encode())
    return where.hexdigest()[:8], state.hexdigest()[:16]


Arrays = tuple[np.ndarray, np.ndarray, dict[str, Any]]


def cached(
    cache_dir: str | Path | None,
    *,
    name: str,
    split: str,
    image_size: int,
    sources: Iterable[Path],
    verify: bool,
    build: Callable[[], Arrays],
) -> Arrays:
    """Return (x, y, meta) from the cache, or from ``build()`` and then store them.

    An entry built without verification is not reused when ``verify`` is asked for. ``meta`` gains
    ``from_cache``. A cache folder that cannot be written only costs a warning.
    """
    where, state = fingerprint(sources)
    prefix = f"{name}-{split}-{image_size}px-v{CACHE_FORMAT}-{where}-"
    folder = resolve_cache_dir(cache_dir)
    key = prefix + state
    hit = _load(folder, key)
    if hit is not None and not (verify and hit[2].get("verdict") == SKIPPED):
        logger.info("%s/%s: loaded %d examples from the cache %s", name, split, len(hit[1]), folder / key)
        hit[2]["from_cache"] = True
        return hit
    x, y, meta = build()
    _store(folder, prefix, key, x, y, meta)
    return x, y, {**meta, "from_cache": False}


def _load(folder: Path, key: str) -> Arrays | None:
    try:
        record = json.loads((folder / f"{key}.json").read_text())
        x = np.load(folder / f"{key}.x.npy", allow_pickle=False)
        y = np.load(folder / f"{key}.y.npy", allow_pickle=False)
        consistent = [list(x.shape), list(y.shape)] == [record["x_shape"], record["y_shape"]]
        meta = dict(record["meta"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError, KeyError, TypeError) as exc:
        logger.warning("ignoring the unreadable cache entry %s (%s)", folder / key, exc)
        return None
    if not consistent:
        logger.warning("ignoring the cache entry %s: its arrays do not match its record", folder / key)
        return None
    return x, y, meta


def _store(folder: Path, prefix: str, key: str, x: np.ndarray, y: np.ndarray, meta: dict[str, Any]) -> None:
    record = {"x_shape": list(x.shape), "y_shape": list(y.shape), "meta": meta}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(f"{prefix}*"):
            if not stale.name.startswith(key + "."):
                stale.unlink(missing_ok=True)
        for suffix, array in (("x.npy", x), ("y.npy", y)):
            with atomic_write(folder / f"{key}.{suffix}") as f:
                np.save(f, array, allow_pickle=False)
        with atomic_write(folder / f"{key}.json") as f:
            f.write(json.dumps(record, indent=1).encode())
    except OSError as exc:
        logger.warning("could not write the cache entry %s (%s); continuing without it", folder / key, exc)
