"""The training loop: learning, lr schedule, resume == uninterrupted, objectives."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from interpretgan.config import TrainConfig
from interpretgan.config.presets import resolve_train_config
from interpretgan.errors import ConfigError
from interpretgan.io import load_tensors, read_json
from interpretgan.pipeline.checkpoints import load_model
from interpretgan.pipeline.runs import Run


def _cfg(**kw) -> TrainConfig:
    base = dict(dataset="synthetic", model="tiny-test", image_size=16, epochs=3, batch_size=32, lr=0.05,
                model_kwargs={"dropout": 0.5},
                lr_milestones=[2], eval_batch_size=64, seed=0)
    base.update(kw)
    return TrainConfig(**base)


def _fit(cfg, tmp_path, data, name, **kw):
    from interpretgan.pipeline.train import fit

    run = Run.create(tmp_path, name, "train", cfg.to_dict())
    return run, fit(cfg, run, data=data, progress=False, **kw)


def test_natural_training_learns_and_follows_the_schedule(tmp_path, tiny_data):
    cfg = _cfg()
    run, res = _fit(cfg, tmp_path, tiny_data, "nat")
    assert res["clean_accuracy"] >= 0.9
    metrics = run.read_metrics()
    assert [m["epoch"] for m in metrics] == [0, 1, 2]
    assert [m["lr"] for m in metrics] == pytest.approx([0.05, 0.05, 0.005])
    assert read_json(run.path / "config.json")["kind"] == "train"
    model = load_model(run.path)
    assert not model.training and model.registry_name == "tiny-test"


def test_in_memory_training_writes_nothing_and_equals_the_run_folder(tmp_path, tiny_data, monkeypatch):
    """train_classifier without a store: the run folder's weights and results, and no file written."""
    from interpretgan.training import train_classifier

    cfg = _cfg(objective="trades+atta", eps=0.1, attack_step=0.05, attack_steps=2)
    run, stored = _fit(cfg, tmp_path / "runs", tiny_data, "stored")
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    res = train_classifier(cfg, data=tiny_data, progress=False)
    assert sorted(tmp_path.rglob("*")) == before
    model = res.pop("model")
    assert not model.training
    assert {k: v for k, v in res.items() if k != "train_seconds"} == {
        k: v for k, v in stored.items() if k != "train_seconds"
    }
    weights = load_tensors(run.ckpt_dir / "model.safetensors")
    for k, v in model.state_dict().items():
        assert torch.equal(v, weights[k]), k


@pytest.mark.parametrize("objective", ["natural", "trades+atta", "pgd-at"])
@pytest.mark.parametrize("augment", [False, True])
def test_resume_equals_uninterrupted(tmp_path, tiny_data, objective, augment):
    cfg = _cfg(objective=objective, augment=augment, eps=0.1, attack_step=0.05, attack_steps=2)
    full, _ = _fit(cfg, tmp_path, tiny_data, "full")
    part, res = _fit(cfg, tmp_path, tiny_data, "part", stop_after_epochs=1)
    assert res == {"interrupted_at_epoch": 1}
    from interpretgan.pipeline.train import fit

    fit(cfg, part, data=tiny_data, progress=False, resume=True)
    a = load_tensors(full.ckpt_dir / "model.safetensors")
    b = load_tensors(part.ckpt_dir / "model.safetensors")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    strip = lambda ms: [{k: v for k, v in m.items() if k not in ("seconds", "images_per_s")} for m in ms]  # noqa: E731
    assert strip(full.read_metrics()) == strip(part.read_metrics())


def test_atta_buffer_grows_by_one_step_per_epoch(tmp_path, tiny_data):
    from interpretgan.training import ATTA

    cfg = _cfg(objective="trades+atta", eps=0.3, attack_step=0.02, epochs=1)
    objective = ATTA(cfg, trades=True)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 4))
    x = tiny_data.train.x.float() / 255
    objective.setup(model, tiny_data.train.x, 0, torch.device("cpu"), 0)
    idx = torch.arange(len(x))
    y = tiny_data.train.y
    for epoch in range(3):
        objective.loss(model, x, y, idx, None)
        # one sign step of 0.02 from a start within 0.001-ish noise (clipping can only shrink it)
        assert objective.delta.abs().max() <= 0.02 * (epoch + 1) + 0.005
    assert objective.delta.abs().max() > 0.05


