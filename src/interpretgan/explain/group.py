"""The explainers of some layers stepped together: one critic step and one generator step of Eq. 2-4
(WGAN-GP plus the interpretability term; with ``cfg.objective`` ``mse``, no critic and pixel MSE
instead) per batch, for a stack of one layer (unfused) or several
(``cfg.fuse``: the layers' G and D as grouped convolutions). :mod:`interpretgan.explain.loop` drives it."""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from interpretgan.config import ExplainConfig
from interpretgan.devices import autocast, to_channels_last
from interpretgan.distributed import Team
from interpretgan.errors import RunError
from interpretgan.explain.compression import CompressionNet
from interpretgan.explain.explainer import Explainer, Schedule
from interpretgan.explain.fit import check_fit, from_gan, to_gan
from interpretgan.explain.losses import critic_loss, generator_loss, gradient_penalty, reconstruction_loss
from interpretgan.explain.progan import (
    ProDiscriminator,
    ProGenerator,
    downsample_to,
    member_state_dict,
    resize_nearest,
    scale_side,
    stack_state_dicts,
    upsample2,
)


class LayerGroup:
    """The explainers of some layers, stepped together (a stack of one for unfused training)."""

    def __init__(self, layers: list[str], members: list[tuple[CompressionNet, ProGenerator, ProDiscriminator]],
                 seeds: list[int], cfg: ExplainConfig, device: torch.device, image_hw: tuple[int, int],
                 team: Team | None = None, rows: Tensor | None = None) -> None:
        """``team`` and ``rows``: in a torchrun job with more ranks than layers, the ranks training these
        layers together, and the rows of every batch of ``cfg.batch_size`` that this one takes (the
        batches :meth:`step` gets hold those rows alone)."""
        self.layers, self.cfg = layers, cfg
        self.team, self.rows = team or Team((0,), 0), rows
        self.side = int(members[0][1].config["image_size"])  # the GAN's; the images may be of another size (cfg.fit)
        #: what maps the GAN's images to the classifier's (recorded in explainer.json; empty when they agree)
        self.image_fit = ({} if tuple(image_hw) == (self.side, self.side)
                          else {"image_shape": list(image_hw), "fit": check_fit(cfg.fit)})
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
        for net in (self.compressions, self.generator, self.discriminator):
            to_channels_last(net, cfg.channels_last)
        betas = (float(cfg.betas[0]), float(cfg.betas[1]))
        self.opt_g = torch.optim.Adam(
            [*self.compressions.parameters(), *self.generator.parameters()], lr=cfg.lr, betas=betas
        )
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.lr, betas=betas)
        self.rngs = [torch.Generator(device=device).manual_seed(s + 1) for s in seeds]
        # The explainers kept (their files, every evaluation) are this moving average of C_i's and G_i's weights
        # (cfg.ema_decay), as pytorch_GAN_zoo's averaged generator. It runs across scales (a layer not yet grown
        # gets no gradient, so its average stays its initial value), where that code restarts it at each scale.
        self.decay = float(cfg.ema_decay or 0.0)
        self.average = (copy.deepcopy(self.compressions).requires_grad_(False),
                        copy.deepcopy(self.generator).requires_grad_(False)) if self.decay else None

    def step(self, x: Tensor, latents: list[Tensor], target: Tensor, scale: int, alpha: float,
             classifier: nn.Module) -> dict[str, Tensor]:
        """One critic step and one generator step on the batch ``x`` ``(B, C, H, W)`` in [0, 1].

        ``latents``: each layer's ``l_i`` for ``x``; ``target``: f's label ``(B,)`` or distribution
        ``(B, K)``; ``classifier``: f's forward on the explanations (compiled with ``cfg.compile``).
        Returns per-layer statistics, each ``(S,)``, in float32. With ``cfg.precision``
        ``bf16`` the forward passes (C_i, G_i, D_i, the gradient penalty's and f's) run under autocast.
        """
        with autocast(x.device, self.cfg.precision):
            stats = self._step(x, latents, target, scale, alpha, classifier)
        return {k: v.float() for k, v in stats.items()}

    def _step(self, x: Tensor, latents: list[Tensor], target: Tensor, scale: int, alpha: float,
              classifier: nn.Module) -> dict[str, Tensor]:
        cfg, s = self.cfg, len(self.layers)
        (b, c, h, w), side = x.shape, self.side
        z = torch.stack([comp(lat) for comp, lat in zip(self.compressions, latents)], dim=1)  # (B, S, latent)
        fake = self.generator(z, scale, alpha)  # (B, S*C, side, side)
        real = downsample_to(to_gan(x, side, cfg.fit), scale_side(scale))
        if scale > 0 and alpha < 1.0:  # during a fade-in, real images are blended the way G's output is
            real = alpha * real + (1.0 - alpha) * upsample2(F.avg_pool2d(real, 2))
        if s > 1:
            real = real.repeat(1, s, 1, 1)

        # Critic (Eq. 2's max over D, as WGAN-GP); none for the pixel-MSE objective.
        def critic(images: Tensor) -> Tensor:
            return self.discriminator(images, scale, alpha)

        fake_d = fake.detach()
        with_critic = (cfg.objective or "wgan-gp") == "wgan-gp"
        # A team member's losses are means over its rows: weighted by its share and summed over the team, the
        # gradients are those of the whole batch's means.
        share = 1.0 if self.rows is None else len(self.rows) / cfg.batch_size
        if with_critic:
            self.discriminator.requires_grad_(True)
            eps = torch.stack([self._draw(g, b) for g in self.rngs], dim=1)  # (B, S)
            d_real, d_fake = critic(real), critic(fake_d)
            gp = gradient_penalty(critic, real, fake_d, eps, input_scale=self.discriminator.input_scale)
            loss_d, parts_d = critic_loss(d_real, d_fake, gp, gp_weight=cfg.gp_weight, drift=cfg.drift)
            self.opt_d.zero_grad(set_to_none=True)
            (loss_d.sum() * share).backward()
            self.team.all_reduce_grads(self.discriminator.parameters())
            self.opt_d.step()
            self.discriminator.requires_grad_(False)
        else:
            loss_d, parts_d = torch.zeros(s, device=x.device), {}

        # Generator and compression net (Eq. 4): fool the updated critic (or fit x), keep f's label.
        x_hat = resize_nearest(fake, side).view(b, s, c, side, side).transpose(0, 1).reshape(s * b, c, side, side)
        x_hat = from_gan(x_hat, h, w, cfg.fit)
        # Gradient flows through f into x_hat (f's weights are frozen); with lambda = 0 the term is gone
        # and f runs without a graph, for the consistency figure alone.
        with torch.set_grad_enabled(cfg.interp_weight > 0):
            logits = classifier(x_hat)
        if with_critic:
            loss_g, parts_g = generator_loss(critic(fake), logits, target, interp_weight=cfg.interp_weight)
        else:
            loss_g, parts_g = reconstruction_loss(fake, real, logits, target, interp_weight=cfg.interp_weight)
        self.opt_g.zero_grad(set_to_none=True)
        (loss_g.sum() * share).backward()
        self.team.all_reduce_grads(p for group in self.opt_g.param_groups for p in group["params"])
        self.opt_g.step()
        if self.average is not None:
            with torch.no_grad():
                for avg, net in zip(self.average, (self.compressions, self.generator)):
                    torch._foreach_lerp_(list(avg.parameters()), list(net.parameters()), 1.0 - self.decay)
        self.discriminator.requires_grad_(True)

        label = target if target.dim() == 1 else target.argmax(dim=1)
        stats = {
            "critic_loss": loss_d.detach(), **parts_d,
            "generator_loss": loss_g.detach(), **parts_g,
            "consistency": (logits.detach().argmax(dim=1).view(s, b) == label).float().mean(dim=1),
            "fake_std": fake_d.view(b, s, -1).std(dim=0).mean(dim=1),  # a team's: the mean of its members' spreads
        }
        if self.team.parts == 1:
            return stats
        names = list(stats)
        together = self.team.all_reduce_sum(torch.stack([stats[k].float() * share for k in names]))
        return dict(zip(names, together.unbind(0)))

    def _draw(self, g: torch.Generator, b: int) -> Tensor:
        """The gradient penalty's interpolation weights of the ``b`` rows of the batch; a team member's are
        drawn for the whole batch and cut, so that the stream advances as in one process."""
        if self.rows is None:
            return torch.rand(b, generator=g, device=g.device)
        return torch.rand(self.cfg.batch_size, generator=g, device=g.device)[self.rows.to(g.device)]

    # Per-layer views and (de)serialisation.
    def member(self, i: int) -> tuple[CompressionNet, dict[str, Tensor], dict[str, Tensor]]:
        """Layer ``i``'s C, G state and D state: C and G averaged with ``cfg.ema_decay``, D as trained."""
        compressions, generator = self.average or (self.compressions, self.generator)
        g, d = generator.state_dict(), self.discriminator.state_dict()
        if len(self.layers) > 1:
            g, d = member_state_dict(g, i), member_state_dict(d, i)
        return compressions[i], g, d

    def state_dict(self) -> dict[str, Any]:
        return {
            "layers": list(self.layers),
            "compressions": [m.state_dict() for m in self.compressions],
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rngs": [g.get_state() for g in self.rngs],
            **({} if self.average is None else {"average": [net.state_dict() for net in self.average]}),
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
        if (self.average is None) != ("average" not in state):
            raise RunError("the resume state was written with another --ema-decay (a moving average of the weights "
                           f"{'kept' if 'average' in state else 'not kept'}); resume with the run's own setting")
        for net, sd in zip(self.average or (), state.get("average", ())):
            net.load_state_dict(sd)

    def explainer(self, i: int, schedule: Schedule, device: torch.device) -> Explainer:
        """Member ``i`` of a trained group as a stand-alone :class:`Explainer` (copies of its weights)."""
        comp, g_state, d_state = self.member(i)
        with torch.random.fork_rng(devices=[]):  # the initial values are replaced below
            gen = ProGenerator(**self.generator.config)
            disc = ProDiscriminator(**self.discriminator.config)
            c = CompressionNet(**comp.config)
        c.load_state_dict(comp.state_dict())
        gen.load_state_dict(g_state)
        disc.load_state_dict(d_state)
        scale, alpha = schedule.at(schedule.total - 1)
        return Explainer(self.layers[i], c, gen, disc, scale=scale, alpha=alpha, **self.image_fit).to(device).eval()
