"""tap(): any nn.Module's layers by module path, the one tap code path, and f_post by a torch.fx cut."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from torch import nn

from interpretgan.config import ExplainConfig
from interpretgan.errors import ConfigError
from interpretgan.explain.compression import compression_configs
from interpretgan.explain.explainer import explain, load_explainer
from interpretgan.explain.loop import train_explainers
from interpretgan.models import TappedModel, create_model, tap
from interpretgan.pipeline.explain import RunStore
from interpretgan.pipeline.runs import Run

pytestmark = pytest.mark.usefixtures("one_thread")


class LeNet(nn.Module):
    """The issue's user model: two Sequentials and a flatten in forward, 28x28 MNIST."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class Block(nn.Module):
    """A basic residual block: conv-bn-relu-conv-bn plus the (projected) input."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.skip = nn.Identity() if stride == 1 and c_in == c_out else nn.Conv2d(c_in, c_out, 1, stride, bias=False)
        self.out = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + self.skip(x))


class ResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.layer1 = nn.Sequential(Block(8, 8, 1), Block(8, 8, 1))
        self.layer2 = nn.Sequential(Block(8, 16, 2), Block(16, 16, 1))
        self.head = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.layer2(self.layer1(self.stem(x)))
        return self.head(h.mean((2, 3)))


def _seeded(net: nn.Module) -> nn.Module:
    """``net`` with seeded weights and BatchNorm statistics that are not the identity."""
    torch.manual_seed(0)
    for p in net.parameters():
        nn.init.normal_(p, std=0.3)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return net.eval()


def _manual_hooks(net: nn.Module, x: torch.Tensor, paths: list[str]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """What a user would write by hand: one forward hook per module, then the logits."""
    out, handles = {}, []
    for p in paths:
        handles.append(net.get_submodule(p).register_forward_hook(lambda m, i, o, p=p: out.__setitem__(p, o.clone())))
    try:
        logits = net(x)
    finally:
        for h in handles:
            h.remove()
    return out, logits


def _no_hooks(net: nn.Module) -> bool:
    return all(not m._forward_hooks for m in net.modules())


def test_lenet_taps_equal_manual_hooks_in_forward_order_then_logits():
    net = _seeded(LeNet())
    paths = ["classifier.1", "features.2", "features.5"]
    f = tap(net, paths, input_shape=(1, 28, 28))
    assert isinstance(f, TappedModel)
    assert f.layer_names == ["features.2", "features.5", "classifier.1", "logits"]  # forward order, logits last
    assert f.tap_shapes() == {
        "features.2": (6, 12, 12),
        "features.5": (16, 4, 4),
        "classifier.1": (64,),
        "logits": (10,),
    }
    assert f.config["image_size"] == 28 and f.config["in_channels"] == 1 and f.config["num_classes"] == 10
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    manual, logits = _manual_hooks(net, x, paths)
    taps = f.taps(x)
    assert list(taps) == f.layer_names
    for p in paths:
        torch.testing.assert_close(taps[p], manual[p], rtol=0, atol=0)
        torch.testing.assert_close(f.f_pre(x, p), manual[p], rtol=0, atol=0)
    torch.testing.assert_close(taps["logits"], logits, rtol=0, atol=0)
    torch.testing.assert_close(f(x), logits, rtol=0, atol=0)
    assert _no_hooks(net)


def test_a_layer_that_gives_the_logits_is_the_last_layer():
    f = tap(_seeded(LeNet()), ["features.5", "classifier"], input_shape=(1, 28, 28))
    assert f.layer_names == ["features.5", "classifier"]  # classifier's output is the net's: no extra tap
    g = tap(_seeded(LeNet()), ["classifier.2", ""], input_shape=(1, 28, 28), names=["fc2", "out"])
    assert g.layer_names == ["fc2", "out"]


def test_residual_net_taps_inside_blocks_equal_manual_hooks():
    net = _seeded(ResNet())
    paths = ["layer1.0.conv2", "layer1.0", "layer2.0.skip", "layer2.1.bn1", "layer2"]
    f = tap(net, paths, input_shape=(3, 16, 16))
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    manual, logits = _manual_hooks(net, x, paths)
    taps = f.taps(x)
    assert list(taps)[-1] == "logits" and set(taps) == {*paths, "logits"}
    for p in paths:
        torch.testing.assert_close(taps[p], manual[p], rtol=0, atol=0)
    torch.testing.assert_close(taps["logits"], logits, rtol=0, atol=0)
    # a request for one early layer stops the forward there: the head never runs
    ran = []
    handle = net.head.register_forward_hook(lambda *a: ran.append(1))
    try:
        f.taps(x, ["layer1.0.conv2"])
    finally:
        handle.remove()
    assert not ran


def test_f_post_where_offered_and_one_sentence_where_not():
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    f = tap(_seeded(LeNet()), ["features.2", "features.5", "classifier.1"], input_shape=(1, 28, 28))
    logits = f(x)
    for layer, h in f.taps(x).items():  # a Sequential inside a traceable forward: cut by torch.fx
        torch.testing.assert_close(f.f_post(layer, h), logits, rtol=1e-6, atol=1e-6)
        assert not torch.allclose(f.f_post(layer, torch.zeros_like(h)), logits, atol=1e-3)  # f_post reads h
    r = tap(_seeded(ResNet()), ["layer1.0.conv1", "layer1", "layer2.0"], input_shape=(3, 16, 16))
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    taps, logits = r.taps(x), r(x)
    for layer in ("layer1", "layer2.0"):  # block outputs: everything after reads only them
        torch.testing.assert_close(r.f_post(layer, taps[layer]), logits, rtol=1e-6, atol=1e-6)
    with pytest.raises(ConfigError, match=r"^f_post is not offered at 'layer1.0.conv1': .*skip connection"):
        r.f_post("layer1.0.conv1", taps["layer1.0.conv1"])  # the block adds its input back after conv1
    assert _no_hooks(r)


class Branchy(LeNet):
    """Python control flow on a tensor's value: not torch.fx-traceable, still tappable."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.flatten(self.features(x), 1)
        return self.classifier(h) if h.sum() > -1e9 else -self.classifier(h)


