"""PGD with this project's random start beside the one TRADES' and ATTA's evaluation scripts use.

Both start from ``x + U(-eps, eps)``; this project clips the start to [0, 1] before the first
gradient, TRADES' and ATTA's `pgd_attack_mnist.py` take the first gradient at the unclipped start
(the iterate is clipped after each step in both). The probe behind the MNIST `paper` preset's
finding (experiments/2026-11-30-cpu-mnist-paper), about 3.5 minutes on 2 CPU cores:

    python experiments/2026-11-30-cpu-mnist-paper/probe_pgd_start.py RUN --steps 100 --n 1000

RUN is an MNIST classifier run folder; the first N test images, eps 0.3, step 0.01, seed 0.
Prints one JSON line: robust accuracy with each start, and seconds.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from interpretgan.attacks.pgd import PGD
from interpretgan.data import load_dataset
from interpretgan.runs import load_model


def unclipped_start_pgd(model, x, y, eps: float, alpha: float, steps: int, gen: torch.Generator) -> torch.Tensor:
    """PGD as TRADES' evaluation script: the first gradient is taken at the unclipped uniform start."""
    x_adv = x + (2 * torch.rand(x.shape, generator=gen) - 1) * eps
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x_adv), y), x_adv)
        x_adv = torch.min(torch.max(x_adv.detach() + alpha * grad.sign(), x - eps), x + eps).clamp(0, 1)
    return x_adv.detach()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--eps", type=float, default=0.3)
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=500)
    args = ap.parse_args()

    model = load_model(args.run).eval()
    x, y = load_dataset("mnist", "test", image_size=32).float_batch(slice(0, args.n))
    starts = {
        "clipped_start": lambda xb, yb, gen: PGD(args.eps, args.alpha, args.steps, random_start=True, generator=gen)(model, xb, yb),
        "unclipped_start": lambda xb, yb, gen: unclipped_start_pgd(model, xb, yb, args.eps, args.alpha, args.steps, gen),
    }
    out: dict = {"run": args.run, "steps": args.steps, "n": len(y), "eps": args.eps, "alpha": args.alpha}
    for name, attack in starts.items():
        t = time.time()
        gen = torch.Generator().manual_seed(args.seed)
        x_adv = torch.cat([attack(x[i:i + args.batch_size], y[i:i + args.batch_size], gen)
                           for i in range(0, len(y), args.batch_size)])
        with torch.no_grad():
            out[name] = round((model(x_adv).argmax(1) == y).float().mean().item(), 4)
        out[f"{name}_seconds"] = round(time.time() - t, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
