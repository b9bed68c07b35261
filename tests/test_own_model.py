"""A user's classifier by reference (file.py:build, package.module:build) through run folders and the
CLI, and inputs whose size is not the GAN's 4 * 2^k (28x28 MNIST) resized or padded to it and back."""

from __future__ import annotations

import hashlib
import json
import sys
import textwrap

import pytest
import torch
from conftest import synthetic_digits  # shared fixtures module
from safetensors.torch import save_file
from torch import nn

from interpretgan.cli import main
from interpretgan.config import ExplainConfig
from interpretgan.config.presets import resolve_train_config
from interpretgan.errors import ConfigError
from interpretgan.explain.explainer import explain, load_explainer
from interpretgan.explain.fit import from_gan, gan_side, to_gan
from interpretgan.explain.loop import train_explainers
from interpretgan.models import create_model
from interpretgan.pipeline.checkpoints import load_model, save_model
from interpretgan.pipeline.explain import RunStore
from interpretgan.pipeline.runs import Run

pytestmark = pytest.mark.usefixtures("one_thread")

# The user model: 28x28 MNIST, two Sequentials, written in the user's own file.
LENET = textwrap.dedent('''
    import torch
    from torch import nn


    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                                          nn.Conv2d(6, 12, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2))
            self.classifier = nn.Sequential(nn.Linear(12 * 7 * 7, 32), nn.ReLU(), nn.Linear(32, 10))

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))


    def build():
        return LeNet()


    def needs_args(width):
        return LeNet()


    def not_a_module():
        return 3


    def broken():
        raise ValueError("no such width")


    INSTANCE = LeNet()
    NUMBER = 7
''')


@pytest.fixture
def lenet_file(tmp_path):
    path = tmp_path / "user_nets" / "lenet.py"
    path.parent.mkdir()
    path.write_text(LENET)
    return path


def test_a_reference_round_trips_through_a_checkpoint(lenet_file, tmp_path):
    f = create_model(f"{lenet_file}:build", layers=["features.2", "features.5"], input_shape=(1, 28, 28))
    assert f.layer_names == ["features.2", "features.5", "logits"]
    assert f.registry_name == f"{lenet_file.resolve()}:build"
    save_model(tmp_path / "ckpt", f)
    spec = json.loads((tmp_path / "ckpt" / "model.json").read_text())
    assert spec["model"] == f.registry_name  # a reference and the tap settings: no pickled code
    assert spec["kwargs"]["layers"] == {"features.2": "features.2", "features.5": "features.5"}
    g = load_model(tmp_path / "ckpt")
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(g(x), f.eval()(x))
        assert torch.equal(g.taps(x)["features.5"], f.taps(x)["features.5"])
    # the expected model spec of a run made with a relative path names the same file
    load_model(tmp_path / "ckpt", expected=(f.registry_name, {"layers": spec["kwargs"]["layers"]}))


def test_a_module_reference_and_a_class(tmp_path, monkeypatch):
    pkg = tmp_path / "ownpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(LENET)
    monkeypatch.syspath_prepend(str(tmp_path))
    f = create_model("ownpkg.nets:LeNet", input_shape=(1, 28, 28))
    assert f.layer_names == ["logits"] and f.registry_name == "ownpkg.nets:LeNet"
    assert f.with_layers(["features.2"]).layer_names == ["features.2", "logits"]
    assert f.with_layers(["features.2"]).registry_name == "ownpkg.nets:LeNet"
    sys.modules.pop("ownpkg.nets", None)
    sys.modules.pop("ownpkg", None)


