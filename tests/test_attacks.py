"""Attacks (paper Section 2.1, 4.1, Appendix C/D): threat-model bounds, step rules, model hygiene,
resumable evaluation, label transitions and an independent cross-check against captum.

Everything runs on a tiny CNN trained here for a few hundred steps on a learnable synthetic
problem (a bright blob whose quadrant is the class), so that attacks have something to break.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import K, TinyCNN, make_blobs  # shared with test_autoattack; `trained` is conftest's fixture
from safetensors import safe_open
from torch import nn

from interpretgan.attacks import (
    ATTACKS,
    FGSM,
    MPGD,
    PGD,
    Attack,
    evaluate_attacks,
    load_adversarial_set,
    make_attack,
)
from interpretgan.attacks.arithmetic import AttackForward, input_module
from interpretgan.attacks.metrics import summarize_predictions
from interpretgan.baselines import crosscheck_with_captum
from interpretgan.errors import ConfigError, RunError


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: these models are tiny, and two threads on a busy 2-core machine
    oversubscribe it (measured: 14 s with one thread against 200 s with two under load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)



@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    return make_blobs(256, seed=3)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def build(name: str, eps: float, targeted: bool = False, seed: int = 0, **kw) -> Attack:
    if name == "fgsm":
        return make_attack("fgsm", eps=eps, targeted=targeted, **kw)
    if name in ("apgd-t", "autoattack"):  # untargeted by design; targeted=True is refused (test_autoattack)
        assert not targeted
        if name == "autoattack":
            kw.setdefault("queries", 20)  # Square's 5,000 default is for real evaluations
        return make_attack(
            name, eps=eps, steps=kw.pop("steps", 10), generator=torch.Generator().manual_seed(seed), **kw
        )
    return make_attack(name, eps=eps, steps=kw.pop("steps", 10), targeted=targeted,
                       generator=torch.Generator().manual_seed(seed), **kw)


def reference_pgd(model, x, y, eps, alpha, steps, start=None, momentum=False):
    """The textbook loops, written plainly: PGD, or ATTA's momentum PGD (g <- g + grad)."""
    x_adv = x.clone() if start is None else torch.clamp(x + start, 0, 1)
    g = torch.zeros_like(x)
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        grad = torch.autograd.grad(F.cross_entropy(model(x_adv), y, reduction="sum"), x_adv)[0]
        g = g + grad
        d = torch.sign(g if momentum else grad)
        x_adv = torch.min(torch.max(x_adv.detach() + alpha * d, x - eps), x + eps).clamp(0, 1)
    return x_adv


# --- the threat model --------------------------------------------------------------------------


def test_trained_model_is_accurate(trained, data):
    assert accuracy(trained, *data) > 0.95


@pytest.mark.parametrize("targeted", [False, True])
@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_stays_in_the_ball_and_the_pixel_range(trained, data, name, targeted):
    if targeted and not ATTACKS[name].targetable:
        pytest.skip(f"{name} is untargeted by design")
    x, y = data
    eps = 0.1
    target = (y + 1) % K if targeted else y
    x_adv = build(name, eps, targeted=targeted)(trained, x, target)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and x_adv.device == x.device
    assert not x_adv.requires_grad
    assert float((x_adv - x).abs().max()) <= eps + 1e-6
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    assert float((x_adv - x).abs().max()) > 0.5 * eps  # it did move


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_eps_zero_is_the_identity(trained, data, name):
    x, y = data
    x_adv = build(name, 0.0)(trained, x, y)
    assert torch.equal(x_adv, x)
    assert accuracy(trained, x_adv, y) == accuracy(trained, x, y)


def test_pgd_matches_the_textbook_loop_bitwise(trained, data):
    x, y = data
    eps, alpha, steps = 0.15, 0.02, 7
    start = torch.rand(x.shape, generator=torch.Generator().manual_seed(5)) * (2 * eps) - eps
    ours = PGD(eps, alpha, steps, random_start=True, generator=torch.Generator().manual_seed(5))(trained, x, y)
    assert torch.equal(ours, reference_pgd(trained, x, y, eps, alpha, steps, start=start))


