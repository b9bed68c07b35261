"""Explainers trained in fp32 and under bf16 autocast, side by side (issue 30, point 1).

The zoo's natural SmallCNN, the `cpu` explainer preset's widths, layers conv2 and fc1 (a conv map and a
dense vector), ITERS iterations per scale on the shipped MNIST sample's training images, the same seed;
then each explainer's consistency (f(x_hat) = f(x)) and Frechet distance on 1,000 test images, scored
in fp32. Prints one JSON line.

    python experiments/2026-12-04-bf16-cpu/bf16_explain.py [--iters 100,100,100,100]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from interpretgan.config.presets import resolve_explain_config
from interpretgan.data import load_dataset
from interpretgan.explain import train_explainers
from interpretgan.explain.metrics import evaluate_explainers
from interpretgan.pretrained import load


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", default="100,100,100,100")
    iters = [int(v) for v in ap.parse_args().iters.split(",")]
    f = load("mnist-smallcnn-max-natural")
    train = load_dataset("mnist-sample", "train", image_size=32)
    test = load_dataset("mnist-sample", "test", image_size=32)
    out = {"iters": iters, "layers": ["conv2", "fc1"], "threads": torch.get_num_threads(), "variants": {}}
    for precision in ("fp32", "bf16"):
        cfg = resolve_explain_config("mnist-sample", "cpu", {"scale_iterations": iters, "precision": precision,
                                                             "layers": ["conv2", "fc1"], "log_every": 10**9,
                                                             "checkpoint_every": 10**9})
        t0 = time.perf_counter()
        explainers = train_explainers(f, train, cfg, progress=False)["explainers"]
        seconds = time.perf_counter() - t0
        q = evaluate_explainers(f, explainers, test.x, baseline_seed=None)["layers"]
        layers = {k: {"consistency": v["consistency"], "frechet": v["frechet"]} for k, v in q.items()}
        out["variants"][precision] = {"seconds": seconds, **layers}
        print(precision, f"{seconds:.1f} s", layers, flush=True)
    out["bf16_speedup"] = out["variants"]["fp32"]["seconds"] / out["variants"]["bf16"]["seconds"]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
