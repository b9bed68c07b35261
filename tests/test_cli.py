"""The command line, in-process: outputs, run folders, one-line errors, the demo end to end."""

from __future__ import annotations

import json

import pytest

from interpretgan.cli import main


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERPRETGAN_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("INTERPRETGAN_DATA", raising=False)
    return tmp_path / "runs"


def test_models_lists_registry_and_layers(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("smallcnn", "vgg16", "wrn34_10"))
    assert main(["models", "smallcnn", "--layers"]) == 0
    out = capsys.readouterr().out
    assert "conv2    (32, 14, 14)" in out and "fc3      (10,)" in out


def test_train_eval_attack_on_the_embedded_sample(runs, capsys):
    assert main(["train", "--dataset", "mnist-sample", "--preset", "smoke", "--no-progress", "-q"]) == 0
    (run,) = runs.iterdir()
    for name in ("config.json", "metrics.jsonl", "results.json", "train.log", "ckpt/model.safetensors",
                 "ckpt/model.json", "ckpt/state.pt"):
        assert (run / name).is_file(), name
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["kind"] == "train" and cfg["dataset"] == "mnist-sample" and cfg["epochs"] == 1
    capsys.readouterr()
    assert main(["eval", str(run), "--json", "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 1000
    assert main(["attack", str(run), "--attack", "pgd-3", "--attack", "fgsm", "--n", "40", "--no-progress", "-q"]) == 0
    out = capsys.readouterr().out
    assert "pgd3" in out and "fgsm" in out and "worst case" in out
    folder = run / "attacks" / "test-40-eps0.3"
    res = json.loads((folder / "results.json").read_text())
    assert res["n"] == 40 and set(res["attacks"]) == {"pgd3", "fgsm"}
    assert (folder / "pgd3.safetensors").is_file() and (folder / "transition-fgsm.png").stat().st_size > 1000


def test_bad_input_is_one_line_and_makes_no_run(runs, capsys):
    assert main(["train", "--dataset", "mnist-sample", "--model", "resnet", "--preset", "smoke"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown model 'resnet'" in err
    assert main(["train", "--dataset", "mnist", "--preset", "smoke"]) == 2
    assert "INTERPRETGAN_DATA" in capsys.readouterr().err
    assert not runs.exists() or not any(runs.iterdir())
    assert main(["eval", str(runs / "nope")]) == 2
    assert "not an interpretgan run folder" in capsys.readouterr().err
    assert main(["train", "--dataset", "mnist-sample", "--epochs", "0"]) == 2
    assert "--epochs must be at least 1" in capsys.readouterr().err


def test_demo_smoke_writes_every_promised_file(runs, capsys):
    assert main(["demo", "--preset", "smoke", "--no-progress", "-q"]) == 0
    out = capsys.readouterr().out
    listed = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("  ")]
    assert len(listed) >= 5
    from pathlib import Path

    for p in map(Path, listed):
        assert p.exists(), p
        if p.suffix == ".json":
            json.loads(p.read_text())
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads(next(p for p in map(Path, listed) if p.name == "results.json").read_text())
    assert set(results["models"]) == {"natural", "trades+atta"}


def test_explain_train_and_show(runs, capsys):
    assert main(["train", "--dataset", "mnist-sample", "--preset", "smoke", "--no-progress", "-q"]) == 0
    (cls_run,) = runs.iterdir()
    assert main(["explain", "train", str(cls_run), "--preset", "smoke", "--layers", "conv2,fc1",
                 "--no-progress", "-q"]) == 0
    exp_run = next(p for p in runs.iterdir() if p != cls_run)
    out = capsys.readouterr().out
    assert "conv2" in out and "fc1" in out and "conv1 " not in out
    res = json.loads((exp_run / "results.json").read_text())
    assert set(res["layers"]) == {"conv2", "fc1"}
    assert all(0.0 <= r["consistency"] <= 1.0 for r in res["layers"].values())
    assert main(["explain", "show", str(exp_run), "--n", "2", "--n-drift", "16", "--no-progress", "-q"]) == 0
    out = capsys.readouterr().out
    png = out.split("grid: ", 1)[1].split("\n", 1)[0]
    from pathlib import Path

    assert Path(png).read_bytes()[:4] == b"\x89PNG"
    assert main(["explain", "train", str(cls_run), "--preset", "smoke", "--layers", "conv9"]) == 2
    assert "unknown layer 'conv9'" in capsys.readouterr().err