def _reference_inner(model, x, y, x_adv, eps, step, steps, kl):
    """The inner sign-gradient loop the objectives carried before they called attacks.PGD (kept to compare)."""
    model.eval()
    with torch.no_grad():
        p_nat = F.softmax(model(x), dim=1)
    proj = lambda v: torch.min(torch.max(v, x - eps), x + eps).clamp_(0.0, 1.0)  # noqa: E731
    x_adv = proj(x_adv)
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        logits = model(x_adv)
        inner = (F.kl_div(F.log_softmax(logits, dim=1), p_nat, reduction="sum") if kl
                 else F.cross_entropy(logits, y, reduction="sum"))
        (grad,) = torch.autograd.grad(inner, x_adv)
        x_adv = proj(x_adv.detach() + step * grad.sign())
    model.train()
    return x_adv.detach()


@pytest.mark.parametrize("objective, augment", [("trades+atta", False), ("trades+atta", True), ("atta", True),
                                                ("trades", False), ("pgd-at", False)])
def test_objectives_inner_step_is_the_library_pgd_and_unchanged(tiny_data, objective, augment):
    """ATTA's buffer write-back and TRADES' / PGD-AT's inner steps: the same tensors as the objectives' own
    loop gave before they called attacks.PGD, on a seeded batch."""
    from interpretgan.models import create_model
    from interpretgan.training import make_objective
    from interpretgan.training.augment import sample_crop_flip

    cfg = _cfg(objective=objective, eps=0.3, attack_step=0.05, attack_steps=3, augment=augment)
    torch.manual_seed(0)
    model = create_model("tiny-test", dropout=0.5).train()
    obj = make_objective(cfg)
    pad = 2 if augment else 0
    obj.setup(model, tiny_data.train.x, pad, torch.device("cpu"), 0)
    idx = torch.arange(0, 64, 2)
    x, y = tiny_data.train.x[idx].float() / 255, tiny_data.train.y[idx]
    aug = (
        sample_crop_flip(len(idx), *x.shape[1:], pad, torch.Generator().manual_seed(3), torch.device("cpu"))
        if pad
        else None
    )
    if aug is not None:
        x = aug.apply(x)
    captured = {}
    outer = obj._outer
    obj._outer = lambda m, xx, yy, x_adv: captured.setdefault("x_adv", x_adv) is not None and outer(m, xx, yy, x_adv)
    if "atta" in objective:
        before = obj.delta.clone()
        stored = before[idx]
        start = x + (aug.crop(stored) if aug is not None else stored)
    else:
        g = obj.generator.get_state()
        noise = (0.001 * torch.randn(x.shape, generator=obj.generator) if objective == "trades"
                 else cfg.eps * (2 * torch.rand(x.shape, generator=obj.generator) - 1))
        obj.generator.set_state(g)
        start = x + noise
    obj.loss(model, x, y, idx, aug)
    kl = objective.startswith("trades")
    want = _reference_inner(model, x, y, start, cfg.eps, cfg.attack_step, obj.steps, kl)
    assert model.training
    assert torch.equal(captured["x_adv"], want)
    if "atta" in objective:  # the buffer holds the new perturbation, written back through the crop/flip
        new = want - x
        if aug is not None:
            stored[aug.index] = new
            expected = stored
        else:
            expected = new
        assert torch.equal(obj.delta[idx], expected)
        untouched = torch.ones(len(before), dtype=torch.bool)
        untouched[idx] = False
        assert torch.equal(obj.delta[untouched], before[untouched])


def test_atta_buffer_resets_as_atta_code_does(tiny_data):
    """ATTA's code resets before its 1-based epochs k, 2k, ...: 0-based epochs k-1, 2k-1, ..."""
    from interpretgan.training import ATTA

    objective = ATTA(_cfg(objective="trades+atta", atta_reset=3), trades=True)
    objective.setup(None, tiny_data.train.x, 0, torch.device("cpu"), 0)
    reset = []
    for epoch in range(7):
        objective.delta.fill_(0.5)
        objective.on_epoch_start(epoch)
        reset.append(bool(objective.delta.abs().max() < 0.1))
    assert reset == [False, False, True, False, False, True, False]


