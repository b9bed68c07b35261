"""torchrun jobs of 2 gloo processes against one process: where the maths says they are the same
computation (a global batch split over the ranks, gradients averaged, no dropout), the weights agree to
float rounding; resume works across a change of world size; rank 0 alone writes the run folder."""

from __future__ import annotations

import json
import os
import shutil
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
    """The trained weights; the initial ones under ``start.``."""
    out = tmp_path / f"{name}.safetensors"
    _run([str(WORKERS / "train_worker.py"), args[0], str(out), *args[1:]], nproc)
    return load_file(out)


def _split(weights: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    trained = {k: v for k, v in weights.items() if not k.startswith("start.")}
    return trained, {k[len("start."):]: v for k, v in weights.items() if k.startswith("start.")}


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
    one, start = _split(_train(tmp_path, "one", 1, objective, batch_size, augment))
    two, _ = _split(_train(tmp_path, "two", 2, objective, batch_size, augment))
    assert _max_diff(one, two) < 1e-5
    # and training moved the weights by far more: the runs are compared after training, not at the start
    assert _max_diff(one, start) > 100 * _max_diff(one, two)


def test_resume_across_a_change_of_world_size(tmp_path):
    whole, _ = _split(_train(tmp_path, "whole", 1, "trades+atta", "50", "plain"))
    root = str(tmp_path / "runs")
    _train(tmp_path, "half", 2, "trades+atta", "50", "plain", root, "1")  # 2 ranks, stopped after epoch 1
    (run,) = Path(root).iterdir()
    assert (run / "ckpt" / "state.pt").is_file() and len((run / "metrics.jsonl").read_text().splitlines()) == 1
    resumed, _ = _split(_train(tmp_path, "resumed", 1, "trades+atta", "50", "plain", root, "resume"))  # 1 process
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


def test_leaving_the_job_stops_the_process_groups_threads():
    """After teardown no gloo thread is left to run into the interpreter's shutdown (where one aborted rank 1
    of 6 in 100 explain jobs measured: "terminate called without an active exception"), even though building
    an optimizer imported torch.distributed.nn.functional, whose defaults hold the world group, after setup."""
    _run([str(WORKERS / "teardown_worker.py")], 2)  # each rank fails if it has more threads than before setup


def test_setup_refuses_more_local_ranks_than_gpus(monkeypatch):
    from interpretgan import distributed
    from interpretgan.errors import ConfigError

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match="torchrun started local rank 1 but this machine has 1 CUDA GPU"):
        distributed.setup(torch.device("cuda"))


def test_torchrun_refuses_commands_that_do_not_distribute(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "interpretgan",
         "diagnose", "nowhere"], capture_output=True, text=True, env=_env(), timeout=300)
    assert done.returncode != 0
    assert "'diagnose' does not run under torchrun" in done.stderr


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory):
    """A SmallCNN trained for seconds on the embedded sample (about 85 % clean: attacks have work to do)."""
    from interpretgan.config.presets import resolve_train_config
    from interpretgan.pipeline.runs import Run
    from interpretgan.pipeline.train import fit

    cfg = resolve_train_config("mnist-sample", "natural", "smoke", {"epochs": 3, "lr": 0.05, "n_train": 1000})
    run = Run.create(tmp_path_factory.mktemp("cls"), "cls", "train", cfg.to_dict())
    with torch.random.fork_rng(devices=[]):
        assert fit(cfg, run, progress=False)["clean_accuracy"] > 0.7
    return run.path


def _copy_run(src: Path, dst: Path) -> str:
    shutil.copytree(src, dst)
    return str(dst)


def test_torchrun_attack_gives_the_one_process_sets(tmp_path, classifier_run):
    args = ["--attack", "pgd-5", "--attack", "fgsm", "--n-images", "130", "--batch-size", "40", "--no-progress"]
    for nproc in (1, 2):  # 4 chunks: the ranks take 2 each, the last one short
        _run(["-m", "interpretgan", "attack", _copy_run(classifier_run, tmp_path / f"p{nproc}"), *args], nproc)
    (one,), (two,) = ((tmp_path / f"p{k}" / "attacks").iterdir() for k in (1, 2))
    for name in ("pgd5", "fgsm"):
        a, b = load_file(one / f"{name}.safetensors"), load_file(two / f"{name}.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a)
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (one, two))
    assert 0 < ra["attacks"]["pgd5"]["accuracy"] < ra["clean_accuracy"]  # the attack fools some, not all
    assert ra["attacks"] == rb["attacks"] and ra["clean_accuracy"] == rb["clean_accuracy"]
    assert not list(two.glob("*.chunks"))


