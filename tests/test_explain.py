"""InterpretGAN explainers: progressive G/D, compression nets, losses, training loop, metrics, figure."""

from __future__ import annotations

import logging
import math

import pytest
import torch
import torch.nn.functional as F

from interpretgan.config import ExplainConfig
from interpretgan.config.presets import explain_preset, resolve_explain_config
from interpretgan.errors import ConfigError, RunError
from interpretgan.explain import (
    Explainer,
    Schedule,
    build_compression,
    compression_configs,
    critic_loss,
    detect_collapse,
    evaluate_explainers,
    explain,
    frechet_distance,
    generator_loss,
    gradient_penalty,
    interpretability_loss,
    train_explainers,
)
from interpretgan.explain.compression import PAPER_STAGES, CompressionNet, generic_stages
from interpretgan.explain.progan import (
    EqualizedConv2d,
    EqualizedLinear,
    ProDiscriminator,
    ProGenerator,
    member_state_dict,
    minibatch_stddev,
    pixel_norm,
    stack_state_dicts,
)
from interpretgan.io import load_state, load_tensors, read_json, write_json
from interpretgan.models import create_model
from interpretgan.pipeline.explain import RunStore, load_explainers
from interpretgan.pipeline.runs import Run

pytestmark = pytest.mark.usefixtures("one_thread")


