"""Two stages of a multi-stage job under torchrun: one spread over the ranks, one that rank 0 runs alone
(making a run folder inside it, which must not wait for the other ranks); tests/test_distributed.py reads
what it wrote.

    stages_worker.py FOLDER
"""

import json
import sys
from pathlib import Path

import torch

from interpretgan import distributed
from interpretgan.pipeline.runs import Run
from interpretgan.pipeline.stages import Stages

folder = Path(sys.argv[1])
distributed.setup(torch.device("cpu"))
stages = Stages(folder)
spread = stages.run("spread", lambda: {"rank": distributed.rank(), "world": distributed.world_size()}, spread=True)


def alone() -> dict:
    run = Run.create(folder / "runs", "made-alone", "train", {})  # no broadcast to wait on
    return {"rank": distributed.rank(), "world": distributed.world_size(), "run": str(run.path)}


solo = stages.run("alone", alone)
(folder / f"seen-by-rank{distributed.rank()}.json").write_text(json.dumps({"spread": spread, "alone": solo}))
distributed.teardown()