def test_a_given_start_is_projected_then_stepped_from(trained, data):
    """``start`` (ATTA's stored perturbation, TRADES' start): projected onto the box, then the same loop."""
    x, y = data[0][:16], data[1][:16]
    eps, alpha = 0.1, 0.02
    far = x + 0.5 * torch.sign(torch.randn_like(x))  # outside the ball and the pixel range: projected first
    ours = PGD(eps, alpha, 3, random_start=False)(trained, x, y, start=far)
    want = reference_pgd(trained, x, y, eps, alpha, 3,
                         start=torch.min(torch.max(far, x - eps), x + eps).clamp(0, 1) - x)
    assert torch.equal(ours, want)
    assert (ours - x).abs().max() <= eps + 1e-6


def test_soft_targets_take_a_loss_of_probabilities_but_no_restarts(trained, data):
    from interpretgan.devices import eval_mode

    x = data[0][:8]
    kl = lambda logits, q: F.kl_div(F.log_softmax(logits, dim=1), q, reduction="sum")  # noqa: E731
    start = (x + 0.001 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    with eval_mode(trained), torch.no_grad():
        p = F.softmax(trained(x), dim=1)
    x_adv = PGD(0.1, 0.02, 2, random_start=False, loss=kl)(trained, x, p, start=start)  # TRADES' inner step
    want = start
    with eval_mode(trained):
        for _ in range(2):  # the plain loop on the KL term
            want = want.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(kl(trained(want), p), want)
            want = torch.min(torch.max(want.detach() + 0.02 * grad.sign(), x - 0.1), x + 0.1).clamp(0, 1)
    assert torch.equal(x_adv, want) and not torch.equal(x_adv, start)
    with pytest.raises(ValueError, match="soft targets"):
        PGD(0.1, 0.02, 2, random_start=True, restarts=2, loss=kl)(trained, x, p)
    with pytest.raises(ConfigError, match="chooses its own start"):
        make_attack("apgd", eps=0.1, steps=2)(trained, x, data[1][:8], start=x)


def test_mpgd_is_the_atta_momentum_rule(trained, data):
    x, y = data
    eps, alpha, steps = 0.15, 0.02, 7
    ours = MPGD(eps, alpha, steps, random_start=False)(trained, x, y)
    assert torch.equal(ours, reference_pgd(trained, x, y, eps, alpha, steps, momentum=True))
    assert not torch.equal(ours, PGD(eps, alpha, steps, random_start=False)(trained, x, y))


@pytest.mark.parametrize("targeted", [False, True])
def test_fgsm_is_one_pgd_step_and_mpgd_one_step_is_pgd(trained, data, targeted):
    x, y = data
    eps = 0.12
    pgd1 = PGD(eps, alpha=eps, steps=1, random_start=False, targeted=targeted)(trained, x, y)
    assert torch.equal(FGSM(eps, targeted=targeted)(trained, x, y), pgd1)
    assert torch.equal(MPGD(eps, alpha=eps, steps=1, random_start=False, targeted=targeted)(trained, x, y), pgd1)


def test_accuracy_falls_with_steps_and_with_eps(trained, data):
    x, y = data
    clean = accuracy(trained, x, y)
    by_steps = [
        accuracy(
            trained, PGD(0.2, 0.05, s, random_start=True, generator=torch.Generator().manual_seed(0))(trained, x, y), y
        )
        for s in (1, 10, 40)
    ]
    assert by_steps[0] >= by_steps[1] >= by_steps[2]
    assert by_steps[0] > by_steps[2]
    by_eps = [
        accuracy(
            trained, make_attack("pgd", eps=e, steps=10, generator=torch.Generator().manual_seed(0))(trained, x, y), y
        )
        for e in (0.0, 0.05, 0.1, 0.2, 0.3)
    ]
    assert by_eps[0] == clean
    assert all(a >= b for a, b in zip(by_eps, by_eps[1:])), by_eps
    assert clean > 0.95 and by_eps[-1] < 0.2, by_eps  # the paper's eps=0.3 breaks a natural model


def test_random_start_follows_the_generator(trained, data):
    x, y = data
    a = build("pgd", 0.1, seed=7)(trained, x, y)
    b = build("pgd", 0.1, seed=7)(trained, x, y)
    c = build("pgd", 0.1, seed=8)(trained, x, y)
    assert torch.equal(a, b) and not torch.equal(a, c)


def _fooled(model, x_adv, y):
    with torch.no_grad():
        return model(x_adv).argmax(1) != y


@pytest.mark.parametrize("name", ["pgd", "mpgd"])
def test_restarts_only_add_successes(trained, data, name):
    x, y = data
    x, y = x[:128], y[:128]
    eps, steps = 0.2, 5  # single runs fool about half: a fresh start can break more
    one = build(name, eps, steps=steps, seed=4)(trained, x, y)
    explicit = build(name, eps, steps=steps, seed=4, restarts=1)(trained, x, y)
    five = build(name, eps, steps=steps, seed=4, restarts=5)(trained, x, y)
    assert torch.equal(one, explicit)
    assert float((five - x).abs().max()) <= eps + 1e-6 and float(five.min()) >= 0 and float(five.max()) <= 1
    first, best = _fooled(trained, one, y), _fooled(trained, five, y)
    assert torch.equal(five[first], one[first])  # the first run is the restarts=1 attack, and kept where it won
    assert bool(best[first].all())
    assert int(best.sum()) >= int(first.sum()) + 5  # later restarts break examples the first run missed
    assert int(best.sum()) < len(y)  # and the attack is still weak enough for that to mean something


def test_restarts_settings():
    assert "restarts" not in repr(make_attack("pgd", eps=0.3))  # fingerprints of sets saved before stay valid
    assert "restarts=3" in repr(make_attack("pgd", eps=0.3, restarts=3))
    for kwargs, needle in [({"name": "pgd", "restarts": 0}, "restarts"),
                           ({"name": "pgd", "restarts": 2.0}, "restarts"),
                           ({"name": "pgd", "restarts": 3, "random_start": False}, "random_start"),
                           ({"name": "fgsm", "restarts": 3}, "fgsm")]:
        with pytest.raises(ConfigError) as err:
            make_attack(eps=0.3, **kwargs)
        assert needle in _one_sentence(err)


def test_cw_margin_loss(trained, data):
    from interpretgan.attacks import LOSSES

    logits = torch.tensor([[2.0, 5.0, -1.0], [0.5, 0.0, 3.0]])
    y = torch.tensor([1, 0])
    assert float(LOSSES["cw"](logits, y)) == pytest.approx((2.0 - 5.0) + (3.0 - 0.5))
    x, y = data
    attack = make_attack("pgd", eps=0.2, steps=10, loss="cw", generator=torch.Generator().manual_seed(0))
    assert "loss='cw'" in repr(attack)
    x_adv = attack(trained, x, y)
    assert float((x_adv - x).abs().max()) <= 0.2 + 1e-6
    assert accuracy(trained, x_adv, y) < accuracy(trained, x, y) - 0.5
    with torch.no_grad():  # the summed margin it climbs rose
        rose = LOSSES["cw"](trained(x_adv), y) - LOSSES["cw"](trained(x), y)
    assert float(rose) > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_generator_on_another_device_is_refused(trained, data):
    x, y = data
    attack = PGD(0.1, 0.01, 2, random_start=True, generator=torch.Generator(device="cuda"))
    with pytest.raises(ValueError, match="generator"):
        attack(trained, x, y)


def test_targeted_attack_raises_the_target_probability(trained, data):
    x, y = data
    target = (y + 1) % K
    x_adv = make_attack("pgd", eps=0.2, steps=20, targeted=True, generator=torch.Generator().manual_seed(0))(
        trained, x, target
    )
    with torch.no_grad():
        before = F.softmax(trained(x), 1).gather(1, target[:, None]).squeeze(1)
        after = F.softmax(trained(x_adv), 1).gather(1, target[:, None]).squeeze(1)
    assert float((after > before).float().mean()) > 0.95
    assert float(after.mean()) > float(before.mean()) + 0.3


def test_bad_inputs_are_refused(trained, data):
    x, y = data
    attack = PGD(0.1, 0.01, 2, random_start=False)
    with pytest.raises(ValueError, match=r"\[0.0, 1.0\]"):
        attack(trained, x * 255, y)
    with pytest.raises(ValueError, match="floating"):
        attack(trained, (x * 255).to(torch.uint8), y)
    with pytest.raises(ValueError, match="labels"):
        attack(trained, x, y[:3])
    with pytest.raises(ValueError, match="integer class indices"):
        attack(trained, x, y.float())


# --- model hygiene -----------------------------------------------------------------------------


def _flags(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


@pytest.mark.parametrize("mode", ["train", "eval", "mixed"])
def test_model_modes_are_restored_per_module(trained, data, mode):
    x, y = data
    model = TinyCNN()
    model.load_state_dict(trained.state_dict())
    model.train(mode != "eval")
    if mode == "mixed":
        model.features[1].eval()  # a frozen BatchNorm inside a training model
        model.head.train()
    before = _flags(model)
    stats = model.features[1].running_mean.clone()
    x_adv = build("pgd", 0.1)(model, x, y)
    assert _flags(model) == before
    # the attack ran in eval mode: BatchNorm statistics untouched, Dropout off (same as eval model)
    assert torch.equal(model.features[1].running_mean, stats)
    assert torch.equal(x_adv, build("pgd", 0.1)(trained, x, y))


def test_parameter_grads_and_flags_untouched(trained, data):
    x, y = data
    model = TinyCNN()
    model.load_state_dict(trained.state_dict())
    params = list(model.parameters())
    params[0].requires_grad_(False)
    params[2].grad = torch.randn_like(params[2])
    grads = {i: None if p.grad is None else p.grad.clone() for i, p in enumerate(params)}
    flags = [p.requires_grad for p in params]
    devices = [p.device for p in params]
    for name in sorted(ATTACKS):
        build(name, 0.1)(model, x, y)
    for i, p in enumerate(params):
        assert p.requires_grad == flags[i] and p.device == devices[i]
        if grads[i] is None:
            assert p.grad is None
        else:
            assert torch.equal(p.grad, grads[i])


def test_runs_under_no_grad(trained, data):
    x, y = data
    with torch.no_grad():
        x_adv = build("pgd", 0.1)(trained, x, y)
    assert torch.equal(x_adv, build("pgd", 0.1)(trained, x, y))


# --- configuration -----------------------------------------------------------------------------


def _one_sentence(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg and msg.count(". ") == 0 and len(msg) < 200, msg
    return msg


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"name": "cw", "eps": 0.1}, "pgd, mpgd, fgsm"),
        ({"name": "pgd", "eps": -0.1}, "eps"),
        ({"name": "pgd", "eps": float("nan")}, "eps"),
        ({"name": "pgd", "eps": 0.1, "steps": 0}, "steps"),
        ({"name": "mpgd", "eps": 0.1, "steps": 2.5}, "steps"),
        ({"name": "pgd", "eps": 0.1, "alpha": 0.0}, "alpha"),
        ({"name": "pgd", "eps": 0.1, "alpha": -0.01}, "alpha"),
        ({"name": "fgsm", "eps": 0.1, "steps": 10}, "fgsm"),
        ({"name": "pgd", "eps": 0.1, "loss": "hinge"}, "ce"),
        ({"name": "pgd", "eps": 0.1, "clip_min": 1.0, "clip_max": 0.0}, "clip_min"),
        ({"name": "pgd", "eps": 0.1, "momentum": 0.9}, "momentum"),
    ],
)
def test_bad_settings_raise_one_sentence(kwargs, needle):
    with pytest.raises(ConfigError) as err:
        make_attack(**kwargs)
    assert needle in _one_sentence(err)