# --- progressive GAN ------------------------------------------------------------------------------
@pytest.mark.parametrize("image_size, channels", [(32, 1), (64, 3)])
def test_generator_and_discriminator_shapes_at_every_scale(image_size, channels):
    torch.manual_seed(0)
    g = ProGenerator(16, channels, image_size, max_channels=16, channel_base=256)
    d = ProDiscriminator(channels, image_size, max_channels=16, channel_base=256)
    n_scales = int(math.log2(image_size // 4)) + 1
    assert g.n_scales == d.n_scales == n_scales
    z = torch.randn(6, 16)
    for s in range(n_scales):
        side = 4 * 2**s
        for alpha in (0.0, 0.3, 1.0):
            x = g(z, s, alpha)
            assert x.shape == (6, channels, side, side)
            assert d(x, s, alpha).shape == (6, 1)
    assert g(z).shape[-1] == image_size  # default: the last scale
    with pytest.raises(ConfigError, match="expects images"):
        d(torch.rand(6, channels, 8, 8), 0)


def test_stacked_gan_shapes_and_members_match_single_networks():
    torch.manual_seed(0)
    singles = [ProGenerator(8, 1, 16, max_channels=8, channel_base=64) for _ in range(3)]
    critics = [ProDiscriminator(1, 16, max_channels=8, channel_base=64) for _ in range(3)]
    g3 = ProGenerator(8, 1, 16, max_channels=8, channel_base=64, stack=3)
    d3 = ProDiscriminator(1, 16, max_channels=8, channel_base=64, stack=3)
    g3.load_state_dict(stack_state_dicts([g.state_dict() for g in singles]))
    d3.load_state_dict(stack_state_dicts([d.state_dict() for d in critics]))
    z = torch.randn(4, 3, 8)
    x3 = g3(z, 2, 0.5)
    assert x3.shape == (4, 3, 16, 16)
    scores = d3(x3, 2, 0.5)
    assert scores.shape == (4, 3)
    for i in range(3):
        xi = singles[i](z[:, i], 2, 0.5)
        torch.testing.assert_close(x3[:, i : i + 1], xi, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(scores[:, i : i + 1], critics[i](xi, 2, 0.5), rtol=1e-4, atol=1e-5)
        for k, v in member_state_dict(g3.state_dict(), i).items():
            assert torch.equal(v, singles[i].state_dict()[k])


def test_generator_output_is_in_unit_interval_even_for_huge_latents():
    torch.manual_seed(0)
    g = ProGenerator(8, 1, 32, max_channels=8, channel_base=64)
    for z in (torch.randn(16, 8), 1e4 * torch.randn(16, 8), torch.zeros(16, 8)):
        x = g(z)
        assert x.min() >= 0 and x.max() <= 1
        assert torch.isfinite(x).all()


def test_fade_in_at_alpha_zero_is_the_lower_scale():
    torch.manual_seed(0)
    g = ProGenerator(8, 1, 32, max_channels=8, channel_base=64)
    d = ProDiscriminator(1, 32, max_channels=8, channel_base=64)
    z = torch.randn(8, 8)
    for s in range(1, 4):
        low = g(z, s - 1)
        # Generator: the previous toRGB, upsampled (nearest): exactly.
        assert torch.equal(g(z, s, 0.0), F.interpolate(low, scale_factor=2, mode="nearest"))
        assert not torch.equal(g(z, s, 0.5), g(z, s, 0.0))
        # In between: the blend of the two scales' images, as the critic's real images are blended.
        torch.testing.assert_close(g(z, s, 0.3), 0.3 * g(z, s, 1.0) + 0.7 * g(z, s, 0.0))
        # Discriminator: the previous scale on the average-pooled image.
        x = torch.rand(8, 1, 4 * 2**s, 4 * 2**s)
        torch.testing.assert_close(d(x, s, 0.0), d(F.avg_pool2d(x, 2), s - 1), rtol=1e-5, atol=1e-6)


def test_generator_dense_gain_and_explainers_saved_before_it():
    g = ProGenerator(9, 1, 32, max_channels=8, channel_base=64)
    assert g.dense.scale == pytest.approx(math.sqrt(2.0) / 4 / 3)  # Karras' gain sqrt(2)/4, fan-in 9
    assert g.config["dense_gain"] == pytest.approx(math.sqrt(2.0) / 4) and g.config["image_fade"] is True
    # an explainer.json written before these keys existed is rebuilt as it was trained
    from interpretgan.explain.progan import LEGACY_GENERATOR

    old = ProGenerator(**{**{k: v for k, v in g.config.items() if k not in LEGACY_GENERATOR}, **LEGACY_GENERATOR})
    assert old.dense.scale == pytest.approx(math.sqrt(2.0) / 3) and not old.image_fade
    old.load_state_dict(g.state_dict())
    z = torch.randn(4, 9)
    assert not torch.allclose(old(z, 2, 1.0), g(z, 2, 1.0))
    # the legacy fade-in blends before the output's tanh
    with torch.no_grad():
        old.dense.scale = g.dense.scale
        torch.testing.assert_close(old(z, 2, 1.0), g(z, 2, 1.0))
        assert not torch.allclose(old(z, 2, 0.5), g(z, 2, 0.5))


def test_equalized_learning_rate_scales_weights_at_run_time():
    torch.manual_seed(0)
    conv = EqualizedConv2d(64, 32, 3, padding=1)
    assert conv.scale == pytest.approx(math.sqrt(2.0) / math.sqrt(64 * 9))
    assert conv.weight.std().item() == pytest.approx(1.0, abs=0.02)  # stored as N(0, 1)
    assert torch.all(conv.bias == 0)
    x = torch.randn(2, 64, 5, 5)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight[0] * conv.scale, conv.bias[0], padding=1))
    lin = EqualizedLinear(100, 7, gain=1.0)
    assert lin.scale == pytest.approx(0.1)
    v = torch.randn(3, 1, 100)
    torch.testing.assert_close(lin(v), F.linear(v, lin.weight[0] * 0.1, lin.bias[0]))
    # The gradient of the stored weight is the effective weight's gradient times the constant.
    conv(x).sum().backward()
    w_eff = (conv.weight[0] * conv.scale).detach().requires_grad_(True)
    F.conv2d(x, w_eff, conv.bias[0].detach(), padding=1).sum().backward()
    torch.testing.assert_close(conv.weight.grad[0], w_eff.grad * conv.scale)


def test_pixel_norm_gives_unit_mean_square_per_pixel_and_member():
    torch.manual_seed(0)
    x = torch.randn(4, 2 * 5, 3, 3) * torch.tensor([1.0] * 5 + [30.0] * 5).view(1, 10, 1, 1)
    y = pixel_norm(x, stack=2).view(4, 2, 5, 3, 3)
    torch.testing.assert_close(y.pow(2).mean(dim=2), torch.ones(4, 2, 3, 3))
    z = pixel_norm(torch.randn(6, 1, 40) * 7)
    torch.testing.assert_close(z.pow(2).mean(dim=2), torch.ones(6, 1))


def test_minibatch_stddev_adds_the_group_standard_deviation_channel():
    # Four examples, two features, 1x1: feature 0 is 0,2,0,2 (std 1), feature 1 is 1,1,1,1 (std 0).
    x = torch.tensor([[0.0, 1.0], [2.0, 1.0], [0.0, 1.0], [2.0, 1.0]]).view(4, 2, 1, 1)
    y = minibatch_stddev(x, group_size=4)
    assert y.shape == (4, 3, 1, 1)
    assert torch.equal(y[:, :2], x)
    expected = (math.sqrt(1 + 1e-8) + math.sqrt(1e-8)) / 2
    torch.testing.assert_close(y[:, 2].flatten(), torch.full((4,), expected))
    # Groups of two take examples {0, 2} and {1, 3} (ProGAN's grouping): both constant here.
    y2 = minibatch_stddev(x, group_size=2)
    torch.testing.assert_close(y2[:, 2].flatten(), torch.full((4,), math.sqrt(1e-8)))
    # A stack of two members gets one channel each.
    ys = minibatch_stddev(torch.cat([x, 3 * x], dim=1), stack=2, group_size=4)
    assert ys.shape == (4, 6, 1, 1)
    torch.testing.assert_close(ys[:, 5].flatten(), torch.full((4,), (math.sqrt(9 + 1e-8) + math.sqrt(1e-8)) / 2))


# --- losses ---------------------------------------------------------------------------------------
def test_gradient_penalty_of_a_linear_critic_is_exact():
    torch.manual_seed(0)
    w = torch.randn(2 * 1 * 4 * 4) * 0.3  # two members, each 1x4x4
    w0, w1 = w[:16], w[16:]

    def critic(x):  # D_i(x) = <w_i, x_i>: the gradient is w_i everywhere
        return torch.stack([x[:, 0].flatten(1) @ w0, x[:, 1].flatten(1) @ w1], dim=1)

    real, fake = torch.rand(5, 2, 4, 4), torch.rand(5, 2, 4, 4)
    gp = gradient_penalty(critic, real, fake, torch.rand(5, 2))
    expected = torch.stack([(w0.norm() - 1) ** 2, (w1.norm() - 1) ** 2])
    torch.testing.assert_close(gp, expected)


def test_gradient_penalty_is_taken_in_the_critics_own_pixel_space():
    # A critic that maps x in [0, 1] to u = 2x - 1 first: the penalty is on grad_u = grad_x / 2
    torch.manual_seed(0)
    w = torch.randn(16) * 0.3
    real, fake, eps = torch.rand(5, 1, 4, 4), torch.rand(5, 1, 4, 4), torch.rand(5)
    gp = gradient_penalty(lambda x: (2 * x - 1).flatten(1) @ w, real, fake, eps, input_scale=2.0)
    torch.testing.assert_close(gp, ((w.norm() - 1) ** 2).view(1))
    # ProDiscriminator declares that mapping; its penalty equals one computed directly in [-1, 1]
    d = ProDiscriminator(1, 8, max_channels=8, channel_base=64)
    real, fake = torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8)
    eps = torch.rand(4)
    gp = gradient_penalty(d, real, fake, eps, input_scale=d.input_scale)
    u = (2 * (real + eps.view(-1, 1, 1, 1) * (fake - real)) - 1).requires_grad_(True)
    (grad_u,) = torch.autograd.grad(d((u + 1) / 2).sum(), u)
    torch.testing.assert_close(gp, ((grad_u.flatten(1).norm(dim=1) - 1) ** 2).mean().view(1))
    assert not torch.allclose(gp, gradient_penalty(d, real, fake, eps))  # on [0, 1] it would differ


def test_gradient_penalty_is_differentiable_in_the_critic():
    w = torch.full((16,), 0.5, requires_grad=True)  # ||w|| = 2 -> GP = 1, dGP/dw = 2 (||w|| - 1) w / ||w||
    gp = gradient_penalty(lambda x: x.flatten(1) @ w, torch.rand(3, 1, 4, 4), torch.rand(3, 1, 4, 4), torch.rand(3))
    assert gp.item() == pytest.approx(1.0)
    gp.sum().backward()
    torch.testing.assert_close(w.grad, torch.full((16,), 0.5))


