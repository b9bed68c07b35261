"""PGD-40 / PGD-100 on the first 1,000 MNIST test images with the model under bfloat16 autocast.

    INTERPRETGAN_DATA=../shared/data python experiments/2026-12-01-cpu-mnist-max-screen/eval_bf16.py \
        experiments/2026-11-30-h200-mnist-adv/max-trades+atta-seed0/ckpt \
        experiments/2026-11-30-h200-mnist-adv/avg-trades+atta-seed0/ckpt

Asks whether a loop that evaluates under ``torch.autocast(dtype=torch.bfloat16)`` (a common way to
speed a loop up on an H100/H200) sees a weaker max-pool model: in bfloat16 (8 bits of mantissa) the
four values a 2x2 max pool compares tie far more often than in float32, and a tie sends the whole
gradient to one of them, which average pooling never does. eps 0.3, step 0.01, seeded uniform random
start, clipping to [0, 1]; the perturbation itself stays float32, as in a loop that only wraps the
forward pass. Each variant: float32 throughout, the attack's gradients under autocast with the
prediction in float32, and both under autocast. Also the share of 2x2 max-pool windows whose
maximum ties, on the clean images, in float32 and under autocast. Accuracies in percent, one JSON
line a model.
"""
import contextlib
import json
import sys

import torch
import torch.nn.functional as F

from interpretgan.data import load_dataset
from interpretgan.runs import load_model


def autocast(on):
    return torch.autocast("cpu", dtype=torch.bfloat16) if on else contextlib.nullcontext()


def pgd(model, x, y, steps, grad_bf16, pred_bf16, alpha=0.01, eps=0.3):
    """Per-example robustness (bool) under one l-inf PGD run."""
    xa = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        xa = xa.detach().requires_grad_(True)
        with autocast(grad_bf16):
            logits = model(xa)
        value = F.cross_entropy(logits.float(), y, reduction="sum")
        (grad,) = torch.autograd.grad(value, xa)
        xa = torch.min(torch.max(xa.detach() + alpha * grad.sign(), x - eps), x + eps).clamp(0, 1)
    with torch.no_grad(), autocast(pred_bf16):
        return model(xa).float().argmax(1) == y


def robust(model, x, y, batch=500, **kw):
    ok = torch.cat([pgd(model, x[i:i + batch], y[i:i + batch], **kw) for i in range(0, len(x), batch)])
    return ok.float().mean().item() * 100


def tie_share(model, x, on):
    """Share of 2x2 max-pool windows whose largest value occurs more than once."""
    ties, total = [], []

    def hook(module, inputs, output):
        a = inputs[0]
        win = F.unfold(a.float().flatten(0, 1).unsqueeze(1), 2, stride=2)  # (N*C, 4, L)
        top = win.max(1, keepdim=True).values
        ties.append(((win == top).sum(1) > 1).sum().item())
        total.append(top.numel())

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.MaxPool2d)]
    with torch.no_grad(), autocast(on):
        model(x)
    for h in hooks:
        h.remove()
    return 100 * sum(ties) / max(sum(total), 1)


def main():
    x, y = load_dataset("mnist", "test", image_size=32).float_batch(slice(0, 1000))
    variants = [("fp32", dict(grad_bf16=False, pred_bf16=False)),
                ("grad_bf16", dict(grad_bf16=True, pred_bf16=False)),
                ("bf16", dict(grad_bf16=True, pred_bf16=True))]
    for name in sys.argv[1:]:
        model = load_model(name).eval()
        out = {"model": name, "maxpool_ties_fp32": tie_share(model, x, False),
               "maxpool_ties_bf16": tie_share(model, x, True)}
        for label, kw in variants:
            for steps in (40, 100):
                torch.manual_seed(0)
                key = f"pgd{steps}_{label}"
                out[key] = robust(model, x, y, steps=steps, **kw)
                print(key, out[key], flush=True)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
