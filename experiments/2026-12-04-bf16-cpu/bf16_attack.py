"""Does PGD-40 under bf16 autocast measure the same robust accuracy as fp32? (issue 30, point 1)

The zoo's trades+atta SmallCNN (max pooling) on the first N test images of the shipped MNIST sample,
PGD-40 (eps 0.3, step 0.01, random start seeded alike): fp32; bf16 autocast throughout; bf16 with the
first convolution kept in fp32 (the layer that reads the perturbed pixels). Each x_adv is judged by
the fp32 model. Prints one JSON line.

    python experiments/2026-12-04-bf16-cpu/bf16_attack.py [--n 1000]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn

from interpretgan.attacks import make_attack
from interpretgan.data import load_dataset
from interpretgan.pretrained import load


class FP32(nn.Module):
    """``module`` run outside autocast, in float32."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", enabled=False):
            return self.module(x.float())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    n = ap.parse_args().n
    name = "mnist-smallcnn-max-trades+atta"
    ref = load(name).eval()
    ds = load_dataset("mnist-sample", "test", image_size=32)
    x, y = ds.x[:n].float() / 255, ds.y[:n]
    out = {"model": name, "n": n, "threads": torch.get_num_threads(), "variants": {}}
    for variant in ("fp32", "bf16", "bf16, conv1 in fp32"):
        f = load(name).eval()
        if variant == "bf16, conv1 in fp32":
            f.stages.conv1[0] = FP32(f.stages.conv1[0])
        attack = make_attack("pgd", eps=0.3, alpha=0.01, steps=40, generator=torch.Generator().manual_seed(0))
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant != "fp32"):
            x_adv = torch.cat([attack(f, xb, yb) for xb, yb in zip(x.split(200), y.split(200))])
        seconds = time.perf_counter() - t0
        with torch.no_grad():
            acc = float((ref(x_adv).argmax(1) == y).float().mean())
        out["variants"][variant] = {"pgd40_accuracy": acc, "seconds": seconds}
        print(f"{variant}: PGD-40 accuracy {acc:.2%} in {seconds:.1f} s", flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
