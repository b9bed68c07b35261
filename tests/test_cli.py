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
    # another attack joins the folder's settings; other settings for the same set are refused and
    # leave settings.json as it was (diagnosis rebuilds the natural images from it)
    assert main(["attack", str(run), "--attack", "mpgd-2", "--n", "40", "--no-progress", "-q"]) == 0
    settings = json.loads((folder / "settings.json").read_text())
    assert set(settings["attacks"]) == {"pgd3", "fgsm", "mpgd2"}
    assert (
        main(["attack", str(run), "--attack", "pgd-3", "--n", "40", "--batch-size", "16", "--no-progress", "-q"]) == 2
    )
    assert "pgd3.safetensors" in capsys.readouterr().err
    assert json.loads((folder / "settings.json").read_text()) == settings
    # another seed draws another subset: its own folder
    assert main(["attack", str(run), "--attack", "fgsm", "--n", "40", "--seed", "1", "--no-progress", "-q"]) == 0
    assert (run / "attacks" / "test-40-eps0.3-seed1" / "fgsm.safetensors").is_file()
    # a bf16 attack has a folder of its own, and its settings say how it ran
    assert main(["attack", str(run), "--attack", "pgd-3", "--n", "40", "--precision", "bf16", "--channels-last",
                 "--no-progress", "-q"]) == 0
    bf16 = json.loads((run / "attacks" / "test-40-eps0.3-bf16" / "settings.json").read_text())
    assert bf16["arithmetic"] == {"precision": "bf16", "channels_last": True, "compile": False}
    # restarts and the CW loss: named apart, so they join the folder beside the plain attacks
    assert main(["attack", str(run), "--attack", "pgd-3", "--attack", "fgsm", "--restarts", "3", "--loss", "cw",
                 "--n", "40", "--no-progress", "-q"]) == 0
    res = json.loads((folder / "results.json").read_text())
    assert set(res["attacks"]) == {"pgd3-cw-r3", "fgsm-cw"}
    assert "restarts=3" in json.loads((folder / "settings.json").read_text())["attacks"]["pgd3-cw-r3"]
    capsys.readouterr()
    for bad, needle in ((["--loss", "hinge"], "ce, cw"), (["--restarts", "0"], "restarts")):
        assert main(["attack", str(run), "--n", "40", "--no-progress", "-q", *bad]) == 2
        assert needle in capsys.readouterr().err
    # --resume continues with the recorded settings; an option that would change them is refused
    assert main(["train", "--resume", str(run), "--epochs", "3", "--preset", "paper", "-q"]) == 2
    assert "--preset, --epochs would be ignored" in capsys.readouterr().err
    assert json.loads((run / "config.json").read_text())["epochs"] == 1


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
    assert "--epochs 0 keeps the starting weights, so it needs --weights" in capsys.readouterr().err
    assert main(["train", "--dataset", "mnist-sample", "--epochs", "-1"]) == 2
    assert "--epochs must be at least 0, got -1" in capsys.readouterr().err


