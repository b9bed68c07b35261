"""Screen training variants of the max-pool MNIST `trades+atta` SmallCNN on the `cpu` preset.

    INTERPRETGAN_DATA=../shared/data python screen.py OUTDIR VARIANT [POOL]

The `cpu` preset (10 epochs, ATTA step 0.06, lr x0.1 from epoch 8, seed 0, 32x32), changed by
VARIANT: base | norm (MNIST mean/std normalisation inside the model) | nodrop (dropout 0, i.e. a
loop that never leaves eval mode) | detach (the TRADES KL term's target f(x) detached) | beta06
(beta 0.6, what F.kl_div's default reduction='mean' gives: it also divides by the 10 classes) |
trainattack (the ATTA step taken with the model in train mode, dropout on: a loop that never calls
model.eval()) | pad (28x28 digits zero-padded to 32x32 instead of the bilinear resize) | nearest or
bicubic (the 28 -> 32 resize with F.interpolate's default mode 'nearest', or 'bicubic'; the
preprocessing variants use their own data cache, and the model is attacked on its own test set) |
wd (weight decay 2e-4, the CIFAR-10 recipe's, carried over to MNIST) | noclip (training's ATTA
and TRADES perturbations projected on the eps-ball only, never clipped to [0, 1]) | bf16 (every
forward pass, the attack's, training's and the final evaluation's, under CPU bfloat16 autocast,
the logits cast back to float32 so the losses are float32, as CUDA autocast does for them).
The variants that are no library option are patched in here. The model is then attacked on the
first 1,000 test images with PGD-40 and PGD-100 (eps 0.3, step 0.01, seeded random start) through
the library's `evaluate_attacks`. Prints one JSON line.
"""

import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from interpretgan.attacks import make_attack
from interpretgan.attacks.evaluate import evaluate_attacks
from interpretgan.config.presets import resolve_train_config
from interpretgan.data import load_dataset
from interpretgan.models import Normalize
from interpretgan.runs import Run, load_tensors
from interpretgan.training import loop, objectives

out, variant = Path(sys.argv[1]), sys.argv[2]
pool = sys.argv[3] if len(sys.argv) > 3 else "max"
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
over = {"pool": pool, "seed": 0}
if variant == "beta06":
    over["beta"] = 0.6
if variant == "wd":
    over["weight_decay"] = 2e-4
if variant == "nodrop":
    over["model_kwargs"] = {"dropout": 0.0}
cfg = resolve_train_config("mnist", "trades+atta", "cpu", over)
if variant == "norm":
    plain_build = loop.build_model

    def build(cfg, data):
        model = plain_build(cfg, data)
        model.normalize = Normalize([0.1307], [0.3081])
        return model

    loop.build_model = build
if variant == "bf16":
    plain_build = loop.build_model

    def build(cfg, data):
        model = plain_build(cfg, data)
        plain_forward = model.forward

        def forward(x):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return plain_forward(x).float()

        model.forward = forward
        return model

    loop.build_model = build
if variant == "detach":
    plain_kl = objectives._kl_sum
    objectives._kl_sum = lambda logits_adv, p_nat: plain_kl(logits_adv, p_nat.detach())

if variant == "noclip":  # the training perturbations are kept in the eps-ball only, not in [0, 1]
    objectives._project = lambda x_adv, x, eps: torch.min(torch.max(x_adv, x - eps), x + eps)

if variant == "trainattack":
    plain_attack = objectives._Adversarial._attack

    def attack_in_train_mode(self, model, x, y, x_adv):
        model.eval = lambda: model  # _attack's model.eval() becomes a no-op
        try:
            return plain_attack(self, model, x, y, x_adv)
        finally:
            del model.eval

    objectives._Adversarial._attack = attack_in_train_mode
if variant in ("pad", "nearest", "bicubic"):
    import interpretgan.data.mnist as mnist_data

    def to_images(digits, size):
        x = torch.from_numpy(digits.copy())[:, None]
        if variant == "pad":
            return F.pad(x, [(size - 28) // 2] * 4)
        return F.interpolate(x.float(), size=(size, size), mode=variant).round_().clamp_(0, 255).to(torch.uint8)

    os.environ["INTERPRETGAN_CACHE"] = tempfile.mkdtemp(prefix=f"mnist-{variant}-cache-")
    mnist_data.to_images = to_images
run = Run.create(out, f"{variant}-{pool}", "train", cfg.to_dict())
t0 = time.time()
loop.fit(cfg, run, device="cpu", progress=False)
train_s = time.time() - t0
model = loop.build_model(cfg, loop.load_train_data(cfg))
model.load_state_dict(load_tensors(run.ckpt_dir / "model.safetensors"))
model.eval()
ds = load_dataset("mnist", "test", image_size=32)
attacks = {f"pgd{s}": make_attack("pgd", eps=0.3, alpha=0.01, steps=s) for s in (40, 100)}
res = evaluate_attacks(model, ds.x[:1000], ds.y[:1000], attacks, batch_size=500, device="cpu", num_classes=10)
print(json.dumps({"variant": variant, "pool": pool, "train_s": round(train_s), "clean": res["clean_accuracy"],
                  **{k: a["accuracy"] for k, a in res["attacks"].items()}}), flush=True)
