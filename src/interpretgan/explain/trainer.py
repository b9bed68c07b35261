"""Training of the per-layer explainers ``x_hat_i = G_i(C_i(f_pre_i(x)))`` (Section 3, Fig. 2, Appendix C).

For every chosen layer i of a frozen classifier f: a compression net C_i, a progressive generator
G_i and its critic D_i, trained on natural training images with the WGAN-GP loss plus the
interpretability term (:mod:`interpretgan.explain.losses`): D_i sees real training images
(average-pooled to the current scale), C_i and G_i are trained together by one Adam optimizer,
D_i by another (lr 1e-3, betas (0, 0.99)). At a scale below the full resolution, G_i's output is
upsampled (nearest) before it is fed to f; while a scale fades in, the real images are blended
between the new resolution and the previous one with the same alpha as G's output (as in
ProGAN and pytorch_GAN_zoo).

**One loop for all layers** (``cfg.joint``, the default): every iteration draws one batch, runs f
once (one :meth:`TappedModel.taps` call gives every layer's latent and f's label), then steps each
layer's explainer. With ``cfg.fuse`` the layers' G and D run as one stack of grouped convolutions.
``joint=False`` trains the layers one after another (the paper's way), each with the same batches.
Every layer has its own initialisation seed and its own random generator (for the gradient
penalty's interpolation), so an unfused joint run and the separate runs give the same weights.

A run folder of kind ``explain`` holds ``ckpt/classifier.*`` (a copy of f), per layer
``ckpt/<layer>/explainer.safetensors`` (C, G and D, prefixed ``compression.``, ``generator.``,
``discriminator.``) with ``explainer.json`` (what rebuilds them, and how far training got), and
``ckpt/state-<joint|layer>.pt``, the resume state of a loop (weights, optimizers, random
generators, batch order, iteration), written atomically every ``checkpoint_every`` iterations; a
resumed run ends with the same weights as an uninterrupted one. ``metrics.jsonl`` receives a
``train`` record per layer every ``log_every`` iterations, ``collapse`` records when a generator
collapses or a critic runs away (also logged as warnings) and ``eval`` records.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from interpretgan.config import ExplainConfig
from interpretgan.data import ArrayDataset, load_dataset
from interpretgan.devices import concrete_device, eval_mode
from interpretgan.errors import ConfigError, RunError
from interpretgan.explain.compression import (
    CompressionNet,
    compression_configs,
    saved_compression_config,
)
from interpretgan.explain.losses import (
    classifier_target,
    critic_loss,
    generator_loss,
    gradient_penalty,
)
from interpretgan.explain.progan import (
    ProDiscriminator,
    ProGenerator,
    downsample_to,
    member_state_dict,
    num_scales,
    resize_nearest,
    saved_generator_config,
    scale_side,
    stack_state_dicts,
    upsample2,
)
from interpretgan.models import TappedModel
from interpretgan.runs import (
    Run,
    find_run,
    load_model,
    load_state,
    load_tensors,
    read_json,
    require_same_config,
    save_model,
    save_state,
    save_tensors,
    tensor_metadata,
    write_json,
)

log = logging.getLogger(__name__)

#: Where the gradient penalty is taken, recorded in each explainer.json: the critic's own [-1, 1] pixel
#: space, as in ProGAN. Explainers checkpointed before 2026-11-30 took it on their [0, 1] inputs
#: (twice the gradient norm), and their files say nothing.
GP_SPACE, LEGACY_GP_SPACE = "[-1, 1]", "[0, 1]"

RUN_KIND = "explain"


# --- schedule ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Schedule:
    """Iterations per scale and the fade-in length of each (0 for the first scale)."""

    iterations: tuple[int, ...]
    fade: tuple[int, ...]

    @classmethod
    def from_config(cls, cfg: ExplainConfig, n_scales: int, n_train: int) -> Schedule:
        its = tuple(cfg.iterations_per_scale(n_scales, n_train))
        fade = tuple(0 if s == 0 else max(1, round(cfg.fade_fraction * n)) for s, n in enumerate(its))
        return cls(its, fade)

    @property
    def total(self) -> int:
        return sum(self.iterations)

    def at(self, iteration: int) -> tuple[int, float]:
        """``(scale, alpha)`` of the 0-based ``iteration``: alpha grows linearly from 0 to 1 over the fade-in."""
        for scale, n in enumerate(self.iterations):
            if iteration < n:
                alpha = 1.0 if scale == 0 else min(1.0, iteration / self.fade[scale])
                return scale, alpha
            iteration -= n
        return len(self.iterations) - 1, 1.0


# --- one layer's explainer, for use after training -----------------------------------------------
class Explainer(nn.Module):
    """C_i and G_i of one layer (and D_i, kept for inspection): latent -> explanation.

    ``forward(latent)`` maps ``l_i`` ``(B, *tap_shape)`` to ``x_hat`` ``(B, C, image_size, image_size)``
    in [0, 1], at the scale training reached (upsampled to the full size when below it).
    """

    def __init__(self, layer: str, compression: CompressionNet, generator: ProGenerator,
                 discriminator: ProDiscriminator | None = None, *, scale: int | None = None, alpha: float = 1.0) -> None:
        super().__init__()
        self.layer = layer
        self.compression, self.generator, self.discriminator = compression, generator, discriminator
        self.scale = generator.n_scales - 1 if scale is None else scale
        self.alpha = alpha
        self.image_size = int(generator.config["image_size"])

    def forward(self, latent: Tensor) -> Tensor:
        return resize_nearest(self.generator(self.compression(latent), self.scale, self.alpha), self.image_size)


@torch.no_grad()
def explain(classifier: TappedModel, explainers: Mapping[str, Explainer], x: Tensor) -> dict[str, Tensor]:
    """Explanations of images ``x`` ``(B, C, H, W)`` in [0, 1] at every layer of ``explainers``.

    One forward pass of the classifier (in eval mode) gives every latent. Returns
    ``{layer: x_hat}`` with ``x_hat`` ``(B, C, H, W)`` in [0, 1], in the classifier's layer order.
    """
    layers = [n for n in classifier.layer_names if n in explainers]
    with eval_mode(classifier):
        latents = classifier.taps(x, layers)
    return {layer: explainers[layer](latents[layer]) for layer in layers}


# --- collapse detection --------------------------------------------------------------------------
def detect_collapse(fake_std: float, critic_loss: float, *, min_std: float, max_critic: float) -> list[tuple[str, float, float]]:
    """Signs that a GAN failed: ``[(reason, value, threshold), ...]`` (empty when healthy).

    ``constant_output``: the per-pixel standard deviation of G's outputs over a batch (averaged
    over pixels) is below ``min_std``, i.e. G gives (nearly) the same image for every input;
    ``critic_runaway``: ``|critic loss|`` is above ``max_critic`` or not finite.
    """
    found = []
    if not fake_std >= min_std:  # also catches NaN
        found.append(("constant_output", fake_std, min_std))
    if not abs(critic_loss) <= max_critic:
        found.append(("critic_runaway", critic_loss, max_critic))
    return found


# --- training ------------------------------------------------------------------------------------
def _layer_seed(seed: int, layer_index: int) -> int:
    """Seed of one layer's explainer, from the run seed and the layer's index in the classifier."""
    return seed * 1_000_003 + 7_919 * (layer_index + 1)


def build_layer_modules(cfg: ExplainConfig, compression_config: dict[str, Any], image_channels: int, image_size: int,
                        seed: int) -> tuple[CompressionNet, ProGenerator, ProDiscriminator]:
    """C_i, G_i and D_i of one layer, initialised from ``seed`` (on the CPU; the global RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)  # the CPU generator only (restored on exit); CUDA's untouched
        c = CompressionNet(**compression_config)
        g = ProGenerator(cfg.latent_dim, image_channels, image_size, max_channels=cfg.gan_channels,
                         channel_base=cfg.gan_channel_base)
        d = ProDiscriminator(image_channels, image_size, max_channels=cfg.gan_channels,
                             channel_base=cfg.gan_channel_base, mbstd_group=cfg.mbstd_group)
    return c, g, d


