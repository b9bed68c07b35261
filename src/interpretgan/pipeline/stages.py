"""Multi-stage jobs (study, reproduce, demo): named stages in one folder, each run once and recorded, so
that re-running the job resumes it."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from interpretgan import distributed
from interpretgan.errors import RunError
from interpretgan.io import read_json, write_json
from interpretgan.pipeline.runs import changed_keys

log = logging.getLogger(__name__)


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

    def run(self, name: str, fn: Any, *args: Any, settings: dict[str, Any] | None = None, spread: bool = False,
            **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` once: its outputs are recorded under ``name`` and reused on re-runs.

        ``settings`` (JSON-able) describe what the stage computes; a stage recorded with settings is
        reused only with the same settings (RunError otherwise), so a folder never mixes two
        configurations. (A record without settings, from before they were recorded, is reused.)

        In a torchrun job a ``spread`` stage runs on every rank (``fn`` shares its work out: training,
        attacks, explainers); any other runs on rank 0 alone while the others wait. Every rank gets
        rank 0's outputs; rank 0 writes the record.
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
        # Each stage compiles its own models (--compile): the models of a job share their classes' forward
        # code, so the earlier stages' compilations would count toward its recompile limit and leave it eager.
        # A process that has not loaded the compiler has compiled nothing, and resetting would import it (0.9 s);
        # the first optimizer loads it anyway, after which a reset costs 0.1 ms.
        if "torch._dynamo" in sys.modules:
            torch.compiler.reset()
        start = time.perf_counter()
        if spread or not distributed.active():
            outputs = fn(*args, **kwargs)
        else:
            outputs = None
            if distributed.is_main():
                with distributed.alone():
                    outputs = fn(*args, **kwargs)
        outputs = distributed.broadcast_object(outputs)
        seconds = time.perf_counter() - start
        self.records[name] = {"outputs": outputs, "seconds": seconds,
                              "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        if settings is not None:
            self.records[name]["settings"] = settings
        if distributed.is_main():
            write_json(self.folder / self.FILE, self.records)
        log.info("stage %s: finished in %.0f s", name, seconds)
        return outputs

    def seconds(self) -> dict[str, float]:
        """Wall time of each finished stage, in the order they ran."""
        return {k: float(v["seconds"]) for k, v in self.records.items()}
