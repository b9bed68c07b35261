"""Training objectives that plug into the one training loop (:func:`interpretgan.training.train_classifier`).

- ``natural``: cross-entropy.
- ``trades``: TRADES (Zhang et al. 2019): ``CE(f(x), y) + beta * KL(f(x) || f(x'))`` with ``x'``
  from ``attack_steps`` sign-gradient steps on the KL term, started at ``x + 0.001 * N(0, 1)``.
- ``pgd-at``: Madry et al.: cross-entropy on PGD examples (``attack_steps`` steps, random start).
- ``atta``: ATTA-1 (Zheng et al. 2020) with the Madry loss: each training example keeps its
  adversarial perturbation across epochs; every epoch takes one step from the stored one.
- ``trades+atta``: ATTA-1 with the TRADES loss, the paper's recipe (Section 5, Appendix C).

The inner maximisation uses the objective's own loss (KL for the TRADES objectives, cross-entropy
for the Madry ones) unless ``cfg.inner_loss`` says ``"ce"`` or ``"kl"``; ATTA's reference code runs
a cross-entropy inner step even with the TRADES loss (``inner_loss="ce"`` reproduces it).
The TRADES term's target ``f(x)`` is the cross-entropy term's forward pass, as in ATTA's code;
``cfg.kl_target="separate"`` gives it a forward pass of its own (a fresh dropout mask), as TRADES'
``trades_loss`` does.

The inner maximisation is :class:`interpretgan.attacks.PGD` started at the objective's point (no
second projected-gradient loop); the model is in eval mode while it runs and back in train mode for
the loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from interpretgan import distributed
from interpretgan.attacks.pgd import PGD
from interpretgan.config import TrainConfig
from interpretgan.devices import eval_mode
from interpretgan.errors import ConfigError
from interpretgan.training.augment import CropFlip


class Objective:
    """Base: ``loss(model, x, y, idx, aug)`` returns the loss to minimise and detached stats."""

    name = "base"

    def setup(self, model: nn.Module, train_x: torch.Tensor, pad: int, device: torch.device, seed: int) -> None:
        """Called once before training (``train_x``: the uint8 training images, ``pad``: crop padding)."""

    def on_epoch_start(self, epoch: int) -> None:
        """Called before each epoch (ATTA resets its buffer here)."""

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, aug: CropFlip | None,
             part: tuple[slice, int] | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``model`` may be wrapped in DistributedDataParallel; ``part`` is then this rank's rows of a
        batch of that many examples (``x``, ``y``, ``idx`` and ``aug`` are the rows alone)."""
        raise NotImplementedError

    def after_step(self, idx: torch.Tensor, rows: slice) -> None:
        """In a torchrun job, after each step on the batch ``idx`` of which this rank took ``rows``
        (ATTA gathers the ranks' new perturbations here)."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        pass


class Natural(Objective):
    name = "natural"

    def loss(self, model, x, y, idx, aug, part=None):
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        return loss, {"loss": loss.detach(), "correct": (logits.argmax(1) == y).sum()}


def _kl_sum(logits_adv: torch.Tensor, p_nat: torch.Tensor) -> torch.Tensor:
    """TRADES' robust term, summed over the batch: ``KL(p_nat || softmax(logits_adv))``."""
    return F.kl_div(F.log_softmax(logits_adv, dim=1), p_nat, reduction="sum")


