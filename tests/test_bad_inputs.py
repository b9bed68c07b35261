"""The bad-input catalogue (issue 28): every case runs through ``main(argv)`` and must end with exit
status 2, one line on stderr without a traceback, and the runs folder exactly as it was.

A module fixture trains one smoke classifier on the embedded MNIST sample and one small explain run
of it; each case works on a fresh copy of that folder, damaged by its ``setup`` when it needs to be.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from interpretgan.cli import main
from interpretgan.models import create_model

CLS, EXP = "00000-cls", "00001-exp"
HUGE_SEED = "99999999999999999999999"


@pytest.fixture(scope="module")
def base_runs(tmp_path_factory) -> Path:
    """``runs/00000-cls`` (a smoke train run) and ``runs/00001-exp`` (its explainers of fc1 and fc2)."""
    root = tmp_path_factory.mktemp("base")
    runs = root / "runs"
    argv = ["--out", str(runs), "--no-progress", "-q"]
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["train", "--dataset", "mnist-sample", "--preset", "smoke", "--n-train", "128", *argv]) == 0
        (cls,) = runs.iterdir()
        cls.rename(runs / CLS)
        assert main(["explain", "train", str(runs / CLS), "--preset", "smoke", "--layers", "fc1,fc2",
                     "--scale-iterations", "2", "--no-eval", *argv]) == 0
        exp = next(p for p in runs.iterdir() if p.name != CLS)
        exp.rename(runs / EXP)
        # the run records where its classifier came from: keep it pointing at the renamed folder
        cfg = json.loads((runs / EXP / "config.json").read_text())
        cfg["classifier_run"] = str(runs / CLS)
        (runs / EXP / "config.json").write_text(json.dumps(cfg))
    finally:
        torch.set_num_threads(before)
    return runs


def listing(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` (hidden ones too) with the sha256 of its bytes."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            for p in sorted(folder.rglob("*"))}


def _edit_json(path: Path, **changes) -> None:
    d = json.loads(path.read_text())
    d.update(changes)
    path.write_text(json.dumps(d))


def _other_model_ckpt(runs: Path) -> None:
    """The classifier's checkpoint replaced by one of a 3-channel SmallCNN (model.json and weights agree)."""
    from interpretgan.pipeline.checkpoints import save_model

    save_model(runs / CLS / "ckpt", create_model("smallcnn", in_channels=3))


def _other_model_state(runs: Path) -> None:
    state = torch.load(runs / CLS / "ckpt" / "state.pt", weights_only=True)
    state["model"] = create_model("smallcnn", in_channels=3).state_dict()
    torch.save(state, runs / CLS / "ckpt" / "state.pt")
    (runs / CLS / "results.json").unlink()  # an interrupted run, so --resume has work to do


def _state_without(key: str) -> Callable[[Path], None]:
    def setup(runs: Path) -> None:
        state = torch.load(runs / CLS / "ckpt" / "state.pt", weights_only=True)
        del state[key]
        torch.save(state, runs / CLS / "ckpt" / "state.pt")
        (runs / CLS / "results.json").unlink()
    return setup


def _config_model(runs: Path) -> None:
    _edit_json(runs / CLS / "config.json", model_kwargs={"dropout": 0.5, "in_channels": 3})
    (runs / CLS / "results.json").unlink()


def _deny_writes(monkeypatch: pytest.MonkeyPatch, folder: Path, code: int) -> None:
    """Every new file or folder under ``folder`` fails with OSError(code): a read-only or full disk.

    The tests run as root, for whom permission bits do not apply; this stands in for them.
    """
    import builtins
    import pathlib

    def denied(path) -> bool:
        return str(Path(path).absolute()).startswith(str(folder))

    def fail(path):
        raise OSError(code, __import__("os").strerror(code), str(path))

    real_mkdir, real_mkstemp, real_open = pathlib.Path.mkdir, tempfile.mkstemp, builtins.open
    real_fh_open = logging.FileHandler._open

    def mkdir(self, *a, **k):
        if denied(self) and not self.is_dir():
            fail(self)
        return real_mkdir(self, *a, **k)

    def mkstemp(*a, dir=None, **k):
        if dir is not None and denied(dir):
            fail(dir)
        return real_mkstemp(*a, dir=dir, **k)

    def open_(file, mode="r", *a, **k):
        if isinstance(file, (str, Path)) and any(c in mode for c in "wax") and denied(file):
            fail(file)
        return real_open(file, mode, *a, **k)

    def fh_open(self):
        if denied(self.baseFilename):
            fail(self.baseFilename)
        return real_fh_open(self)

    monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(logging.FileHandler, "_open", fh_open)


