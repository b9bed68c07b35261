"""torchrun jobs of 2 gloo processes against one process: where the maths says they are the same
computation (a global batch split over the ranks, gradients averaged, no dropout), the weights agree to
float rounding; resume works across a change of world size; rank 0 alone writes the run folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from interpretgan.distributed import share

WORKERS = Path(__file__).parent / "distributed"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return {**env, "OMP_NUM_THREADS": "1"}


def _run(args: list[str], nproc: int, cwd: Path | None = None) -> subprocess.CompletedProcess:
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    cmd = launch + args if nproc > 1 else [sys.executable, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=cwd, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _train(tmp_path: Path, name: str, nproc: int, *args: str) -> dict[str, torch.Tensor]:
    out = tmp_path / f"{name}.safetensors"
    _run([str(WORKERS / "train_worker.py"), args[0], str(out), *args[1:]], nproc)
    return load_file(out)


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_share_splits_rows_evenly_and_completely():
    for n in (0, 1, 7, 64, 65):
        for parts in (1, 2, 3, 5):
            rows = [share(n, p, parts) for p in range(parts)]
            sizes = [r.stop - r.start for r in rows]
            assert sum(sizes) == n and max(sizes) - min(sizes) <= 1
            assert all(a.stop == b.start for a, b in zip(rows, rows[1:]))
            assert [len(t) for t in torch.arange(n).tensor_split(parts)] == sizes


@pytest.mark.parametrize(("objective", "batch_size", "augment"), [
    ("natural", "50", "plain"),
    ("trades", "50", "plain"),  # the random start is drawn for the whole batch and cut per rank
    ("trades+atta", "51", "augment"),  # uneven shares; crops and ATTA's perturbation buffer across ranks
])
def test_two_processes_train_the_one_process_weights(tmp_path, objective, batch_size, augment):
    one = _train(tmp_path, "one", 1, objective, batch_size, augment)
    two = _train(tmp_path, "two", 2, objective, batch_size, augment)
    assert _max_diff(one, two) < 1e-5
    # and training moved the weights by far more: the runs are compared after training, not at the start
    start = _train(tmp_path, "start", 1, objective, batch_size, augment, str(tmp_path / "runs0"), "0")
    assert _max_diff(one, start) > 100 * _max_diff(one, two)


def test_resume_across_a_change_of_world_size(tmp_path):
    whole = _train(tmp_path, "whole", 1, "trades+atta", "50", "plain")
    root = str(tmp_path / "runs")
    _train(tmp_path, "half", 2, "trades+atta", "50", "plain", root, "1")  # 2 ranks, stopped after epoch 1
    (run,) = Path(root).iterdir()
    assert (run / "ckpt" / "state.pt").is_file() and len((run / "metrics.jsonl").read_text().splitlines()) == 1
    resumed = _train(tmp_path, "resumed", 1, "trades+atta", "50", "plain", root, "resume")  # 1 process ends it
    assert _max_diff(whole, resumed) < 1e-5
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2


def test_torchrun_train_writes_one_run_folder(tmp_path):
    args = ["-m", "interpretgan", "train", "--dataset", "mnist-sample", "--preset", "smoke", "--out",
            str(tmp_path), "--no-progress"]
    two = _run(args, 2)
    (run,) = tmp_path.iterdir()
    assert sorted(p.name for p in run.iterdir()) == ["ckpt", "config.json", "metrics.jsonl", "results.json",
                                                     "train.log"]
    assert two.stdout.count("run folder:") == 1  # rank 0 alone prints


def test_torchrun_refuses_commands_that_do_not_distribute(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "interpretgan",
         "diagnose", "nowhere"], capture_output=True, text=True, env=_env(), timeout=300)
    assert done.returncode != 0
    assert "'diagnose' does not run under torchrun" in done.stderr
