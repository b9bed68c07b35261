"""Run folders, atomic writes, checkpoints."""

from __future__ import annotations

import pytest
import torch

from interpretgan.errors import RunError
from interpretgan.io import atomic_path, load_state, save_state, write_json
from interpretgan.models import create_model
from interpretgan.pipeline.checkpoints import load_model, save_model
from interpretgan.pipeline.runs import Run, new_run_dir


def test_run_dirs_are_numbered_and_never_reused(tmp_path):
    a = new_run_dir(tmp_path, "mnist smallcnn/max")
    b = new_run_dir(tmp_path, "x")
    assert a.name == "00000-mnist-smallcnn-max" and b.name == "00001-x"
    (tmp_path / "00007-old").mkdir()
    assert new_run_dir(tmp_path, "y").name == "00008-y"


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "config.json"
    write_json(target, {"a": 1})
    with pytest.raises(ZeroDivisionError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            1 / 0
    assert target.read_text().strip().startswith("{") and list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize("name, kwargs", [("smallcnn", {"pool": "avg"}),
                                          ("vgg16", {"width": 0.125, "fc_width": 16, "mean": (0.5, 0.4, 0.3),
                                                     "std": (0.2, 0.2, 0.2)})])
def test_model_checkpoint_roundtrip(tmp_path, name, kwargs):
    torch.manual_seed(0)
    m = create_model(name, **kwargs)
    for p in m.parameters():  # no zero last layer, no identity BatchNorm: every tensor is drawn
        torch.nn.init.normal_(p, std=0.1)
    for b in m.buffers():
        if b.is_floating_point():
            b.uniform_(0.5, 1.5)
    save_model(tmp_path / "ckpt", m)
    r = load_model(tmp_path)
    assert r.config == m.config and not r.training
    ours, theirs = m.state_dict(), r.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)  # buffers too
    x = torch.rand(2, m.config["in_channels"], 32, 32)
    torch.testing.assert_close(r(x), m.eval()(x))


def test_corrupt_checkpoint_is_one_sentence(tmp_path):
    m = create_model("smallcnn")
    save_model(tmp_path / "ckpt", m)
    p = tmp_path / "ckpt" / "model.safetensors"
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(RunError, match="model.safetensors is not a readable safetensors file"):
        load_model(tmp_path)
    with pytest.raises(RunError, match="holds no model checkpoint"):
        load_model(tmp_path / "nothing")


def test_checkpoint_of_other_shapes_is_one_sentence(tmp_path):
    save_model(tmp_path / "ckpt", create_model("smallcnn"))
    spec = tmp_path / "ckpt" / "model.json"
    spec.write_text(spec.read_text().replace('"num_classes": 10', '"num_classes": 4'))  # the weights hold 10 outputs
    with pytest.raises(
        RunError, match=r"model.safetensors does not fit model 'smallcnn' with .*'num_classes': 4.*size mismatch"
    ):
        load_model(tmp_path)


def test_state_roundtrip_and_corruption(tmp_path):
    save_state(tmp_path / "s.pt", {"epochs_done": 3, "t": torch.arange(4)})
    s = load_state(tmp_path / "s.pt")
    assert s["epochs_done"] == 3 and torch.equal(s["t"], torch.arange(4))
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(RunError, match="corrupt"):
        load_state(tmp_path / "bad.pt")


def test_open_checks_kind_and_metrics_survive_a_cut_line(tmp_path):
    run = Run.create(tmp_path, "t", "train", {"x": 1})
    assert Run.open(run.path, kind="train").config == {"kind": "train", "x": 1}
    with pytest.raises(RunError, match="expected an 'explain' run"):
        Run.open(run.path, kind="explain")
    with pytest.raises(RunError, match="not an interpretgan run folder"):
        Run.open(tmp_path / "missing")
    run.append_metrics({"epoch": 0})
    with open(run.metrics_path, "a") as f:
        f.write('{"epoch": 1, "lo')
    assert run.read_metrics() == [{"epoch": 0}]


