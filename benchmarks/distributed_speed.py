"""Throughput of torchrun jobs of 2 ranks x 1 thread against 1 rank x 1 thread, same work, side by side.

Each stage runs the ``interpretgan`` command under ``torchrun --standalone --nproc_per_node N`` with
``OMP_NUM_THREADS=1``, alternating N = 1 and N = 2, several repeats; the time compared is the work's own
(the epoch seconds a train run records), not the launch. The global batch is the same in both (each of
2 ranks takes half), so both do the same optimisation. Last line: JSON with, per stage,
``<stage>_scaling_efficiency_2`` (throughput with 2 ranks / (2 x throughput with 1)) and
``scaling_efficiency_2``, the smallest of them (issue 30's goal: at least 0.8). On a machine with 2
cores it also times 1 rank x 2 threads (``<stage>_speedup_over_2_threads``: what 2 ranks give over
the usual one process using both cores).

    python benchmarks/distributed_speed.py [--quick] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# name -> (interpretgan arguments, images at full size, at --quick)
STAGES = {
    "train": (["train", "--objective", "natural", "--preset", "cpu", "--epochs", "1"], 10000, 3000),
    "train_trades_atta": (["train", "--objective", "trades+atta", "--preset", "cpu", "--epochs", "1"], 4000, 1200),
}


def _launch(nproc: int, args: list[str], out: Path, threads: int = 1) -> float:
    """Seconds of the stage's own work in a torchrun job of ``nproc`` ranks of ``threads`` threads each."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "interpretgan", *args, "--out", str(out), "--no-progress", "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    (run,) = out.iterdir()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return sum(r["seconds"] for r in records)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer images, 1 repeat (under a minute on 2 cores)")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    repeats = 1 if args.quick else args.repeats
    dataset = "mnist" if os.environ.get("INTERPRETGAN_DATA") else "mnist-sample"
    result: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for stage, (command, n_full, n_quick) in STAGES.items():
            n = n_quick if args.quick else n_full
            stage_args = [*command, "--dataset", dataset, "--n-train", str(n), "--n-test", "500"]
            # (ranks, threads per rank)
            layouts = [(1, 1), (2, 1)] + ([(1, 2)] if os.cpu_count() == 2 else [])
            times: dict[tuple[int, int], list[float]] = {k: [] for k in layouts}
            for r in range(repeats):
                for nproc, threads in layouts:
                    out = Path(tmp) / f"{stage}-{r}-{nproc}x{threads}"
                    times[nproc, threads].append(_launch(nproc, stage_args, out, threads))
            t = {k: statistics.median(v) for k, v in times.items()}
            efficiency = t[1, 1] / t[2, 1] / 2
            print(f"{stage}: {n} images, 1 rank {t[1, 1]:.2f} s, 2 ranks {t[2, 1]:.2f} s, efficiency "
                  f"{efficiency:.2f}" + (f"; 1 rank x 2 threads {t[1, 2]:.2f} s" if (1, 2) in t else ""))
            result[f"{stage}_seconds_1"], result[f"{stage}_seconds_2"] = t[1, 1], t[2, 1]
            result[f"{stage}_scaling_efficiency_2"] = efficiency
            if (1, 2) in t:
                result[f"{stage}_speedup_over_2_threads"] = t[1, 2] / t[2, 1]
    result["scaling_efficiency_2"] = min(v for k, v in result.items() if k.endswith("_scaling_efficiency_2"))
    result.update(repeats=repeats, dataset=dataset, cpu_count=os.cpu_count())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