def test_crop_flip_is_a_padded_crop_then_a_flip_per_example():
    from interpretgan.training.augment import sample_crop_flip

    x = torch.rand(16, 3, 6, 9)  # not square: rows and columns have their own ranges
    aug = sample_crop_flip(16, 3, 6, 9, 2, torch.Generator().manual_seed(0), torch.device("cpu"))
    out = aug.apply(x)
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    rows, cols = aug.index[2][:, 0, :, 0], aug.index[3][:, 0, 0, :]
    flipped, offsets = 0, set()
    for i in range(16):
        oy, ox = int(rows[i].min()), int(cols[i].min())
        offsets.add((oy, ox))
        crop = padded[i, :, oy:oy + 6, ox:ox + 9]
        flip = bool(cols[i, 0] > cols[i, -1])
        flipped += flip
        assert 0 <= oy <= 4 and 0 <= ox <= 4
        assert torch.equal(out[i], crop.flip(-1) if flip else crop), i
    assert 0 < flipped < 16 and any(oy != ox for oy, ox in offsets)  # coin flips; the axes drawn apart


def test_atta_writes_the_perturbation_back_through_the_images_crop_and_flip(tiny_data):
    """The image's transform is applied to its stored perturbation, and the new one is stored
    untransformed: read back through the same transform, it is exactly what the step produced."""
    from interpretgan.training import ATTA
    from interpretgan.training.augment import sample_crop_flip

    objective = ATTA(_cfg(objective="atta", eps=0.3, attack_step=0.05), trades=False)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 4))
    objective.setup(model, tiny_data.train.x, 2, torch.device("cpu"), 0)
    assert objective.delta.shape[-2:] == (20, 20)
    idx = torch.arange(10, 42)
    aug = sample_crop_flip(len(idx), 1, 16, 16, 2, torch.Generator().manual_seed(1), torch.device("cpu"))
    x, y = aug.apply(tiny_data.train.x[idx].float() / 255), tiny_data.train.y[idx]
    before = objective.delta.clone()
    step = objective._attack(model, x, y, x + aug.crop(before[idx]))  # the attack projects its start
    objective.loss(model, x, y, idx, aug)
    assert torch.allclose(aug.crop(objective.delta[idx]), step - x, atol=1e-6)
    untouched = torch.ones(len(before), dtype=torch.bool)
    untouched[idx] = False
    assert torch.equal(objective.delta[untouched], before[untouched])  # other examples keep theirs


@pytest.mark.parametrize("objective", ["trades+atta", "trades", "pgd-at", "atta"])
def test_inner_loss_can_be_atta_codes_cross_entropy(tiny_data, objective):
    from interpretgan.training.objectives import make_objective

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 4))
    x, y = tiny_data.train.x[:64].float() / 255, tiny_data.train.y[:64]
    start = (x + 0.05).clamp(0, 1)
    steps = {}
    own = "kl" if "trades" in objective else "ce"  # the objective's own inner loss
    for inner in (None, "kl", "ce"):
        obj = make_objective(_cfg(objective=objective, eps=0.1, attack_step=0.02, attack_steps=1, inner_loss=inner))
        steps[inner] = obj._attack(model, x, y, start)
        assert obj.inner_kl == ((inner or own) == "kl")
    assert torch.equal(steps[None], steps[own]) and not torch.equal(steps["kl"], steps["ce"])
    ce = start.requires_grad_(True)
    (grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(model(ce), y, reduction="sum"), ce)
    expected = torch.min(torch.max(start.detach() + 0.02 * grad.sign(), x - 0.1), x + 0.1).clamp(0, 1)
    assert torch.equal(steps["ce"], expected)