def test_f_post_of_an_untraceable_model_is_an_error_and_taps_still_work():
    f = tap(_seeded(Branchy()), ["features.5"], input_shape=(1, 28, 28))
    x = torch.rand(2, 1, 28, 28)
    assert f.taps(x)["features.5"].shape == (2, 16, 4, 4)
    with pytest.raises(
        ConfigError, match=r"^f_post is not offered at 'features.5': .*torch.fx-traceable forward of Branchy"
    ):
        f.f_post("features.5", f.f_pre(x, "features.5"))


class Failing(LeNet):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        if getattr(self, "fail", False):
            raise ValueError("failure inside the forward")
        return self.classifier(torch.flatten(h, 1))


def test_no_hook_left_behind_after_an_exception():
    net = _seeded(Failing())
    f = tap(net, ["features.2", "classifier.1"], input_shape=(1, 28, 28))
    net.fail = True
    with pytest.raises(ValueError, match="failure inside the forward"):
        f.taps(torch.rand(2, 1, 28, 28))
    assert _no_hooks(net)
    net.fail = False
    with pytest.raises(RuntimeError):  # wrong channel count: torch's error, from the first conv
        f.taps(torch.rand(2, 3, 28, 28))
    assert _no_hooks(net)
    f.taps(torch.rand(2, 1, 28, 28), ["features.2"])  # a forward stopped early
    assert _no_hooks(net)