def test_make_attack_defaults():
    pgd = make_attack("pgd", eps=0.3)
    assert type(pgd) is PGD and pgd.steps == 40 and pgd.random_start and pgd.alpha == pytest.approx(2.5 * 0.3 / 40)
    mpgd = make_attack("mpgd", eps=8 / 255, steps=20, alpha=2 / 255, random_start=False)
    assert type(mpgd) is MPGD and (mpgd.steps, mpgd.alpha, mpgd.random_start) == (20, 2 / 255, False)
    fgsm = make_attack("fgsm", eps=0.3)
    assert type(fgsm) is FGSM and (fgsm.steps, fgsm.alpha, fgsm.random_start) == (1, 0.3, False)
    assert set(ATTACKS) == {"pgd", "mpgd", "fgsm", "apgd", "apgd-t", "square", "autoattack"}


# --- evaluation --------------------------------------------------------------------------------


class Interrupted(Exception):
    pass


class Interrupting(nn.Module):
    """The wrapped model, raising after ``budget`` forward passes (a kill in the middle of a run)."""

    def __init__(self, model: nn.Module, budget: int) -> None:
        super().__init__()
        self.model, self.budget, self.calls = model, budget, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls > self.budget:
            raise Interrupted
        return self.model(x)


def _attacks() -> dict[str, Attack]:
    return {"pgd": make_attack("pgd", eps=0.25, steps=5), "fgsm": make_attack("fgsm", eps=0.25),
            "mpgd": make_attack("mpgd", eps=0.2, steps=5)}


