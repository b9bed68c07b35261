"""Your own classifier through the whole method, in memory: train, attack, explain, diagnose.

A LeNet-style net written here (no registry, no run folder), trained on the MNIST digits that ship
with the package at their own 28 x 28, attacked with PGD-40, explained at two layers named by
module path, and diagnosed (Table 1: Acc_i and Vul_i). The progressive GAN grows to 4 * 2^k
pixels: the explainers see the digits resized to 32 x 32 and give their explanations back at 28 x 28.

    python examples/own_model.py          # smoke scale: about a minute on 2 CPU cores
    python examples/own_model.py --full   # the `cpu` explainer preset: a few minutes more
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from interpretgan.attacks import make_attack
from interpretgan.config.presets import resolve_explain_config
from interpretgan.data import load_dataset
from interpretgan.diagnose import diagnose
from interpretgan.explain import train_explainers
from interpretgan.explain.metrics import explanation_predictions
from interpretgan.models import tap


class LeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # 16 x 14 x 14
            nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # 32 x 7 x 7
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def main(full: bool = False, n_attack: int = 200) -> dict:
    torch.manual_seed(0)
    t0 = time.perf_counter()
    train, test = (load_dataset("mnist-sample", split, image_size=28) for split in ("train", "test"))
    net = LeNet()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for epoch in range(3 if full else 1):  # a plain PyTorch loop: the user's own training
        for idx in torch.randperm(len(train)).split(64):
            loss = F.cross_entropy(net(train.x[idx].float() / 255), train.y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    x, y = test.x[:n_attack].float() / 255, test.y[:n_attack]
    clean = float((net(x).argmax(1) == y).float().mean())

    # PGD-40 at the paper's MNIST radius: D* = (x_adv, y)
    x_adv = make_attack("pgd", eps=0.3, alpha=0.01, steps=40, generator=torch.Generator().manual_seed(0))(net, x, y)

    # The two layers to explain, by module path; f keeps the net's own weights and forward
    f = tap(net, layers=["features.2", "features.5"], input_shape=(1, 28, 28), names=["pool1", "pool2"])
    cfg = resolve_explain_config("mnist", "cpu" if full else "smoke", {"layers": ["pool1", "pool2"]})
    explainers = train_explainers(f, train, cfg, progress=False)["explainers"]

    # The explainers keep what f predicts from each layer (consistency: f(x_hat) = f(x) on clean digits)
    own, preds = explanation_predictions(f, explainers, x)
    consistency = {n: float((p == own).float().mean()) for n, p in preds.items()}

    res = diagnose(f, explainers, x_adv, y, x=x, n_boot=200)
    t = res["table"]
    print(f"clean {clean:.1%}, PGD-40 {res['input_accuracy']:.1%} on {res['n']} test digits "
          f"({time.perf_counter() - t0:.0f} s)")
    for layer in t["layers"]:
        vul = t["vulnerability"][layer]
        print(f"  {layer:6s} consistency {consistency[layer]:6.1%}   Acc_i {t['accuracy'][layer]:6.1%}   Vul_i "
              + ("-" if vul is None else f"{vul:6.1%}"))
    return {"clean": clean, "consistency": consistency, **res}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="train 3 epochs and the explainers with the cpu preset")
    main(parser.parse_args().full)