def test_demo_train_smoke_writes_every_promised_file_and_resumes(runs, capsys):
    """The training demo end to end at the smoke preset: every promised file exists and parses; re-running
    the chain on its folder skips every stage; a different job in that folder is refused."""
    from html.parser import HTMLParser
    from pathlib import Path

    from interpretgan.pipeline.chains import DEMO_CHAIN
    from interpretgan.pipeline.reproduce import reproduce
    from interpretgan.report.browser import check_in_browser, find_browser

    assert main(["demo", "--train", "--preset", "smoke", "--no-progress", "-q"]) == 0
    out = capsys.readouterr().out
    listed = {
        line.split(": ", 1)[0].strip(): Path(line.split(": ", 1)[1])
        for line in out.splitlines()
        if line.startswith("  ")
    }
    assert {"explanation grid (natural model)", "Table 1 (natural model)", "report (HTML)", "results"} <= set(listed)
    for label, p in listed.items():
        assert p.exists(), (label, p)
        if p.suffix == ".json":
            json.loads(p.read_text())
        elif p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        elif p.suffix == ".md":
            assert p.read_text().startswith("# ")
        elif p.suffix == ".html":
            HTMLParser().feed(p.read_text())
    results = json.loads(listed["results"].read_text())
    t1 = results["tables"]["table1_natural"]
    assert t1["names"] == ["conv1", "conv2", "conv3", "conv4", "fc1", "fc2", "fc3"]
    assert t1["paper"]["accuracy"][0] == 0.526 and len(t1["ours"]["vulnerability"]) == 7
    assert results["tables"]["table2"]["names"] == ["pgd40", "pgd100", "mpgd40", "fgsm"]
    assert {c["table"] for c in results["comparisons"]} >= {"Table 1 (natural)", "Table 2", "index change (natural)"}
    assert set(results["stage_seconds"]) >= {"train natural", "explain natural", "diagnose adversarial"}
    page = listed["report (HTML)"].read_text()
    assert page.count("data:image/png;base64,") == 7 and "src=\"figures/" not in page  # self-contained
    report_md = listed["report (markdown)"].read_text()
    assert "the paper states none, and for MNIST names Conv1, Conv2, Conv4 and FC1" in report_md
    assert "**This is a miniature.**" in report_md and "interpretgan reproduce mnist --preset cpu" in report_md
    # The smoke models are at chance: the report's threshold checks must say so, not pass.
    checks = results["targets"]
    assert not any(c["pass"] for name, c in checks.items() if not name.startswith("explainer consistency at"))
    assert "**FAIL**" in report_md
    for relative in __import__("re").findall(r"!\[[^]]*\]\(([^)]+)\)", report_md):
        assert (listed["demo folder"] / relative).is_file(), relative
    if find_browser():
        seen = check_in_browser(listed["report (HTML)"])
        assert seen["images_ok"] and seen["images"] == 7 and seen["tables"] >= 5

    folder = listed["demo folder"]
    before = (folder / "stages.json").read_text()
    again = reproduce("mnist", "smoke", out=folder, spec=DEMO_CHAIN["smoke"], dataset="mnist-sample", progress=False,
                      miniature=True)
    assert (folder / "stages.json").read_text() == before  # every stage skipped
    assert json.loads(again["results"].read_text())["tables"]["table1_natural"] == t1
    # Every row of the classifiers' table gives the clean accuracy of the attacked subset, the natural one too
    nat = again["outputs"]["natural"]
    assert nat["attack"]["n"] == DEMO_CHAIN["smoke"].n_eval
    assert nat["clean"] != nat["attack"]["clean"]  # the whole test set's figure would not pass the check below
    assert f"| SmallCNN max, natural | {nat['attack']['clean'] * 100:.2f} % |" in report_md
    assert main(["reproduce", "mnist", "--preset", "smoke", "--out", str(folder), "-q"]) == 2
    assert "holds another job" in capsys.readouterr().err


def test_demo_train_cpu_schedule_is_valid_and_names_its_lambda(tmp_path):
    """The miniature's overrides resolve to valid configs of the real stages (a misspelt field fails here,
    not ten minutes into a demo), and its report states the lambda it departs from the paper with."""
    from dataclasses import asdict

    from interpretgan.config.presets import resolve_explain_config, resolve_train_config
    from interpretgan.pipeline.chains import DEMO_CHAIN
    from interpretgan.report.build import _weights
    from interpretgan.report.document import Report

    spec = DEMO_CHAIN["cpu"]
    assert resolve_train_config("mnist-sample", "natural", "cpu", spec.natural).epochs == spec.natural["epochs"]
    for pool in ("max", "avg"):
        resolve_train_config("mnist-sample", "trades+atta", "cpu", {**spec.adversarial, "pool": pool})
    ecfg = resolve_explain_config("mnist-sample", "cpu", spec.explain)
    assert ecfg.interp_weight == 10.0
    r = Report("t")
    _weights(r, {"miniature": True, "preset": "cpu", "spec": asdict(spec)})
    text = r.to_markdown(tmp_path)
    assert "lambda = 10" in text and "miniature" in text


def test_demo_uses_the_embedded_sample_when_the_data_root_has_no_mnist(runs, tmp_path, monkeypatch):
    from interpretgan.pipeline import demo

    seen = {}

    def fake_reproduce(target, preset, **kw):  # stands in for the chain: only its inputs are checked
        seen.update(kw)
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "reproduce", fake_reproduce)
    (tmp_path / "cifar-only").mkdir()
    assert main(["demo", "--train", "--preset", "smoke", "--data-root", str(tmp_path / "cifar-only"), "-q"]) == 130
    assert seen["dataset"] == "mnist-sample" and seen["data_root"] is None


