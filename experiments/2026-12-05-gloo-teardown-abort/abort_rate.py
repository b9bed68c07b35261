"""How often a 2-process gloo job of the explain worker (tests/distributed/explain_worker.py, stopped after 3
iterations) ends in a rank's abort, for two source trees run alternately in one sitting.

    python abort_rate.py BEFORE_REPO AFTER_REPO RUNS OUT.json [faulthandler]

With ``faulthandler`` the workers run with PYTHONFAULTHANDLER=1 (a Python stack on the abort; it also
changes the timing of the processes' exit).

Each repo is a checkout of this project (its src/ goes first on PYTHONPATH, its worker runs). Prints and
writes one JSON object: per tree, runs, failures and how many printed "terminate called without an active
exception".
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

before, after, runs, out = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
handler = sys.argv[5:] == ["faulthandler"]


def env(repo: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return {**keep, "PYTHONPATH": str(repo / "src"), "OMP_NUM_THREADS": "1", **({"PYTHONFAULTHANDLER": "1"} if handler else {})}


with tempfile.TemporaryDirectory() as tmp:
    make = ("import sys\nfrom interpretgan.config.presets import resolve_train_config\n"
            "from interpretgan.pipeline.runs import Run\nfrom interpretgan.pipeline.train import fit\n"
            "cfg = resolve_train_config('mnist-sample', 'natural', 'smoke', {'epochs': 3, 'lr': 0.05, 'n_train': 1000})\n"
            "run = Run.create(sys.argv[1], 'cls', 'train', cfg.to_dict())\nfit(cfg, run, progress=False)\n"
            "print(run.path)\n")
    cls = subprocess.run([sys.executable, "-c", make, f"{tmp}/cls"], env=env(after), capture_output=True,
                         text=True, check=True).stdout.split()[-1]
    counts = {name: {"runs": 0, "failed": 0, "terminate_called": 0} for name in ("before", "after")}
    for i in range(runs):
        for name, repo in (("before", before), ("after", after)):
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                   str(repo / "tests/distributed/explain_worker.py"), cls, f"{tmp}/{name}{i}", "3"]
            done = subprocess.run(cmd, env=env(repo), capture_output=True, text=True, timeout=300)
            c = counts[name]
            c["runs"] += 1
            c["failed"] += done.returncode != 0
            c["terminate_called"] += "terminate called without an active exception" in done.stderr
record = {"worker": "explain_worker.py, 2 gloo processes x 1 thread, stopped after 3 iterations",
          "faulthandler": handler, **counts}
out.write_text(json.dumps(record, indent=2) + "\n")
print(json.dumps(record))