@pytest.mark.parametrize(
    "attr, message",
    [
        ("missing", r"has no 'missing' \(of --model .*\); its callables are: .*LeNet.*build"),
        ("NUMBER", r"'NUMBER' in '.*lenet.py' is a int, not callable"),
        ("INSTANCE", r"'INSTANCE' in '.*lenet.py' is a module instance; --model needs a function or class"),
        ("not_a_module", r"^.*lenet.py:not_a_module\(\) returned a int, not a torch.nn.Module$"),
        (
            "needs_args",
            r"^calling .*lenet.py:needs_args\(\) failed: TypeError: .*; "
            r"--model needs a callable that takes no arguments$",
        ),
        ("broken", r"^calling .*:broken\(\) failed: ValueError: no such width;"),
    ],
)
def test_bad_references_are_one_sentence(lenet_file, attr, message):
    with pytest.raises(ConfigError, match=message) as err:
        create_model(f"{lenet_file}:{attr}", input_shape=(1, 28, 28))
    assert "\n" not in str(err.value)


def test_bad_files_modules_and_weights_are_one_sentence(lenet_file, tmp_path):
    ref = f"{lenet_file}:build"
    with pytest.raises(ConfigError, match=r"^model file 'nowhere.py' \(of --model nowhere.py:build\) does not exist"):
        create_model("nowhere.py:build", input_shape=(1, 28, 28))
    with pytest.raises(
        ConfigError, match=r"^module 'no_such_pkg.nets' \(of --model no_such_pkg.nets:build\) is not importable"
    ):
        create_model("no_such_pkg.nets:build", input_shape=(1, 28, 28))
    with pytest.raises(ConfigError, match=r"^model reference 'a b:build' is not of the form"):
        create_model("a b:build", input_shape=(1, 28, 28))
    bad = tmp_path / "bad.py"
    bad.write_text("def build(:\n")
    with pytest.raises(ConfigError, match=r"^importing model file '.*bad.py' \(of --model .*\) failed: SyntaxError"):
        create_model(f"{bad}:build", input_shape=(1, 28, 28))
    with pytest.raises(
        ConfigError,
        match=r"^unknown module path 'features.9' in LeNet: 'features' has no submodule '9'; "
        r"candidate paths are: features.0, features.1",
    ):
        create_model(ref, layers=["features.9"], input_shape=(1, 28, 28))
    with pytest.raises(ConfigError, match=r"^LeNet does not run on one input of shape \(1, 32, 32\)"):
        create_model(ref, input_shape=(1, 32, 32))
    with pytest.raises(ConfigError, match=r"returns 10 logits per image; the dataset has 4 classes$"):
        create_model(ref, in_channels=1, image_size=28, num_classes=4)
    # weights: another shape, other keys
    torch.manual_seed(0)
    state = create_model(ref, input_shape=(1, 28, 28)).net.state_dict()
    save_file({**state, "features.0.weight": torch.zeros(3, 1, 5, 5)}, str(tmp_path / "shape.safetensors"))
    with pytest.raises(
        ConfigError,
        match=r"^weights .*shape.safetensors do not fit LeNet \(0 missing, 0 unexpected, 1 of another "
        r"shape; 'features.0.weight' is \(3, 1, 5, 5\) where LeNet has \(6, 1, 5, 5\)\); "
        r"expected its state_dict\(\) as safetensors$",
    ):
        create_model(ref, input_shape=(1, 28, 28), weights=tmp_path / "shape.safetensors")
    save_file({f"net.{k}": v for k, v in state.items()}, str(tmp_path / "prefixed.safetensors"))
    with pytest.raises(
        ConfigError, match=r"\(8 missing, 8 unexpected, 0 of another shape; missing 'features.0.weight'\)"
    ):
        create_model(ref, input_shape=(1, 28, 28), weights=tmp_path / "prefixed.safetensors")
    save_file(state, str(tmp_path / "good.safetensors"))
    f = create_model(ref, input_shape=(1, 28, 28), weights=tmp_path / "good.safetensors")
    assert all(torch.equal(f.net.state_dict()[k], v) for k, v in state.items())