def test_explain_train_and_show(runs, capsys, tmp_path):
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
    folders = sorted(runs.iterdir())
    for argv, message in (
        (["--scale-iterations", "4,x"], "--scale-iterations '4,x' is not a comma-separated list of integers"),
        (["--scale-iterations", "1,1,1,1,1,1"], "the schedule lists 6 scales but the images have only 4"),
        (["--separate", "--fuse"], "--fuse stacks the layers of one joint loop"),
    ):
        assert main(["explain", "train", str(cls_run), "--preset", "smoke", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and err.count("\n") == 0
    # --resume keeps the run's recorded settings: options that would change them are refused
    assert main(["explain", "train", "--resume", str(exp_run), "--layers", "conv1", "--seed", "3"]) == 2
    assert "--seed, --layers would be ignored" in capsys.readouterr().err
    assert sorted(runs.iterdir()) == folders  # no run folder made by a refused command
    # a classifier of a dataset that is not at hand: refused before an explain run folder is made
    import shutil

    mnist_run = tmp_path / "cls-mnist"
    shutil.copytree(cls_run, mnist_run)
    cfg = json.loads((mnist_run / "config.json").read_text())
    (mnist_run / "config.json").write_text(json.dumps({**cfg, "dataset": "mnist"}))
    assert main(["explain", "train", str(mnist_run), "--preset", "smoke"]) == 2
    assert "dataset mnist needs a data root" in capsys.readouterr().err
    assert sorted(runs.iterdir()) == folders


def test_diagnose_and_baselines_commands(sample_explain_run, tmp_path, capsys):
    assert main(["diagnose", str(sample_explain_run.path), "--attack", "fgsm", "--n", "32", "--n-boot", "50",
                 "--out-dir", str(tmp_path / "d"), "-q"]) == 0
    out = capsys.readouterr().out
    assert (
        "| Acc_i |" in out and "max-pool index change conv2" in out and (tmp_path / "d" / "vulnerability.png").is_file()
    )
    assert (
        main(
            [
                "baselines",
                str(sample_explain_run.path),
                "--attack",
                "fgsm",
                "--n",
                "1",
                "--methods",
                "saliency,occlusion",
                "--out-dir",
                str(tmp_path / "b"),
                "-q",
            ]
        )
        == 0
    )
    assert (tmp_path / "b" / "baselines-fgsm.png").is_file()
    assert main(["diagnose", str(tmp_path / "nope")]) == 2
    assert "is not an interpretgan run folder" in capsys.readouterr().err
    assert main(["baselines", str(sample_explain_run.path), "--methods", "lime", "-q"]) == 2
    assert "unknown baseline(s) lime" in capsys.readouterr().err


def test_study_pooling_rejects_bad_seeds(runs, capsys):
    assert main(["study", "pooling", "--seeds", "a,b"]) == 2
    assert "--seeds 'a,b' is not a comma-separated list of integers" in capsys.readouterr().err


def test_ctrl_c_is_one_line_with_how_to_resume(monkeypatch, capsys):
    from interpretgan.cli import models

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "cmd_models", interrupted)
    assert main(["models"]) == 130
    assert "interrupted; run the same command again to resume" in capsys.readouterr().err


def test_data_check_exit_status_says_whether_every_dataset_passed(tmp_path, capsys):
    import gzip

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (raw / f"{stem}.gz").write_bytes(gzip.compress(b"not an idx file"))
    assert main(["data", "check", "--data-root", str(tmp_path)]) == 1
    capsys.readouterr()
    assert (
        main(["data", "check", "--data-root", str(tmp_path), "--json"]) == 1
    )  # the JSON report too: scripts read the status
    rows = {r["name"]: r["ok"] for r in json.loads(capsys.readouterr().out)}
    assert rows == {"mnist": False, "mnist-sample": True}
    # a root that does not exist is a mistake (issue 28), not an empty report; with no root at all,
    # the embedded sample alone is checked
    capsys.readouterr()
    assert main(["data", "check", "--data-root", str(tmp_path / "none"), "--json"]) == 2
    assert str(tmp_path / "none") in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["data", "check", "--data-root", str(empty), "--json"]) == 0


@pytest.mark.parametrize("command, cls", [(["train"], "TrainConfig"), (["explain", "train"], "ExplainConfig")])
def test_config_options_are_declared_once_on_the_dataclass(command, cls):
    """Each field declared with config.option() is an option of its command with that field's help and choices,
    and what the user gives comes back as field values (lists parsed; a bad list is one sentence)."""
    import dataclasses

    import interpretgan.config as config
    from interpretgan.cli import build_parser
    from interpretgan.cli.common import config_overrides
    from interpretgan.errors import ConfigError

    cls = getattr(config, cls)
    declared = [f for f in dataclasses.fields(cls) if f.metadata.get("cli")]
    assert len(declared) >= 6
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[command[0]]
    if len(command) > 1:
        sub = sub._subparsers._group_actions[0].choices[command[1]]
    actions = {a.dest: a for a in sub._actions}
    for f in declared:
        assert actions[f.name].help == f.metadata["help"] and f.metadata["help"]
        assert actions[f.name].choices == f.metadata["choices"]
    if cls is config.ExplainConfig:
        args = parser.parse_args([*command, "run", "--scale-iterations", "2, 3", "--layers", "conv1,fc1",
                                  "--seed", "4"])
        assert config_overrides(args, cls) == {"seed": 4, "layers": ["conv1", "fc1"], "scale_iterations": [2, 3]}
        args = parser.parse_args([*command, "run", "--scale-iterations", "2,x"])
        with pytest.raises(ConfigError, match="^--scale-iterations '2,x' is not a comma-separated list of integers"):
            config_overrides(args, cls)
    else:
        args = parser.parse_args([*command, "--pool", "avg", "--lr", "0.5", "--n-test", "10", "--channels-last"])
        assert config_overrides(args, cls) == {"pool": "avg", "lr": 0.5, "n_test": 10, "channels_last": True}
        assert "channels_last" not in config_overrides(parser.parse_args(command), cls)  # absent: the preset's