class _Group:
    """The explainers of some layers, stepped together (a stack of one for unfused training)."""

    def __init__(self, layers: list[str], members: list[tuple[CompressionNet, ProGenerator, ProDiscriminator]],
                 seeds: list[int], cfg: ExplainConfig, device: torch.device) -> None:
        self.layers, self.cfg = layers, cfg
        self.compressions = nn.ModuleList([m[0] for m in members]).to(device)
        if len(members) == 1:
            self.generator, self.discriminator = members[0][1].to(device), members[0][2].to(device)
        else:
            g0, d0 = members[0][1], members[0][2]
            with torch.random.fork_rng(devices=[]):  # the initial values are replaced below
                self.generator = ProGenerator(**g0.config, stack=len(members))
                self.discriminator = ProDiscriminator(**d0.config, stack=len(members))
            self.generator.load_state_dict(stack_state_dicts([m[1].state_dict() for m in members]))
            self.discriminator.load_state_dict(stack_state_dicts([m[2].state_dict() for m in members]))
            self.generator.to(device)
            self.discriminator.to(device)
        betas = (float(cfg.betas[0]), float(cfg.betas[1]))
        self.opt_g = torch.optim.Adam([*self.compressions.parameters(), *self.generator.parameters()], lr=cfg.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.lr, betas=betas)
        self.rngs = [torch.Generator(device=device).manual_seed(s + 1) for s in seeds]

    def step(self, x: Tensor, latents: list[Tensor], target: Tensor, scale: int, alpha: float,
             classifier: TappedModel) -> dict[str, Tensor]:
        """One critic step and one generator step on the batch ``x`` ``(B, C, H, W)`` in [0, 1].

        ``latents``: each layer's ``l_i`` for ``x``; ``target``: f's label ``(B,)`` or distribution
        ``(B, K)``. Returns per-layer statistics, each ``(S,)``.
        """
        cfg, s = self.cfg, len(self.layers)
        b, c, size = x.shape[0], x.shape[1], x.shape[-1]
        z = torch.stack([comp(lat) for comp, lat in zip(self.compressions, latents)], dim=1)  # (B, S, latent)
        fake = self.generator(z, scale, alpha)  # (B, S*C, side, side)
        real = downsample_to(x, scale_side(scale))
        if scale > 0 and alpha < 1.0:  # during a fade-in, real images are blended the way G's output is
            real = alpha * real + (1.0 - alpha) * upsample2(F.avg_pool2d(real, 2))
        if s > 1:
            real = real.repeat(1, s, 1, 1)

        # Critic (Eq. 2's max over D, as WGAN-GP).
        def critic(images: Tensor) -> Tensor:
            return self.discriminator(images, scale, alpha)

        self.discriminator.requires_grad_(True)
        fake_d = fake.detach()
        eps = torch.stack([torch.rand(b, generator=g, device=g.device) for g in self.rngs], dim=1)  # (B, S)
        d_real, d_fake = critic(real), critic(fake_d)
        gp = gradient_penalty(critic, real, fake_d, eps, input_scale=self.discriminator.input_scale)
        loss_d, parts_d = critic_loss(d_real, d_fake, gp, gp_weight=cfg.gp_weight, drift=cfg.drift)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.sum().backward()
        self.opt_d.step()

        # Generator and compression net (Eq. 4): fool the updated critic, keep f's label.
        self.discriminator.requires_grad_(False)
        d_gen = critic(fake)
        x_hat = resize_nearest(fake, size).view(b, s, c, size, size).transpose(0, 1).reshape(s * b, c, size, size)
        logits = classifier(x_hat)  # gradient flows through f into x_hat; f's weights are frozen
        loss_g, parts_g = generator_loss(d_gen, logits, target, interp_weight=cfg.interp_weight)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.sum().backward()
        self.opt_g.step()
        self.discriminator.requires_grad_(True)

        label = target if target.dim() == 1 else target.argmax(dim=1)
        return {
            "critic_loss": loss_d.detach(), **parts_d,
            "generator_loss": loss_g.detach(), **parts_g,
            "consistency": (logits.detach().argmax(dim=1).view(s, b) == label).float().mean(dim=1),
            "fake_std": fake_d.view(b, s, -1).std(dim=0).mean(dim=1),
        }

    # Per-layer views and (de)serialisation.
    def member(self, i: int) -> tuple[CompressionNet, dict[str, Tensor], dict[str, Tensor]]:
        g, d = self.generator.state_dict(), self.discriminator.state_dict()
        if len(self.layers) > 1:
            g, d = member_state_dict(g, i), member_state_dict(d, i)
        return self.compressions[i], g, d

    def state_dict(self) -> dict[str, Any]:
        return {
            "layers": list(self.layers),
            "compressions": [m.state_dict() for m in self.compressions],
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rngs": [g.get_state() for g in self.rngs],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["layers"] != self.layers:
            raise RunError(f"the resume state holds layers {state['layers']}, expected {self.layers}")
        for m, sd in zip(self.compressions, state["compressions"]):
            m.load_state_dict(sd)
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        for g, st in zip(self.rngs, state["rngs"]):
            g.set_state(st)


class _BatchStream:
    """Seeded random batches of ``batch_size`` indices (a new permutation per epoch, last partial batch
    dropped); its state is the generator, the current permutation and the position in it, so a
    resumed run continues mid-epoch with the same batches."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        if n < batch_size:
            raise ConfigError(f"the explainers need at least one full batch: {n} training images < batch size {batch_size}")
        self.n, self.batch_size = n, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.perm = torch.empty(0, dtype=torch.int64)
        self.pos = 0

    def next(self) -> Tensor:
        if self.pos + self.batch_size > len(self.perm):
            self.perm = torch.randperm(self.n, generator=self.generator)
            self.pos = 0
        idx = self.perm[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "perm": self.perm, "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.perm, self.pos = state["perm"], int(state["pos"])


def train_explainers(
    classifier: TappedModel,
    train: ArrayDataset,
    cfg: ExplainConfig,
    run: Run,
    *,
    device: str | torch.device = "cpu",
    progress: bool = True,
    resume: bool = False,
    stop_after_iterations: int | None = None,
) -> dict[str, Any]:
    """Train the explainers of ``cfg.layers`` (all when empty) of the frozen ``classifier`` into ``run``.

    Args:
        classifier: f, already on ``device``; it is kept in eval mode and its weights are not
            changed (their ``requires_grad`` flags and the training mode are restored afterwards).
        train: the natural training images (uint8 ``(N, C, H, W)`` at the classifier's image size);
            a seeded subset of ``cfg.n_train`` is used when set. Copied to ``device`` as uint8.
        device: where the explainers, the data and the optimizer states live.
        resume: continue from the resume states in ``run/ckpt`` (layers already finished are skipped).
        stop_after_iterations: stop, as if interrupted, once a loop has done this many iterations
            (a checkpoint is written there).
    Returns:
        ``{"layers": [...], "iterations": total per layer, "interrupted": bool, "seconds": float}``.
    """
    device = concrete_device(device)
    layers = classifier.check_layers(cfg.layers or classifier.layer_names)
    if not layers:
        raise ConfigError("no layer to explain")
    p = next(classifier.parameters())
    if p.device != device:
        raise ConfigError(f"the classifier is on {p.device} but the explainers are to train on {device}; move it first")
    image_size = int(classifier.config["image_size"])
    if train.image_size != image_size or train.channels != int(classifier.config["in_channels"]):
        raise ConfigError(
            f"the training images are {train.channels}x{train.image_size}x{train.image_size} but the classifier takes "
            f"{classifier.config['in_channels']}x{image_size}x{image_size}"
        )
    train = train.subset(cfg.n_train, seed=cfg.seed)
    schedule = Schedule.from_config(cfg, num_scales(image_size), len(train))
    comp_cfgs = compression_configs(classifier, layers, cfg.latent_dim, width=cfg.compression_width)
    train_x = train.x.to(device)

    frozen = [q.requires_grad for q in classifier.parameters()]
    interrupted = False
    loops = [("joint", layers)] if cfg.joint else [(layer, [layer]) for layer in layers]
    try:
        with eval_mode(classifier):
            classifier.requires_grad_(False)  # f is frozen: gradients flow through it, never into it
            for tag, loop_layers in loops:
                if not _train_loop(tag, loop_layers, classifier, train_x, cfg, comp_cfgs, schedule, run, device,
                                   progress=progress, resume=resume, stop_after=stop_after_iterations):
                    interrupted = True
                    break
    finally:
        for q, flag in zip(classifier.parameters(), frozen):
            q.requires_grad_(flag)
    # The seconds of the training records, so that a resumed run counts the time before the
    # interruption and a run resumed when already finished does not report the few ms of this call.
    seconds = sum(r["seconds"] for r in run.read_metrics() if r.get("event") == "train"
                  and any(r.get("loop") == tag and r.get("layer") == ls[0] for tag, ls in loops))
    return {"layers": layers, "iterations": schedule.total, "interrupted": interrupted, "seconds": seconds}


def _refuse_other_versions(run: Run, members: list[tuple[CompressionNet, ProGenerator, Any]]) -> None:
    """RunError when any layer already checkpointed in ``run`` was built by another version of the generator
    or of the compression net's initialisation than ``members``, or trained with another gradient penalty
    (one run never mixes them, and resuming must equal an uninterrupted run). Every layer of a run shares
    one generator config."""
    generator, init = members[0][1].config, members[0][0].config["init"]
    for path in sorted(run.ckpt_dir.glob("*/explainer.json")):
        spec = read_json(path)
        if saved_generator_config(spec["generator"]) != generator:
            what = "generator"
        elif saved_compression_config(spec["compression"])["init"] != init:
            what = "compression nets' initialisation"
        elif spec.get("gp_space", LEGACY_GP_SPACE) != GP_SPACE:
            what = "gradient penalty (taken on images in [0, 1], not in the critic's [-1, 1])"
        else:
            continue
        raise RunError(f"{path.parent} was checkpointed by an earlier version of the {what}; "
                       "train these layers anew in another explain run")


def _train_loop(tag: str, layers: list[str], classifier: TappedModel, train_x: Tensor, cfg: ExplainConfig,
                comp_cfgs: dict[str, dict[str, Any]], schedule: Schedule, run: Run, device: torch.device, *,
                progress: bool, resume: bool, stop_after: int | None) -> bool:
    """One loop over ``schedule`` for ``layers``; returns False when stopped by ``stop_after``."""
    all_names = classifier.layer_names
    if resume and all(_finished(run, layer, schedule.total) for layer in layers):
        log.info("explainers of %s already trained in %s: skipping", ", ".join(layers), run.path)
        return True
    c_img, size = train_x.shape[1], train_x.shape[-1]
    seeds = [_layer_seed(cfg.seed, all_names.index(layer)) for layer in layers]
    members = [build_layer_modules(cfg, comp_cfgs[layer], c_img, size, seed) for layer, seed in zip(layers, seeds)]
    if cfg.fuse and len(layers) > 1:
        groups = [_Group(layers, members, seeds, cfg, device)]
    else:
        groups = [_Group([layer], [m], [seed], cfg, device) for layer, m, seed in zip(layers, members, seeds)]
    stream = _BatchStream(train_x.shape[0], cfg.batch_size, cfg.seed)
    if resume:  # explainers checkpointed by another version of the generator or compression net cannot be continued
        _refuse_other_versions(run, members)

    start = 0
    sums: dict[str, dict[str, Tensor]] = {}  # per-layer statistics of the current log interval
    count = 0
    state_path = run.ckpt_dir / f"state-{tag}.pt"
    if resume and state_path.is_file():
        state = load_state(state_path)
        if state.get("device_type", device.type) != device.type:  # random streams differ between device types
            raise RunError(f"{state_path} was written training on {state['device_type']}; resume it there "
                           f"(--device {state['device_type']}), not on {device.type}")
        for g, gs in zip(groups, state["groups"], strict=True):
            g.load_state_dict(gs)
        stream.load_state_dict(state["stream"])
        start = int(state["iteration"])
        sums = {layer: {k: v.to(device) for k, v in acc.items()} for layer, acc in state["log_sums"].items()}
        count = int(state["log_count"])
        log.info("resuming explainers of %s at iteration %d of %d", ", ".join(layers), start, schedule.total)
        if start and any(_iteration(run, layer) != start for layer in layers):
            # a layer's files were deleted or are older than the loop's state: rewrite them from it,
            # else a loop already at its end would never write them again
            _checkpoint(run, groups, schedule, start, stream, tag, sums, count)
    if resume:
        run.truncate_metrics(lambda r: r.get("event") != "eval" and not (r.get("layer") in layers and r.get("iteration", 0) > start))

    names = list(dict.fromkeys([*layers, all_names[-1]]))  # one forward pass gives latents and f's logits
    stop = schedule.total if stop_after is None else min(schedule.total, stop_after)
    t_log = time.perf_counter()
    warned: set[tuple[str, str, int]] = set()
    bar = tqdm(total=schedule.total, initial=start, desc=f"explain {tag}", disable=not progress, leave=False)
    try:
        for it in range(start, stop):
            scale, alpha = schedule.at(it)
            idx = stream.next().to(device)
            x = train_x[idx].float().div_(255)
            with torch.no_grad():
                taps = classifier.taps(x, names)
            target = classifier_target(taps[all_names[-1]], cfg.interp_target)
            for g in groups:
                stats = g.step(x, [taps[layer] for layer in g.layers], target, scale, alpha, classifier)
                for i, layer in enumerate(g.layers):
                    acc = sums.setdefault(layer, {})
                    for k, v in stats.items():
                        acc[k] = acc[k] + v[i] if k in acc else v[i]
            count += 1
            bar.update(1)
            done = it + 1
            scale_ends = done < schedule.total and schedule.at(done)[0] != scale  # one record never spans two scales
            if done % cfg.log_every == 0 or done == schedule.total or scale_ends:
                now = time.perf_counter()
                records = _log_records(run, sums, count, done, scale, alpha, tag, now - t_log, cfg, warned)
                bar.set_postfix(_postfix(records, scale, alpha), refresh=False)
                sums, count, t_log = {}, 0, now
            if done % cfg.checkpoint_every == 0 or done == schedule.total or done == stop:
                _checkpoint(run, groups, schedule, done, stream, tag, sums, count)
    finally:
        bar.close()
    return stop == schedule.total


def _log_records(run: Run, sums: dict[str, dict[str, Tensor]], count: int, done: int, scale: int, alpha: float, tag: str,
                 seconds: float, cfg: ExplainConfig, warned: set[tuple[str, str, int]]) -> list[dict[str, Any]]:
    records = []
    side = scale_side(scale)
    for layer, acc in sums.items():
        means = {k: float(v) / count for k, v in acc.items()}
        record = {"event": "train", "layer": layer, "iteration": done, "scale": scale, "side": side, "alpha": alpha,
                  "loop": tag, **means, "seconds": seconds}
        run.append_metrics(record)
        records.append(record)
        for reason, value, threshold in detect_collapse(means["fake_std"], means["critic_loss"],
                                                        min_std=cfg.collapse_std, max_critic=cfg.collapse_critic):
            run.append_metrics({"event": "collapse", "layer": layer, "iteration": done, "scale": scale, "side": side,
                                "reason": reason, "value": value, "threshold": threshold})
            if (layer, reason, scale) not in warned:
                warned.add((layer, reason, scale))
                what = ("generator output nearly constant (per-pixel std %.4g < %.4g)" if reason == "constant_output"
                        else "critic running away (|critic loss| %.4g > %.4g)")
                log.warning("layer %s, iteration %d, %dx%d: " + what, layer, done, side, side, value, threshold)
    return records


def _postfix(records: list[dict[str, Any]], scale: int, alpha: float) -> dict[str, str]:
    n = max(len(records), 1)
    mean = lambda k: sum(r[k] for r in records) / n  # noqa: E731
    layer = records[0]["layer"] if len(records) == 1 else f"{len(records)} layers"
    side = scale_side(scale)
    return {"layer": layer, "scale": f"{side}x{side}", "alpha": f"{alpha:.2f}", "D": f"{mean('critic_loss'):.3f}",
            "G": f"{mean('generator_loss'):.3f}", "cons": f"{mean('consistency'):.2f}"}


# --- checkpoints ---------------------------------------------------------------------------------
def layers_behind(run: Run, layers: Sequence[str]) -> list[tuple[str, int, int | str]]:
    """Those of ``layers`` whose explainer in ``run`` has not finished its schedule, as
    ``(layer, iteration reached, total iterations)`` (a layer without a checkpoint: ``0`` of ``"?"``)."""
    behind = []
    for layer in layers:
        path = run.ckpt_dir / layer / "explainer.json"
        meta = read_json(path) if path.is_file() else {}
        if meta.get("iteration") is None or meta.get("iteration") != meta.get("total_iterations"):
            behind.append((layer, meta.get("iteration", 0), meta.get("total_iterations", "?")))
    return behind


def _iteration(run: Run, layer: str) -> int | None:
    """The iteration of ``layer``'s checkpointed explainer (None without one)."""
    path = run.ckpt_dir / layer / "explainer.json"
    if not (path.is_file() and path.with_suffix(".safetensors").is_file()):
        return None
    return read_json(path).get("iteration")


def _finished(run: Run, layer: str, total: int) -> bool:
    return _iteration(run, layer) == total


def _checkpoint(run: Run, groups: list[_Group], schedule: Schedule, done: int, stream: _BatchStream, tag: str,
                log_sums: dict[str, dict[str, Tensor]], log_count: int) -> None:
    """Per-layer weights first (always loadable), then the loop's resume state."""
    scale, alpha = schedule.at(done - 1)
    for g in groups:
        for i, layer in enumerate(g.layers):
            comp, g_state, d_state = g.member(i)
            save_explainer(run.ckpt_dir / layer, layer, comp, g_state, d_state, generator_config=g.generator.config,
                           discriminator_config=g.discriminator.config,
                           meta={"iteration": done, "total_iterations": schedule.total, "scale": scale, "alpha": alpha,
                                 "schedule": list(schedule.iterations), "gp_space": GP_SPACE})
    save_state(run.ckpt_dir / f"state-{tag}.pt",
               {"iteration": done, "device_type": groups[0].rngs[0].device.type,
                "groups": [g.state_dict() for g in groups], "stream": stream.state_dict(),
                "log_sums": log_sums, "log_count": log_count})


def save_explainer(directory: Path, layer: str, compression: CompressionNet, generator_state: Mapping[str, Tensor],
                   discriminator_state: Mapping[str, Tensor], *, generator_config: dict[str, Any],
                   discriminator_config: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write ``explainer.safetensors`` (C, G, D weights) and ``explainer.json`` (how to rebuild them).

    The weights record ``meta["iteration"]`` too, so that a pair of files from two checkpoints (an
    interruption between the two writes) is recognised on load.
    """
    tensors = {f"compression.{k}": v for k, v in compression.state_dict().items()}
    tensors.update({f"generator.{k}": v for k, v in generator_state.items()})
    tensors.update({f"discriminator.{k}": v for k, v in discriminator_state.items()})
    save_tensors(directory / "explainer.safetensors", tensors, metadata={"iteration": str(meta["iteration"])})
    write_json(directory / "explainer.json", {"layer": layer, "compression": compression.config, "generator": generator_config,
                                             "discriminator": discriminator_config, **meta})


def load_explainer(directory: str | Path, device: str | torch.device = "cpu") -> Explainer:
    """Rebuild one layer's :class:`Explainer` from ``directory`` (``ckpt/<layer>``), in eval mode."""
    directory = Path(directory)
    spec = read_json(directory / "explainer.json")
    weights = directory / "explainer.safetensors"
    tensors = load_tensors(weights, device)
    written = tensor_metadata(weights).get("iteration")  # files written before 2026-11-30 have none
    if written is not None and "iteration" in spec and int(written) != int(spec["iteration"]):
        raise RunError(f"{weights} holds the weights of iteration {written} but {directory / 'explainer.json'} describes "
                       f"iteration {spec['iteration']} (interrupted between the two writes); resume the explain run to rewrite them")
    with torch.random.fork_rng(devices=[]):  # initial values are overwritten
        comp = CompressionNet(**saved_compression_config(spec["compression"]))
        gen = ProGenerator(**saved_generator_config(spec["generator"]))
        # The pretrained zoo ships C and G only: the critic is not needed to explain.
        disc = ProDiscriminator(**spec["discriminator"]) if spec.get("discriminator") is not None else None
    parts = [("compression.", comp), ("generator.", gen)] + ([("discriminator.", disc)] if disc is not None else [])
    for prefix, module in parts:
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(state)
        except RuntimeError as err:
            raise RunError(f"{directory / 'explainer.safetensors'} does not fit its explainer.json ({err.__class__.__name__})") from None
    exp = Explainer(spec["layer"], comp, gen, disc, scale=int(spec.get("scale", gen.n_scales - 1)), alpha=float(spec.get("alpha", 1.0)))
    return exp.to(device).eval()


def load_explainers(run: Run | str | Path, device: str | torch.device = "cpu",
                    layers: Sequence[str] | None = None, *, finished: bool = False) -> tuple[TappedModel, dict[str, Explainer]]:
    """The classifier copy and the explainers of an explain run, on ``device`` in eval mode.

    ``layers`` defaults to every layer with a checkpoint, in the classifier's order. ``finished``:
    RunError unless every layer the run trains has finished its schedule (for figures such as
    Table 1, where a missing or half-trained layer would shift the others' numbers).
    """
    run = run if isinstance(run, Run) else Run.open(run, kind=RUN_KIND)
    classifier = load_model(run.path, device, name="classifier")
    available = [n for n in classifier.layer_names if (run.ckpt_dir / n / "explainer.json").is_file()]
    if finished:
        for n, done, total in layers_behind(run, run.config.get("resolved_layers") or classifier.layer_names)[:1]:
            raise RunError(f"{run.path} has not finished training layer {n} (iteration {done} of {total}); "
                           f"resume it with `interpretgan explain train --resume {run.path}`")
        if layers is None and run.config.get("resolved_layers"):
            layers = [n for n in classifier.layer_names if n in run.config["resolved_layers"]]
    if layers is None:
        layers = available
    else:
        layers = classifier.check_layers(layers)
        missing = [n for n in layers if n not in available]
        if missing:
            raise RunError(f"{run.path} has no explainer for layer(s) {', '.join(missing)}; trained: {', '.join(available) or 'none'}")
    if not layers:
        raise RunError(f"{run.path} holds no trained explainer yet; expected {run.ckpt_dir}/<layer>/explainer.json")
    return classifier, {n: load_explainer(run.ckpt_dir / n, device) for n in layers}


# --- run folders ---------------------------------------------------------------------------------
def explain_config_of(run: Run) -> ExplainConfig:
    """The :class:`ExplainConfig` stored in an explain run's ``config.json``."""
    names = {f.name for f in dataclasses.fields(ExplainConfig)}
    return ExplainConfig.from_dict({k: v for k, v in run.config.items() if k in names})


def create_explain_run(classifier_run: Run | str | Path, cfg: ExplainConfig, root: str | Path,
                       description: str | None = None) -> Run:
    """A new explain run under ``root`` for the classifier of the train run ``classifier_run``.

    Checks the layers, writes the resolved config (with the classifier run's path and image size)
    and a copy of the classifier (``ckpt/classifier.*``) so that the run is self-contained.
    """
    cls_run = classifier_run if isinstance(classifier_run, Run) else Run.open(classifier_run, kind="train")
    classifier = load_model(cls_run.path, "cpu")
    layers = classifier.check_layers(cfg.layers or classifier.layer_names)
    cfg.validate()
    cfg.iterations_per_scale(num_scales(int(classifier.config["image_size"])), n_train=1)  # its length, before a folder exists
    extra = {"classifier_run": str(cls_run.path.resolve()), "classifier_model": getattr(classifier, "registry_name", None),
             "image_size": int(classifier.config["image_size"]), "resolved_layers": layers}
    run = Run.create(root, description or f"explain-{cls_run.path.name}-{cfg.preset}", RUN_KIND, {**cfg.to_dict(), **extra})
    save_model(run.ckpt_dir, classifier, name="classifier", metadata={"source_run": str(cls_run.path.resolve())})
    return run


def train_run(run: Run | str | Path, *, device: str | torch.device = "cpu", data_root: Any = None, verify: bool = True,
              resume: bool = False, progress: bool = True, evaluate: bool = True,
              stop_after_iterations: int | None = None) -> dict[str, Any]:
    """Train (or resume) the explainers of an explain run, then evaluate them on the test set.

    Returns the results (also written to ``run/results.json`` when evaluated): training summary
    plus, per layer, consistency and Frechet distance (:func:`interpretgan.explain.metrics.evaluate_explainers`).
    """
    from interpretgan.explain.metrics import evaluate_explainers

    run = run if isinstance(run, Run) else Run.open(run, kind=RUN_KIND)
    cfg = explain_config_of(run)
    device = torch.device(device)
    classifier = load_model(run.path, device, name="classifier")
    size = int(classifier.config["image_size"])
    train = load_dataset(cfg.dataset, "train", root=data_root, image_size=size, verify=verify)
    summary = train_explainers(classifier, train, cfg, run, device=device, progress=progress, resume=resume,
                               stop_after_iterations=stop_after_iterations)
    if summary["interrupted"] or not evaluate:
        return summary
    test = load_dataset(cfg.dataset, "test", root=data_root, image_size=size, verify=verify).subset(cfg.n_test, seed=cfg.seed)
    _, explainers = load_explainers(run, device, summary["layers"])
    quality = evaluate_explainers(classifier, explainers, test.x, reference_x=train.subset(len(test), seed=cfg.seed + 1).x,
                                  batch_size=cfg.eval_batch_size, device=device, baseline_seed=cfg.seed)
    run.append_metrics({"event": "eval", **quality})
    results = {**summary, **quality, "n_test": len(test)}
    write_json(run.path / "results.json", results)
    return results


def format_results(res: dict[str, Any]) -> str:
    """A plain-text table of :func:`train_run`'s results (per layer: consistency, Frechet distance)."""
    if "layers" not in res or not isinstance(res["layers"], dict):
        state = "interrupted" if res.get("interrupted") else "trained"
        return f"{state}: {', '.join(res.get('layers', []))} ({res.get('iterations')} iterations per layer)"
    lines = [f"explanations of {res.get('n_test')} test images; Frechet distance in f's {res['feature_layer']} features",
             f"{'layer':<8} {'consistency':>11} {'frechet':>9} {'random G: cons.':>15} {'frechet':>9}"]
    for layer, e in res["layers"].items():
        lines.append(f"{layer:<8} {e['consistency']:>11.4f} {e['frechet']:>9.2f} "
                     f"{e.get('random_consistency', float('nan')):>15.4f} {e.get('random_frechet', float('nan')):>9.2f}")
    if res.get("frechet_floor") is not None:
        lines.append(f"real vs real (training vs test images): frechet {res['frechet_floor']:.2f}")
    return "\n".join(lines)


def explain_in(root: str | Path, description: str, classifier_run: Run | str | Path, cfg: ExplainConfig, *,
               device: str | torch.device = "cpu", data_root: Any = None, verify: bool = True,
               progress: bool = True) -> Run:
    """Train and evaluate explainers into ``root/<NNNNN>-<description>``, resuming that run when it exists.

    The multi-stage jobs' counterpart of :func:`create_explain_run` + :func:`train_run`: a finished run
    (``results.json``) is returned as it is; one with another config is an error, never overwritten.
    """
    run = find_run(root, description)
    if run is None:
        run = create_explain_run(classifier_run, cfg, root, description)
    else:
        require_same_config(run, explain_config_of(run).to_dict(), cfg.to_dict(), "holds explainers trained")
        if (run.path / "results.json").is_file():
            return run
    train_run(run, device=device, data_root=data_root, verify=verify, resume=True, progress=progress)
    return run
