"""A residual classifier of your own, tapped inside its blocks, through the whole method.

A small ResNet written here (basic blocks with a projection shortcut, no torchvision) on the
MNIST digits that ship with the package at 28 x 28: trained in a plain loop, attacked with
PGD-40, explained at a convolution inside a block (``layer1.1.conv2``) and at a block's output
(``layer2.1``), and diagnosed (Table 1).

``build`` makes the file a ``--model`` reference for the command line as well:

    python examples/own_resnet.py            # smoke scale, in memory: about a minute on 2 CPU cores
    python examples/own_resnet.py --full     # the `cpu` explainer preset: a few minutes more
    interpretgan train --model examples/own_resnet.py:build --dataset mnist-sample --image-size 28 \\
        --layers layer1.1.conv2,layer2.1 --preset smoke
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
from interpretgan.errors import ConfigError
from interpretgan.explain import train_explainers
from interpretgan.explain.metrics import explanation_predictions
from interpretgan.models import tap


class BasicBlock(nn.Module):
    """conv-bn-relu-conv-bn plus the input (projected when the shape changes), then relu."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResNet(nn.Module):
    """28 x 28 -> 16 x 28 x 28 (stem, layer1) -> 32 x 14 x 14 (layer2) -> global average -> 10 logits."""

    def __init__(self, width: int = 16, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.layer1 = nn.Sequential(BasicBlock(width, width), BasicBlock(width, width))
        self.layer2 = nn.Sequential(BasicBlock(width, 2 * width, stride=2), BasicBlock(2 * width, 2 * width))
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.layer2(self.layer1(self.stem(x)))
        return self.fc(F.adaptive_avg_pool2d(h, 1).flatten(1))


def build() -> nn.Module:
    """The ``--model examples/own_resnet.py:build`` entry point: a callable with no arguments."""
    return ResNet()


LAYERS = ["layer1.1.conv2", "layer2.1"]


def main(full: bool = False, n_attack: int = 200) -> dict:
    torch.manual_seed(0)
    t0 = time.perf_counter()
    train, test = (load_dataset("mnist-sample", split, image_size=28) for split in ("train", "test"))
    net = build()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for epoch in range(3 if full else 1):  # a plain PyTorch loop: the user's own training
        net.train()
        for idx in torch.randperm(len(train)).split(64):
            loss = F.cross_entropy(net(train.x[idx].float() / 255), train.y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    # BatchNorm's running statistics trail weights that moved fast (eval accuracy 64 % against 90 %
    # in train mode after one epoch): re-estimate them once at the final weights.
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a plain average over the batches below
    with torch.no_grad():
        for idx in torch.arange(2000).split(250):
            net(train.x[idx].float() / 255)
    net.eval()
    x, y = test.x[:n_attack].float() / 255, test.y[:n_attack]
    with torch.no_grad():
        clean = float((net(x).argmax(1) == y).float().mean())
    x_adv = make_attack("pgd", eps=0.3, alpha=0.01, steps=40, generator=torch.Generator().manual_seed(0))(net, x, y)

    # Taps by module path, one inside a residual block: the hooks read what that module returns
    f = tap(net, layers=LAYERS, input_shape=(1, 28, 28))
    # f_post exists where the rest of the net depends on the input through that output alone: after
    # a whole block, but not inside one, where the shortcut also carries the block's input.
    assert torch.allclose(f.f_post("layer2.1", f.f_pre(x[:4], "layer2.1")), net(x[:4]), atol=1e-5)
    try:
        f.f_post("layer1.1.conv2", f.f_pre(x[:4], "layer1.1.conv2"))
        inside = "offered"
    except ConfigError as err:
        inside = str(err)

    cfg = resolve_explain_config("mnist", "cpu" if full else "smoke", {"layers": LAYERS})
    explainers = train_explainers(f, train, cfg, progress=False)["explainers"]
    own, preds = explanation_predictions(f, explainers, x)
    consistency = {n: float((p == own).float().mean()) for n, p in preds.items()}
    res = diagnose(f, explainers, x_adv, y, x=x, n_boot=200)
    t = res["table"]
    print(f"clean {clean:.1%}, PGD-40 {res['input_accuracy']:.1%} on {res['n']} test digits "
          f"({time.perf_counter() - t0:.0f} s)")
    print(f"f_post inside a block: {inside}")
    for layer in t["layers"]:
        vul = t["vulnerability"][layer]
        print(f"  {layer:15s} consistency {consistency[layer]:6.1%}   Acc_i {t['accuracy'][layer]:6.1%}   Vul_i "
              + ("-" if vul is None else f"{vul:6.1%}"))
    return {"clean": clean, "consistency": consistency, "f_post_inside_block": inside, **res}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="train 3 epochs and the explainers with the cpu preset")
    main(parser.parse_args().full)
