"""Run folders and resume (the files themselves are written by :mod:`interpretgan.io`; model checkpoints
by :mod:`interpretgan.pipeline.checkpoints`, multi-stage jobs by :mod:`interpretgan.pipeline.stages`).

A run folder ``<root>/<NNNNN>-<description>/`` holds ``config.json`` (resolved, written before any
work starts), ``metrics.jsonl`` (one JSON object per line), ``ckpt/`` (``model.safetensors`` with
``model.json``, the registry name and keyword arguments that rebuild the model, plus
``state.pt``, the weights with the optimizer/scheduler/RNG state for ``--resume``), a log and whatever the stage
writes (figures, tables, JSON). Every file is written to a temporary name and renamed, so an
interrupted process never leaves a half-written file behind.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from interpretgan import distributed
from interpretgan.errors import ConfigError, RunError
from interpretgan.io import json_line, read_json, write_json, write_text

log = logging.getLogger(__name__)

RUNS_ENV = "INTERPRETGAN_RUNS"


# --- run folders ---------------------------------------------------------------------------------
def runs_root(value: str | Path | None = None) -> Path:
    """``--out`` if given, else ``$INTERPRETGAN_RUNS``, else ``./runs``."""
    return Path(value or os.environ.get(RUNS_ENV) or "runs")


def _a(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def stored_config(run: Run, cls: type) -> Any:
    """The config dataclass ``cls`` recorded in ``run``'s config.json (without ``kind``), validated;
    RunError naming the file when a field is unknown, of the wrong type or impossible."""
    try:
        cfg = cls.from_dict({k: v for k, v in run.config.items() if k != "kind"})
        cfg.validate()
    except ConfigError as err:
        raise RunError(f"{run.path / 'config.json'} is not a valid record of a run: {err}") from None
    return cfg


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+_-]+", "-", text).strip("-") or "run"


def check_runs_root(root: str | Path) -> Path:
    """``root`` as a Path; RunError when it exists and is not a folder (so a command fails before its work)."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise RunError(f"the runs folder {root} is a file; expected a folder (--out or ${RUNS_ENV})")
    return root


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` itself (flock on its descriptor: no lock file appears)."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): numbers are then only protected by mkdir's FileExistsError
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def new_run_dir(root: str | Path, description: str) -> Path:
    """Create ``root/<NNNNN>-<description>`` with the next free number (never reuses a number).

    The number is chosen and its folder made under an exclusive lock on ``root``, so that processes
    creating runs at once, with the same or other descriptions, never share a number.
    """
    root = check_runs_root(root)
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root):
        while True:
            numbers = [int(m.group(1)) for p in root.iterdir() if (m := re.match(r"(\d{5})-", p.name))]
            path = root / f"{max(numbers, default=-1) + 1:05d}-{_slug(description)}"
            try:
                path.mkdir()
                return path
            except FileExistsError:  # a process without the lock took the number: try the next one
                continue


class Run:
    """A run folder. ``kind`` says which stage made it (``train``, ``explain``, ...)."""

    def __init__(self, path: str | Path, metrics: str = "metrics.jsonl") -> None:
        self.path = Path(path)
        self.metrics_name = metrics  # another file for the records of a torchrun job's ranks after 0

    @classmethod
    def create(cls, root: str | Path, description: str, kind: str, config: dict[str, Any]) -> Run:
        """A new numbered folder with ``config.json``; in a torchrun job rank 0 makes it and every rank
        gets it."""
        path = None
        if distributed.is_main():
            path = new_run_dir(root, description)
            try:
                write_json(path / "config.json", {"kind": kind, **config})
            except BaseException:  # a full disk: no folder without its config is left behind
                shutil.rmtree(path, ignore_errors=True)
                raise
        return cls(distributed.broadcast_object(path))

    @classmethod
    def open(cls, path: str | Path, kind: str | None = None) -> Run:
        """Open an existing run folder, checking that it is one (and of ``kind`` when given)."""
        path = Path(path)
        if not (path / "config.json").is_file():
            raise RunError(f"{path} is not an interpretgan run folder; expected {path / 'config.json'}")
        run = cls(path)
        got = run.config.get("kind")
        if kind is not None and got != kind:
            raise RunError(f"{path} is {_a(str(got))} '{got}' run; expected {_a(kind)} '{kind}' run")
        return run

    @property
    def config(self) -> dict[str, Any]:
        config = read_json(self.path / "config.json")
        if not isinstance(config, dict):
            raise RunError(f"{self.path / 'config.json'} holds a JSON {type(config).__name__}; "
                           "expected the JSON object of a run's settings")
        return config

    @property
    def ckpt_dir(self) -> Path:
        return self.path / "ckpt"

    @property
    def metrics_path(self) -> Path:
        return self.path / self.metrics_name

    def append_metrics(self, record: dict[str, Any]) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(json_line(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.is_file():
            return []
        records = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a crash: everything after it is dropped
                break
        return records

    def truncate_metrics(self, keep: Any) -> None:
        """Keep only the metric records for which ``keep(record)`` is true (used on resume)."""
        records = [r for r in self.read_metrics() if keep(r)]
        write_text(self.metrics_path, "".join(json_line(r) + "\n" for r in records))


def changed_keys(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The keys whose values differ between two dicts, sorted; nested dicts are compared the same way,
    and a key missing on one side reads as None (an option added since, left unset, changes nothing)."""
    return sorted(k for k in a.keys() | b.keys() if not _same(a.get(k), b.get(k)))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return not changed_keys(a, b)
    return a == b


def require_same_config(run: Run, stored: dict[str, Any], wanted: dict[str, Any], held: str) -> None:
    """RunError naming the differing fields unless ``stored`` and ``wanted`` agree (resuming a multi-stage
    job's run); a field missing from ``stored`` agrees with None (an option added since, left unset)."""
    changed = changed_keys(stored, wanted)
    if changed:
        raise RunError(f"{run.path} {held} with other settings ({', '.join(changed)}); "
                       "expected the same config to resume it (use another output folder)")


def find_run(root: str | Path, description: str) -> Run | None:
    """The newest run folder ``root/<NNNNN>-<description>`` with a ``config.json``, if any (rank 0's
    answer on every rank of a torchrun job, which may be making such a folder meanwhile)."""
    root, slug = Path(root), _slug(description)
    found = (
        sorted(p for p in root.glob(f"[0-9][0-9][0-9][0-9][0-9]-{slug}") if (p / "config.json").is_file())
        if root.is_dir()
        else []
    )
    newest = distributed.broadcast_object(found[-1] if found else None)
    return Run(newest) if newest else None


class RunRecords:
    """A store's records kept in its run folder's ``metrics.jsonl`` (``self.run``: the :class:`Run`)."""

    run: Run

    def keep_records(self, keep: Any) -> None:
        self.run.truncate_metrics(keep)

    def record(self, record: dict[str, Any]) -> None:
        self.run.append_metrics(record)

    def records(self) -> list[dict[str, Any]]:
        return self.run.read_metrics()