def test_torchrun_explain_train_gives_the_one_process_explainers(tmp_path, classifier_run):
    args = ["--preset", "smoke", "--scale-iterations", "2,2,2,2", "--n-test", "40", "--no-progress"]
    for nproc in (1, 2):  # each rank's one thread: the same kernels, so the same bits
        _run(["-m", "interpretgan", "explain", "train", str(classifier_run), "--out", str(tmp_path / f"p{nproc}"),
              *args], nproc)
    (one,), (two,) = ((tmp_path / f"p{k}").iterdir() for k in (1, 2))
    layers = json.loads((one / "config.json").read_text())["resolved_layers"]
    assert len(layers) == 7
    for layer in layers:
        a, b = (load_file(d / "ckpt" / layer / "explainer.safetensors") for d in (one, two))
        assert all(torch.equal(a[k], b[k]) for k in a), layer
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (one, two))
    assert ra["layers"] == rb["layers"] and ra["frechet_floor"] == rb["frechet_floor"]
    # every rank's records end in metrics.jsonl
    count = [len((d / "metrics.jsonl").read_text().splitlines()) for d in (one, two)]
    assert count[0] == count[1] and not list(two.glob("metrics-rank*.jsonl"))


def test_more_processes_than_layers_train_a_layer_data_parallel(tmp_path, classifier_run):
    """One layer, two processes: each takes half of every batch (whole minibatch-stddev groups) and the
    gradients are summed over both. After two iterations the explainer is the one-process one to float
    rounding (later, Adam's first steps on the new scales' near-zero gradients blow rounding up to the
    learning rate's size: 3e-3 after four, measured); the first rank alone writes it and the records."""
    runs = {}
    for nproc in (1, 2):
        worker = [str(WORKERS / "explain_worker.py"), str(classifier_run), str(tmp_path / f"p{nproc}")]
        _run([*worker, "2", "conv2"], nproc)
        (runs[nproc],) = (tmp_path / f"p{nproc}").iterdir()
    a, b = (load_file(d / "ckpt" / "conv2" / "explainer.safetensors") for d in runs.values())
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6
    assert not list(runs[2].glob("metrics-rank*.jsonl"))
    records = [[json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()] for d in runs.values()]
    (one,), (two,) = ([r for r in rs if r.get("event") == "train"] for rs in records)
    assert one["iteration"] == two["iteration"] == 2 and one.keys() == two.keys()
    for key in ("critic_loss", "generator_loss", "consistency", "gp"):  # the team's statistics: the whole batch's
        assert one[key] == pytest.approx(two[key], rel=1e-4, abs=1e-6), key


def test_a_team_member_takes_whole_minibatch_stddev_groups():
    from interpretgan.distributed import Team, layer_team
    from interpretgan.errors import ConfigError
    from interpretgan.explain.loop import _team_rows
    from interpretgan.explain.progan import minibatch_stddev

    assert layer_team(3) == Team((0,), 0) and _team_rows(8, 4, Team((0,), 0)) is None  # one process
    halves = [_team_rows(8, 4, Team((0, 1), part)) for part in (0, 1)]
    assert [h.tolist() for h in halves] == [[0, 2, 4, 6], [1, 3, 5, 7]]  # example b is in group b % 2
    x = torch.randn(8, 3, 4, 4)
    whole = minibatch_stddev(x)[:, -1]
    for rows in halves:  # each member's critic sees its groups' statistic unchanged
        assert torch.allclose(minibatch_stddev(x[rows])[:, -1], whole[rows])
    uneven = [_team_rows(12, 4, Team((0, 1), p)).tolist() for p in (0, 1)]  # 3 groups: 2 and 1
    assert uneven == [[0, 1, 3, 4, 6, 7, 9, 10], [2, 5, 8, 11]]
    with pytest.raises(ConfigError, match="--batch-size 4 makes 1 minibatch-stddev group.s. of 4, fewer than the 2"):
        _team_rows(4, 4, Team((0, 1), 0))