def test_evaluation_resumes_bitwise(trained, data, tmp_path):
    x, y = data
    x8 = (x * 255).round().to(torch.uint8)
    kw = dict(batch_size=64, device="cpu", num_classes=K, seed=3)
    whole = evaluate_attacks(trained, x8, y, _attacks(), work_dir=tmp_path / "whole", **kw)
    # 4 clean batches, then 4 chunks x (5 steps + 1 prediction) of pgd: stop inside the 3rd chunk of pgd
    stopped = Interrupting(trained, budget=4 + 2 * 6 + 3)
    with pytest.raises(Interrupted):
        evaluate_attacks(stopped, x8, y, _attacks(), work_dir=tmp_path / "resumed", **kw)
    assert sorted(p.name for p in (tmp_path / "resumed" / "pgd.chunks").glob("*.safetensors")) == [
        "000000.safetensors",
        "000001.safetensors",
    ]
    resumed = evaluate_attacks(trained, x8, y, _attacks(), work_dir=tmp_path / "resumed", **kw)
    for name in _attacks():
        a, b = whole["adversarial"][name], resumed["adversarial"][name]
        assert all(torch.equal(u, v) for u, v in zip(a, b))
        assert not (tmp_path / "resumed" / f"{name}.chunks").exists()
    def summary(out):
        return json.dumps({k: v for k, v in out.items() if k not in ("adversarial", "files")})

    assert summary(whole) == summary(resumed)
    # an uninterrupted run without a work_dir gives the same sets too
    plain = evaluate_attacks(trained, x8, y, _attacks(), **kw)
    assert all(torch.equal(u, v) for u, v in zip(plain["adversarial"]["pgd"], whole["adversarial"]["pgd"]))

    # a finished attack is read back, not recomputed: only the clean pass runs
    counting = Interrupting(trained, budget=4)
    again = evaluate_attacks(counting, x8, y, _attacks(), work_dir=tmp_path / "whole", **kw)
    assert counting.calls == 4 and again["attacks"] == whole["attacks"]
    # ... but not for other settings
    with pytest.raises(RunError, match="pgd.safetensors"):
        evaluate_attacks(
            trained, x8, y, {"pgd": make_attack("pgd", eps=0.2, steps=5)}, work_dir=tmp_path / "whole", **kw
        )
    with pytest.raises(RunError):
        evaluate_attacks(trained, x8, y, _attacks(), work_dir=tmp_path / "whole", **{**kw, "seed": 4})
    # ... nor for other weights (a run trained further since): the model is fingerprinted
    other = copy.deepcopy(trained)
    with torch.no_grad():
        next(other.parameters()).add_(1e-3)
    with pytest.raises(RunError, match="other weights"):
        evaluate_attacks(other, x8, y, _attacks(), work_dir=tmp_path / "whole", **kw)
    # a set saved before sets recorded their model is refused, with that reason
    from safetensors.torch import load_file, save_file

    path = tmp_path / "whole" / "fgsm.safetensors"
    with safe_open(str(path), framework="pt") as f:
        meta = {k: v for k, v in f.metadata().items() if k != "model"}
    save_file(load_file(str(path)), str(path), metadata=meta)
    with pytest.raises(RunError, match="before adversarial sets recorded the model"):
        evaluate_attacks(trained, x8, y, {"fgsm": _attacks()["fgsm"]}, work_dir=tmp_path / "whole", **kw)