def test_bad_input_is_one_sentence():
    net = _seeded(LeNet())
    shape = (1, 28, 28)
    cases = [
        (
            lambda: tap(net, ["features.9"], shape),
            r"^unknown module path 'features.9' in LeNet: 'features' has no submodule '9'; candidate paths are: "
            r"features.0, features.1, features.2, features.3, features.4, features.5$",
        ),
        (
            lambda: tap(net, ["feature.1"], shape),
            r"LeNet has no submodule 'feature'; candidate paths are: features, classifier$",
        ),
        (
            lambda: tap(LeNet, ["features.0"], shape),
            r"^tap\(\) needs a model instance, got the class LeNet; pass LeNet\(...\)$",
        ),
        (lambda: tap(lambda x: x, ["features.0"], shape), r"^tap\(\) needs a torch.nn.Module, got function$"),
        (lambda: tap(net, [], shape), r"^layers is empty; .*features, classifier\)$"),
        (lambda: tap(net, ["features.0", "features.0"], shape), r"^module path 'features.0' is listed twice"),
        (lambda: tap(net, "features.0", shape), r"^layers must be a list of module paths, got the string"),
        (lambda: tap(net, ["features.0"], (28, 28)), r"^input_shape must be \(C, H, W\)"),
        (lambda: tap(net, ["features.0"], (1, 32, 32)), r"^LeNet does not run on one input of shape \(1, 32, 32\): "),
        (
            lambda: tap(net, ["features.0"], shape, names=["conv/1"]),
            r"^layer name 'conv/1' \(for 'features.0'\) is not usable",
        ),
        (lambda: tap(net, ["features.0", "features.3"], shape, names=["a", "a"]), r"^layer name 'a' is given twice"),
        (
            lambda: tap(net, ["features.0"], shape, names=["logits"]),
            r"^layer name 'logits' is kept for the tap on the whole net",
        ),
    ]
    for make, message in cases:
        with pytest.raises(ConfigError, match=message):
            make()
        assert _no_hooks(net)
    f = tap(net, ["features.2"], shape)
    with pytest.raises(
        ConfigError, match=r"^unknown layer 'features.3' for LeNet; valid layers are: features.2, logits$"
    ):
        f.taps(torch.rand(1, *shape), ["features.3"])


class SharedRelu(LeNet):
    def __init__(self) -> None:
        super().__init__()
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.features[0](x))
        h = self.features[3](self.features[2](h))
        return self.classifier(torch.flatten(self.features[5](self.act(h)), 1))


class Unused(LeNet):
    def __init__(self) -> None:
        super().__init__()
        self.spare = nn.Linear(10, 10)  # declared, never called


class InplaceRelu(LeNet):
    def __init__(self) -> None:
        super().__init__()
        self.features[1] = nn.ReLU(inplace=True)


def test_a_module_that_runs_twice_or_never_or_whose_output_changes_in_place_is_refused():
    with pytest.raises(ConfigError, match=r"^module 'act' of SharedRelu runs more than once in one forward"):
        tap(SharedRelu(), ["act"], (1, 28, 28))
    with pytest.raises(ConfigError, match=r"^the output of module 'features.0' of InplaceRelu is changed in place"):
        tap(InplaceRelu(), ["features.0"], (1, 28, 28))
    assert tap(InplaceRelu(), ["features.1"], (1, 28, 28)).layer_names == ["features.1", "logits"]
    with pytest.raises(ConfigError, match=r"^module 'spare' of Unused did not run in its forward"):
        tap(Unused(), ["features.0", "spare"], (1, 28, 28))


def test_dotted_names_reach_the_compression_nets():
    f = tap(_seeded(LeNet()), ["features.2", "features.5", "classifier.1"], input_shape=(1, 28, 28))
    cfgs = compression_configs(f, ["features.5", "classifier.1"], latent_dim=16)
    assert cfgs["features.5"]["in_shape"] == [16, 4, 4] and cfgs["classifier.1"]["in_shape"] == [64]


def test_a_tapped_net_with_dotted_layer_names_trains_explainers(tmp_path, tiny_data):
    """The run-folder trainer takes a tapped user model as it is: ``ckpt/features.2/`` is a plain folder."""
    torch.manual_seed(0)
    net = nn.Sequential()  # a user's 16x16, 4-class net, named by path like LeNet
    net.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    net.classifier = nn.Sequential(nn.Flatten(), nn.Linear(4 * 8 * 8, 16), nn.ReLU(), nn.Linear(16, 4))
    f = tap(net.eval(), ["features.2", "classifier.2"], input_shape=(1, 16, 16))
    assert f.layer_names == ["features.2", "classifier.2", "logits"]
    cfg = ExplainConfig(dataset="synthetic", preset="smoke", latent_dim=8, gan_channels=8, gan_channel_base=64,
                        compression_width=0.5, batch_size=8, scale_iterations=[2, 2, 2], log_every=2,
                        checkpoint_every=3, layers=["features.2", "classifier.2"])
    run = Run.create(tmp_path, "own", "explain", cfg.to_dict())
    summary = train_explainers(f, tiny_data.train, cfg, RunStore(run), progress=False)
    assert summary["layers"] == ["features.2", "classifier.2"] and not summary["interrupted"]
    explainers = {n: load_explainer(run.ckpt_dir / n) for n in summary["layers"]}
    x_hat = explain(f, explainers, tiny_data.test.x[:3].float() / 255)
    assert {n: tuple(v.shape) for n, v in x_hat.items()} == {n: (3, 1, 16, 16) for n in summary["layers"]}
    assert _no_hooks(net)


