"""Where the joint explainer loop's extra time goes (issue 30): the joint loop and the separate loops, cold
and warm, alternated, and one profiled run of each with the per-operator CPU time side by side.

    python experiments/2026-12-04-joint-loop-profile/profile_joint.py [--iters 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile

from interpretgan.config.presets import resolve_explain_config
from interpretgan.data import load_dataset
from interpretgan.explain import train_explainers
from interpretgan.models import create_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=2, help="iterations per scale (the benchmark's --quick: 2)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    dataset = "mnist" if os.environ.get("INTERPRETGAN_DATA") else "mnist-sample"
    torch.manual_seed(0)
    f = create_model("smallcnn")
    torch.nn.init.normal_(f.stages["fc3"].weight, std=0.3)
    f = f.eval()
    train = load_dataset(dataset, "train", image_size=32)

    def cfg(joint: bool, iters: int):
        return resolve_explain_config(dataset, "cpu", {"log_every": 10**9, "checkpoint_every": 10**9,
                                                      "joint": joint, "scale_iterations": [iters] * 4})

    def timed(joint: bool) -> float:
        t0 = time.perf_counter()
        train_explainers(f, train, cfg(joint, args.iters), progress=False)
        return time.perf_counter() - t0

    # The benchmark's order: the joint loop first, in a fresh process, pays the first-call costs.
    cold = {"joint (first in the process)": timed(True), "separate (second)": timed(False)}
    print("cold", cold, flush=True)
    warm: dict[str, list[float]] = {"joint": [], "separate": []}
    for r in range(args.repeats):
        for mode in (("separate", "joint") if r % 2 else ("joint", "separate")):
            warm[mode].append(timed(mode == "joint"))
    medians = {k: statistics.median(v) for k, v in warm.items()}
    print("warm", warm, flush=True)

    tables = {}
    for mode in ("joint", "separate"):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            train_explainers(f, train, cfg(mode == "joint", args.iters), progress=False)
        avg = prof.key_averages()
        tables[mode] = {e.key: {"self_cpu_ms": e.self_cpu_time_total / 1e3, "calls": e.count} for e in avg}
    keys = sorted(set(tables["joint"]) | set(tables["separate"]),
                  key=lambda k: -abs(tables["joint"].get(k, {}).get("self_cpu_ms", 0)
                                     - tables["separate"].get(k, {}).get("self_cpu_ms", 0)))
    diff = [{"op": k, **{f"{m}_ms": round(tables[m].get(k, {}).get("self_cpu_ms", 0.0), 1) for m in tables},
             **{f"{m}_calls": tables[m].get(k, {}).get("calls", 0) for m in tables}} for k in keys[:25]]
    totals = {m: round(sum(v["self_cpu_ms"] for v in t.values()), 1) for m, t in tables.items()}
    result = {"iterations_per_scale": args.iters, "cold_seconds": cold, "warm_seconds": warm,
              "warm_median_seconds": medians, "warm_joint_over_separate": medians["joint"] / medians["separate"],
              "cold_joint_over_separate": cold["joint (first in the process)"] / cold["separate (second)"],
              "profiled_self_cpu_ms_total": totals, "largest_differences": diff,
              "threads": torch.get_num_threads()}
    with open(os.path.join(args.out, f"profile-{args.iters}.json"), "w") as fh:
        json.dump(result, fh, indent=1)
    print(json.dumps({k: result[k] for k in ("cold_joint_over_separate", "warm_joint_over_separate",
                                             "profiled_self_cpu_ms_total")}))


if __name__ == "__main__":
    main()