@pytest.mark.parametrize("objective", ["trades+atta", "trades"])
def test_kl_target_separate_is_a_second_forward_pass_under_its_own_dropout_mask(tiny_data, objective):
    from interpretgan.training.objectives import make_objective

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 64), torch.nn.ReLU(), torch.nn.Dropout(0.5),
                                torch.nn.Linear(64, 4)).train()
    x, y = tiny_data.train.x[:64].float() / 255, tiny_data.train.y[:64]
    x_adv = (x + 0.05).clamp(0, 1)

    def outer(kl_target, seed):
        obj = make_objective(_cfg(objective=objective, kl_target=kl_target))
        torch.manual_seed(seed)
        return obj._outer(model, x, y, x_adv)[1]

    def expected(seed, separate):  # TRADES' trades_loss: CE forward, x_adv forward, then (separate) x again
        torch.manual_seed(seed)
        logits = model(x)
        log_p_adv = F.log_softmax(model(x_adv), dim=1)
        target = model(x) if separate else logits
        return F.kl_div(log_p_adv, F.softmax(target, dim=1), reduction="sum") / len(x)

    for kl_target in ("shared", "separate"):
        assert torch.allclose(outer(kl_target, 1)["loss_rob"], expected(1, kl_target == "separate"))
    assert not torch.allclose(outer("shared", 1)["loss_rob"], outer("separate", 1)["loss_rob"])
    model.eval()  # without dropout the two targets are the same forward pass
    assert torch.allclose(outer("shared", 1)["loss_rob"], outer("separate", 2)["loss_rob"])
    with pytest.raises(ConfigError, match="--kl-target applies to the TRADES objectives only"):
        resolve_train_config("mnist", "pgd-at", "cpu", {"kl_target": "separate"})
    with pytest.raises(ConfigError, match="--kl-target must be"):
        resolve_train_config("mnist", objective, "cpu", {"kl_target": "fresh"})


def test_presets_resolve_and_validate():
    paper = resolve_train_config("mnist", "natural", "paper")
    assert (paper.epochs, paper.lr, paper.lr_milestones, paper.batch_size) == (10, 0.01, [5], 128)
    adv = resolve_train_config("mnist", "trades+atta", "paper")
    # ATTA's code: lr x0.1 from its (1-based) epoch 55, i.e. 0-based 54; TRADES' 40 inner steps
    assert (adv.epochs, adv.lr_milestones, adv.eps, adv.attack_step, adv.attack_steps, adv.beta) == (
        60, [54], 0.3, 0.01, 40, 6.0)
    # The shortened schedule's ATTA step lets the stored perturbation reach eps within half the
    # epochs, leaving the rest (the lr drop included) at the full radius.
    adv_cpu = resolve_train_config("mnist", "trades+atta", "cpu")
    assert adv_cpu.attack_step * adv_cpu.epochs / 2 >= adv_cpu.eps - 1e-9
    assert adv_cpu.attack_step * adv_cpu.attack_steps >= adv_cpu.eps
    assert adv_cpu.lr_milestones[0] > adv_cpu.eps / adv_cpu.attack_step
    cifar = resolve_train_config("cifar10", "trades+atta", "paper", {"model": "wrn34_10"})
    assert (cifar.epochs, cifar.batch_size, cifar.lr, cifar.weight_decay, cifar.lr_milestones, cifar.atta_reset) == (
        38, 64, 0.1, 2e-4, [29, 35], 10)
    assert resolve_train_config("mnist", "natural", "cpu", {"epochs": 2}).epochs == 2
    with pytest.raises(ConfigError, match="unknown preset"):
        resolve_train_config("mnist", "natural", "fast")
    with pytest.raises(ConfigError, match="epochs"):
        resolve_train_config("mnist", "natural", "cpu", {"epochs": 0})
    with pytest.raises(ConfigError, match="unknown objective"):
        resolve_train_config("mnist", "madry", "cpu")
    with pytest.raises(ConfigError, match="--inner-loss"):
        resolve_train_config("mnist", "trades", "cpu", {"inner_loss": "mse"})
    with pytest.raises(ConfigError, match="option beta must be >= 0"):
        resolve_train_config("mnist", "trades", "cpu", {"beta": -1.0})
    with pytest.raises(ConfigError, match="adversarial objectives only"):
        resolve_train_config("mnist", "natural", "cpu", {"inner_loss": "ce"})