def test_critic_and_generator_losses_on_known_values():
    d_real, d_fake = torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0], [-2.0]])
    loss, parts = critic_loss(d_real, d_fake, torch.tensor([0.5]), gp_weight=10.0, drift=0.001)
    # -(2 - (-1)) + 10 * 0.5 + 0.001 * 5
    torch.testing.assert_close(loss, torch.tensor([2.005]))
    assert parts["wasserstein"].item() == pytest.approx(3.0)
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    target = torch.tensor([0, 0])
    ce = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(2))) / 2
    assert interpretability_loss(logits, target).item() == pytest.approx(ce)
    g_loss, g_parts = generator_loss(d_fake, logits, target, interp_weight=1.0)
    assert g_loss.item() == pytest.approx(1.0 + ce)
    assert g_parts["adversarial"].item() == pytest.approx(1.0)
    # A soft target (Eq. 3 read as y ~ f(x)) with a one-hot distribution equals the label.
    assert interpretability_loss(logits, F.one_hot(target, 2).float()).item() == pytest.approx(ce)


def test_interpretability_gradient_flows_through_a_frozen_classifier():
    torch.manual_seed(0)
    f = create_model("tiny-test").eval().requires_grad_(False)
    g = ProGenerator(8, 1, 16, max_channels=8, channel_base=64)
    loss = interpretability_loss(f(g(torch.randn(4, 8))), torch.tensor([0, 1, 2, 3]))
    loss.sum().backward()
    assert all(p.grad is None for p in f.parameters())
    assert g.dense.weight.grad is not None and g.dense.weight.grad.abs().sum() > 0