def test_evaluation_numbers_and_saved_sets(trained, data, tmp_path):
    x, y = data
    out = evaluate_attacks(
        trained, x, y, _attacks(), batch_size=100, device=torch.device("cpu"), num_classes=K, work_dir=tmp_path
    )
    counts = torch.bincount(y, minlength=K).tolist()
    assert out["n"] == len(y) and out["clean_accuracy"] == accuracy(trained, x, y)
    for name, res in out["attacks"].items():
        assert [sum(row) for row in res["transition"]] == counts
        assert res["accuracy"] == pytest.approx(sum(res["transition"][c][c] for c in range(K)) / len(y))
        assert out["worst_case"]["accuracy"] <= res["accuracy"]
        adv = load_adversarial_set(out["files"][name])
        assert adv.x_adv.dtype == torch.float32 and adv.x_adv.shape == x.shape
        assert torch.equal(adv.index, torch.arange(len(y))) and torch.equal(adv.y, y)
        assert torch.equal(adv.x_adv, out["adversarial"][name].x_adv)
        # float32 storage: evaluating the saved set again gives exactly the saved predictions
        with torch.no_grad():
            assert torch.equal(trained(adv.x_adv).argmax(1), adv.pred)
        with safe_open(out["files"][name], framework="pt") as f:
            assert set(f.keys()) == {"x_adv", "y", "pred", "index"}
    assert out["attacks"]["pgd"]["accuracy"] < out["clean_accuracy"]
    robust = torch.stack([out["adversarial"][n].pred == y for n in out["attacks"]]).all(0)
    assert out["worst_case"]["accuracy"] == float(robust.float().mean())


