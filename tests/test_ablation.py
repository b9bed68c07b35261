"""The ablation's explainer objectives (issue 31): the critic-free pixel-MSE explainer, lambda = 0 and
the optimisation-based inversion, on the tiny synthetic digits."""

from __future__ import annotations

import copy

import pytest
import torch

from interpretgan.config import ExplainConfig
from interpretgan.errors import ConfigError
from interpretgan.explain import train_explainers
from interpretgan.explain.explainer import build_layer_modules
from interpretgan.explain.group import LayerGroup
from interpretgan.explain.inversion import FeatureInverter, feature_distance
from interpretgan.explain.losses import classifier_target, generator_loss
from interpretgan.models import create_model

LAYERS = ["conv1", "fc1"]


def _cfg(**kw) -> ExplainConfig:
    base = dict(dataset="synthetic", preset="smoke", latent_dim=8, gan_channels=8, gan_channel_base=64,
                compression_width=0.5, batch_size=16, scale_iterations=[10, 20, 40], log_every=10,
                checkpoint_every=1000, eval_batch_size=64, layers=LAYERS)
    base.update(kw)
    return ExplainConfig(**base)


def _trained_classifier(data):
    """The tiny net fitted to the synthetic digits in a few hundred Adam steps (about 95 % on them)."""
    torch.manual_seed(0)
    f = create_model("tiny-test")
    x, y = data.train.x.float() / 255, data.train.y
    opt = torch.optim.Adam(f.parameters(), lr=3e-3)
    for _ in range(150):
        loss = torch.nn.functional.cross_entropy(f(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    f.zero_grad(set_to_none=True)
    return f.eval()


def _mse_objective(f, explainers, x, weight):
    """The `mse` / `mse+ce` arms' loss on ``x``: pixel MSE + weight * CE(f(x_hat), f(x)), per layer."""
    taps = f.taps(x, [*LAYERS, "fc2"])
    out = {}
    with torch.no_grad():
        for n in LAYERS:
            x_hat = explainers[n](taps[n])
            ce = torch.nn.functional.cross_entropy(f(x_hat), taps["fc2"].argmax(1))
            out[n] = float((x_hat - x).pow(2).mean() + weight * ce)
    return out


@pytest.mark.usefixtures("one_thread")
def test_mse_objective_trains_without_a_critic_and_fits_the_images(tiny_data):
    f = _trained_classifier(tiny_data)
    x = tiny_data.test.x.float() / 255
    for weight in (0.0, 1.0):  # the `mse` arm and the `mse+ce` arm
        cfg = _cfg(objective="mse", interp_weight=weight, scale_iterations=[10, 20, 120])
        untrained = train_explainers(f, tiny_data.train, _cfg(objective="mse", scale_iterations=[1, 1, 1]),
                                     progress=False)["explainers"]
        res = train_explainers(f, tiny_data.train, cfg, progress=False)
        before, after = (_mse_objective(f, e, x, weight) for e in (untrained, res["explainers"]))
        assert all(after[n] < 0.7 * before[n] for n in LAYERS), (before, after)
        for n in LAYERS:  # the critic was never stepped: it is as initialised
            fresh = build_layer_modules(cfg, *_member_args(f, cfg, n))[2]
            assert all(torch.equal(a, b) for a, b in zip(res["explainers"][n].discriminator.state_dict().values(),
                                                         fresh.state_dict().values()))


def _member_args(f, cfg, layer):
    from interpretgan.explain.compression import compression_configs
    from interpretgan.explain.explainer import _layer_seed

    comp = compression_configs(f, LAYERS, cfg.latent_dim, width=cfg.compression_width)[layer]
    return comp, 1, 16, _layer_seed(cfg.seed, f.layer_names.index(layer))


@pytest.mark.usefixtures("one_thread")
def test_gan_arms_improve_their_objectives(tiny_data):
    f = _trained_classifier(tiny_data)
    x = tiny_data.test.x
    records = []

    class Keep(list):
        def iteration(self, layer):
            return None

        def check_versions(self, *a):
            pass

        def loop_state(self, *a):
            return None

        def keep_records(self, keep):
            pass

        def record(self, r):
            records.append(r)

        def records(self):
            return records

        def save_explainer(self, *a, **k):
            pass

        def save_loop_state(self, *a):
            pass

    train_explainers(f, tiny_data.train, _cfg(), Keep(), progress=False)
    interp = [r["interp"] for r in records if r.get("event") == "train" and r["layer"] == "fc1"]
    assert interp[-1] < interp[0]
    # gan-only: each generator step lowers -E[D(G)] under the critic it was taken against
    cfg = _cfg(interp_weight=0.0, layers=["fc1"])
    group = LayerGroup(["fc1"], [build_layer_modules(cfg, *_member_args(f, cfg, "fc1"))], [1], cfg,
                       torch.device("cpu"), (16, 16))
    lowered = []
    for k in range(10):
        xb = x[16 * (k % 4): 16 * (k % 4) + 16].float() / 255
        taps = f.taps(xb, ["fc1", "fc2"])
        before = copy.deepcopy((group.compressions, group.generator))
        group.step(xb, [taps["fc1"]], classifier_target(taps["fc2"]), 2, 1.0, f)
        with torch.no_grad():
            score = [group.discriminator(g(c[0](taps["fc1"])[:, None], 2, 1.0), 2, 1.0).mean()
                     for c, g in (before, (group.compressions, group.generator))]
        lowered.append(bool(score[1] > score[0]))
    assert sum(lowered) >= 8, lowered


def test_lambda_zero_removes_the_interpretability_term(tiny_data):
    """With lambda = 0 f runs without a graph (no gradient reaches G through it); with 1 it has one."""
    f = _trained_classifier(tiny_data)
    x = tiny_data.train.x[:16].float() / 255
    for weight, objective in ((0.0, "wgan-gp"), (1.0, "wgan-gp"), (0.0, "mse"), (1.0, "mse")):
        cfg = _cfg(interp_weight=weight, objective=objective, layers=["fc1"])
        group = LayerGroup(["fc1"], [build_layer_modules(cfg, *_member_args(f, cfg, "fc1"))], [1], cfg,
                           torch.device("cpu"), (16, 16))
        seen = []
        hook = f.register_forward_hook(lambda m, i, out: seen.append(out.requires_grad))
        try:
            taps = f.taps(x, ["fc1", "fc2"])
            group.step(x, [taps["fc1"]], classifier_target(taps["fc2"]), 2, 1.0, f)
        finally:
            hook.remove()
        assert seen[-1] is (weight > 0), (weight, objective)
    # and in the loss itself a zero weight gives the logits no gradient
    logits = torch.randn(8, 4, requires_grad=True)
    loss, _ = generator_loss(torch.randn(8, 1), logits, torch.randint(0, 4, (8,)), interp_weight=0.0)
    loss.sum().backward()
    assert torch.count_nonzero(logits.grad) == 0


def test_optim_inversion_lowers_the_feature_distance_on_a_seeded_batch(tiny_data):
    f = _trained_classifier(tiny_data)
    x = tiny_data.test.x[:32].float() / 255
    for layer in LAYERS:
        target = f.taps(x, [layer])[layer]
        start = torch.full_like(x, 0.5)
        inv = FeatureInverter(f, layer, steps=100, lr=0.05)
        with torch.no_grad():  # as the diagnosis calls it
            x_hat = inv(target)
        assert x_hat.shape == x.shape and 0 <= float(x_hat.min()) and float(x_hat.max()) <= 1
        d0 = feature_distance(f.taps(start, [layer])[layer], target).mean()
        d1 = feature_distance(f.taps(x_hat, [layer])[layer], target).mean()
        assert d1 < 0.2 * d0, (layer, float(d0), float(d1))
        assert all(p.grad is None for p in f.parameters())  # f's weights got no gradient


def test_bad_ablation_options_are_one_sentence():
    with pytest.raises(ConfigError, match="--objective must be one of wgan-gp, mse"):
        _cfg(objective="l1").validate()
    with pytest.raises(ConfigError, match="--interp-weight must be at least 0"):
        _cfg(interp_weight=-1.0).validate()
    f = create_model("tiny-test")
    with pytest.raises(ConfigError, match="steps >= 1"):
        FeatureInverter(f, "conv1", steps=0)


def test_ablation_study_tables_grids_and_the_interpretgan_arm_equal_to_diagnose(tmp_path, sample_explain_run):
    from interpretgan.pipeline.ablation import ARMS, ablation_study
    from interpretgan.pipeline.diagnose import diagnose_one
    from interpretgan.pipeline.runs import Run

    cls_run = Run.open(sample_explain_run.config["classifier_run"])
    with torch.random.fork_rng(devices=[]):
        res = ablation_study(cls_run, out=tmp_path / "study", layers=LAYERS, preset="smoke", progress=False)
    assert list(res["arms"]) == list(ARMS) and res["layers"] == LAYERS
    for arm, r in res["arms"].items():
        for n in LAYERS:
            fig = r["layers"][n]
            assert 0 <= fig["consistency"] <= 1 and fig["frechet"] >= 0 and 0 <= fig["pixel_mse"] <= 1
            assert -1 <= fig["ssim"] <= 1 and 0 <= fig["accuracy"] <= 1
        assert r["n_adversarial"] == 64 and r["evaluate_seconds"] > 0
        assert (r["train_seconds"] > 0) is (arm != "optim")
    # the interpretgan arm's Acc_i is the diagnosis of the same explainers on the same D*
    table = diagnose_one(Run.open(res["arms"]["interpretgan"]["run"]), attack="pgd-40", n_compute=64,
                         n_boot=200)["table"]
    assert {n: res["arms"]["interpretgan"]["layers"][n]["accuracy"] for n in LAYERS} == table["accuracy"]
    md = (tmp_path / "study" / "ablation.md").read_text()
    assert "| mse+ce |" in md and "Acc_i on D*" in md
    for kind in ("natural", "adversarial"):
        assert (tmp_path / "study" / f"ablation-{kind}.png").stat().st_size > 1000
    # re-running resumes: nothing is trained again
    again = ablation_study(cls_run, out=tmp_path / "study", layers=LAYERS, preset="smoke", progress=False)
    assert again["arms"] == res["arms"]


def test_ablation_report_section_reads_the_numbers():
    from interpretgan.report.document import Report
    from interpretgan.report.markdown import ablation_findings
    from interpretgan.report.sections import ablation_section

    def arm(acc, cons, vulnerable, ssim=(0.3, 0.3), ci=0.02, vul=(0.9, 0.0)):
        return {"input_accuracy": 0.01, "vulnerable": vulnerable, "layers": {
            n: {"accuracy": a, "accuracy_ci": [a - ci, a + ci], "consistency": c, "frechet": 10.0 * (k + 1),
                "ssim": m, "adversarial_label": 0.8, "vulnerability": v}
            for k, (n, a, c, m, v) in enumerate(zip(LAYERS, acc, cons, ssim, vul))}}

    study = {"layers": LAYERS, "dataset": "mnist", "frechet_floor": 2.0, "files": {}, "arms": {
        "interpretgan": arm([0.10, 0.05], [0.95, 0.97], ["conv1"]),
        "gan-only": arm([0.30, 0.15], [0.10, 0.12], []),
        "mse": arm([0.40, 0.30], [0.93, 0.95], ["conv1", "fc1"]),
        "mse+ce": arm([0.08, 0.04], [0.97, 0.98], ["conv1"]),
        "optim": arm([0.01, 0.01], [0.99, 0.99], ["conv1"], ssim=(0.99, 0.5))}}
    said = " ".join(ablation_findings(study))
    assert "(gan-only against interpretgan) Acc_i moves by +15.0 points on average (+10.0 to +20.0)" in said
    assert "on only 10.0 %-12.0 % of natural images" in said and "near chance (10.0 %)" in said
    assert "(mse to mse+ce), the term moves Acc_i by -29.0 points on average (-32.0 to -26.0)" in said
    assert "carry f's (adversarial) label no more often with it (80.0 % of them" in said
    assert "(interpretgan against mse+ce) moves Acc_i by +1.5 points" in said and "overlapping at 2 of 2" in said
    assert "(optim), conv1 gives back the input itself" in said
    assert "its Acc_i (1.0 %) is within 2 points of f's own accuracy on D* (1.0 %), so that layer keeps" in said
    assert "mse conv1, fc1" in said and "Vul_conv1: interpretgan 90.0 %" in said
    assert "mse keeps the true class most often (mean Acc_i 35.0 %; interpretgan 7.5 %)" in said
    r, results = Report("t"), {}
    ablation_section(r, {"ablation": {"natural": study, "adversarial": study}}, results)
    text = " ".join(str(b[1]) for b in r.blocks)
    assert text.count(said) == 2  # each model's paragraph in the reproduce report
    assert results["ablation"]["natural"]["gan-only"]["accuracy_minus_interpretgan"]["max"] == pytest.approx(0.2)
    ablation_section(r, {}, results)  # no study: no section


def test_reproduce_ablation_is_for_the_mnist_chain(tmp_path):
    from interpretgan.pipeline.reproduce import reproduce

    with pytest.raises(ConfigError, match="--ablation goes with reproduce mnist"):
        reproduce("cifar10", "smoke", out=tmp_path / "r", ablation=True)
    assert not (tmp_path / "r").exists()


def test_unknown_or_no_arms_are_one_sentence():
    from interpretgan.pipeline.ablation import check_arms

    assert check_arms(["optim", "mse"]) == ["mse", "optim"]  # the study's order
    with pytest.raises(ConfigError, match="^unknown ablation arm 'vae'; expected some of interpretgan, "):
        check_arms(["mse", "vae"])
    with pytest.raises(ConfigError, match="^--arms is empty"):
        check_arms([])