# --- compression nets -----------------------------------------------------------------------------
def test_smallcnn_compression_nets_follow_table_4():
    torch.manual_seed(0)
    f = create_model("smallcnn")
    cfgs = compression_configs(f, f.layer_names, 32, width=0.25)
    table4 = {
        "conv1": [64, 128, 256],
        "conv2": [64, 128],
        "conv3": [128, 256],
        "conv4": [],
        "fc1": [],
        "fc2": [],
        "fc3": [],
    }
    shapes = f.tap_shapes(32)
    x = torch.rand(3, 1, 32, 32)
    taps = f.taps(x)
    for layer, widths in table4.items():
        assert [c for c, _ in PAPER_STAGES["smallcnn"][layer]] == widths
        assert [c for c, _ in cfgs[layer]["stages"]] == [w // 4 for w in widths]
        # The generic rule reproduces Table 4 for every layer.
        assert [c for c, _ in generic_stages(shapes[layer])] == widths
        net = build_compression(f, layer, 32, width=0.25)
        assert net(taps[layer]).shape == (3, 32)
    pools = sum(isinstance(m, torch.nn.AvgPool2d) for m in build_compression(f, "conv1", 32).modules())
    assert pools == 3


def test_vgg16_compression_nets_follow_table_5_and_output_the_latent():
    torch.manual_seed(0)
    f = create_model("vgg16", image_size=32, width=0.125, fc_width=16, num_classes=2)
    taps = f.eval().taps(torch.rand(2, 3, 32, 32))
    for layer in f.layer_names:
        net = build_compression(f, layer, 24, width=0.125)
        assert net(taps[layer]).shape == (2, 24), layer
    # Table 5 at 128x128; the generic rule agrees except block5's single unpooled convolution.
    shapes = {
        "block1": (64, 64, 64),
        "block2": (128, 32, 32),
        "block3": (256, 16, 16),
        "block4": (512, 8, 8),
        "block5": (512, 4, 4),
    }
    for layer, shape in shapes.items():
        expected = PAPER_STAGES["vgg16"][layer]
        assert generic_stages(shape) == (() if layer == "block5" else expected)
    assert PAPER_STAGES["vgg16"]["block5"] == ((512, False),)


def test_compression_init_is_he_with_zero_biases_so_the_latent_ignores_the_taps_scale():
    # PyTorch's default init let the biases dominate a deep C_i's output (a near-constant latent,
    # hence a near-constant generator); He-normal weights for leaky ReLU 0.2 and zero biases instead.
    torch.manual_seed(0)
    f = create_model("smallcnn").eval()
    net = build_compression(f, "conv1", 64)  # Table 4's deepest: three convolutions, then FC
    layers = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(layers) == 4
    for m in layers:
        assert torch.count_nonzero(m.bias) == 0
        fan_in = m.weight[0].numel()
        he_std = math.sqrt(2.0 / (1 + 0.2**2) / fan_in)
        assert m.weight.std().item() == pytest.approx(he_std, rel=0.1)
    # Without biases C is positively homogeneous: a classifier whose taps are 10x smaller (as an
    # adversarially trained one's are) gets the same pixel-normalised latent, spread over inputs alike.
    with torch.no_grad():
        tap = f.taps(torch.rand(16, 1, 32, 32), ["conv1"])["conv1"]
        z, z_small = net(tap), net(0.1 * tap)
    assert torch.allclose(z_small, 0.1 * z, atol=1e-6)
    assert torch.allclose(pixel_norm(z_small[:, None]), pixel_norm(z[:, None]), atol=1e-4)


def test_unknown_layer_is_a_config_error_listing_the_valid_ones(tmp_path, tiny_data):
    f = create_model("smallcnn")
    with pytest.raises(ConfigError, match="conv9.*valid layers are: conv1, conv2, conv3, conv4, fc1, fc2, fc3"):
        compression_configs(f, ["conv9"], 16)
    tiny = create_model("tiny-test")
    run = Run.create(tmp_path, "bad", "explain", {})
    with pytest.raises(ConfigError, match="valid layers are: conv1, fc1, fc2"):
        train_explainers(tiny, tiny_data.train, _cfg(layers=["fc9"]), RunStore(run), progress=False)
    with pytest.raises(ConfigError, match="--n-test must be at least 2"):
        _cfg(n_test=1).validate()
    with pytest.raises(ConfigError, match="layer 'fc1' is listed twice"):
        train_explainers(tiny, tiny_data.train, _cfg(layers=["fc1", "conv1", "fc1"]), RunStore(run), progress=False)


# --- schedule and config --------------------------------------------------------------------------
def test_schedule_fades_in_over_the_first_half_of_each_new_scale():
    cfg = ExplainConfig(scale_iterations=[4, 8], fade_fraction=0.5)
    sch = Schedule.from_config(cfg, 3, 100)
    assert sch.iterations == (4, 8, 8) and sch.total == 20
    assert [sch.at(i) for i in range(4)] == [(0, 1.0)] * 4
    assert [sch.at(i)[1] for i in range(4, 12)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0]
    assert sch.at(12) == (2, 0.0) and sch.at(19) == (2, 1.0)
    paper = resolve_explain_config("mnist", "paper")
    assert paper.iterations_per_scale(4, 60000) == [22500, 22500, 22500, 45000]  # 6, 6, 6, 12 epochs at batch 16
    celeba = resolve_explain_config("celeba", "paper")
    assert celeba.iterations_per_scale(6, 1000) == [48000] + [96000] * 5
    with pytest.raises(ConfigError, match="lists 4 scales"):
        paper.iterations_per_scale(3, 100)


@pytest.mark.parametrize("dataset", ["mnist", "mnist-sample", "celeba"])
@pytest.mark.parametrize("preset", ["smoke", "cpu", "paper"])
def test_presets_resolve_and_validate(dataset, preset):
    cfg = resolve_explain_config(dataset, preset, {"seed": 3, "log_every": 7})
    # the paper's optimiser and loss constants in every preset; the preset's own values applied,
    # an explicit override winning over the preset
    assert cfg.seed == 3 and cfg.preset == preset and cfg.lr == 1e-3 and cfg.betas == [0.0, 0.99]
    assert cfg.gp_weight == 10.0 and cfg.drift == 0.001 and cfg.interp_weight == 1.0
    values = explain_preset(dataset, preset)
    assert {k: getattr(cfg, k) for k in values if k != "log_every"} == {
        k: v for k, v in values.items() if k != "log_every"
    }
    assert cfg.log_every == 7 != values["log_every"]
    assert ExplainConfig.from_dict(cfg.to_dict()) == cfg
    # presets grow in size: smoke < cpu < paper in GAN width, latent size and compression width
    order = ["smoke", "cpu", "paper"]
    sizes = [resolve_explain_config(dataset, p) for p in order]
    for field in ("gan_channels", "latent_dim", "compression_width"):
        assert [getattr(c, field) for c in sizes] == sorted(getattr(c, field) for c in sizes), field
        assert getattr(sizes[0], field) < getattr(sizes[2], field), field
    with pytest.raises(ConfigError, match="unknown explainer option"):
        ExplainConfig.from_dict({"nonsense": 1})
    with pytest.raises(ConfigError, match="unknown preset 'fast'"):
        resolve_explain_config(dataset, "fast")


# --- training -------------------------------------------------------------------------------------
def _cfg(**kw) -> ExplainConfig:
    base = dict(dataset="synthetic", preset="smoke", latent_dim=8, gan_channels=8, gan_channel_base=64,
                compression_width=0.5, batch_size=8, scale_iterations=[3, 4, 4], log_every=2, checkpoint_every=3,
                eval_batch_size=64)
    base.update(kw)
    return ExplainConfig(**base)


def _classifier(seed: int = 0):
    torch.manual_seed(seed)
    return create_model("tiny-test").eval()


def _train(tmp_path, data, name, cfg, f=None, **kw):
    f = f if f is not None else _classifier()
    run = Run.create(tmp_path, name, "explain", cfg.to_dict())
    summary = train_explainers(f, data.train, cfg, RunStore(run), progress=False, **kw)
    return run, summary


def _weights(run, layers):
    return {layer: load_tensors(run.ckpt_dir / layer / "explainer.safetensors") for layer in layers}


def _assert_same_weights(a, b):
    for layer in a:
        assert a[layer].keys() == b[layer].keys()
        for k in a[layer]:
            assert torch.equal(a[layer][k], b[layer][k]), (layer, k)


def _strip(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def test_classifier_is_frozen_and_in_eval_mode_during_training(tmp_path, tiny_data):
    f = _classifier()
    before = {k: v.clone() for k, v in f.state_dict().items()}
    modes = []
    handle = f.register_forward_pre_hook(lambda m, _: modes.append(m.training))
    try:
        run, summary = _train(tmp_path, tiny_data, "frozen", _cfg(), f=f)
    finally:
        handle.remove()
    assert summary["layers"] == ["conv1", "fc1", "fc2"] and not summary["interrupted"]
    assert modes and not any(modes)
    assert not f.training and all(p.requires_grad for p in f.parameters())
    for k, v in f.state_dict().items():
        assert torch.equal(v, before[k]), k
    # A train-mode classifier is trained against in eval mode and handed back in train mode.
    f.train()
    modes.clear()
    handle = f.register_forward_pre_hook(lambda m, _: modes.append(m.training))
    try:
        _train(tmp_path, tiny_data, "frozen2", _cfg(scale_iterations=[1, 1, 1]), f=f)
    finally:
        handle.remove()
    assert not any(modes) and f.training


def test_in_memory_training_writes_nothing_and_equals_the_run_folder(tmp_path, tiny_data, monkeypatch):
    """train_explainers without a store: the same explainers as a run folder's, nothing written."""
    from interpretgan.explain.explainer import explain, load_explainer

    cfg = _cfg(fuse=True)
    run, _ = _train(tmp_path / "runs", tiny_data, "stored", cfg)
    monkeypatch.chdir(tmp_path)
    before = sorted(p for p in tmp_path.rglob("*"))
    f = _classifier()
    res = train_explainers(f, tiny_data.train, cfg, progress=False)
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert list(res["explainers"]) == ["conv1", "fc1", "fc2"] and not res["interrupted"] and res["seconds"] > 0
    x = tiny_data.test.x[:5].float() / 255
    in_memory = explain(f, res["explainers"], x)
    stored = explain(f, {n: load_explainer(run.ckpt_dir / n) for n in ["conv1", "fc1", "fc2"]}, x)
    for layer in stored:
        assert not res["explainers"][layer].training
        assert torch.equal(in_memory[layer], stored[layer]), layer


def test_log_records_never_span_two_scales(tmp_path, tiny_data, caplog):
    from interpretgan.explain.explainer import load_explainer
    from interpretgan.pipeline.explain import _warn_unfinished

    run, _ = _train(tmp_path, tiny_data, "records", _cfg(), stop_after_iterations=9)  # scales of 3, 4, 4; log every 2
    records = [
        (r["iteration"], r["scale"]) for r in run.read_metrics() if r.get("event") == "train" and r["layer"] == "fc1"
    ]
    assert records == [(2, 0), (3, 0), (4, 1), (6, 1), (7, 1), (8, 2)]
    # a grid of this unfinished run is drawn with a warning naming how far each layer got
    with caplog.at_level("WARNING"):
        _warn_unfinished(run, {n: load_explainer(run.ckpt_dir / n) for n in ["conv1", "fc1", "fc2"]})
    assert "fc1 at iteration 9 of 11" in caplog.text and "has not finished training" in caplog.text


def test_joint_and_separate_training_write_the_same_checkpoints(tmp_path, tiny_data):
    cfg = _cfg()
    joint, _ = _train(tmp_path, tiny_data, "joint", cfg)
    separate, _ = _train(tmp_path, tiny_data, "separate", _cfg(joint=False))
    layers = ["conv1", "fc1", "fc2"]
    for run in (joint, separate):
        for layer in layers:
            spec = read_json(run.ckpt_dir / layer / "explainer.json")
            assert spec["layer"] == layer and spec["iteration"] == spec["total_iterations"] == 11
            assert spec["scale"] == 2 and spec["alpha"] == 1.0
    assert (joint.ckpt_dir / "state-joint.pt").is_file()
    assert all((separate.ckpt_dir / f"state-{layer}.pt").is_file() for layer in layers)
    # Per-layer seeds and random generators: one loop for all layers gives the paper's separate result.
    _assert_same_weights(_weights(joint, layers), _weights(separate, layers))
    key = lambda r: (r["event"], r["layer"], r["iteration"])  # noqa: E731
    strip_loop = lambda rs: sorted(({k: v for k, v in r.items() if k not in ("seconds", "loop")} for r in rs), key=key)  # noqa: E731
    assert strip_loop(joint.read_metrics()) == strip_loop(separate.read_metrics())
    train = [r for r in joint.read_metrics() if r["event"] == "train"]
    assert [r["iteration"] for r in train if r["layer"] == "fc1"] == [
        2,
        3,
        4,
        6,
        7,
        8,
        10,
        11,
    ]  # every 2 and each scale's end
    assert {"critic_loss", "gp", "interp", "consistency", "fake_std", "alpha", "side"} <= train[0].keys()


def test_fused_joint_training_matches_unfused(tmp_path, tiny_data):
    layers = ["conv1", "fc1", "fc2"]
    # One step at each scale (fade-ins included, Adam's state carried across scales): grouped
    # convolutions round differently, so equal up to float error; the kept moving average too.
    plain, _ = _train(tmp_path, tiny_data, "plain", _cfg(scale_iterations=[1, 1, 1], ema_decay=0.5))
    fused, _ = _train(tmp_path, tiny_data, "fused", _cfg(scale_iterations=[1, 1, 1], fuse=True, ema_decay=0.5))
    a, b = _weights(plain, layers), _weights(fused, layers)
    for layer in a:
        for k in a[layer]:
            torch.testing.assert_close(a[layer][k], b[layer][k], rtol=1e-5, atol=1e-5, msg=f"{layer} {k}")
    # Two steps at each scale: Adam's first step on a weight is lr * 1.41 * sign(gradient) whatever the
    # gradient's size (betas 0, 0.99), so a gradient at rounding level may flip sign between the two
    # and move that weight by 2.8e-3 (and, through it, a few others a little). All but a few in a
    # thousand weights still agree to 1e-5, and none differs by more than two such flips.
    plain, _ = _train(tmp_path, tiny_data, "plain2", _cfg(scale_iterations=[2, 2, 2]))
    fused, _ = _train(tmp_path, tiny_data, "fused2", _cfg(scale_iterations=[2, 2, 2], fuse=True))
    a, b = _weights(plain, layers), _weights(fused, layers)
    diffs = torch.cat([(a[layer][k] - b[layer][k]).abs().flatten() for layer in a for k in a[layer]])
    assert (
        diffs > 1e-5 + 1e-5 * torch.cat([b[layer][k].abs().flatten() for layer in b for k in b[layer]])
    ).float().mean() < 0.01
    assert diffs.max() < 2 * 2 * 1.42e-3


@pytest.mark.parametrize("joint,ema", [(True, None), (False, None), (True, 0.9)])
def test_resume_mid_scale_equals_uninterrupted(tmp_path, tiny_data, joint, ema):
    cfg = _cfg(joint=joint, ema_decay=ema)
    full, _ = _train(tmp_path, tiny_data, "full", cfg)
    part, summary = _train(tmp_path, tiny_data, "part", cfg, stop_after_iterations=5)  # scale 1, alpha 0.5
    assert summary["interrupted"]
    assert read_json(part.ckpt_dir / "conv1" / "explainer.json")["iteration"] == 5
    train_explainers(_classifier(), tiny_data.train, cfg, RunStore(part), progress=False, resume=True)
    layers = ["conv1", "fc1", "fc2"]
    _assert_same_weights(_weights(full, layers), _weights(part, layers))
    assert _strip(full.read_metrics()) == _strip(part.read_metrics())


def test_kept_explainers_are_the_moving_average_of_an_unchanged_training(tmp_path, tiny_data):
    """--ema-decay d keeps C and G as avg_k = d avg_(k-1) + (1 - d) w_k over the iterates w_k of the same
    training (the average never feeds back: D and the raw weights are those of a run without it); a resume
    state written without the average is refused."""
    layers = ["conv1", "fc1", "fc2"]
    plain, _ = _train(tmp_path, tiny_data, "plain", _cfg(scale_iterations=[1, 1, 1]))
    runs = {k: _train(tmp_path, tiny_data, f"ema{k}", _cfg(scale_iterations=[1, 1, 1], ema_decay=0.75),
                      stop_after_iterations=k)[0] for k in (2, 3)}
    state = load_state(runs[3].ckpt_dir / "state-joint.pt")
    before, after, raw = _weights(runs[2], layers), _weights(runs[3], layers), _weights(plain, layers)
    for i, layer in enumerate(layers):
        group = state["groups"][i]
        trained = {**{f"compression.{k}": v for k, v in group["compressions"][0].items()},
                   **{f"generator.{k}": v for k, v in group["generator"].items()}}
        for k, w in after[layer].items():
            if k.startswith("discriminator."):
                assert torch.equal(w, raw[layer][k]), (layer, k)
                continue
            assert torch.equal(trained[k], raw[layer][k]), (layer, k)
            torch.testing.assert_close(w, 0.75 * before[layer][k] + 0.25 * trained[k], msg=f"{layer} {k}")
        assert not all(torch.equal(after[layer][k], raw[layer][k]) for k in after[layer])
        assert read_json(runs[3].ckpt_dir / layer / "explainer.json")["ema_decay"] == 0.75
    with pytest.raises(RunError, match="another --ema-decay"):
        train_explainers(_classifier(), tiny_data.train, _cfg(scale_iterations=[1, 1, 1]), RunStore(runs[2]),
                         progress=False, resume=True)
    with pytest.raises(ConfigError, match=r"^--ema-decay must be in \[0, 1\), got nan$"):
        _cfg(ema_decay=float("nan")).validate()


def test_explainers_from_before_the_he_init_load_but_do_not_resume(tmp_path, tiny_data):
    # An explainer.json written before the compression nets recorded their initialisation: it loads
    # (as PyTorch-default init, which only set the starting values), but a run holding it is not
    # continued with the new init, in either training mode.
    from interpretgan.errors import RunError

    for joint in (True, False):
        cfg = _cfg(joint=joint)
        part, _ = _train(tmp_path, tiny_data, f"old-{joint}", cfg, stop_after_iterations=5)
        spec_path = part.ckpt_dir / "conv1" / "explainer.json"
        spec = read_json(spec_path)
        assert spec["compression"]["init"] == "he"
        del spec["compression"]["init"]
        write_json(spec_path, spec)
        before = {p.relative_to(part.ckpt_dir): p.read_bytes() for p in part.ckpt_dir.rglob("*") if p.is_file()}
        with pytest.raises(
            RunError, match="conv1 was checkpointed by an earlier version of the compression nets' initialisation"
        ):
            train_explainers(_classifier(), tiny_data.train, cfg, RunStore(part), progress=False, resume=True)
        assert {p.relative_to(part.ckpt_dir): p.read_bytes() for p in part.ckpt_dir.rglob("*") if p.is_file()} == before
    from interpretgan.explain.explainer import load_explainer

    exp = load_explainer(part.ckpt_dir / "conv1")
    assert exp.compression.config["init"] == "torch"
    with pytest.raises(ConfigError, match="unknown compression-net initialisation 'xavier'; expected one of he, torch"):
        CompressionNet(**{**exp.compression.config, "init": "xavier"})


def test_explainers_with_the_penalty_on_unit_interval_images_load_but_do_not_resume(tmp_path, tiny_data):
    from interpretgan.errors import RunError
    from interpretgan.explain.explainer import load_explainer

    cfg = _cfg()
    part, _ = _train(tmp_path, tiny_data, "old-gp", cfg, stop_after_iterations=5)
    spec_path = part.ckpt_dir / "fc1" / "explainer.json"
    spec = read_json(spec_path)
    assert spec["gp_space"] == "[-1, 1]"
    del spec["gp_space"]  # as written before the penalty moved to the critic's [-1, 1]
    write_json(spec_path, spec)
    with pytest.raises(RunError, match="fc1 was checkpointed by an earlier version of the gradient penalty"):
        train_explainers(_classifier(), tiny_data.train, cfg, RunStore(part), progress=False, resume=True)
    assert load_explainer(part.ckpt_dir / "fc1").layer == "fc1"


def test_checkpoint_files_from_two_iterations_and_resume_on_another_device_are_refused(tmp_path, tiny_data):
    from interpretgan.errors import RunError
    from interpretgan.explain.explainer import load_explainer
    from interpretgan.io import load_state, save_state, tensor_metadata

    cfg = _cfg()
    part, _ = _train(tmp_path, tiny_data, "two", cfg, stop_after_iterations=5)
    layer_dir = part.ckpt_dir / "conv1"
    assert tensor_metadata(layer_dir / "explainer.safetensors") == {"iteration": "5"}
    spec = read_json(layer_dir / "explainer.json")
    write_json(layer_dir / "explainer.json", {**spec, "iteration": 4})  # the json of an earlier checkpoint
    with pytest.raises(RunError, match=r"holds the weights of iteration 5 but .*explainer.json describes iteration 4"):
        load_explainer(layer_dir)
    write_json(layer_dir / "explainer.json", spec)
    state_path = part.ckpt_dir / "state-joint.pt"
    state = load_state(state_path)
    assert state["device_type"] == "cpu"
    save_state(state_path, {**state, "device_type": "cuda"})
    with pytest.raises(RunError, match="state-joint.pt was written training on cuda; resume it there"):
        train_explainers(_classifier(), tiny_data.train, cfg, RunStore(part), progress=False, resume=True)


def test_the_device_named_cuda_is_the_current_gpu(monkeypatch):
    from interpretgan.devices import concrete_device

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert concrete_device("cuda") == torch.device("cuda", 1)  # where tensors moved to "cuda" live
    assert concrete_device(torch.device("cuda:0")) == torch.device("cuda:0")
    assert concrete_device("cpu") == torch.device("cpu")


def test_trained_explainers_load_and_explain_in_the_unit_interval(tmp_path, tiny_data):
    f = _classifier()
    run = Run.create(tmp_path, "load", "explain", {**_cfg().to_dict(), "resolved_layers": ["conv1", "fc1"]})
    from interpretgan.pipeline.checkpoints import save_model

    save_model(run.ckpt_dir, f, name="classifier")
    train_explainers(f, tiny_data.train, _cfg(layers=["fc1", "conv1"]), RunStore(run), progress=False)
    classifier, explainers = load_explainers(run)
    assert list(explainers) == ["conv1", "fc1"]
    x = tiny_data.test.x[:5].float() / 255
    out = explain(classifier, explainers, x)
    for layer, x_hat in out.items():
        assert x_hat.shape == (5, 1, 16, 16) and x_hat.min() >= 0 and x_hat.max() <= 1
        assert isinstance(explainers[layer], Explainer) and not explainers[layer].training
    from interpretgan.errors import RunError

    with pytest.raises(RunError, match="no explainer for layer"):
        load_explainers(run, layers=["fc2"])
    # figures that compare layers (Table 1, drift) need every layer's schedule finished
    assert list(load_explainers(run, finished=True)[1]) == ["conv1", "fc1"]
    part = Run.create(tmp_path, "part", "explain", {**_cfg().to_dict(), "resolved_layers": ["conv1", "fc1"]})
    save_model(part.ckpt_dir, f, name="classifier")
    train_explainers(
        f, tiny_data.train, _cfg(layers=["fc1", "conv1"]), RunStore(part), progress=False, stop_after_iterations=3
    )
    with pytest.raises(RunError, match="has not finished training layer conv1 \\(iteration 3 of"):
        load_explainers(part, finished=True)


# --- collapse detection ---------------------------------------------------------------------------
def test_collapse_detector_fires_on_a_constant_generator_only():
    torch.manual_seed(0)
    g = ProGenerator(8, 1, 16, max_channels=8, channel_base=64)
    z = torch.randn(32, 8)
    varied = g(z).std(dim=0).mean().item()
    for p in g.to_rgb.parameters():
        torch.nn.init.zeros_(p)
    constant = g(z).std(dim=0).mean().item()
    assert constant == 0.0
    assert detect_collapse(varied, 1.0, min_std=0.02, max_critic=100.0) == []
    assert [r for r, _, _ in detect_collapse(constant, 1.0, min_std=0.02, max_critic=100.0)] == ["constant_output"]
    assert [r for r, _, _ in detect_collapse(varied, -500.0, min_std=0.02, max_critic=100.0)] == ["critic_runaway"]
    assert len(detect_collapse(float("nan"), float("nan"), min_std=0.02, max_critic=100.0)) == 2


def test_collapse_is_warned_and_recorded_while_training(tmp_path, tiny_data, caplog):
    with caplog.at_level(logging.WARNING, logger="interpretgan.explain.loop"):
        run, _ = _train(tmp_path, tiny_data, "collapse", _cfg(layers=["fc1"], collapse_std=10.0))
    events = [r for r in run.read_metrics() if r["event"] == "collapse"]
    assert events and all(e["reason"] == "constant_output" and e["layer"] == "fc1" for e in events)
    assert "generator output nearly constant" in caplog.text
    healthy, _ = _train(tmp_path, tiny_data, "healthy", _cfg(layers=["fc1"]))
    assert not [r for r in healthy.read_metrics() if r["event"] == "collapse"]


# --- metrics and figure ---------------------------------------------------------------------------
def test_frechet_distance_known_values():
    mu, cov = torch.zeros(3), torch.eye(3)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-9)
    # 1-D: (0 - 1)^2 + 1 + 4 - 2 * sqrt(1 * 4) = 2
    assert frechet_distance(torch.zeros(1), torch.eye(1), torch.ones(1), 4 * torch.eye(1)) == pytest.approx(2.0)
    a = torch.randn(4, 4, dtype=torch.float64)
    c1, c2 = (
        a @ a.T + torch.eye(4, dtype=torch.float64),
        torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)),
    )
    import numpy as np
    from scipy import linalg

    ref = np.trace(c1.numpy() + c2.numpy() - 2 * linalg.sqrtm(c1.numpy() @ c2.numpy()).real)
    assert frechet_distance(torch.zeros(4), c1, torch.zeros(4), c2) == pytest.approx(float(ref), rel=1e-6)