# --- the registered models: thin users of the same mechanism ------------------------------------------
# Computed with the code before tap() existed (the stage loop with its own hooks), so the taps,
# shapes and state_dict keys of the registered families are shown unchanged by the move.
_FINGERPRINT_MODELS = {
    "smallcnn": dict(in_channels=1, image_size=32),
    "vgg16": dict(image_size=64, width=0.125, fc_width=32, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3)),
    "wrn34_10": dict(depth=10, widen=1, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3)),
}
_FINGERPRINTS = {
    "smallcnn": (
        "f9350fd2e5490ad0",
        {
            "conv1": (14917.834, 14917.834),
            "conv2": (6046.2556, 6046.2556),
            "conv3": (8378.5512, 8378.5512),
            "conv4": (1826.7494, 1826.7494),
            "fc1": (90.6786, 90.6786),
            "fc2": (38.852, 38.852),
            "fc3": (-4.2388, 10.4612),
        },
    ),
    "vgg16": (
        "f92dcc985b44044f",
        {
            "block1": (500.0699, 500.0699),
            "block2": (361.1808, 361.1808),
            "block3": (146.1474, 146.1474),
            "block4": (77.7124, 77.7124),
            "block5": (21.0941, 21.0941),
            "fc1": (2.2409, 2.2409),
            "fc2": (3.6055, 3.6055),
            "fc3": (-1.6793, 4.7744),
        },
    ),
    "wrn34_10": (
        "79516a6a53b0dd3b",
        {
            "conv1": (-868.5929, 20369.557),
            "block1": (-1999.4312, 20787.5555),
            "block2": (-56.1102, 1972.3258),
            "block3": (-71.32, 736.605),
            "pool": (5.5738, 5.5738),
            "fc": (-1.3308, 3.2712),
        },
    ),
}


def _fingerprint_model(name: str) -> tuple[TappedModel, torch.Tensor]:
    torch.manual_seed(0)
    m = create_model(name, **_FINGERPRINT_MODELS[name])
    for p in m.parameters():
        if p.dim() == 1:
            nn.init.normal_(p, std=0.1)
    nn.init.normal_(list(m.parameters())[-2], std=0.3)
    m.eval()
    s = m.config["image_size"]
    return m, torch.rand(2, m.config["in_channels"], s, s, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", sorted(_FINGERPRINTS))
def test_registered_models_taps_unchanged(name):
    m, x = _fingerprint_model(name)
    keys, sums = _FINGERPRINTS[name]
    listing = json.dumps([(k, list(v.shape)) for k, v in m.state_dict().items()])
    assert hashlib.sha256(listing.encode()).hexdigest()[:16] == keys  # checkpoints and the zoo still load
    with torch.no_grad():
        taps = m.taps(x)
    assert list(taps) == list(sums)
    for layer, (total, absolute) in sums.items():
        assert float(taps[layer].double().sum()) == pytest.approx(total, rel=1e-4, abs=1e-3)
        assert float(taps[layer].double().abs().sum()) == pytest.approx(absolute, rel=1e-4, abs=1e-3)
    # one code path: tap() on the registered model's own stage paths reads the very same tensors
    again = tap(m, [f"stages.{n}" for n in m.layer_names], input_shape=m.input_shape, names=m.layer_names)
    assert again.layer_names == m.layer_names
    with torch.no_grad():
        for layer, h in again.taps(x).items():
            torch.testing.assert_close(h, taps[layer], rtol=0, atol=0)
