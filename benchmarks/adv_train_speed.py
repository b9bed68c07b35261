"""Epoch time of ``trades+atta`` (ATTA-1: one inner step) beside ``trades`` with a 10-step inner attack.

Same SmallCNN, same data (MNIST at 32x32 from $INTERPRETGAN_DATA, else the embedded sample), same
batches, one epoch each, alternating, several repeats, medians compared. The goal is
``atta_over_pgd10 <= 0.35``. Last line: JSON with ``atta_over_pgd10`` and the raw timings.

    python benchmarks/adv_train_speed.py [--quick] [--device cpu] [--n 60000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile

import torch

from interpretgan.config.presets import resolve_train_config
from interpretgan.pipeline.runs import Run
from interpretgan.pipeline.train import fit
from interpretgan.training import load_train_data


def epoch_seconds(objective: str, n: int, device: torch.device, tmp: str, data=None):
    dataset = "mnist" if os.environ.get("INTERPRETGAN_DATA") else "mnist-sample"
    cfg = resolve_train_config(
        dataset, objective, "paper", {"epochs": 1, "n_train": n, "n_test": 200, "attack_steps": 10}
    )
    data = data or load_train_data(cfg)
    run = Run.create(tmp, objective, "train", cfg.to_dict())
    fit(cfg, run, device=device, data=data, progress=False)
    return run.read_metrics()[0]["seconds"], data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2,000 images, 2 repeats (under a minute on 2 cores)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=int, default=60000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    n, repeats = (2000, 2) if args.quick else (args.n, args.repeats)
    device = torch.device(args.device)
    atta, trades, data = [], [], None
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            t, data = epoch_seconds("trades+atta", n, device, tmp, data)
            atta.append(t)
            t, _ = epoch_seconds("trades", n, device, tmp, data)
            trades.append(t)
            print(f"repeat {r}: trades+atta {atta[-1]:.2f} s, trades (10-step inner attack) {trades[-1]:.2f} s")
    ratio = statistics.median(atta) / statistics.median(trades)
    print(f"{len(data.train)} images: trades+atta / trades-10 = {ratio:.3f} (goal <= 0.35)")
    print(json.dumps({"atta_over_pgd10": ratio, "atta_s": atta, "trades10_s": trades, "n_images": len(data.train),
                      "device": str(device)}))


if __name__ == "__main__":
    main()