def test_evaluate_and_show_on_a_trained_run(tmp_path, tiny_data):
    from PIL import Image

    from interpretgan.explain import adversarial_drift, real_floor
    from interpretgan.explain.show import explanation_grid

    f = _classifier()
    run, _ = _train(tmp_path, tiny_data, "eval", _cfg(), f=f)
    from interpretgan.explain.explainer import load_explainer

    exps = {n: load_explainer(run.ckpt_dir / n) for n in ["conv1", "fc1", "fc2"]}
    res = evaluate_explainers(f, exps, tiny_data.test.x, reference_x=tiny_data.train.x[:64], batch_size=32)
    assert res["feature_layer"] == "fc1"
    for layer, entry in res["layers"].items():
        assert 0 <= entry["consistency"] <= 1 and 0 <= entry["random_consistency"] <= 1
        # a random generator's images lie further from real ones than a second set of real images
        assert math.isfinite(entry["frechet"]) and entry["random_frechet"] > res["frechet_floor"]
    assert real_floor(f, tiny_data.test.x, tiny_data.test.x) == pytest.approx(0.0, abs=1e-6)
    # consistency recomputed here, one explanation at a time: f(G(C(f_pre_i(x)))) has f(x)'s label
    xs = tiny_data.test.x.float() / 255
    with torch.no_grad():
        label = f(xs).argmax(1)
        for n, e in exps.items():
            kept = f(e(f.f_pre(xs, n))).argmax(1) == label
            assert res["layers"][n]["consistency"] == pytest.approx(kept.float().mean().item())

    x = tiny_data.test.x[:6].float() / 255
    x_adv = (x + 0.3 * torch.sign(torch.randn_like(x))).clamp(0, 1)
    y = tiny_data.test.y[:6]
    drift = adversarial_drift(f, exps, x_adv, y)
    assert drift["n"] == 6 and set(drift["layers"]) == {"conv1", "fc1", "fc2"}
    with torch.no_grad():
        adv = f(x_adv).argmax(1)
        for n, e in exps.items():  # Acc_i and the kept prediction, recomputed
            p = f(e(f.f_pre(x_adv, n))).argmax(1)
            assert drift["layers"][n]["accuracy"] == pytest.approx((p == y).float().mean().item())
            assert drift["layers"][n]["prediction_kept"] == pytest.approx((p == adv).float().mean().item())

    out = explanation_grid(f, exps, x[:3], x_adv[:3], ["a", "b", "c", "d"], tmp_path / "grid.png",
                           tensors_path=tmp_path / "grid.safetensors", title="test")
    with Image.open(tmp_path / "grid.png") as img:
        assert img.format == "PNG" and img.size[0] > 200 and img.size[1] > 200
    t = load_tensors(tmp_path / "grid.safetensors")
    assert t["nat_images"].shape == t["adv_images"].shape == (3, 4, 1, 16, 16)
    assert t["nat_label"].shape == t["nat_prob"].shape == (3, 4)
    assert torch.equal(t["nat_images"][:, 0], x[:3])
    assert out["layers"] == ["conv1", "fc1", "fc2"] and len(out["adversarial"]["label"]) == 3