def test_resume_state_carries_its_weights_and_a_fresh_start_drops_stale_records(tmp_path, tiny_data):
    from interpretgan.io import load_state
    from interpretgan.pipeline.train import fit

    cfg = _cfg(epochs=2)
    run, _ = _fit(cfg, tmp_path, tiny_data, "run", stop_after_epochs=1)
    state, weights = load_state(run.ckpt_dir / "state.pt"), load_tensors(run.ckpt_dir / "model.safetensors")
    assert state["epochs_done"] == 1 and all(torch.equal(state["model"][k], weights[k]) for k in weights)
    # weights written after the state (a crash between the two writes) do not leak into the resume
    full, _ = _fit(cfg, tmp_path, tiny_data, "full")
    (run.ckpt_dir / "model.safetensors").write_bytes((full.ckpt_dir / "model.safetensors").read_bytes())
    fit(cfg, run, data=tiny_data, progress=False, resume=True)
    a, b = load_tensors(full.ckpt_dir / "model.safetensors"), load_tensors(run.ckpt_dir / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # resuming with no checkpoint at all starts over without keeping the old epoch records
    (run.ckpt_dir / "state.pt").unlink()
    fit(cfg, run, data=tiny_data, progress=False, resume=True)
    assert [m["epoch"] for m in run.read_metrics() if "epoch" in m] == [0, 1]


def test_fit_in_resumes_skips_finished_and_refuses_other_settings(tmp_path, tiny_data):
    from interpretgan.errors import RunError
    from interpretgan.pipeline.train import fit, fit_in

    cfg = _cfg()
    full, _ = _fit(cfg, tmp_path / "ref", tiny_data, "full")
    # An interrupted run in the folder is continued to the same weights as an uninterrupted one.
    part = Run.create(tmp_path / "jobs", "job", "train", cfg.to_dict())
    fit(cfg, part, data=tiny_data, progress=False, stop_after_epochs=1)
    run = fit_in(tmp_path / "jobs", "job", cfg, data=tiny_data, progress=False)
    assert run.path == part.path
    a, b = load_tensors(full.ckpt_dir / "model.safetensors"), load_tensors(run.ckpt_dir / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # A finished run is returned untouched.
    stamp = (run.ckpt_dir / "model.safetensors").stat().st_mtime_ns
    assert fit_in(tmp_path / "jobs", "job", cfg, data=tiny_data, progress=False).path == run.path
    assert (run.ckpt_dir / "model.safetensors").stat().st_mtime_ns == stamp
    with pytest.raises(RunError, match="other settings \\(lr\\)"):
        fit_in(tmp_path / "jobs", "job", _cfg(lr=0.1), data=tiny_data, progress=False)


def test_bf16_and_channels_last_training_stay_within_the_seed_spread(tmp_path):
    """--precision bf16 and --channels-last change the arithmetic, not the result: on the shipped digits, after two
    epochs, each differs from the fp32 run of the same seed by no more than fp32 runs of three seeds differ among
    themselves; the weights stay float32 and the run resumes from its checkpoint as an fp32 run would."""
    from interpretgan.training import train_classifier

    base = {"n_train": 2000, "n_test": 500, "epochs": 2, "lr": 0.05}

    def accuracy(**options):
        cfg = resolve_train_config("mnist-sample", "natural", "smoke", {**base, **options})
        res = train_classifier(cfg, progress=False)
        assert all(p.dtype == torch.float32 for p in res["model"].parameters())
        return res["clean_accuracy"]

    fp32 = [accuracy(seed=s) for s in (0, 1, 2)]
    spread = max(fp32) - min(fp32)
    assert min(fp32) > 0.5 and spread > 0  # learning, and seeds that differ
    for options in ({"precision": "bf16"}, {"channels_last": True}, {"precision": "bf16", "channels_last": True}):
        assert abs(accuracy(**options) - fp32[0]) <= spread, options
    with pytest.raises(ConfigError, match="^--precision must be one of fp32, bf16, got 'fp16'$"):
        resolve_train_config("mnist-sample", "natural", "smoke", {"precision": "fp16"})


def test_compiled_training_gives_the_eager_weights(tiny_data):
    """--compile runs the steps through torch.compile: the same arithmetic up to float rounding, and the
    weights come back under the model's own names (no compile wrapper's prefix), as checkpoints store them."""
    from interpretgan.training import train_classifier

    cfg = _cfg(epochs=1, model_kwargs={"dropout": 0.0})  # no dropout: the masks of the two runs may differ
    eager = train_classifier(cfg, data=tiny_data, progress=False)["model"].state_dict()
    compiled = train_classifier(dataclasses.replace(cfg, compile=True), data=tiny_data, progress=False)["model"]
    assert compiled.state_dict().keys() == eager.keys()
    assert max(float((compiled.state_dict()[k] - v).abs().max()) for k, v in eager.items()) < 1e-5
