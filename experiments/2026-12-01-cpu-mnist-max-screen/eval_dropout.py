"""PGD-40 / PGD-100 on the first 1,000 MNIST test images with the model's dropout on, for saved models.

    INTERPRETGAN_DATA=../shared/data python experiments/2026-12-01-cpu-mnist-max-screen/eval_dropout.py CKPT [CKPT ...]

Three evaluation modes: `eval` (the issue's: eval mode throughout), `attack_train` (the attack's
gradients taken in train mode, i.e. with dropout; the final prediction in eval mode) and
`all_train` (attack and final prediction in train mode: a loop that never calls model.eval()).
Step 0.01, eps 0.3, random start clipped to [0, 1], torch.manual_seed(0) before each. Accuracies
in percent, one JSON line a model.
"""
import json
import sys

import torch
import torch.nn.functional as F

from interpretgan.data import load_dataset
from interpretgan.runs import load_model

ds = load_dataset("mnist", "test", image_size=32)
x = ds.x[:1000].float() / 255.0
y = ds.y[:1000].long()


def pgd(model, steps, attack_train, predict_train, eps=0.3, alpha=0.01):
    xa = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    model.train(attack_train)
    for _ in range(steps):
        xa = xa.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(xa), y), xa)
        xa = torch.min(torch.max(xa.detach() + alpha * grad.sign(), x - eps), x + eps).clamp(0, 1)
    model.train(predict_train)
    with torch.no_grad():
        return round((model(xa).argmax(1) == y).float().mean().item() * 100, 2)


for path in sys.argv[1:]:
    model = load_model(path)
    out = {"model": path}
    for mode, flags in [("eval", (False, False)), ("attack_train", (True, False)), ("all_train", (True, True))]:
        for steps in (40, 100):
            torch.manual_seed(0)
            out[f"pgd{steps}_{mode}"] = pgd(model, steps, *flags)
            print(mode, steps, out[f"pgd{steps}_{mode}"], flush=True)
    print(json.dumps(out), flush=True)