def test_explain_run_end_to_end_on_the_embedded_mnist_sample(tmp_path):
    """create_explain_run -> train_run (with evaluation) -> show_run, as the CLI will call them."""
    from interpretgan.pipeline.checkpoints import save_model
    from interpretgan.pipeline.explain import create_explain_run, show_run, train_run

    torch.manual_seed(0)
    f = create_model("smallcnn")
    torch.nn.init.normal_(f.stages["fc3"].weight, std=0.3)  # TRADES' zero last layer would give one label
    cls_run = Run.create(tmp_path, "cls", "train", {"dataset": "mnist-sample"})
    save_model(cls_run.ckpt_dir, f)
    cfg = resolve_explain_config("mnist-sample", "smoke", {"layers": ["conv2", "fc1"], "scale_iterations": [2],
                                                           "n_test": 40, "eval_batch_size": 20})
    run = create_explain_run(cls_run, cfg, tmp_path / "explain")
    assert run.config["kind"] == "explain" and run.config["resolved_layers"] == ["conv2", "fc1"]
    res = train_run(run, progress=False)
    assert set(res["layers"]) == {"conv2", "fc1"} and res["n_test"] == 40
    assert read_json(run.path / "results.json")["layers"]["fc1"]["consistency"] == res["layers"]["fc1"]["consistency"]
    assert res["frechet_floor"] is not None
    shown = show_run(run, attack="fgsm", n=2)
    assert shown["source"] == "computed" and (run.path / "explanations-fgsm.png").is_file()
    assert load_tensors(run.path / "explanations-fgsm.safetensors")["adv_images"].shape == (2, 3, 1, 32, 32)

    # With the attack command's D* in the classifier run, show uses it (and its natural images).
    from interpretgan.attacks import evaluate_attacks, make_attack
    from interpretgan.data import load_dataset

    ds = load_dataset("mnist-sample", "test").subset(40, seed=0)
    train = load_dataset("mnist-sample", "train").subset(60, seed=0)
    other = create_model("smallcnn")  # other weights than the explained classifier's
    paper_fgsm = repr(make_attack("fgsm", eps=0.3))
    # passed over: a set at another radius, one made by other weights, one made with other attack
    # settings, one of the training split; and a smaller test set loses to the larger one
    for eps, model, name, split, made in (
        (0.1, f, "test-40-eps0.1", ds, None),
        (0.3, other, "test-40-eps0.25-other", ds, None),
        (0.3, f, "test-40-alpha-eps0.3", ds, paper_fgsm.replace("alpha=0.3", "alpha=0.1")),
        (0.3, f, "train-60-eps0.3", train, paper_fgsm),
        (0.3, f, "test-20-eps0.3", ds.subset(20, seed=0), paper_fgsm),
        (0.3, f, "test-40-eps0.3", ds, paper_fgsm),
    ):
        folder = cls_run.path / "attacks" / name
        evaluate_attacks(model, split.x, split.y, {"fgsm": make_attack("fgsm", eps=eps)}, batch_size=20, device="cpu",
                         num_classes=10, work_dir=folder)
        write_json(
            folder / "settings.json",
            {
                "split": "train" if split is train else "test",
                "n": len(split),
                "seed": 0,
                "eps": eps,
                **({"attacks": {"fgsm": made}} if made else {}),
            },
        )
    stored = show_run(run, attack="fgsm", n=3, out_dir=tmp_path / "shown")
    assert stored["source"] == str(folder / "fgsm.safetensors")
    t = load_tensors(tmp_path / "shown" / "explanations-fgsm.safetensors")
    picked = torch.tensor(stored["examples"])
    assert torch.equal(t["nat_images"][:, 0], ds.x[picked].float() / 255)
    from interpretgan.pipeline.explain import drift_run

    drift = drift_run(run, attack="fgsm")
    assert drift["source"] == stored["source"] and drift["n"] == 40
    assert read_json(run.path / "drift-fgsm.json")["layers"].keys() == {"conv2", "fc1"}
    # Diagnosis of these two layers: Acc_i for both, no Vul_i (conv1 and conv4 are not explained)
    from interpretgan.pipeline.diagnose import diagnose_run

    diag = diagnose_run([run], attack="fgsm", n_boot=20, out_dir=tmp_path / "diag")
    assert diag["runs"][0]["source"] == stored["source"]
    assert diag["table"]["vulnerability"] == {"conv2": None, "fc1": None} and diag["table"]["vulnerable"] == []
    assert diag["table"]["accuracy"]["fc1"] == pytest.approx(drift["layers"]["fc1"]["accuracy"])
    assert "Vul_i of conv2, fc1 is not given" in (tmp_path / "diag" / "vulnerability.md").read_text()
    assert (tmp_path / "diag" / "vulnerability.png").stat().st_size > 1000


