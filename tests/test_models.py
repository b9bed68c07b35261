"""Registry, tap shapes, f_post, hooks, pooling switch, bad names."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from interpretgan.errors import ConfigError
from interpretgan.models import create_model, list_models

# Small but faithful variants: the architecture is the same, only widths/depth shrink.
SMALL = {
    "smallcnn": dict(in_channels=1, image_size=32),
    "vgg16": dict(image_size=64, width=0.125, fc_width=32),
    "wrn34_10": dict(depth=10, widen=1),
}

EXPECTED_LAYERS = {
    "smallcnn": ["conv1", "conv2", "conv3", "conv4", "fc1", "fc2", "fc3"],
    "vgg16": ["block1", "block2", "block3", "block4", "block5", "fc1", "fc2", "fc3"],
    "wrn34_10": ["conv1", "block1", "block2", "block3", "pool", "fc"],
}


#: The shipped families, read from the registry (conftest's ``*-test`` helpers left out): a family
#: added without a small variant here fails the tests instead of going untested.
MODELS = [name for name in list_models() if not name.endswith("-test")]


def _model(name: str, pool: str = "max") -> nn.Module:
    """A small model whose logits depend on its input: smallcnn's zero last layer (TRADES' init) is
    redrawn, and BatchNorm gets the statistics of a batch instead of its identity initialisation."""
    assert name in SMALL, f"registered model '{name}' has no small variant in SMALL: add one to test it"
    torch.manual_seed(0)
    model = create_model(name, pool=pool, **SMALL[name])
    if name == "smallcnn":
        nn.init.normal_(model.stages["fc3"].weight, std=0.3)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = 1.0  # the running statistics become this batch's
    with torch.no_grad():
        model.train()(_input(model, 8, seed=2))
    return model.eval()


def _input(model: nn.Module, n: int = 3, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    s = model.config["image_size"]
    return torch.rand(n, model.config["in_channels"], s, s, generator=g)


def test_registry_lists_every_family():
    assert set(EXPECTED_LAYERS) == set(MODELS) == set(SMALL)


@pytest.mark.parametrize("name", MODELS)
def test_layer_names_follow_the_paper(name):
    assert _model(name).layer_names == EXPECTED_LAYERS[name]


def test_smallcnn_tap_shapes_at_32():
    shapes = create_model("smallcnn").tap_shapes(32)
    assert shapes == {
        "conv1": (32, 30, 30), "conv2": (32, 14, 14), "conv3": (64, 12, 12), "conv4": (64, 5, 5),
        "fc1": (200,), "fc2": (200,), "fc3": (10,),
    }
    assert create_model("smallcnn", image_size=28).tap_shapes(28)["conv4"] == (64, 4, 4)


def test_vgg16_tap_shapes_any_multiple_of_32():
    m = create_model("vgg16", image_size=64, width=0.125, fc_width=32, num_classes=2)
    s = m.tap_shapes(64)
    assert [s[f"block{i}"][1] for i in range(1, 6)] == [32, 16, 8, 4, 2]
    assert s["block5"][0] == 64 and s["fc1"] == (32,) and s["fc3"] == (2,)
    full = create_model("vgg16").tap_shapes(32)
    assert full["block1"] == (64, 16, 16) and full["block5"] == (512, 1, 1) and full["fc3"] == (10,)
    with pytest.raises(ConfigError, match="multiple of 32"):
        create_model("vgg16", image_size=48)


def test_wrn_default_is_34_10():
    m = create_model("wrn34_10")
    s = m.tap_shapes(32)
    assert s["block1"] == (160, 32, 32) and s["block2"] == (320, 16, 16) and s["block3"] == (640, 8, 8)
    assert s["pool"] == (640,) and s["fc"] == (10,)
    assert sum(len(m.stages[f"block{i}"]) for i in (1, 2, 3)) == 15  # (34 - 4) / 6 = 5 blocks a stage
    assert sum(p.numel() for p in m.parameters()) == 46_160_474  # TRADES' WideResNet-34-10, parameter for parameter
    with pytest.raises(ConfigError, match="6n \\+ 4"):
        create_model("wrn34_10", depth=20)


@pytest.mark.parametrize("name", MODELS)
def test_taps_and_f_post_equal_the_full_forward(name):
    model = _model(name)
    x = _input(model)
    logits = model(x)
    assert logits.std(0).max() > 1e-2  # the logits depend on the input: the checks below can fail
    taps = model.taps(x)
    assert list(taps) == model.layer_names
    torch.testing.assert_close(taps[model.layer_names[-1]], logits)
    for layer, h in taps.items():
        torch.testing.assert_close(model.f_post(layer, h), logits, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model.f_pre(x, layer), h)
        assert not torch.allclose(model.f_post(layer, torch.zeros_like(h)), logits, atol=1e-3)  # f_post reads h


@pytest.mark.parametrize("name", MODELS)
def test_no_hook_left_behind(name):
    model = _model(name)
    x = _input(model)
    model.taps(x, [model.layer_names[1], model.layer_names[-1]])
    assert all(not m._forward_hooks for m in model.modules())
    # also when the forward fails half-way (wrong channel count)
    bad = torch.rand(2, model.config["in_channels"] + 1, x.shape[2], x.shape[3])
    with pytest.raises(RuntimeError):
        model.taps(bad)
    assert all(not m._forward_hooks for m in model.modules())


def test_unknown_layer_lists_valid_ones():
    model = _model("smallcnn")
    with pytest.raises(ConfigError, match="unknown layer 'conv9'.*conv1, conv2, conv3, conv4, fc1, fc2, fc3"):
        model.taps(_input(model), ["conv9"])
    with pytest.raises(ConfigError, match="unknown layer"):
        model.f_post("pool5", torch.zeros(1))


def test_unknown_model_and_bad_options():
    with pytest.raises(ConfigError, match="registered models are"):
        create_model("resnet")
    with pytest.raises(ConfigError, match="bad options"):
        create_model("smallcnn", colour="red")
    with pytest.raises(ConfigError, match="pooling"):
        create_model("smallcnn", pool="median")
    with pytest.raises(ConfigError, match="bad options for model 'vgg16': .*negative dimension"):
        create_model("vgg16", width=0.125, fc_width=16, in_channels=-1)  # torch's own error, as one sentence
    with pytest.raises(ConfigError, match="needs image_size >= 16, got 15"):
        create_model("smallcnn", image_size=15)
    assert create_model("smallcnn", image_size=16).tap_shapes(16)["conv4"] == (64, 1, 1)
    for name in ("vgg16", "wrn34_10"):
        with pytest.raises(ConfigError, match="only mean given; expected both mean and std"):
            create_model(name, mean=(0.5, 0.5, 0.5))


@pytest.mark.parametrize("name", ["smallcnn", "vgg16"])
def test_pool_switches_every_pooling_layer(name):
    kinds = {pool: [type(m) for m in _model(name, pool).modules() if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))]
             for pool in ("max", "avg")}
    assert kinds["max"] and all(t is nn.MaxPool2d for t in kinds["max"])
    assert len(kinds["avg"]) == len(kinds["max"]) and all(t is nn.AvgPool2d for t in kinds["avg"])


def test_wrn_pool_switches_global_pooling():
    mx, av = _model("wrn34_10", "max"), _model("wrn34_10", "avg")
    assert isinstance(mx.stages["pool"].pool, nn.AdaptiveMaxPool2d)
    assert isinstance(av.stages["pool"].pool, nn.AdaptiveAvgPool2d)


@pytest.mark.parametrize("name", MODELS)
def test_every_relu_module_runs_once(name):
    """Captum's DeepLIFT needs each nn.ReLU module used exactly once per forward."""
    model = _model(name)
    calls: dict[nn.Module, int] = {}
    handles = [m.register_forward_hook(lambda mod, i, o: calls.__setitem__(mod, calls.get(mod, 0) + 1))
               for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        model(_input(model))
    finally:
        for h in handles:
            h.remove()
    assert calls and set(calls.values()) == {1}


def test_normalization_lives_inside_the_model():
    m = create_model("vgg16", width=0.125, fc_width=16, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)).eval()
    x = torch.full((1, 3, 32, 32), 0.5)
    torch.testing.assert_close(m.normalize(x), torch.zeros_like(x))
