"""Wall time of training the explainers of all 7 SmallCNN layers in one loop beside 7 separate loops.

Both use the same configuration (the ``cpu`` preset unless ``--preset`` says otherwise), the same
schedule, classifier, data and batches, one after the other in this process; the separate loops
are the paper's way (one explainer training per layer), the joint loop runs the classifier once
per batch for all layers (and, with ``--fuse``, all layers' G and D as one stack of grouped
convolutions, for GPUs). An unfused joint run ends with the same weights as the separate runs.
The joint loop runs again under ``--precision bf16``, ``--channels-last``, both, and ``--compile`` (f's
forward through the explanations compiled). Every mode is timed after an untimed run of one iteration a
scale with its own options (which also compiles f for ``--compile``). Last line: JSON with
``joint_seconds``, ``separate_seconds``, ``joint_over_separate`` (issue 30's goal: at most 1.0 on a CPU,
0.6 on a GPU), ``joint_bf16_seconds``, ``bf16_speedup``, ``channels_last_speedup``,
``bf16_channels_last_speedup``, ``compile_speedup`` (each the fp32 joint loop's time over the
variant's) and ``best_speedup`` (the largest).

    python benchmarks/explain_speed.py [--quick] [--device cpu] [--preset cpu] [--scale-iterations 50,50,50,50] [--fuse]

The classifier is a trained SmallCNN run (``--classifier RUN``) or, by default, a seeded random
one (the timing does not depend on its weights); the images are MNIST from $INTERPRETGAN_DATA or
the embedded sample.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import torch

from interpretgan.config.presets import resolve_explain_config
from interpretgan.data import load_dataset
from interpretgan.explain import train_explainers
from interpretgan.models import create_model
from interpretgan.pipeline.checkpoints import load_model
from interpretgan.pipeline.explain import RunStore
from interpretgan.pipeline.runs import Run

#: The loops timed, and the options each adds to the preset's configuration.
MODES = {
    "joint": {},
    "separate": {},
    "joint bf16": {"precision": "bf16"},
    "joint channels last": {"channels_last": True},
    "joint bf16 channels last": {"precision": "bf16", "channels_last": True},
    "joint compile": {"compile": True},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 iterations per scale (under a minute on 2 CPU cores)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--preset", default="cpu", choices=["smoke", "cpu", "paper"])
    ap.add_argument(
        "--scale-iterations", default=None, help="iterations per scale, e.g. 50,50,50,50 (default: the preset's)"
    )
    ap.add_argument(
        "--fuse", action="store_true", help="joint loop with all layers' G and D stacked (grouped convolutions)"
    )
    ap.add_argument("--classifier", default=None, help="a trained SmallCNN run folder (default: seeded random weights)")
    args = ap.parse_args()
    device = torch.device(args.device)
    dataset = "mnist" if os.environ.get("INTERPRETGAN_DATA") else "mnist-sample"
    overrides: dict = {"log_every": 10**9, "checkpoint_every": 10**9, "fuse": args.fuse}
    if args.quick:
        overrides["scale_iterations"] = [2, 2, 2, 2]
    if args.scale_iterations:
        overrides["scale_iterations"] = [int(v) for v in args.scale_iterations.split(",")]
    cfg = resolve_explain_config(dataset, args.preset, overrides)
    if args.classifier:
        f = load_model(args.classifier, device)
    else:
        torch.manual_seed(0)
        f = create_model("smallcnn")
        torch.nn.init.normal_(f.stages["fc3"].weight, std=0.3)  # TRADES' zero last layer would give one label
        f = f.to(device).eval()
    train = load_dataset(dataset, "train", image_size=32)
    print(
        f"{dataset}: {len(train)} training images, preset {args.preset}, "
        f"schedule {cfg.scale_iterations or cfg.scale_epochs}, batch {cfg.batch_size}, "
        f"G/D channels <= {cfg.gan_channels}, device {device}, torch threads {torch.get_num_threads()}",
        flush=True,
    )

    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode, options in MODES.items():
            # fusing stacks the layers of the one joint loop; separate loops have one layer each
            joint = mode != "separate"
            mode_cfg = resolve_explain_config(
                dataset, args.preset, {**overrides, "joint": joint, "fuse": args.fuse and joint, **options}
            )
            # One iteration a scale first, untimed, with the mode's options: the first calls of a shape and
            # memory format pay oneDNN's primitive creation (and, with --compile, the compilation), which
            # made whichever loop ran first in the process 1.17x slower (experiments/2026-12-04-joint-loop-profile).
            warm = resolve_explain_config(dataset, args.preset, {**overrides, "joint": joint, **options,
                                                                 "scale_iterations": [1]})
            train_explainers(f, train, warm, RunStore(Run.create(tmp, "warm-up", "explain", warm.to_dict())),
                             device=device, progress=False)
            run = Run.create(tmp, mode.replace(" ", "-"), "explain", mode_cfg.to_dict())
            _sync(device)
            t0 = time.perf_counter()
            summary = train_explainers(f, train, mode_cfg, RunStore(run), device=device, progress=False)
            _sync(device)
            seconds[mode] = time.perf_counter() - t0
            print(
                f"{mode}: {len(summary['layers'])} layers x {summary['iterations']} iterations "
                f"in {seconds[mode]:.1f} s",
                flush=True,
            )
    speedups = {f"{mode[6:].replace(' ', '_')}_speedup": seconds["joint"] / seconds[mode]
                for mode in MODES if mode.startswith("joint ")}
    result = {
        "joint_seconds": seconds["joint"],
        "separate_seconds": seconds["separate"],
        "joint_over_separate": seconds["joint"] / seconds["separate"],
        "joint_bf16_seconds": seconds["joint bf16"],
        **speedups,
        "best_speedup": max(speedups.values()),
        "seconds": seconds,
        "layers": 7,
        "iterations_per_layer": sum(cfg.iterations_per_scale(4, len(train))),
        "preset": args.preset,
        "fuse": args.fuse,
        "device": str(device),
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(result))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
