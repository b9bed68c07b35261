"""The CIFAR-10 and CelebA reproduction chains at the smoke preset (need the real datasets); the
MNIST chain is covered by the demo test in test_cli.py."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from interpretgan.errors import ConfigError
from interpretgan.pipeline.reproduce import reproduce

pytestmark = pytest.mark.usefixtures("one_thread")


def test_cifar10_smoke_chain_writes_table3(data_root, tmp_path, monkeypatch):
    res = reproduce("cifar10", "smoke", out=tmp_path / "c", data_root=data_root, progress=False)
    results = json.loads(res["results"].read_text())
    t3 = results["tables"]["table3_vgg16"]
    aa = "autoattack-nofab-apgd5-square50"  # the smoke preset's reduced ensemble, in a column of its own
    assert t3["names"] == ["pgd20", "pgd100", "mpgd20", "fgsm", aa] and t3["n"] == 32 and t3["n_attacks"][-1] == 32
    assert t3["paper"]["max"] == [0.4697, 0.4569, 0.4706, 0.5046, None]
    claim = results["autoattack"]["vgg16"]["pooling"]
    assert claim["attack"] == aa and claim["ci"][0] <= claim["difference"] <= claim["ci"][1]
    assert (
        "Table 3 (vgg16): average pooling at least as robust as max pooling under AutoAttack"
        in res["report_md"].read_text()
    )
    assert len(results["comparisons"]) == 8
    assert "Table 3: vgg16" in res["report_md"].read_text()
    # The report times each of the study's stages (training and attacks per pool), not one lump.
    expected = {f"vgg16 {stage}-{pool}-seed0" for pool in ("max", "avg") for stage in ("train", "attack", "autoattack")}
    assert set(res["seconds"]) == expected and all(s > 0 for s in res["seconds"].values())
    assert "vgg16 train-avg-seed0" in res["report_md"].read_text()
    # A changed preset refuses the folder instead of serving the old study as a new one.
    import interpretgan.pipeline.reproduce as rep
    from interpretgan.errors import RunError

    preset = rep.study_train_config
    monkeypatch.setattr(rep, "study_train_config", lambda *a, **k: dataclasses.replace(preset(*a, **k), lr=0.5))
    with pytest.raises(RunError, match="stage 'pooling study vgg16' .* was run with other settings"):
        reproduce("cifar10", "smoke", out=tmp_path / "c", data_root=data_root, progress=False)


def test_celeba_smoke_chain_writes_grids_and_per_layer_accuracy(data_root, tmp_path):
    res = reproduce("celeba", "smoke", out=tmp_path / "c", data_root=data_root, progress=False)
    results = json.loads(res["results"].read_text())
    per_layer = results["tables"]["per_layer_natural"]
    assert per_layer["names"] == ["block1", "block2", "block3", "block4", "block5", "fc1", "fc2", "fc3"]
    assert per_layer["attack"] == "pgd20" and all(p is None for p in per_layer["paper"]["accuracy"])
    assert "the paper states none)" in res["report_md"].read_text()  # its MNIST layer names are not CelebA's
    figs = res["outputs"]["figures"]["natural"]
    for key in ("grid", "baselines"):
        assert open(figs[key], "rb").read(4) == b"\x89PNG"


def test_unknown_target_and_preset(tmp_path):
    with pytest.raises(ConfigError, match="unknown reproduction 'svhn'"):
        reproduce("svhn", "cpu", out=tmp_path)
    with pytest.raises(ConfigError, match="unknown preset 'fast'"):
        reproduce("mnist", "fast", out=tmp_path)


def test_an_old_mnist_folder_resumes_with_autoattack_stages(tmp_path):
    """A folder whose chain ran without AutoAttack (the demo's stages) resumes with the stages that add it: nothing
    else runs again, Table 2 gains the column, Table 1 under AutoAttack reuses the attack stages' D*, and the report
    judges the paper's claims under it (the report of the folder before says nothing of AutoAttack)."""
    from dataclasses import asdict, replace

    from interpretgan.pipeline.chains import ChainSpec
    from interpretgan.pipeline.demo import ZOO
    from interpretgan.pipeline.reproduce import environment, evaluate_mnist_chain
    from interpretgan.pipeline.runs import Run
    from interpretgan.pipeline.stages import Stages
    from interpretgan.pipeline.zoo import materialize
    from interpretgan.report.build import build_report

    folder = tmp_path / "chain"
    folder.mkdir()
    runs = {role: Run.open(materialize(name, "train", dataset="mnist-sample", root=folder), kind="train")
            for role, name in ZOO.items()}
    explained = {k: Run.open(materialize(ZOO[role], "explain", dataset="mnist-sample", root=folder), kind="explain")
                 for k, role in (("natural", "natural"), ("adversarial", "max"))}
    args = (runs["natural"], {"max": runs["max"], "avg": runs["avg"]}, explained)
    extra = dict(environment=environment(torch.device("cpu")), preset="smoke", dataset="mnist-sample", target="mnist")

    off = ChainSpec("smoke", "smoke", n_eval=32, n_boot=20, n_show=2)
    o = evaluate_mnist_chain(
        Stages(folder), folder, off, *args, progress=False, device=torch.device("cpu"), data_root=None, verify=True
    )
    assert "autoattack" not in o and o["table2"]["attacks"] == ["pgd40", "pgd100", "mpgd40", "fgsm"]
    md = build_report("mnist", folder, {**o, **extra, "spec": asdict(off)})["report_md"].read_text()
    assert "AutoAttack" not in md and "autoattack" not in md

    before = json.loads((folder / "stages.json").read_text())
    on = replace(off, autoattack_n=16, autoattack="autoattack-apgd5-square50")
    o = evaluate_mnist_chain(
        Stages(folder), folder, on, *args, progress=False, device=torch.device("cpu"), data_root=None, verify=True
    )
    stages = json.loads((folder / "stages.json").read_text())
    assert set(stages) - set(before) == {"autoattack natural", "autoattack max", "autoattack avg",
                                         "diagnose natural (AutoAttack)", "diagnose adversarial (AutoAttack)"}
    assert all(stages[k] == before[k] for k in before)
    aa = "autoattack-nofab-apgd5-square50"
    t2 = o["table2"]
    assert t2["attacks"][-1] == aa and t2["n_attacks"][aa] == 16 and t2["n"] == 32
    # Table 1 under AutoAttack is on the sets the attack stages stored: f's accuracy on them is the robust accuracy
    diag = o["autoattack"]["diagnosis"]
    assert diag["adversarial"]["source"].endswith(f"{aa}.safetensors") and diag["adversarial"]["n"] == 16
    assert diag["adversarial"]["input_accuracy"] == pytest.approx(o["arms"]["max"]["attacks"][aa])
    assert diag["natural"]["input_accuracy"] == pytest.approx(o["autoattack"]["natural"]["accuracy"])
    # the zoo's trades+atta model keeps most digits even under the ensemble; the natural one keeps almost none
    assert (
        o["autoattack"]["natural"]["accuracy"]
        <= 0.2
        < o["arms"]["max"]["attacks"][aa]
        <= o["arms"]["max"]["attacks"]["fgsm"] + 1 / 16
    )

    written = build_report("mnist", folder, {**o, **extra, "spec": asdict(on)})
    md, results = written["report_md"].read_text(), json.loads(written["results"].read_text())
    claims = results["autoattack"]
    assert "The paper's claims under AutoAttack" in md and f"reduced, as `{on.autoattack}`" in md
    assert claims["pooling"]["attack"] == aa and claims["pooling"]["n"] == 16
    lo, hi = claims["pooling"]["ci"]
    assert lo < claims["pooling"]["difference"] < hi and claims["pooling"]["holds"] is None  # 16 images decide nothing
    assert [x["layer"] for x in claims["accuracy"]["layers"]] == [
        "conv1",
        "conv2",
        "conv3",
        "conv4",
        "fc1",
        "fc2",
        "fc3",
    ]
    assert claims["accuracy"]["holds"] in (True, None)  # the robust model's explanations keep more digits
    assert set(claims["vulnerable"]) == {"natural", "adversarial"}
    assert claims["vulnerable"]["natural"]["vulnerable_pgd40"] == o["diagnosis"]["natural"]["table"]["vulnerable"]
    assert "table1_adversarial_autoattack" in results["tables"] and "under AutoAttack" in md
    assert not any(c["table"].endswith("AutoAttack") for c in results["comparisons"])  # the paper ran PGD-40


def test_a_folder_made_before_autoattack_takes_its_fields(tmp_path):
    from dataclasses import asdict

    from interpretgan.errors import ConfigError
    from interpretgan.io import read_json, write_json
    from interpretgan.pipeline.chains import MNIST_CHAIN
    from interpretgan.pipeline.reproduce import _folder

    spec = MNIST_CHAIN["cpu"]
    old = {k: v for k, v in asdict(spec).items() if k not in ("autoattack_n", "autoattack")}
    write_json(tmp_path / "config.json", {"kind": "reproduce", "target": "mnist", "preset": "cpu", "dataset": "mnist",
                                          "spec": json.loads(json.dumps(old))})
    assert _folder("mnist", "cpu", tmp_path, spec, "mnist") == tmp_path
    assert read_json(tmp_path / "config.json")["spec"]["autoattack_n"] == 300  # recorded now
    with pytest.raises(ConfigError, match="holds another job"):  # a recorded value is not overridden
        _folder("mnist", "cpu", tmp_path, MNIST_CHAIN["paper"], "mnist")
    with pytest.raises(ConfigError, match="holds another job"):
        from dataclasses import replace

        _folder("mnist", "cpu", tmp_path, replace(spec, autoattack_n=100), "mnist")


def test_autoattack_per_preset():
    """The demo runs the paper's attacks only; smoke presets a reduced ensemble; cpu a subset; paper everything."""
    from interpretgan.attacks.specs import parse_attack_spec
    from interpretgan.pipeline.chains import CIFAR_CHAIN, DEMO_CHAIN, MNIST_CHAIN
    from interpretgan.pipeline.demo import PRETRAINED_SPEC
    from interpretgan.pipeline.study import STUDY_AUTOATTACK

    assert PRETRAINED_SPEC.autoattack_images() == 0 and all(s.autoattack_images() == 0 for s in DEMO_CHAIN.values())
    for chain, n_cpu in ((MNIST_CHAIN, 300), (CIFAR_CHAIN, 1000)):
        steps = parse_attack_spec(chain["smoke"].autoattack, eps=0.3, alpha=0.01, steps=40)[1]
        assert (
            steps.steps <= 10 and steps.queries <= 100 and chain["smoke"].autoattack_images() <= chain["smoke"].n_eval
        )
        assert chain["cpu"].autoattack == "autoattack" and chain["cpu"].autoattack_images() == n_cpu
        assert chain["paper"].autoattack_images() is None
    assert STUDY_AUTOATTACK["cpu"] == ("autoattack", 300) and STUDY_AUTOATTACK["paper"] == ("autoattack", None)
    # never beyond the images the other attacks see
    assert dataclasses.replace(MNIST_CHAIN["cpu"], autoattack_n=5000).autoattack_images() == 1000


def test_reproduce_arithmetic_options_reach_every_stage_and_nothing_else():
    from interpretgan.pipeline.chains import CHAINS, arithmetic_tag, with_arithmetic

    spec = CHAINS["mnist"]["cpu"]
    assert with_arithmetic(spec, "fp32", False) == spec and with_arithmetic(spec, None, False) == spec
    fast = with_arithmetic(spec, "bf16", True, True)
    for options in (fast.natural, fast.adversarial, fast.explain, fast.attack):
        assert options["precision"] == "bf16" and options["channels_last"] and options["compile"]
    assert (fast.n_eval, fast.autoattack_n, fast.autoattack) == (spec.n_eval, spec.autoattack_n, spec.autoattack)
    assert arithmetic_tag(fast) == "-bf16-cl" and arithmetic_tag(spec) == ""