def test_train_config_rules_for_weights():
    with pytest.raises(
        ConfigError,
        match=r"^--weights applies to a --model reference \(file.py:build\); 'smallcnn' is a registered model$",
    ):
        resolve_train_config("mnist", "natural", "smoke", {"weights": "w.safetensors"})
    with pytest.raises(ConfigError, match=r"^--epochs 0 keeps the starting weights, so it needs --weights"):
        resolve_train_config("mnist", "natural", "smoke", {"epochs": 0})
    cfg = resolve_train_config(
        "mnist", "natural", "smoke", {"model": "nets.py:build", "model_kwargs": {"layers": ["features.2", ""]}}
    )
    assert cfg.model_options(10, 1) == {"in_channels": 1, "num_classes": 10, "image_size": 32,
                                        "layers": {"features.2": "features.2", "logits": ""}}


# --- sizes that are not 4 * 2^k ---------------------------------------------------------------------
def test_gan_side_and_the_two_fits():
    assert [gan_side(s, s) for s in (3, 4, 5, 16, 28, 32, 33, 100, 224)] == [4, 4, 8, 16, 32, 32, 64, 128, 256]
    assert gan_side(20, 60) == 64
    x = torch.rand(2, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    padded = to_gan(x, 32, "pad")
    assert padded.shape == (2, 3, 32, 32) and torch.equal(padded[..., 2:30, 2:30], x)
    assert padded[..., :2, :].abs().sum() == 0 and padded[..., :, 30:].abs().sum() == 0
    assert torch.equal(from_gan(padded, 28, 28, "pad"), x)  # padding is undone exactly
    smooth = torch.linspace(0, 1, 28).view(1, 1, 1, 28).expand(1, 1, 28, 28)
    up = to_gan(smooth, 32, "resize")
    assert up.shape == (1, 1, 32, 32) and (from_gan(up, 28, 28, "resize") - smooth).abs().max() < 0.02
    assert torch.equal(to_gan(x[..., :4, :4], 4, "pad"), x[..., :4, :4])  # already a GAN side: untouched
    with pytest.raises(ConfigError, match=r"^--fit must be one of resize, pad, got 'crop'$"):
        to_gan(x, 32, "crop")
    with pytest.raises(ConfigError, match=r"^--fit must be resize or pad, got 'crop'$"):
        ExplainConfig(fit="crop").validate()


@pytest.mark.parametrize("fit", [None, "pad"])
def test_explainers_of_a_12px_model_train_save_and_load(tmp_path, fit):
    """A 12x12 classifier: the GAN grows to 16x16, the explanations come back at 12x12, and the files say how."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 6 * 6, 4)
    )
    from interpretgan.models import tap

    f = tap(net.eval(), ["2"], input_shape=(1, 12, 12))
    train, test = synthetic_digits(128, size=12), synthetic_digits(16, size=12, split="test")
    cfg = ExplainConfig(
        dataset="synthetic",
        preset="smoke",
        latent_dim=8,
        gan_channels=8,
        gan_channel_base=64,
        batch_size=8,
        scale_iterations=[2, 2, 2],
        log_every=2,
        checkpoint_every=6,
        layers=["2"],
        fit=fit,
    )
    run = Run.create(tmp_path, "own", "explain", cfg.to_dict())
    memory = train_explainers(f, train, cfg, RunStore(run), progress=False)["explainers"]["2"]
    meta = json.loads((run.ckpt_dir / "2" / "explainer.json").read_text())
    assert (
        meta["image_shape"] == [12, 12] and meta["fit"] == (fit or "resize") and meta["generator"]["image_size"] == 16
    )
    loaded = load_explainer(run.ckpt_dir / "2")
    x = test.x.float() / 255
    a, b = explain(f, {"2": memory}, x)["2"], explain(f, {"2": loaded}, x)["2"]
    assert a.shape == (16, 1, 12, 12) and torch.equal(a, b) and 0 <= float(a.min()) and float(a.max()) <= 1
    with pytest.raises(ConfigError, match=r"^the training images are 1x16x16 but the classifier takes 1x12x12$"):
        train_explainers(f, synthetic_digits(64, size=16), cfg, progress=False)


# --- the command line ---------------------------------------------------------------------------------
def test_cli_own_model_train_attack_explain_diagnose(lenet_file, tmp_path, monkeypatch, capsys):
    """--model file.py:build end to end at a smoke scale, on 28x28 digits: train, then --weights into
    attack and explain train (one run folder for the weights), then diagnose from the explain run."""
    runs = tmp_path / "runs"
    monkeypatch.setenv("INTERPRETGAN_RUNS", str(runs))
    monkeypatch.delenv("INTERPRETGAN_DATA", raising=False)
    monkeypatch.chdir(lenet_file.parent)
    common = ["--dataset", "mnist-sample", "--image-size", "28", "--no-progress", "-q"]
    assert main(["train", "--model", "lenet.py:build", "--layers", "features.2", "--preset", "smoke",
                 "--n-train", "512", "--n-test", "128", *common]) == 0
    (trained,) = runs.iterdir()
    spec = json.loads((trained / "ckpt" / "model.json").read_text())
    assert spec["model"] == f"{lenet_file.resolve()}:build" and spec["kwargs"]["input_shape"] == [1, 28, 28]
    # the user's weights, as they would come from their own training code
    torch.manual_seed(0)
    save_file(create_model("lenet.py:build", input_shape=(1, 28, 28)).net.state_dict(), "w.safetensors")
    model = ["--model", "lenet.py:build", "--weights", "w.safetensors"]
    assert main(["attack", *model, "--attack", "pgd-3", "--n", "32", *common]) == 0
    out = capsys.readouterr().out
    weights_run = runs / out.split("model run folder: ")[1].split("\n")[0].split("/")[-1]
    assert json.loads((weights_run / "config.json").read_text())["epochs"] == 0
    assert (weights_run / "attacks" / "test-32-eps0.3" / "pgd3.safetensors").is_file()
    assert main(["explain", "train", *model, "--layers", "features.2,features.5", "--preset", "smoke", "--fit", "pad",
                 "--scale-iterations", "2", "--n-train", "64", "--n-test", "32", "--batch-size", "8", *common]) == 0
    assert sorted(p.name for p in runs.iterdir())[-1].startswith("00002-explain-00001-mnist-sample-build-weights-")
    explain_run = sorted(runs.iterdir())[-1]
    assert json.loads((explain_run / "ckpt" / "features.5" / "explainer.json").read_text())["fit"] == "pad"
    assert main(["diagnose", str(explain_run), "--attack", "pgd-3", "--n", "32", "--n-boot", "0", "-q"]) == 0
    res = json.loads((explain_run / "diagnose-pgd3" / "diagnose.json").read_text())
    assert res["table"]["layers"] == ["features.2", "features.5"] and set(res["index_change"]) == {
        "features.2",
        "features.5",
    }
    # bad input: one sentence, nothing made
    before = sorted(p.name for p in runs.iterdir())
    assert main(["attack", *model[:2], "--n", "8", *common]) == 2
    assert "--model lenet.py:build needs --weights FILE.safetensors here" in capsys.readouterr().err
    assert main(["attack", "--model", "lenet.py:LeNet", "--weights", "nothing.safetensors", *common]) == 2
    assert "--weights nothing.safetensors does not exist" in capsys.readouterr().err
    assert main(["explain", "train", *model, "--layers", "features.7", *common]) == 2
    assert "unknown module path 'features.7' in LeNet" in capsys.readouterr().err
    assert sorted(p.name for p in runs.iterdir()) == before


# --- the compression-net rule for taps of any shape ---------------------------------------------------
@pytest.mark.parametrize("shape, stages", [
    ((16, 28, 28), ((32, True), (64, True), (128, True))),  # 28 -> 14 -> 7 -> 3: a conv + pool while the side is >= 6
    ((6, 14, 14), ((12, True), (24, True))),
    ((8, 12, 7), ((16, True),)),  # not square: the shorter side decides
    ((300, 12, 12), ((512, True), (512, True))),  # channels double from twice the tap's, capped at 512
    ((16, 5, 5), ()),  # a map under 6 pixels: the dense layer alone
    ((588,), ()),  # a flat vector (after Flatten, a Linear's output): the dense layer alone
    ((4, 3), ()),  # any other shape: flattened into the dense layer
])
def test_the_compression_rule_for_any_tap_shape(shape, stages):
    from interpretgan.explain.compression import CompressionNet, generic_stages

    assert generic_stages(shape) == stages
    net = CompressionNet(shape, stages, latent_dim=8)
    assert net(torch.rand(2, *shape)).shape == (2, 8)


def test_a_user_model_gets_the_generic_rule_even_with_paper_layer_names(lenet_file):
    """The paper's Tables 4-5 are for the registered smallcnn and vgg16; a reference gets the rule, whatever
    its names."""
    from interpretgan.explain.compression import compression_configs

    f = create_model(f"{lenet_file}:build", layers=["features.0", "classifier.0"], names=["conv1", "fc1"],
                     input_shape=(1, 28, 28))
    cfgs = compression_configs(f, ["conv1", "fc1"], latent_dim=8)
    assert cfgs["conv1"]["in_shape"] == [6, 28, 28] and cfgs["conv1"]["stages"] == [[12, True], [24, True], [48, True]]
    assert cfgs["fc1"] == {"in_shape": [32], "stages": [], "latent_dim": 8}


def test_a_reference_drops_the_presets_model_options(lenet_file):
    """CIFAR-10's presets size VGG16 (width, fc_width, dropout); a user's model takes none of them."""
    from interpretgan.cli import build_parser
    from interpretgan.cli.train import _train_overrides
    from interpretgan.pipeline.train import check_model_options

    args = build_parser().parse_args(["train", "--model", f"{lenet_file}:build", "--dataset", "cifar10"])
    cfg = resolve_train_config("cifar10", "trades+atta", "cpu", _train_overrides(args))
    assert cfg.model_kwargs == {} and cfg.model == f"{lenet_file.resolve()}:build"
    with pytest.raises(ConfigError, match=r"^LeNet does not run on one input of shape \(3, 32, 32\)"):
        check_model_options(cfg)  # the 1-channel LeNet and CIFAR-10: one sentence, before any folder


# --- reproduce --model: the MNIST chain with the user's classifier ------------------------------------
def test_reproduce_own_model_chain_writes_its_report(lenet_file, tmp_path):
    """The chain of the user's LeNet at a smoke scale on the shipped digits (28 x 28): both models trained,
    attacked (the dataset's four attacks and AutoAttack), explained and diagnosed; a report with its own
    robust-accuracy table and no pooling table; a re-run resumes every stage; another weights file or
    settings refuse the folder."""
    from dataclasses import replace

    from interpretgan.errors import ConfigError as Refused
    from interpretgan.models.external import normalise_reference
    from interpretgan.pipeline.chains import MNIST_CHAIN, OwnModel
    from interpretgan.pipeline.reproduce import reproduce
    from interpretgan.report.sections import OWN_MNIST_CHECKS

    spec = replace(MNIST_CHAIN["smoke"], n_eval=32, autoattack_n=16, n_boot=50)
    own = OwnModel(normalise_reference(f"{lenet_file}:build"), ("features.2", "features.5"), image_size=28, fit="pad")
    folder = tmp_path / "own"
    res = reproduce("mnist", "smoke", out=folder, dataset="mnist-sample", spec=spec, own=own, progress=False)
    results = json.loads(res["results"].read_text())
    acc = results["tables"]["robust_accuracy"]
    aa = "autoattack-nofab-apgd5-square50"
    for kind in ("natural", "adversarial"):
        assert list(acc[kind]["attacks"]) == ["pgd40", "pgd100", "mpgd40", "fgsm", aa]
        assert acc[kind]["n"] == 32 and acc[kind]["n_attacks"][aa] == 16
        assert all(0 <= a <= acc[kind]["clean"] for a in acc[kind]["attacks"].values())
        t1 = results["tables"][f"table1_{kind}"]
        assert t1["names"] == ["features.2", "features.5", "logits"] and t1["n"] == 32
        assert all(p is None for p in t1["paper"]["accuracy"])  # no paper row for the user's model
        assert results["tables"][f"table1_{kind}_autoattack"]["n"] == 16
        assert set(results["tables"][f"index_change_{kind}"]["names"]) == {"features.2", "features.5"}
    assert "table2" not in results["tables"] and results["comparisons"] == []
    assert results["autoattack"]["pooling"] is None and results["model"]["model"] == own.model
    assert set(results["targets"]) == set(OWN_MNIST_CHECKS)
    md = res["report_md"].read_text()
    assert md.startswith("# InterpretGAN on your classifier: build on mnist-sample (smoke preset)")
    assert (
        "Table 2" not in md and "| model | clean accuracy (attacked subset) | PGD-40 | PGD-100 | MPGD-40 | FGSM |" in md
    )
    assert "names Conv1, Conv2" not in md  # the paper's SmallCNN layers are not the user's
    explain_run = next(folder.glob("*-explain-natural"))
    assert json.loads((explain_run / "ckpt" / "features.5" / "explainer.json").read_text())["fit"] == "pad"
    # a re-run resumes: every stage keeps its first time
    again = reproduce("mnist", "smoke", out=folder, dataset="mnist-sample", spec=spec, own=own, progress=False)
    assert again["seconds"] == res["seconds"]
    # the folder belongs to these settings: other layers or another weights file are refused
    weights = tmp_path / "w.safetensors"
    torch.manual_seed(0)
    save_file(create_model(own.model, input_shape=(1, 28, 28)).net.state_dict(), str(weights))
    for other in (replace(own, layers=("features.2",)), replace(own, weights=str(weights))):
        with pytest.raises(Refused, match="holds another job"):
            reproduce("mnist", "smoke", out=folder, dataset="mnist-sample", spec=spec, own=other, progress=False)


def test_own_model_training_configs(lenet_file, tmp_path):
    """With --weights the natural model is the user's weights as they are (0 epochs); the trades+atta model is
    trained from scratch; the presets' model options give way to the user's layers."""
    from interpretgan.pipeline.chains import CIFAR_CHAIN, OwnModel

    weights = tmp_path / "w.safetensors"
    save_file(create_model(f"{lenet_file}:build", input_shape=(1, 28, 28)).net.state_dict(), str(weights))
    own = OwnModel(f"{lenet_file}:build", ("features.2",), weights=str(weights), image_size=28)
    cfgs = own.train_configs("cifar10", CIFAR_CHAIN["cpu"])
    assert cfgs["natural"].epochs == 0 and cfgs["natural"].weights == str(weights)
    assert cfgs["adversarial"].objective == "trades+atta" and cfgs["adversarial"].weights is None
    assert cfgs["adversarial"].epochs == 9  # the cifar10 cpu preset's schedule
    for cfg in cfgs.values():
        assert cfg.model_kwargs == {"layers": ["features.2"]} and cfg.image_size == 28
    assert own.record()["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()


def test_cli_reproduce_own_model_bad_input_is_one_sentence(lenet_file, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(lenet_file.parent)
    out = tmp_path / "chain"
    lenet = ["mnist", "--model", "lenet.py:build", "--layers", "features.2"]
    cases = [
        (["mnist", "--layers", "features.2"], "--layers goes with --model REF"),
        (lenet[:3], "reproduce --model needs --layers"),
        ([*lenet[:4], "features.9", "--image-size", "28"], "unknown module path 'features.9' in LeNet"),
        (lenet, "LeNet does not run on one input of shape (1, 32, 32)"),
        (["celeba", *lenet[1:]], "reproduce --model covers mnist and cifar10"),
        ([*lenet, "--image-size", "28", "--weights", "no.safetensors"], "--weights no.safetensors does not exist"),
        ([*lenet, "--image-size", "28", "--data-root", str(tmp_path / "none")], "is not a folder"),
    ]
    for argv, message in cases:
        assert main(["reproduce", *argv, "--preset", "smoke", "--out", str(out), "-q"]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not out.exists()  # nothing made
