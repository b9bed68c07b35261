"""The CIFAR-10 and CelebA reproduction chains at the smoke preset (need the real datasets); the
MNIST chain is covered by the demo test in test_cli.py."""

from __future__ import annotations

import json

import pytest

from interpretgan.errors import ConfigError
from interpretgan.reproduce import reproduce

pytestmark = pytest.mark.usefixtures("one_thread")


def test_cifar10_smoke_chain_writes_table3(data_root, tmp_path, monkeypatch):
    res = reproduce("cifar10", "smoke", out=tmp_path / "c", data_root=data_root, progress=False)
    results = json.loads(res["results"].read_text())
    t3 = results["tables"]["table3_vgg16"]
    assert t3["names"] == ["pgd20", "pgd100", "mpgd20", "fgsm"] and t3["n"] == 32
    assert t3["paper"]["max"] == [0.4697, 0.4569, 0.4706, 0.5046]
    assert len(results["comparisons"]) == 8
    assert "Table 3: vgg16" in res["report_md"].read_text()
    # The report times each of the study's stages (training and attacks per pool), not one lump.
    expected = {f"vgg16 {stage}-{pool}-seed0" for pool in ("max", "avg") for stage in ("train", "attack")}
    assert set(res["seconds"]) == expected and all(s > 0 for s in res["seconds"].values())
    assert "vgg16 train-avg-seed0" in res["report_md"].read_text()
    # A changed preset refuses the folder instead of serving the old study as a new one.
    import dataclasses

    import interpretgan.reproduce as rep
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
