"""Stronger attacks than the issue's PGD-100 on the first 1,000 MNIST test images, for saved models.

    INTERPRETGAN_DATA=../shared/data python experiments/2026-12-01-cpu-mnist-max-screen/eval_strong.py \
        experiments/2026-11-30-h200-mnist-adv/max-trades+atta-seed0/ckpt \
        experiments/2026-11-30-h200-mnist-adv/avg-trades+atta-seed0/ckpt

Asks whether the max-pool model's PGD-100 figure hides gradient masking that the average-pool
model lacks: eps 0.3, step 0.01, seeded random start; the issue's PGD-100 (cross-entropy), PGD-100
on the CW margin loss, PGD-300, PGD-100 with five random restarts (an image counts as robust only
if it survives all five), PGD-100 without the [0, 1] clipping, and PGD-100 started at x or at
x + 0.001 * N(0, 1). ``--only=a,b`` as the first argument runs those variants only. The losses
are the library's (``interpretgan.attacks.LOSSES``); the script that ran had its own copy of the
CW margin, the same formula. Accuracies in
percent, one JSON line a model.
"""
import json
import sys

import torch

from interpretgan.attacks import LOSSES
from interpretgan.data import load_dataset
from interpretgan.runs import load_model


def pgd(model, x, y, steps, alpha=0.01, eps=0.3, loss="ce", clip=True, start="uniform"):
    """Per-example robustness (bool) under one l-inf PGD run.

    ``start``: uniform in the eps-ball (the issue's), ``none`` (at x, as captum.robust.PGD without
    random start) or ``gauss`` (x + 0.001 * N(0, 1), TRADES' training start).
    """
    lo, hi = (0.0, 1.0) if clip else (-1e9, 1e9)
    noise = {"uniform": lambda: torch.empty_like(x).uniform_(-eps, eps),
             "none": lambda: torch.zeros_like(x),
             "gauss": lambda: 0.001 * torch.randn_like(x)}[start]()
    xa = (x + noise).clamp(lo, hi)
    for _ in range(steps):
        xa = xa.detach().requires_grad_(True)
        logits = model(xa)
        value = LOSSES[loss](logits, y)  # summed cross-entropy or CW margin
        (grad,) = torch.autograd.grad(value, xa)
        xa = torch.min(torch.max(xa.detach() + alpha * grad.sign(), x - eps), x + eps).clamp(lo, hi)
    with torch.no_grad():
        return model(xa).argmax(1) == y


def robust(model, x, y, batch=500, restarts=1, **kw):
    ok = torch.ones(len(x), dtype=torch.bool)
    for _ in range(restarts):
        ok &= torch.cat([pgd(model, x[i:i + batch], y[i:i + batch], **kw)
                         for i in range(0, len(x), batch)])
    return ok.float().mean().item() * 100


def main():
    x, y = load_dataset("mnist", "test", image_size=32).float_batch(slice(0, 1000))
    variants = [("pgd100_ce", dict(steps=100)),
                ("pgd100_cw", dict(steps=100, loss="cw")),
                ("pgd100_ce_unclipped", dict(steps=100, clip=False)),
                ("pgd300_ce", dict(steps=300)),
                ("pgd100_ce_5restarts", dict(steps=100, restarts=5)),
                ("pgd100_ce_nostart", dict(steps=100, start="none")),
                ("pgd100_ce_gaussstart", dict(steps=100, start="gauss"))]
    args = sys.argv[1:]
    if args and args[0].startswith("--only="):
        keep = args.pop(0).split("=", 1)[1].split(",")
        variants = [v for v in variants if v[0] in keep]
    for name in args:
        model = load_model(name).eval()
        out = {"model": name}
        for label, kw in variants:
            torch.manual_seed(0)
            out[label] = robust(model, x, y, **kw)
            print(label, out[label], flush=True)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