@pytest.mark.parametrize("fuse", [False, True])
def test_bf16_explainers_train_in_float32_weights_and_differ_only_in_arithmetic(tiny_data, fuse):
    """--precision bf16 runs C, G, D and f under autocast: the weights stay float32, the explainers differ from
    fp32 ones (the arithmetic did change) and explain in float32 in [0, 1]; an unknown precision is one sentence."""
    from interpretgan.explain.explainer import explain

    f = _classifier()
    runs = {p: train_explainers(f, tiny_data.train, _cfg(precision=p, fuse=fuse), progress=False)
            for p in (None, "bf16")}
    x = tiny_data.test.x[:5].float() / 255
    for layer in ["conv1", "fc1", "fc2"]:
        e32, e16 = runs[None]["explainers"][layer], runs["bf16"]["explainers"][layer]
        assert all(p.dtype == torch.float32 for p in e16.parameters())
        assert not all(torch.equal(a, b) for a, b in zip(e32.parameters(), e16.parameters()))
        out = explain(f, {layer: e16}, x)[layer]
        assert out.dtype == torch.float32 and 0 <= float(out.min()) and float(out.max()) <= 1
    with pytest.raises(ConfigError, match="^--precision must be one of fp32, bf16, got 'half'$"):
        _cfg(precision="half").validate()