def test_summary_of_known_predictions():
    y = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2])
    pred = torch.tensor([0, 1, 2, 1, 1, 0, 0, 2, 1])
    clean = torch.tensor([True, True, True, False, True, True, True, True, False])
    r = summarize_predictions("pgd", y, pred, clean, num_classes=4)
    assert r.transition == [[1, 2, 1, 0], [1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0]]
    assert r.accuracy == 3 / 9 and r.n == 9
    assert r.per_class_accuracy == [1 / 4, 1 / 2, 1 / 3, None]
    # clean-correct: indices 0,1,2,4,5,6,7 -> flipped by the attack: 1,2,5,6
    assert r.success_rate == 4 / 7
    assert r.most_frequent_wrong == {
        0: {"label": 1, "count": 2, "fraction": 2 / 4, "fraction_of_wrong": 2 / 3},
        1: {"label": 0, "count": 1, "fraction": 1 / 2, "fraction_of_wrong": 1.0},
        2: {"label": 0, "count": 1, "fraction": 1 / 3, "fraction_of_wrong": 1 / 2},  # tie 0/1: smallest
    }


def test_evaluation_refuses_bad_arguments(trained, data):
    x, y = data
    kw = dict(batch_size=64, device="cpu", num_classes=K)
    with pytest.raises(ConfigError, match="targeted"):
        evaluate_attacks(trained, x, y, {"t": make_attack("pgd", eps=0.1, targeted=True)}, **kw)
    with pytest.raises(ConfigError, match="file"):
        evaluate_attacks(trained, x, y, {"../pgd": make_attack("pgd", eps=0.1)}, **kw)
    with pytest.raises(ValueError, match="labels"):
        evaluate_attacks(trained, x, y + K, {"pgd": make_attack("pgd", eps=0.1)}, **kw)
    with pytest.raises(ValueError, match="logits"):
        evaluate_attacks(trained, x, y, {"pgd": make_attack("pgd", eps=0.1)}, **{**kw, "num_classes": 10})


def test_transition_heat_map(tmp_path):
    from interpretgan.report.figures import plot_transition_matrix

    matrix = [[50, 3, 0], [10, 0, 30], [0, 0, 0]]
    path = plot_transition_matrix(matrix, ["a", "b", "c"], tmp_path / "fig" / "t.png", "PGD-40")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["t.png"]  # no temporary left
    with pytest.raises(ConfigError, match="3 class names"):
        plot_transition_matrix([[1, 2], [3, 4]], ["a", "b", "c"], tmp_path / "u.png", "x")


# --- independent implementation ----------------------------------------------------------------


def test_agrees_with_captum_pgd(trained, data):
    x, y = data
    out = crosscheck_with_captum(trained, x, y, eps=0.2, alpha=0.02, steps=20)
    assert out["ours"] < accuracy(trained, x, y) - 0.1  # the attack bites
    assert abs(out["diff_points"]) <= 0.5, out
    # per example, not only on average: the same adversarial images (float rounding apart)
    assert out["same_prediction"] == 1.0 and out["max_abs_diff"] < 1e-5, out