class _Adversarial(Objective):
    """Shared parts: the inner sign-gradient steps and the outer TRADES / Madry loss."""

    def __init__(self, cfg: TrainConfig, trades: bool, steps: int) -> None:
        self.eps, self.step, self.steps, self.beta, self.trades = cfg.eps, cfg.attack_step, steps, cfg.beta, trades
        self.inner_kl = trades if cfg.inner_loss is None else cfg.inner_loss == "kl"
        self.separate_target = cfg.kl_target == "separate"
        # The inner maximisation is the library's PGD, started where the objective says (no random start).
        self.inner = PGD(cfg.eps, cfg.attack_step, steps, random_start=False, loss=_kl_sum if self.inner_kl else "ce")

    def _attack(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        """``self.steps`` sign-gradient ascent steps from ``start`` (projected) on the KL (TRADES) or CE loss."""
        # The bare module: its forward and input-gradient passes are no training step for DDP to reduce.
        model = model.module if isinstance(model, DistributedDataParallel) else model
        if self.inner_kl:
            with eval_mode(model), torch.no_grad():
                target = F.softmax(model(x), dim=1)
        return self.inner(model, x, target if self.inner_kl else y, start=start)

    def _outer(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor):
        if self.trades:
            logits = model(x)
            loss_nat = F.cross_entropy(logits, y)
            logits_adv = model(x_adv)
            target = model(x) if self.separate_target else logits  # TRADES' order: x, x_adv, x again
            loss_rob = _kl_sum(logits_adv, F.softmax(target, dim=1)) / x.shape[0]
            loss = loss_nat + self.beta * loss_rob
            stats = {"loss": loss.detach(), "loss_nat": loss_nat.detach(), "loss_rob": loss_rob.detach()}
        else:
            logits = model(x_adv)
            loss = F.cross_entropy(logits, y)
            stats = {"loss": loss.detach()}
        stats["correct"] = (logits.argmax(1) == y).sum()
        return loss, stats


class Trades(_Adversarial):
    """TRADES / PGD-AT: a fresh inner attack of ``attack_steps`` steps for every batch."""

    def __init__(self, cfg: TrainConfig, trades: bool) -> None:
        super().__init__(cfg, trades, cfg.attack_steps)
        self.name = "trades" if trades else "pgd-at"
        self.generator: torch.Generator | None = None

    def setup(self, model, train_x, pad, device, seed):
        self.generator = torch.Generator(device=device).manual_seed(seed + 1)

    def loss(self, model, x, y, idx, aug, part=None):
        # Drawn for the whole batch and cut to this rank's rows: the one-process draw, generators in step.
        shape = (part[1], *x.shape[1:]) if part else x.shape
        if self.trades:  # TRADES starts next to x
            noise = 0.001 * torch.randn(shape, generator=self.generator, device=x.device, dtype=x.dtype)
        else:  # Madry: uniform random start in the ball
            noise = self.eps * (2 * torch.rand(shape, generator=self.generator, device=x.device, dtype=x.dtype) - 1)
        start = x + (noise[part[0]] if part else noise)
        return self._outer(model, x, y, self._attack(model, x, y, start))

    def state_dict(self):
        return {"generator": self.generator.get_state()} if self.generator is not None else {}

    def load_state_dict(self, state):
        if "generator" in state and self.generator is not None:
            self.generator.set_state(state["generator"])


class ATTA(_Adversarial):
    """ATTA-1: a per-example perturbation buffer; one attack step per epoch from the stored one.

    The buffer holds perturbations ``delta`` in the padded frame ``(N, C, H + 2p, W + 2p)`` when the
    data is augmented, so the random crop/flip of an image is applied to its perturbation too (the
    same gather), and the updated perturbation is written back through that gather.
    """

    def __init__(self, cfg: TrainConfig, trades: bool) -> None:
        super().__init__(cfg, trades, 1)
        self.name = "trades+atta" if trades else "atta"
        self.init_std, self.reset_every = cfg.atta_init_std, cfg.atta_reset
        self.delta: torch.Tensor | None = None
        self.generator: torch.Generator | None = None

    def setup(self, model, train_x, pad, device, seed):
        self.generator = torch.Generator(device=device).manual_seed(seed + 1)
        n, c, h, w = train_x.shape
        self.delta = torch.empty(n, c, h + 2 * pad, w + 2 * pad, device=device)
        self._reset()

    def _reset(self) -> None:
        self.delta.normal_(0.0, self.init_std, generator=self.generator)

    def on_epoch_start(self, epoch):
        # ATTA's code resets before its (1-based) epochs k, 2k, ...: 0-based epochs k-1, 2k-1, ...
        if self.reset_every and (epoch + 1) % self.reset_every == 0:
            self._reset()

    def loss(self, model, x, y, idx, aug, part=None):
        stored = self.delta[idx]
        delta = aug.crop(stored) if aug is not None else stored
        x_adv = self._attack(model, x, y, x + delta)
        new = x_adv - x
        if aug is not None:
            stored[aug.index] = new  # write back through the same crop/flip gather
            self.delta[idx] = stored
        else:
            self.delta[idx] = new
        return self._outer(model, x, y, x_adv)

    def after_step(self, idx, rows):
        self.delta[idx] = distributed.gather_rows(self.delta[idx], rows)

    def state_dict(self):
        return {"delta": self.delta, "generator": self.generator.get_state()} if self.delta is not None else {}

    def load_state_dict(self, state):
        if "delta" in state:
            self.delta.copy_(state["delta"])
            self.generator.set_state(state["generator"])


def make_objective(cfg: TrainConfig) -> Objective:
    """The objective named by ``cfg.objective``."""
    name = cfg.objective
    if name == "natural":
        return Natural()
    if name in ("trades", "pgd-at"):
        return Trades(cfg, trades=name == "trades")
    if name in ("atta", "trades+atta"):
        return ATTA(cfg, trades=name == "trades+atta")
    raise ConfigError(f"unknown objective '{name}'")