def test_channels_last_and_compiled_explainers_train_as_the_plain_ones(tmp_path, tiny_data):
    """--channels-last and --compile change the memory order and f's kernels, not the maths: the weights stay
    within rounding of the plain run's; f comes back in its own memory order; --compile records which parts stay
    eager and why in the run's config.json."""
    from interpretgan.explain.loop import EAGER_PARTS
    from interpretgan.pipeline.checkpoints import save_model
    from interpretgan.pipeline.explain import create_explain_run

    f = _classifier()
    plain = train_explainers(f, tiny_data.train, _cfg(), progress=False)
    for options in ({"channels_last": True}, {"compile": True}):
        _, out = _train(tmp_path, tiny_data, "-".join(options), _cfg(**options), f=f)
        assert all(p.is_contiguous() for p in f.parameters())
        for layer in ["conv1", "fc1", "fc2"]:
            for a, b in zip(plain["explainers"][layer].parameters(), out["explainers"][layer].parameters()):
                assert torch.allclose(a, b, atol=1e-4, rtol=1e-3), (options, layer)
    cls_run = Run.create(tmp_path, "cls", "train", {"dataset": "mnist-sample"})
    save_model(cls_run.ckpt_dir, f)
    for options in ({}, {"compile": True}):
        run = create_explain_run(cls_run, _cfg(**options), tmp_path / "explain")
        assert run.config.get("compiled_parts") == ({"compiled": ["classifier"], "eager": EAGER_PARTS}
                                                    if options else None)