def test_captum_is_imported_lazily():
    code = ("import sys, interpretgan.attacks, interpretgan.cli, interpretgan.diagnose, interpretgan.explain, "
            "interpretgan.report.figures; print('captum' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _output_dtypes(model: nn.Module, x: torch.Tensor, forward: nn.Module) -> dict[str, torch.dtype]:
    """The output dtype of each convolution and linear layer of ``model`` when ``forward`` runs on ``x``."""
    seen: dict[str, torch.dtype] = {}

    def record(name: str):
        def hook(_module: nn.Module, _args: tuple, out: torch.Tensor) -> None:
            seen.setdefault(name, out.dtype)
        return hook

    hooks = [m.register_forward_hook(record(name)) for name, m in model.named_modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            forward(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


def test_a_bf16_attack_reads_the_pixels_in_fp32_and_gives_the_model_back(trained, data):
    x, _ = data
    model = copy.deepcopy(trained)
    with torch.no_grad():
        before = model(x[:16])
    fwd = AttackForward(model, precision="bf16", example=x[:1])
    assert input_module(model, x[:1]) is model.features[0]
    dtypes = _output_dtypes(model, x[:16], fwd)
    assert dtypes == {"features.0": torch.float32, "features.4": torch.bfloat16, "head.1": torch.bfloat16,
                      "head.4": torch.bfloat16}
    with torch.no_grad():  # the bf16 logits are near the fp32 ones, and the wrapper owns no weights
        assert (fwd(x[:16]).float() - before).abs().max() < 0.05 * before.abs().max()
    assert sum(p.numel() for p in fwd.parameters()) == sum(p.numel() for p in model.parameters())
    fwd.remove()
    with torch.no_grad():
        assert torch.equal(model(x[:16]), before)
    assert set(_output_dtypes(model, x[:16], model).values()) == {torch.float32}


def test_channels_last_and_compiled_attacks_find_the_fp32_examples(trained, data):
    x, y = data
    kw = dict(batch_size=128, device="cpu", num_classes=K, seed=5)
    attacks = {"pgd": make_attack("pgd", eps=0.25, steps=5)}
    ref = evaluate_attacks(trained, x, y, attacks, **kw)["adversarial"]["pgd"]
    for options in ({"channels_last": True}, {"compile": True}):
        model = copy.deepcopy(trained)
        out = evaluate_attacks(model, x, y, attacks, **kw, **options)["adversarial"]["pgd"]
        # the same sums in another order: a sign may flip where a gradient component is ~0
        same = (out.x_adv - ref.x_adv).abs() <= 1e-5
        assert same.float().mean() > 0.99, options
        assert (out.pred != ref.pred).sum() <= 2, options


def test_attack_arithmetic_is_recorded_and_sets_are_not_mixed(trained, data, tmp_path):
    x, y = data
    kw = dict(batch_size=128, device="cpu", num_classes=K, seed=5, work_dir=tmp_path)
    attacks = {"pgd": make_attack("pgd", eps=0.25, steps=5)}
    model = copy.deepcopy(trained)
    bf16 = evaluate_attacks(model, x, y, attacks, precision="bf16", **kw)
    with safe_open(str(tmp_path / "pgd.safetensors"), framework="pt") as f:
        assert f.metadata()["arithmetic"] == "bf16"
    with pytest.raises(RunError, match="arithmetic='bf16', not 'fp32'"):
        evaluate_attacks(model, x, y, attacks, **kw)
    # the fp32 model judges the bf16 examples, and the hooks-free model is unchanged afterwards
    assert bf16["attacks"]["pgd"]["accuracy"] == accuracy(trained, bf16["adversarial"]["pgd"].x_adv, y)
    assert "forward" not in vars(model.features[0])
    with pytest.raises(ConfigError, match="--precision must be one of fp32, bf16, got 'fp16'"):
        evaluate_attacks(model, x, y, attacks, precision="fp16", **{**kw, "work_dir": tmp_path / "other"})
    assert not (tmp_path / "other").exists()