def test_explainers_resume_across_a_change_of_world_size(tmp_path, classifier_run):
    """Two processes stop the joint loop after 3 of 8 iterations (each its layers' loop state); one process
    puts the loop together from both and ends with the explainers of an uninterrupted one-process run."""
    whole, parted = tmp_path / "whole", tmp_path / "parted"
    _run([str(WORKERS / "explain_worker.py"), str(classifier_run), str(whole), "8"], 1)
    _run([str(WORKERS / "explain_worker.py"), str(classifier_run), str(parted), "3"], 2)
    (one,), (two,) = whole.iterdir(), parted.iterdir()
    assert sorted(p.name for p in (two / "ckpt").glob("state-*.pt")) == ["state-joint-0of2.pt", "state-joint-1of2.pt"]
    resumed = _run([str(WORKERS / "explain_worker.py"), str(classifier_run), str(parted), "resume"], 1)
    assert "resuming explainers of conv1, conv2, conv3, conv4, fc1, fc2, fc3 at iteration 3 of 8" in resumed.stderr
    layers = json.loads((one / "config.json").read_text())["resolved_layers"]
    for layer in layers:
        a, b = (load_file(d / "ckpt" / layer / "explainer.safetensors") for d in (one, two))
        assert all(torch.equal(a[k], b[k]) for k in a), layer
    assert json.loads((two / "results.json").read_text())["layers"].keys() == set(layers)


def test_a_joint_loop_is_put_together_from_the_latest_states_or_refused():
    from interpretgan.errors import RunError
    from interpretgan.explain.loop import _resume_state

    class Store:
        def __init__(self, states):
            self.states = states

        def loop_tags(self):
            return list(self.states)

        def loop_state(self, tag, device_type):
            return self.states.get(tag)

    def state(iteration, *layers):
        return {"iteration": iteration, "stream": f"stream@{iteration}", "log_count": 1,
                "groups": [{"layers": [layer]} for layer in layers], "log_sums": {layer: {} for layer in layers}}

    # a stale one-process state at 2, then two ranks at 5: the latest wins for every layer
    store = Store({"joint": state(2, "a", "b", "c"), "joint-0of2": state(5, "a", "c"), "joint-1of2": state(5, "b")})
    got = _resume_state(store, "joint", [["a"], ["b"], ["c"]], "cpu")
    assert got["iteration"] == 5 and [g["layers"] for g in got["groups"]] == [["a"], ["b"], ["c"]]
    assert set(got["log_sums"]) == {"a", "b", "c"}
    assert _resume_state(Store({}), "joint-0of3", [["a"]], "cpu") is None
    store.states["joint-1of2"] = state(4, "b")  # a rank killed between two checkpoints
    with pytest.raises(RunError, match=r"stand at iterations \[4, 5\]; resume with the number of processes"):
        _resume_state(store, "joint", [["a"], ["b"], ["c"]], "cpu")
    with pytest.raises(RunError, match=r"lack a\+b\+c in this grouping"):  # a fused loop cannot take unfused states
        _resume_state(Store({"joint-0of2": state(5, "a")}), "joint", [["a", "b", "c"]], "cpu")


def test_layers_are_dealt_over_the_ranks(monkeypatch):
    from interpretgan import distributed
    from interpretgan.explain.loop import _rank_loops

    layers = ["conv1", "conv2", "conv3", "fc1", "fc2"]
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    shares = []
    for r in (0, 1):
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        shares.append(_rank_loops([("joint", layers)], layers))
    assert shares == [[("joint-0of2", ["conv1", "conv3", "fc2"])], [("joint-1of2", ["conv2", "fc1"])]]
    separate = [(n, [n]) for n in layers]
    assert _rank_loops(separate, layers) == separate[1::2]
    monkeypatch.setattr(distributed, "world_size", lambda: 6)
    assert _rank_loops([("joint", layers)], layers) == [("joint-1of6", ["conv2"])]
    monkeypatch.setattr(distributed, "rank", lambda: 5)  # more ranks than layers: rank 5 joins conv1's team
    assert _rank_loops([("joint", layers)], layers) == [("joint-0of6", ["conv1"])]
    assert _rank_loops(separate, layers) == [("conv1", ["conv1"])]


def test_stages_spread_or_run_on_rank_zero_alone(tmp_path):
    _run([str(WORKERS / "stages_worker.py"), str(tmp_path)], 2)
    seen = [json.loads((tmp_path / f"seen-by-rank{r}.json").read_text()) for r in (0, 1)]
    assert seen[0] == seen[1]  # every rank gets rank 0's outputs
    assert seen[0]["spread"] == {"rank": 0, "world": 2}
    assert seen[0]["alone"]["world"] == 1  # rank 0 worked as a one-process job
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["00000-made-alone"]
    assert list(json.loads((tmp_path / "stages.json").read_text())) == ["spread", "alone"]
