"""Captum baselines: only ``interpretgan.baselines`` imports Captum; the attributions keep their
defining properties on the package's models as they are; the Fig. 3/5 figure with them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from interpretgan.baselines import METHODS, attribute
from interpretgan.errors import ConfigError
from interpretgan.io import load_tensors
from interpretgan.models import create_model
from interpretgan.pipeline.baselines import baselines_run

SRC = Path(__file__).resolve().parents[1] / "src" / "interpretgan"


pytestmark = pytest.mark.usefixtures("one_thread")


def test_only_the_baselines_package_imports_captum():
    pattern = re.compile(r"^\s*(import captum|from captum)", re.M)
    importers = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if pattern.search(p.read_text()))
    assert importers and all(p.startswith("baselines/") for p in importers), importers


def _smallcnn(pool: str) -> nn.Module:
    torch.manual_seed(0)
    f = create_model("smallcnn", pool=pool)
    nn.init.normal_(f.stages["fc3"].weight, std=0.3)
    return f.eval()


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_attributions_keep_their_defining_properties(pool):
    f = _smallcnn(pool)
    x = torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    maps = attribute(f, x, ig_steps=64)
    assert list(maps) == list(METHODS)
    for m, a in maps.items():
        assert a.shape == x.shape and torch.isfinite(a).all(), m
    with torch.no_grad():
        t = f(x).argmax(1)
        gap = f(x).gather(1, t[:, None])[:, 0] - f(torch.zeros_like(x)).gather(1, t[:, None])[:, 0]
    # Completeness (summation to delta) of DeepLIFT and integrated gradients from the black baseline.
    assert maps["deeplift"].flatten(1).sum(1) == pytest.approx(gap.tolist(), rel=1e-3, abs=1e-4)
    assert maps["integrated_gradients"].flatten(1).sum(1) == pytest.approx(gap.tolist(), rel=0.05, abs=0.02)
    # Saliency is |grad|; input x gradient is x * grad.
    assert (maps["saliency"] >= 0).all()
    xg = x.clone().requires_grad_(True)
    f(xg).gather(1, t[:, None]).sum().backward()
    assert torch.allclose(maps["input_x_gradient"], x * xg.grad, atol=1e-6)
    assert torch.allclose(maps["saliency"], xg.grad.abs(), atol=1e-6)
    # Occlusion of a black image against a black baseline changes nothing: all zero.
    assert attribute(f, torch.zeros(1, 1, 32, 32), ["occlusion"])["occlusion"].abs().max() == 0


@pytest.mark.parametrize("name,kwargs,complete", [
    ("vgg16", dict(width=0.0625, fc_width=16, in_channels=3, pool="avg"), True),
    ("wrn34_10", dict(depth=10, widen=1, in_channels=3, pool="avg"), True),
    # Captum's max-pool rule is an approximation: with BatchNorm the black reference is not zero
    # inside the network and summation-to-delta no longer holds exactly (SmallCNN keeps it: above).
    ("vgg16", dict(width=0.0625, fc_width=16, in_channels=3, pool="max"), False),
    ("wrn34_10", dict(depth=10, widen=1, in_channels=3, pool="max"), False),
])
def test_deeplift_works_on_the_other_models_as_they_are(name, kwargs, complete):
    torch.manual_seed(0)
    f = create_model(name, **kwargs)
    for m in f.modules():  # BatchNorm with a batch's statistics, so the output depends on the input
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = 1.0
    with torch.no_grad():
        f.train()(torch.rand(8, 3, 32, 32))
    f.eval()
    x = torch.rand(4, 3, 32, 32)
    a = attribute(f, x, ["deeplift", "saliency"])
    assert all(v.shape == x.shape and torch.isfinite(v).all() for v in a.values())
    with torch.no_grad():
        t = f(x).argmax(1)
        gap = f(x).gather(1, t[:, None])[:, 0] - f(torch.zeros_like(x)).gather(1, t[:, None])[:, 0]
    assert gap.abs().min() > 1e-3
    if complete:
        assert a["deeplift"].flatten(1).sum(1) == pytest.approx(gap.tolist(), rel=1e-3, abs=1e-5)
    else:
        assert (a["deeplift"].flatten(1).abs().sum(1) > 1e-3 * gap.abs()).all()
    xg = x.clone().requires_grad_(True)
    f(xg).gather(1, t[:, None]).sum().backward()
    assert torch.allclose(a["saliency"], xg.grad.abs(), atol=1e-7)


def test_unknown_method_is_refused():
    with pytest.raises(ConfigError, match="unknown baseline"):
        attribute(_smallcnn("max"), torch.rand(1, 1, 32, 32), ["lime"])


def test_baselines_figure_beside_the_explanations(sample_explain_run, tmp_path):
    from PIL import Image

    res = baselines_run(sample_explain_run, attack="fgsm", n=2, out_dir=tmp_path)
    with Image.open(tmp_path / "baselines-fgsm.png") as img:
        assert img.format == "PNG" and img.size[0] > 13 * 100  # input + 7 layers + 5 methods
    t = load_tensors(tmp_path / "baselines-fgsm.safetensors")
    assert t["nat_images"].shape == (2, 8, 1, 32, 32)
    for m in METHODS:
        assert t[f"nat_attr_{m}"].shape == t[f"adv_attr_{m}"].shape == (2, 1, 32, 32)
    assert res["methods"] == list(METHODS) and len(res["examples"]) == 2