def test_stages_run_once_and_record_outputs_and_times(tmp_path):
    from interpretgan.pipeline.stages import Stages

    calls = []

    def stage(x):
        calls.append(x)
        return {"value": x * 2, "path": tmp_path / "a"}

    s = Stages(tmp_path)
    assert s.run("first", stage, 3) == {"value": 6, "path": tmp_path / "a"}
    again = Stages(tmp_path)  # a new process reading stages.json
    assert again.done("first") and not again.done("second")
    assert again.run("first", stage, 99) == {"value": 6, "path": str(tmp_path / "a")}
    assert calls == [3]
    with pytest.raises(ZeroDivisionError):
        again.run("second", lambda: 1 / 0)
    assert not Stages(tmp_path).done("second") and list(Stages(tmp_path).seconds()) == ["first"]


def test_each_stage_compiles_its_models_afresh(tmp_path):
    """Models of one class share their forward code, whose compilations count toward one recompile limit:
    without a fresh start per stage, a later stage's model would stay eager (the avg-pool SmallCNN's attacks
    did in a --compile reproduction)."""
    import torch._dynamo
    from torch import nn

    from interpretgan.pipeline.stages import Stages

    compiled = []

    def backend(graph, inputs):  # records each graph compiled, runs it as traced
        compiled.append(graph)
        return graph.forward

    class Net(nn.Module):
        def __init__(self, pool):
            super().__init__()
            self.pool = pool

        def forward(self, x):
            return self.pool(x) + 1

    def stage(pool):
        torch.compile(Net(pool), backend=backend)(torch.ones(1, 1, 4, 4))
        return len(compiled)

    s = Stages(tmp_path)
    with torch._dynamo.config.patch(recompile_limit=1):
        assert s.run("max", stage, nn.MaxPool2d(2)) == 1
        assert s.run("avg", stage, nn.AvgPool2d(2)) == 2  # compiled, not refused for the limit
        stage(nn.MaxPool2d(2))  # outside a stage the limit holds: this one stays eager
    assert len(compiled) == 2
    torch.compiler.reset()


def test_stages_refuse_to_reuse_a_stage_run_with_other_settings(tmp_path):
    from interpretgan.pipeline.stages import Stages

    s = Stages(tmp_path)
    assert s.run("train", lambda: 1, settings={"epochs": 2, "milestones": (1,)}) == 1
    # the same settings (a tuple reads back as a list) reuse the record; others are refused
    assert Stages(tmp_path).run("train", lambda: 2, settings={"epochs": 2, "milestones": [1]}) == 1
    with pytest.raises(RunError, match=r"stage 'train' .* other settings \(epochs\)"):
        Stages(tmp_path).run("train", lambda: 2, settings={"epochs": 3, "milestones": [1]})
    with pytest.raises(RunError, match="none were given"):
        Stages(tmp_path).run("train", lambda: 2)
    # a field added to the settings since, left at None, agrees with the record
    assert Stages(tmp_path).run("train", lambda: 2, settings={"epochs": 2, "milestones": [1], "new": None}) == 1
    # a record from before settings were recorded is reused whatever the settings
    assert s.run("old", lambda: 5) == 5 and Stages(tmp_path).run("old", lambda: 6, settings={"epochs": 1}) == 5
    # nested settings (a study's arms: each a whole training config) agree the same way: a field
    # added to the config since, left at None, resumes the folder; a changed one is refused
    arms = {"arms": {"max": {"epochs": 9, "lr": 0.02}}, "n_eval": 1000}
    assert s.run("study", lambda: 7, settings=arms) == 7
    grown = {"arms": {"max": {"epochs": 9, "lr": 0.02, "weights": None}}, "n_eval": 1000}
    assert Stages(tmp_path).run("study", lambda: 8, settings=grown) == 7
    with pytest.raises(RunError, match=r"stage 'study' .* other settings \(arms\)"):
        Stages(tmp_path).run("study", lambda: 8, settings={"arms": {"max": {"epochs": 9, "lr": 0.1}}, "n_eval": 1000})
