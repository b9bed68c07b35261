"""Images/s of a SmallCNN training epoch through interpretgan's loop beside a bare PyTorch loop, and
the loop's epoch at ``--precision bf16``, with ``--channels-last`` and ``--compile`` beside its fp32 epoch.

All train the same model from the same initial weights on the same batches (MNIST at 32x32 from
$INTERPRETGAN_DATA, else the embedded sample), alternating, several repeats; the median of each is
compared. Last line: JSON with ``images_per_s`` (ours), ``bare_images_per_s``, ``overhead_vs_bare``
(our epoch time / bare epoch time; the goal is under 1.10), ``bf16_speedup`` (fp32 epoch time / bf16
epoch time), ``channels_last_speedup`` (fp32 / fp32 channels-last), ``bf16_channels_last_speedup``,
``compile_speedup`` (fp32 / compiled fp32, timed on the compiled model's second epoch; the first,
which compiles, is in ``compile_first_epoch_seconds``), ``bf16_channels_last_compile_speedup`` and
``best_speedup`` (the best of them over fp32 eager, same work; issue 30's goal is 1.4), with each
variant's clean test accuracy after its epoch(s) (``accuracy``).

    python benchmarks/train_speed.py [--quick] [--device cpu] [--n 60000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from interpretgan.config.presets import resolve_train_config
from interpretgan.data import iterate_batches
from interpretgan.pipeline.runs import Run
from interpretgan.pipeline.train import fit
from interpretgan.training import build_model, load_train_data


def bare_epoch(model, x, y, batch_size, lr, seed, device) -> float:
    """The loop a researcher would write by hand: index, scale, forward, CE, backward, SGD step."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    model.train()
    _sync(device)
    t0 = time.perf_counter()
    for idx in iterate_batches(len(y), batch_size, shuffle=True, generator=g):
        idx = idx.to(device)
        xb, yb = x[idx].float().div_(255), y[idx]
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    return time.perf_counter() - t0


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5,000 images, 2 repeats, the compiled variants once "
                                                         "(about a minute on 2 cores)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=int, default=60000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    n, repeats = (5000, 2) if args.quick else (args.n, args.repeats)
    dataset = "mnist" if os.environ.get("INTERPRETGAN_DATA") else "mnist-sample"
    cfg = resolve_train_config(
        dataset, "natural", "cpu", {"epochs": 1, "n_train": n, "n_test": 500, "lr_milestones": []}
    )
    data = load_train_data(cfg)
    device = torch.device(args.device)
    x, y = data.train.x.to(device), data.train.y.to(device)
    print(
        f"{dataset}: {len(y)} training images at 32x32, batch {cfg.batch_size}, device {device}, "
        f"torch threads {torch.get_num_threads()}"
    )

    variants = {"fp32": {}, "bf16": {"precision": "bf16"}, "channels_last": {"channels_last": True},
                "bf16_channels_last": {"precision": "bf16", "channels_last": True},
                "compile": {"compile": True},
                "bf16_channels_last_compile": {"precision": "bf16", "channels_last": True, "compile": True}}
    times: dict[str, list[float]] = {k: [] for k in variants}
    accuracy: dict[str, float] = {}
    first: dict[str, float] = {}
    bare = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for name, options in variants.items():
                if options.get("compile") and r > 0 and args.quick:  # compiling takes most of --quick's minute
                    continue
                # A compiled model is timed on its second epoch (the first one compiles it); its first
                # epoch's time is kept apart.
                vcfg = dataclasses.replace(cfg, **options, epochs=2 if options.get("compile") else 1)
                run = Run.create(tmp, f"bench{r}-{name}", "train", vcfg.to_dict())
                accuracy[name] = fit(vcfg, run, device=device, data=data, progress=False)["clean_accuracy"]
                epochs = run.read_metrics()
                times[name].append(epochs[-1]["seconds"])
                if options.get("compile"):
                    first[name] = epochs[0]["seconds"]
            model = build_model(cfg, data).to(device)
            bare.append(bare_epoch(model, x, y, cfg.batch_size, cfg.lr, cfg.seed, device))
            line = ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items())
            print(f"repeat {r}: {line}, bare {bare[-1]:.2f} s")
    t = {k: statistics.median(v) for k, v in times.items()}
    t_ours, t_bare = t["fp32"], statistics.median(bare)
    speedups = {f"{k}_speedup": t_ours / t[k] for k in variants if k != "fp32"}
    result = {
        "images_per_s": len(y) / t_ours,
        "bare_images_per_s": len(y) / t_bare,
        "overhead_vs_bare": t_ours / t_bare,
        **speedups,
        "best_speedup": max(speedups.values()),
        "accuracy": accuracy,
        "compile_first_epoch_seconds": first,
        "n_images": len(y),
        "repeats": repeats,
        "device": str(device),
        "threads": torch.get_num_threads(),
    }
    print(f"interpretgan {result['images_per_s']:.0f} img/s, bare {result['bare_images_per_s']:.0f} img/s, "
          f"overhead x{result['overhead_vs_bare']:.3f} (goal < 1.10); "
          + ", ".join(f"{k} x{v:.2f}" for k, v in speedups.items()) + " (goal: best >= 1.4)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