def _disk_full_at_checkpoint(monkeypatch: pytest.MonkeyPatch, runs: Path) -> None:
    """The first checkpoint fails: the new run holds nothing to resume, so it goes."""
    def save(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(torch, "save", save)


def _loss_turns_nan(monkeypatch: pytest.MonkeyPatch, runs: Path) -> None:
    """A loss that turns non-finite with finite options (the objectives' cross-entropy times NaN)."""
    import types

    import interpretgan.training.objectives as objectives

    nan_ce = lambda *a, **k: torch.nn.functional.cross_entropy(*a, **k) * float("nan")  # noqa: E731
    monkeypatch.setattr(objectives, "F", types.SimpleNamespace(cross_entropy=nan_ce))


TRAIN = ["train", "--dataset", "mnist-sample", "--preset", "smoke", "--n-train", "64"]
ADV = ["train", "--dataset", "mnist-sample", "--objective", "trades+atta", "--preset", "smoke", "--n-train", "64"]

# (id, argv with {runs}/{cls}/{exp}/{tmp} placeholders, setup(runs) or None, patch(monkeypatch, runs) or None)
CASES: list[tuple[str, list[str], Callable | None, Callable | None]] = [
    # 1. NaN and inf options
    ("1-eps-nan", [*ADV, "--eps", "nan"], None, None),
    ("1-eps-inf", [*ADV, "--eps", "inf"], None, None),
    ("1-lr-nan", [*ADV, "--lr", "nan"], None, None),
    ("1-lr-inf", [*ADV, "--lr", "inf"], None, None),
    ("1-beta-nan", [*ADV, "--beta", "nan"], None, None),
    ("1-attack-step-nan", [*ADV, "--attack-step", "nan"], None, None),
    ("1-loss-turns-nan", TRAIN, None, _loss_turns_nan),
    ("1-attack-alpha-nan", ["attack", "{cls}", "--alpha", "nan", "--n", "8"], None, None),
    # 3. tracebacks instead of a sentence
    ("3-out-is-a-file", [*TRAIN, "--out", "{runs}/00000-cls/config.json"], None, None),
    (
        "3-out-not-writable",
        [*TRAIN, "--out", "{runs}/sub"],
        None,
        lambda mp, runs: _deny_writes(mp, runs / "sub", errno.EACCES),
    ),
    ("3-disk-full-at-start", TRAIN, None, lambda mp, runs: _deny_writes(mp, runs, errno.ENOSPC)),
    ("3-disk-full-at-checkpoint", TRAIN, None, _disk_full_at_checkpoint),
    (
        "3-attack-read-only-run",
        ["attack", "{cls}", "--attack", "fgsm", "--n", "8"],
        None,
        lambda mp, runs: _deny_writes(mp, runs / CLS, errno.EROFS),
    ),
    ("3-config-list-eval", ["eval", "{cls}"], lambda runs: (runs / CLS / "config.json").write_text("[1, 2]"), None),
    (
        "3-config-list-resume",
        ["train", "--resume", "{cls}"],
        lambda runs: (runs / CLS / "config.json").write_text("[1, 2]"),
        None,
    ),
    (
        "3-config-list-attack",
        ["attack", "{cls}", "--n", "8"],
        lambda runs: (runs / CLS / "config.json").write_text("[1, 2]"),
        None,
    ),
    (
        "3-config-wrong-type-resume",
        ["train", "--resume", "{cls}"],
        lambda runs: _edit_json(runs / CLS / "config.json", epochs="ten"),
        None,
    ),
    (
        "3-config-wrong-type-eval",
        ["eval", "{cls}"],
        lambda runs: _edit_json(runs / CLS / "config.json", lr="fast"),
        None,
    ),
    ("3-config-model-vs-ckpt-resume", ["train", "--resume", "{cls}"], _config_model, None),
    ("3-eval-other-models-ckpt", ["eval", "{cls}"], _other_model_ckpt, None),
    ("3-state-of-other-model", ["train", "--resume", "{cls}"], _other_model_state, None),
    ("3-state-missing-optimizer", ["train", "--resume", "{cls}"], _state_without("optimizer"), None),
    ("3-state-missing-rng", ["train", "--resume", "{cls}"], _state_without("rng"), None),
    ("3-seed-huge-train", [*TRAIN, "--seed", HUGE_SEED], None, None),
    ("3-seed-negative-train", [*TRAIN, "--seed", "-1"], None, None),
    ("3-seed-huge-attack", ["attack", "{cls}", "--n", "8", "--seed", HUGE_SEED], None, None),
    ("3-seed-huge-explain", ["explain", "train", "{cls}", "--preset", "smoke", "--seed", HUGE_SEED], None, None),
    ("3-seed-huge-show", ["explain", "show", "{exp}", "--seed", HUGE_SEED], None, None),
    ("3-seed-huge-diagnose", ["diagnose", "{exp}", "--n", "8", "--seed", HUGE_SEED], None, None),
    ("3-seed-huge-baselines", ["baselines", "{exp}", "--seed", HUGE_SEED], None, None),
    # 4. failing commands change nothing
    ("4-attack-eps-negative", ["attack", "{cls}", "--eps", "-1"], None, None),
    ("4-attack-bad-spec", ["attack", "{cls}", "--attack", "pgd-x"], None, None),
    ("4-attack-autoattack-steps", ["attack", "{cls}", "--attack", "autoattack-5"], None, None),
    ("4-diagnose-autoattack-steps", ["diagnose", "{exp}", "--attack", "autoattack-5", "--n", "8"], None, None),
    (
        "4-study-autoattack-spec",
        ["study", "pooling", "--dataset", "mnist-sample", "--preset", "smoke", "--autoattack", "autoattack-5"],
        None,
        None,
    ),
    (
        "4-study-autoattack-n",
        ["study", "pooling", "--dataset", "mnist-sample", "--preset", "smoke", "--autoattack-n", "many"],
        None,
        None,
    ),
    (
        "4-study-autoattack-n-negative",
        ["study", "pooling", "--dataset", "mnist-sample", "--preset", "smoke", "--autoattack-n", "-3"],
        None,
        None,
    ),
    (
        "4-explain-train-mismatched-classifier",
        ["explain", "train", "{cls}", "--preset", "smoke"],
        _other_model_ckpt,
        None,
    ),
    ("4-explain-show-n-drift-0", ["explain", "show", "{exp}", "--n-drift", "0"], None, None),
    ("4-explain-show-n-0", ["explain", "show", "{exp}", "--n", "0"], None, None),
    # 5. a data root that does not exist
    ("5-data-check-missing-root", ["data", "check", "--data-root", "{tmp}/does/not/exist"], None, None),
    (
        "5-train-missing-root",
        ["train", "--dataset", "mnist", "--preset", "smoke", "--data-root", "{tmp}/nope"],
        None,
        None,
    ),
    # 9. minor
    ("9-explain-batch-size-1", ["explain", "train", "{cls}", "--preset", "smoke", "--batch-size", "1"], None, None),
    # what held before issue 28, kept
    ("kept-wrong-run-kind", ["eval", "{exp}"], None, None),
    ("kept-unknown-model", [*TRAIN, "--model", "resnet"], None, None),
    ("kept-unknown-layer", ["explain", "train", "{cls}", "--preset", "smoke", "--layers", "fc9"], None, None),
    ("kept-not-a-run", ["eval", "{runs}/nope"], None, None),
    ("kept-corrupt-config", ["eval", "{cls}"], lambda runs: (runs / CLS / "config.json").write_text("{"), None),
    (
        "kept-truncated-weights",
        ["eval", "{cls}"],
        lambda runs: (runs / CLS / "ckpt" / "model.safetensors").write_bytes(b"\x10\x00"),
        None,
    ),
]


def refused(argv: list[str], watched: Path, capsys) -> str:
    """Run ``argv`` and check the three properties; returns the error line."""
    before = listing(watched)
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("interpretgan: error: "), err
    assert listing(watched) == before
    return lines[0]


@pytest.fixture
def runs(base_runs, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the base runs folder, the runs root of this test."""
    runs = tmp_path / "runs"
    shutil.copytree(base_runs, runs)
    monkeypatch.setenv("INTERPRETGAN_RUNS", str(runs))
    monkeypatch.setenv("INTERPRETGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("INTERPRETGAN_DATA", raising=False)
    return runs


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_sentence_and_changes_nothing(case, runs, tmp_path, monkeypatch, capsys):
    name, argv, setup, patch = case
    if setup:
        setup(runs)
    before = listing(tmp_path)
    if patch:
        patch(monkeypatch, runs)
    subst = {"{runs}": str(runs), "{cls}": str(runs / CLS), "{exp}": str(runs / EXP), "{tmp}": str(tmp_path)}
    argv = [next((a.replace(k, v) for k, v in subst.items() if k in a), a) for a in argv]
    if argv[0] != "data":
        argv += ["--no-progress", "-q"]
    rc = main(argv)
    monkeypatch.undo()  # the listing reads files with the real open
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("interpretgan: error: "), err
    assert listing(tmp_path) == before


# --- 2. damaged copies of the real MNIST files ---------------------------------------------------
def _damaged_mnist(data_root: Path, folder: Path, how: str) -> Path:
    """``folder/MNIST/raw`` with the official train files linked and the test split damaged."""
    import gzip

    import numpy as np

    from interpretgan.data import mnist

    raw = folder / "MNIST" / "raw"
    raw.mkdir(parents=True)
    src = mnist.find(data_root)
    for stem in mnist.FILES["train"]:
        (raw / f"{stem}.gz").symlink_to(mnist._file(src, stem))
    images_stem, labels_stem = mnist.FILES["test"]
    images_raw = mnist.read_bytes(mnist._file(src, images_stem))
    labels_raw = mnist.read_bytes(mnist._file(src, labels_stem))
    perm = np.random.default_rng(0).permutation(10000)
    if how == "labels shuffled":
        labels_raw = labels_raw[:8] + np.frombuffer(labels_raw, np.uint8, offset=8)[perm].tobytes()
    else:  # the images shuffled against their labels
        images = np.frombuffer(images_raw, np.uint8, offset=16).reshape(10000, 784)
        images_raw = images_raw[:16] + images[perm].tobytes()
    (raw / f"{images_stem}.gz").write_bytes(gzip.compress(images_raw, compresslevel=1))
    (raw / f"{labels_stem}.gz").write_bytes(gzip.compress(labels_raw, compresslevel=1))
    return folder


@pytest.mark.parametrize("how, blamed", [("labels shuffled", "t10k-labels-idx1-ubyte.gz"),
                                         ("images shuffled", "t10k-images-idx3-ubyte.gz")])
def test_real_mnist_shuffled_against_its_labels_stops_the_run(data_root, how, blamed, runs, tmp_path, capsys):
    from interpretgan.data import load_dataset

    root = _damaged_mnist(data_root, tmp_path / "data", how)
    line = refused(
        ["train", "--dataset", "mnist", "--preset", "smoke", "--data-root", str(root), "--no-progress", "-q"],
        runs,
        capsys,
    )  # (the cache outside it may gain the official train split)
    assert blamed in line and "not the official data" in line and "--no-verify" in line
    assert load_dataset("mnist", "test", root=root, verify=False).meta["verdict"] == "skipped checks"


# --- 6. --resume on a finished run ---------------------------------------------------------------
def test_resume_of_a_finished_train_run_without_state_is_a_no_op(runs, capsys):
    (runs / CLS / "ckpt" / "state.pt").unlink()
    before = listing(runs)
    assert main(["train", "--resume", str(runs / CLS), "--no-progress", "-q"]) == 0
    assert "nothing to resume" in capsys.readouterr().out
    assert listing(runs) == before


@pytest.mark.usefixtures("one_thread")
def test_resume_of_a_finished_explain_run_keeps_its_training_seconds(runs, capsys):
    exp = runs / EXP
    recorded = sum(r["seconds"] for r in map(json.loads, (exp / "metrics.jsonl").read_text().splitlines())
                   if r.get("event") == "train" and r["layer"] == "fc1")
    # the layers finished (trained with --no-eval): resuming evaluates them and reports the recorded time
    assert main(["explain", "train", "--resume", str(exp), "--no-progress", "-q"]) == 0
    results = json.loads((exp / "results.json").read_text())
    assert results["seconds"] == pytest.approx(recorded) and recorded > 0.01
    before = listing(runs)
    capsys.readouterr()
    assert main(["explain", "train", "--resume", str(exp), "--no-progress", "-q"]) == 0
    assert "nothing to resume" in capsys.readouterr().out
    assert listing(runs) == before


# --- 7. the advice after a deleted explainer.json works ------------------------------------------
@pytest.mark.usefixtures("one_thread")
def test_advice_after_a_deleted_explainer_json_works(runs, capsys):
    exp = runs / EXP
    spec = (exp / "ckpt" / "fc1" / "explainer.json").read_text()
    weights = (exp / "ckpt" / "fc1" / "explainer.safetensors").read_bytes()
    (exp / "ckpt" / "fc1" / "explainer.json").unlink()
    line = refused(["explain", "show", str(exp), "--n", "2", "--n-drift", "16", "--no-progress", "-q"], runs, capsys)
    advice = line[line.index("`") + 1:line.rindex("`")].split()
    assert advice[:3] == ["interpretgan", "explain", "train"] and "--resume" in advice
    assert main([*advice[1:], "--no-eval", "--no-progress", "-q"]) == 0
    assert (exp / "ckpt" / "fc1" / "explainer.json").read_text() == spec
    assert (exp / "ckpt" / "fc1" / "explainer.safetensors").read_bytes() == weights
    assert main(["explain", "show", str(exp), "--n", "2", "--n-drift", "16", "--no-progress", "-q"]) == 0


# --- 8. concurrent run creation ------------------------------------------------------------------
def _make_runs(root: str, description: str, count: int) -> list[str]:
    from interpretgan.pipeline.runs import new_run_dir

    return [new_run_dir(root, description).name for _ in range(count)]


def test_concurrent_run_creation_never_shares_a_number(tmp_path):
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(8) as pool:
        names = sum(pool.starmap(_make_runs, [(str(tmp_path), f"desc-{i % 2}", 10) for i in range(8)]), [])
    numbers = sorted(int(n[:5]) for n in names)
    assert numbers == list(range(80))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)  # no lock or claim file beside the runs


# --- 9. minor ------------------------------------------------------------------------------------
def test_safetensors_files_get_the_usual_permissions(tmp_path):
    import os

    from interpretgan.io import save_tensors, write_json

    save_tensors(tmp_path / "t.safetensors", {"a": torch.zeros(2)})
    write_json(tmp_path / "t.json", {})
    mode = lambda p: (tmp_path / p).stat().st_mode & 0o777  # noqa: E731
    umask = os.umask(0)
    os.umask(umask)
    assert mode("t.safetensors") == mode("t.json") == 0o666 & ~umask


def test_wrong_run_kind_reads_as_english(runs):
    from interpretgan.errors import RunError
    from interpretgan.pipeline.runs import Run

    with pytest.raises(RunError, match=r"is an 'explain' run; expected a 'train' run"):
        Run.open(runs / EXP, kind="train")
