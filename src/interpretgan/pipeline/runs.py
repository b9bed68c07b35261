"""Run folders, checkpoints and resume (the files themselves are written by :mod:`interpretgan.io`).

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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from interpretgan.errors import ConfigError, RunError
from interpretgan.io import json_line, load_tensors, read_json, save_tensors, write_json, write_text

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

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, root: str | Path, description: str, kind: str, config: dict[str, Any]) -> Run:
        run = cls(new_run_dir(root, description))
        try:
            write_json(run.path / "config.json", {"kind": kind, **config})
        except BaseException:  # a full disk: no folder without its config is left behind
            shutil.rmtree(run.path, ignore_errors=True)
            raise
        return run

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
        return self.path / "metrics.jsonl"

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


# --- model checkpoints ---------------------------------------------------------------------------
def save_model(
    directory: str | Path, model: nn.Module, name: str = "model", metadata: dict[str, Any] | None = None
) -> None:
    """Write ``<name>.safetensors`` (weights and buffers) and ``<name>.json`` (how to rebuild it)."""
    directory = Path(directory)
    spec = {
        "model": getattr(model, "registry_name", type(model).__name__),
        "kwargs": getattr(model, "config", {}),
        **(metadata or {}),
    }
    save_tensors(directory / f"{name}.safetensors", model.state_dict())
    write_json(directory / f"{name}.json", spec)


def load_model(path: str | Path, device: str | torch.device = "cpu", name: str = "model",
               expected: tuple[str, dict[str, Any]] | None = None) -> nn.Module:
    """Rebuild a registered classifier from a run folder or its ``ckpt/`` folder, in eval mode.

    ``expected``: the (registry name, keyword arguments) the run's config asks for; RunError when the
    checkpoint describes another model (a checkpoint copied from another run).
    """
    from interpretgan.config import is_reference
    from interpretgan.models import create_model
    from interpretgan.models.external import normalise_reference

    path = Path(path)
    directory = path / "ckpt" if (path / "ckpt").is_dir() else path
    spec_path = directory / f"{name}.json"
    if not spec_path.is_file():
        raise RunError(f"{path} holds no model checkpoint; expected {spec_path}")
    spec = read_json(spec_path)
    if not (isinstance(spec, dict) and isinstance(spec.get("model"), str) and isinstance(spec.get("kwargs"), dict)):
        raise RunError(f"{spec_path} is not a model description; expected a JSON object with 'model' and 'kwargs'")
    if expected is not None:
        if is_reference(expected[0]):  # a run made with a relative path names the same file
            expected = (normalise_reference(expected[0]), expected[1])
        differ = [k for k, v in expected[1].items() if json.dumps(spec["kwargs"].get(k)) != json.dumps(v, default=list)]
        if spec["model"] != expected[0] or differ:
            raise RunError(
                f"{spec_path} describes model '{spec['model']}' with {spec['kwargs']} but the run's config.json "
                f"expects '{expected[0]}'"
                + (f" with {', '.join(f'{k}={expected[1][k]}' for k in differ)}" if differ else "")
                + "; the checkpoint belongs to another run"
            )
    model = create_model(spec["model"], **spec["kwargs"])
    state = load_tensors(directory / f"{name}.safetensors")
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # a tensor of another shape: other model options than the spec's
        raise RunError(
            f"{directory / f'{name}.safetensors'} does not fit model '{spec['model']}' "
            f"with {spec['kwargs']}: {(str(err).splitlines() or [type(err).__name__])[-1].strip()}"
        ) from None
    if missing or unexpected:
        raise RunError(
            f"{directory / f'{name}.safetensors'} does not fit model '{spec['model']}' "
            f"(missing {len(missing)}, unexpected {len(unexpected)} tensors)"
        )
    return model.to(device).eval()


# --- multi-stage jobs (study, reproduce, demo) ---------------------------------------------------
class Stages:
    """The named stages of a long job in one folder, recorded in ``<folder>/stages.json``.

    :meth:`run` calls a stage's function unless the stage finished before (then its recorded
    outputs are returned and nothing runs), so re-running the job resumes it. Each record holds
    the outputs (JSON-able), the wall time in seconds and when it finished. A stage whose
    function raises is not recorded; its own folders (train runs with checkpoints) let it resume.
    """

    FILE = "stages.json"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        path = self.folder / self.FILE
        self.records: dict[str, dict[str, Any]] = read_json(path) if path.is_file() else {}

    def done(self, name: str) -> bool:
        return name in self.records

    def run(self, name: str, fn: Any, *args: Any, settings: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` once: its outputs are recorded under ``name`` and reused on re-runs.

        ``settings`` (JSON-able) describe what the stage computes; a stage recorded with settings is
        reused only with the same settings (RunError otherwise), so a folder never mixes two
        configurations. (A record without settings, from before they were recorded, is reused.)
        """
        settings = json.loads(json.dumps(settings)) if settings is not None else None  # tuples -> lists, as stored
        if name in self.records:
            record = self.records[name]
            if "settings" in record and settings is None:
                raise RunError(f"stage '{name}' in {self.folder} was recorded with settings but none were given; "
                               "expected the same settings to resume it (use another output folder)")
            changed = changed_keys(record["settings"], settings) if "settings" in record else []
            if changed:
                raise RunError(f"stage '{name}' in {self.folder} was run with other settings ({', '.join(changed)}); "
                               "expected the same settings to resume it (use another output folder)")
            log.info("stage %s: done before (%.0f s), skipped", name, record["seconds"])
            return record["outputs"]
        log.info("stage %s: started", name)
        start = time.perf_counter()
        outputs = fn(*args, **kwargs)
        seconds = time.perf_counter() - start
        self.records[name] = {"outputs": outputs, "seconds": seconds,
                              "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        if settings is not None:
            self.records[name]["settings"] = settings
        write_json(self.folder / self.FILE, self.records)
        log.info("stage %s: finished in %.0f s", name, seconds)
        return outputs

    def seconds(self) -> dict[str, float]:
        """Wall time of each finished stage, in the order they ran."""
        return {k: float(v["seconds"]) for k, v in self.records.items()}


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
    """The newest run folder ``root/<NNNNN>-<description>`` with a ``config.json``, if any."""
    root, slug = Path(root), _slug(description)
    found = (
        sorted(p for p in root.glob(f"[0-9][0-9][0-9][0-9][0-9]-{slug}") if (p / "config.json").is_file())
        if root.is_dir()
        else []
    )
    return Run(found[-1]) if found else None


class RunRecords:
    """A store's records kept in its run folder's ``metrics.jsonl`` (``self.run``: the :class:`Run`)."""

    run: Run

    def keep_records(self, keep: Any) -> None:
        self.run.truncate_metrics(keep)

    def record(self, record: dict[str, Any]) -> None:
        self.run.append_metrics(record)

    def records(self) -> list[dict[str, Any]]:
        return self.run.read_metrics()
