"""One entry point for every dataset: names, the data root, loading and the integrity report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from interpretgan.data import celeba, cifar10, integrity, mnist, sample
from interpretgan.data.base import ArrayDataset, DatasetInfo, check_image_size
from interpretgan.errors import ConfigError, DataError, InterpretganError

DATA_ENV = "INTERPRETGAN_DATA"

# name -> module with INFO, find(root) and load(root, split, image_size, *, verify, download, cache_dir)
_ROOTED = {"mnist": mnist, "cifar10": cifar10, "celeba": celeba}
DATASETS: dict[str, DatasetInfo] = {**{n: m.INFO for n, m in _ROOTED.items()}, sample.INFO.name: sample.INFO}


def resolve_data_root(value: str | Path | None) -> Path | None:
    """The data root: ``value`` (the ``--data-root`` option), else ``$INTERPRETGAN_DATA``, else None."""
    if value:
        return Path(value).expanduser()
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else None


def dataset_info(name: str) -> DatasetInfo:
    """The description of dataset ``name``; ConfigError naming the known datasets when it is unknown."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}.") from None


def _require_root(name: str, root: str | Path | None, download: bool) -> Path:
    resolved = resolve_data_root(root)
    if resolved is None:
        raise DataError(f"dataset {name} needs a data root; pass --data-root or set {DATA_ENV}.")
    if not resolved.is_dir() and not (download and not resolved.exists()):
        raise DataError(
            f"data root {resolved} is not a folder; pass --data-root or set {DATA_ENV} to the folder "
            "holding the datasets."
        )
    return resolved.resolve()


def load_dataset(
    name: str,
    split: str = "train",
    *,
    root: str | Path | None = None,
    image_size: int | None = None,
    verify: bool = True,
    download: bool = False,
    cache_dir: str | Path | None = None,
) -> ArrayDataset:
    """Load one split of a dataset into memory as uint8 ``(N, C, S, S)`` images and int64 ``(N,)`` labels.

    ``root`` falls back to ``$INTERPRETGAN_DATA``; ``mnist-sample`` needs none. ``image_size`` defaults
    to the dataset's (32 for MNIST and CIFAR-10, 64 for CelebA). ``verify`` checks official md5s, or
    the content when the md5 is not official; ``download`` fetches missing MNIST/CIFAR-10 files from
    the official mirrors into ``root``. Decoded arrays are cached in ``cache_dir`` (else
    ``$INTERPRETGAN_CACHE``, else ``~/.cache/interpretgan``), never in ``root``.
    """
    info = dataset_info(name)
    if split not in info.splits:
        raise ConfigError(f"dataset {name} has no split {split!r}; expected one of {', '.join(info.splits)}.")
    size = check_image_size(info.default_image_size if image_size is None else image_size)
    if name == sample.INFO.name:
        return sample.load(split, size, verify=verify)
    module = _ROOTED[name]
    return module.load(
        _require_root(name, root, download), split, size, verify=verify, download=download, cache_dir=cache_dir
    )


def _summary(class_counts: dict[str, dict[str, int]]) -> str:
    parts = []
    for split, counts in class_counts.items():
        values = counts.values()
        parts.append(f"{split} {min(values)}-{max(values)} per class")
    return ", ".join(parts)


def check_datasets(
    root: str | Path | None, verify: bool = True, *, cache_dir: str | Path | None = None
) -> list[dict[str, Any]]:
    """Load every split of each dataset found under ``root`` (and the embedded sample) and report on it.

    Each report is a dict: ``name``; ``path`` (folder or file read); ``counts`` (split -> examples);
    ``class_counts`` (split -> class name -> examples); ``summary`` (one line, e.g. "train 5421-6742 per
    class, test 892-1135 per class"); ``listed`` (CelebA: split -> ids listed in the partition file,
    of which ``counts`` were found; None for the others); ``verdict`` ("ok (official md5)", "ok (content
    checks)", "ok (sha256)" for the sample, "skipped checks", or the error sentence); ``ok`` (False
    when loading raised, the verdict then being the error sentence).
    Datasets not found under ``root`` are left out. Caches like ``load_dataset``.
    """
    resolved = resolve_data_root(root)
    if resolved is not None and resolved.is_dir():
        resolved = resolved.resolve()
    reports = []
    for name in DATASETS:
        if name == sample.INFO.name:
            path = sample.sample_path()
        elif resolved is None or not resolved.is_dir() or (path := _ROOTED[name].find(resolved)) is None:
            continue
        report: dict[str, Any] = {
            "name": name, "path": str(path), "counts": {}, "class_counts": {}, "summary": "",
            "listed": {} if name == celeba.INFO.name else None, "verdict": "", "ok": False,
        }
        verdicts = []
        try:
            for split in DATASETS[name].splits:
                ds = load_dataset(name, split, root=resolved, verify=verify, cache_dir=cache_dir)
                report["counts"][split] = len(ds)
                report["class_counts"][split] = dict(zip(ds.classes, ds.class_counts()))
                if report["listed"] is not None:
                    report["listed"][split] = ds.meta.get("listed")
                verdicts.append(ds.meta["verdict"])
        except InterpretganError as err:
            report["verdict"] = str(err)
        else:
            report["verdict"] = integrity.combine_verdicts(verdicts)
            report["ok"] = True
        report["summary"] = _summary(report["class_counts"])
        reports.append(report)
    return reports
