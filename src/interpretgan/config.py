"""Typed configurations and the named presets (``smoke``, ``cpu``, ``paper``) in one table.

A preset is a set of field values for a (stage, dataset, objective family) triple; the CLI starts
from a preset and overrides single fields. The resolved config is written into the run folder
before any training starts.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from interpretgan.errors import ConfigError

PRESET_NAMES = ("smoke", "cpu", "paper")
OBJECTIVES = ("natural", "trades", "atta", "trades+atta", "pgd-at")
INNER_LOSSES = ("ce", "kl")  # --inner-loss
KL_TARGETS = ("shared", "separate")  # --kl-target; the first is the default
FITS = ("resize", "pad")  # --fit (explain.fit); the first is the default


def is_reference(model: Any) -> bool:
    """A ``--model`` that names the user's own callable (``file.py:build`` / ``package.module:build``,
    :mod:`interpretgan.models.external`); registry names never hold a colon."""
    return isinstance(model, str) and ":" in model

# CIFAR-10 channel statistics (the data README); normalisation lives inside the models.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


SEED_LIMIT = 2**32  # numpy's and every torch generator's seeds fit below this


def check_seed(seed: Any, option: str = "--seed") -> None:
    """ConfigError unless ``seed`` is an integer in [0, 2**32), which every generator accepts."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise ConfigError(f"{option} {seed} is out of range; expected an integer from 0 to {SEED_LIMIT - 1}")


def check_finite(option: str, value: Any) -> None:
    """ConfigError unless ``value`` is a finite number: range checks written as comparisons let NaN through."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{option} must be a finite number, got {value}")


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a field's annotation (int for float is fine; bool is never a number)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        return isinstance(value, list) and all(_fits(v, typing.get_args(hint)[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if hint in (int, float):
        return isinstance(value, int if hint is int else (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint)


class _Config:
    """``to_dict`` / ``from_dict`` for the config dataclasses; ``_what`` names the config in errors."""

    _what = "config"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Any:
        """``cls(**d)``, or ConfigError naming the unknown fields, or the first field of the wrong type."""
        if not isinstance(d, dict):
            raise ConfigError(f"the {cls._what} config is a {type(d).__name__}; expected a JSON object of options")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown {cls._what} option(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
        hints = typing.get_type_hints(cls)
        for name, value in d.items():
            if not _fits(value, hints[name]):
                raise ConfigError(f"the {cls._what} option {name} is {value!r}; expected a value of type "
                                  f"{getattr(hints[name], '__name__', None) or str(hints[name]).replace('typing.', '')}")
        return cls(**d)


def _resolve(cls: type, values: dict[str, Any], overrides: dict[str, Any] | None) -> Any:
    """``values`` with the non-None ``overrides`` on top, built as ``cls`` and validated."""
    values = {**values, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    cfg = cls.from_dict(values)
    cfg.validate()
    return cfg


@dataclass
class TrainConfig(_Config):
    """Everything that determines a classifier training run (natural or adversarial).

    Learning rate: ``lr`` times ``lr_gamma ** k`` after the k-th epoch listed in ``lr_milestones``
    (epochs counted from 0: a milestone 5 means epochs 5, 6, ... use the decayed rate).
    """

    _what = "training"

    dataset: str = "mnist"
    model: str = "smallcnn"
    pool: str = "max"
    objective: str = "natural"
    preset: str = "cpu"
    seed: int = 0
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_milestones: list[int] = field(default_factory=list)
    lr_gamma: float = 0.1
    image_size: int = 32
    n_train: int | None = None  # train on a seeded subset of this size (None: all)
    n_test: int | None = None  # evaluate on a seeded subset of this size (None: all)
    augment: bool = False  # random crop (padding 4) + horizontal flip, for CIFAR-10
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    # A --model reference's starting weights (its own state_dict as safetensors): with epochs 0 the
    # run holds them as they are (how attack / explain take a model trained elsewhere).
    weights: str | None = None
    # Adversarial objectives (Section 2.1, Appendix C): l-inf ball of radius eps.
    eps: float = 0.3
    attack_step: float = 0.01  # inner step size (ATTA's per-epoch step, PGD's alpha)
    attack_steps: int = 10  # inner steps for `trades` and `pgd-at` (ATTA-1 takes 1 per epoch)
    # The inner maximisation's loss: None is the objective's own (TRADES' KL for trades and
    # trades+atta, cross-entropy for pgd-at and atta); "ce" with trades+atta is what ATTA's
    # reference code runs (its inner step is always cross-entropy, whatever the outer loss).
    inner_loss: str | None = None
    # The TRADES KL term's target f(x): "shared" is the softmax of the cross-entropy term's forward
    # pass (ATTA's code, the paper's); "separate" runs x through the model once more, under its own
    # dropout mask, as TRADES' reference trades_loss does.
    kl_target: str = KL_TARGETS[0]
    beta: float = 6.0  # TRADES trade-off
    atta_reset: int = 0  # reset the ATTA buffer before epochs k-1, 2k-1, ... (0: never), as ATTA's code
    atta_init_std: float = 0.001  # buffer initialised as x + atta_init_std * N(0, 1)
    eval_batch_size: int = 500
    checkpoint_every: int = 1  # write the resume state every k epochs (and after the last one)

    def validate(self) -> None:
        """Raise ConfigError on impossible values (one sentence each)."""
        for name in ("lr", "momentum", "weight_decay", "lr_gamma", "eps", "attack_step", "beta", "atta_init_std"):
            check_finite(f"--{name.replace('_', '-')}", getattr(self, name))
        check_seed(self.seed)
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"unknown objective '{self.objective}'; expected one of {', '.join(OBJECTIVES)}")
        if self.pool not in ("max", "avg"):
            raise ConfigError(f"unknown pooling '{self.pool}'; expected 'max' or 'avg'")
        if self.weights is not None and not is_reference(self.model):
            raise ConfigError(f"--weights applies to a --model reference (file.py:build); '{self.model}' is a registered model")
        if self.epochs == 0 and self.weights is None:
            raise ConfigError("--epochs 0 keeps the starting weights, so it needs --weights FILE.safetensors")
        for name in ("epochs", "batch_size", "eval_batch_size", "attack_steps", "checkpoint_every"):
            if getattr(self, name) < (0 if name == "epochs" else 1):
                raise ConfigError(f"--{name.replace('_', '-')} must be at least {0 if name == 'epochs' else 1}, "
                                  f"got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"--lr must be positive, got {self.lr}")
        if self.eps < 0 or self.attack_step <= 0:
            raise ConfigError(f"--eps must be >= 0 and --attack-step > 0, got {self.eps} and {self.attack_step}")
        if self.inner_loss not in (None, *INNER_LOSSES):
            raise ConfigError(f"--inner-loss must be 'ce' or 'kl', got '{self.inner_loss}'")
        if self.inner_loss is not None and self.objective == "natural":
            raise ConfigError("--inner-loss applies to the adversarial objectives only; the objective is 'natural'")
        if self.kl_target not in KL_TARGETS:
            raise ConfigError(f"--kl-target must be 'shared' or 'separate', got '{self.kl_target}'")
        if self.kl_target != KL_TARGETS[0] and "trades" not in self.objective:
            raise ConfigError(f"--kl-target applies to the TRADES objectives only; the objective is '{self.objective}'")
        for name in ("beta", "atta_reset", "atta_init_std"):
            if getattr(self, name) < 0:
                raise ConfigError(f"the training option {name} must be >= 0, got {getattr(self, name)}")
        for n in (self.n_train, self.n_test):
            if n is not None and n < 1:
                raise ConfigError(f"--n-train/--n-test must be at least 1, got {n}")

    def model_spec(self) -> tuple[str, dict[str, Any]]:
        """(registry name, keyword arguments) of the model this config trains, as in ``ckpt/model.json``."""
        from interpretgan.data import dataset_info  # data sits below config only for this lookup

        info = dataset_info(self.dataset)
        return self.model, self.model_options(info.num_classes, info.channels)

    def build_options(self, num_classes: int, channels: int) -> dict[str, Any]:
        """:meth:`model_options` plus the starting ``weights``: what ``create_model`` builds this run's model from."""
        return {**self.model_options(num_classes, channels), **({} if self.weights is None else {"weights": self.weights})}

    def model_options(self, num_classes: int, channels: int) -> dict[str, Any]:
        """Keyword arguments for ``create_model`` (dataset facts + ``model_kwargs``).

        A reference (``file.py:build``) gets no ``pool`` and its ``layers`` as ``{name: path}``, the
        form its checkpoint stores (``ckpt/model.json``), so that the two compare equal.
        """
        if is_reference(self.model):
            opts = dict(in_channels=channels, num_classes=num_classes, image_size=self.image_size, **self.model_kwargs)
            if isinstance(opts.get("layers"), list):  # named as tap() names them: by path, "" as the logits
                opts["layers"] = {"logits" if p == "" else p: p for p in opts["layers"]}
            return opts
        opts: dict[str, Any] = dict(pool=self.pool, in_channels=channels, num_classes=num_classes, image_size=self.image_size)
        if self.dataset == "cifar10" and self.model != "smallcnn":
            opts.update(mean=CIFAR10_MEAN, std=CIFAR10_STD)
        opts.update(self.model_kwargs)
        return opts


# --- the preset table -------------------------------------------------------------------------
# Key: (dataset, family) with family "natural" or "adversarial"; value: preset -> field values.
_MNIST_NATURAL_PAPER = dict(epochs=10, batch_size=128, lr=0.01, momentum=0.9, lr_milestones=[5])
# ATTA's code decays the lr from (1-based) epoch 55 on MNIST and 30 / 36 on CIFAR-10: milestones
# 54 and 29 / 35 here (0-based). ``attack_steps`` is for `trades` / `pgd-at` (on MNIST TRADES'
# 40 steps of 0.01); ATTA-1 takes one step an epoch.
_MNIST_ADV_PAPER = dict(
    epochs=60, batch_size=128, lr=0.01, momentum=0.9, lr_milestones=[54],
    eps=0.3, attack_step=0.01, attack_steps=40, beta=6.0,
)
_CIFAR_ADV_PAPER = dict(
    epochs=38, batch_size=64, lr=0.1, momentum=0.9, weight_decay=2e-4, lr_milestones=[29, 35],
    eps=0.031, attack_step=0.015, attack_steps=10, beta=6.0, atta_reset=10, augment=True,
)

TRAIN_PRESETS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("mnist", "natural"): {
        "paper": _MNIST_NATURAL_PAPER,
        # Same recipe, shortened: the lr drop moved from epoch 5 to epoch 3 of 4.
        "cpu": dict(_MNIST_NATURAL_PAPER, epochs=4, lr_milestones=[3]),
        "smoke": dict(_MNIST_NATURAL_PAPER, epochs=1, lr_milestones=[], n_train=512, n_test=256, batch_size=64),
    },
    ("mnist", "adversarial"): {
        "paper": _MNIST_ADV_PAPER,
        # 10 epochs of ATTA-1 need a larger step for the stored perturbation to reach eps (at epoch 5);
        # chosen by measurement: experiments/2026-11-30-cpu-atta-sweep. `trades` / `pgd-at`: 10 steps.
        "cpu": dict(_MNIST_ADV_PAPER, epochs=10, lr_milestones=[8], attack_step=0.06, attack_steps=10),
        "smoke": dict(_MNIST_ADV_PAPER, epochs=2, lr_milestones=[], n_train=256, n_test=128, batch_size=64,
                      attack_step=0.1, attack_steps=2),
    },
    ("cifar10", "natural"): {
        # A standard recipe: SGD 0.1, momentum 0.9, weight decay 5e-4, crop + flip, lr /10 at 50 % and 75 %.
        "paper": dict(epochs=100, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4, lr_milestones=[50, 75], augment=True),
        "cpu": dict(epochs=4, batch_size=128, lr=0.05, momentum=0.9, weight_decay=5e-4, lr_milestones=[3], augment=True,
                    n_train=10000, n_test=2000, model_kwargs={"width": 0.25, "fc_width": 128}),
        "smoke": dict(epochs=1, batch_size=64, lr=0.05, augment=True, n_train=256, n_test=128,
                      model_kwargs={"width": 0.125, "fc_width": 32}),
    },
    ("cifar10", "adversarial"): {
        "paper": _CIFAR_ADV_PAPER,
        # VGG16 at 1/4 width, 9 epochs (about 25 minutes on 2 cores): at this width the paper's lr 0.1
        # and fc dropout barely learn, so lr 0.02 and no dropout (experiments/2026-11-30-cpu-cifar10-reproduce).
        "cpu": dict(_CIFAR_ADV_PAPER, epochs=9, lr=0.02, lr_milestones=[7], batch_size=128, n_test=1000,
                    atta_reset=0, model_kwargs={"width": 0.25, "fc_width": 128, "dropout": 0.0}),
        "smoke": dict(_CIFAR_ADV_PAPER, epochs=2, lr_milestones=[], batch_size=64, n_train=256, n_test=128,
                      attack_steps=2, model_kwargs={"width": 0.125, "fc_width": 32}),
    },
    ("celeba", "natural"): {
        # Appendix C: 7 epochs, lr 0.001 (SGD momentum 0.9), at 128x128.
        "paper": dict(epochs=7, batch_size=64, lr=0.001, momentum=0.9, image_size=128, model_kwargs={"fc_width": 4096}),
        "cpu": dict(epochs=7, batch_size=64, lr=0.01, momentum=0.9, image_size=32, model_kwargs={"width": 0.25, "fc_width": 256}),
        "smoke": dict(epochs=1, batch_size=32, lr=0.01, image_size=32, n_train=256, n_test=128,
                      model_kwargs={"width": 0.125, "fc_width": 32}),
    },
}

DEFAULT_MODEL = {"mnist": "smallcnn", "mnist-sample": "smallcnn", "cifar10": "vgg16", "celeba": "vgg16"}


def objective_family(objective: str) -> str:
    return "natural" if objective == "natural" else "adversarial"


def train_preset(dataset: str, objective: str, preset: str) -> dict[str, Any]:
    """The field values of ``preset`` for training on ``dataset`` with ``objective``."""
    if preset not in PRESET_NAMES:
        raise ConfigError(f"unknown preset '{preset}'; expected one of {', '.join(PRESET_NAMES)}")
    key = ("mnist" if dataset == "mnist-sample" else dataset, objective_family(objective))
    if key not in TRAIN_PRESETS:
        known = sorted({f"{d} ({f})" for d, f in TRAIN_PRESETS})
        raise ConfigError(f"no training presets for {key[0]} with a {key[1]} objective; available: {', '.join(known)}")
    return dict(TRAIN_PRESETS[key][preset])


def resolve_train_config(dataset: str, objective: str, preset: str, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Preset values, then ``overrides`` (fields the user set explicitly), validated."""
    values: dict[str, Any] = dict(dataset=dataset, objective=objective, preset=preset, model=DEFAULT_MODEL.get(dataset, "smallcnn"))
    values.update(train_preset(dataset, objective, preset))
    return _resolve(TrainConfig, values, overrides)


# --- explainers (InterpretGAN, Section 3 and Appendix C) -----------------------------------------
@dataclass
class ExplainConfig(_Config):
    """Everything that determines the training of the per-layer explainers of one classifier.

    Per layer i: a compression net C_i (Tables 4-5, ``compression_width`` times the channels), a
    progressive generator G_i and critic D_i (``gan_channels`` feature maps at most,
    ``min(gan_channels, gan_channel_base // side)`` at a scale of side ``side``), trained with
    WGAN-GP (``gp_weight``, ``drift``) plus ``interp_weight`` (lambda) times the interpretability
    term (Eq. 2-4), Adam(``lr``, ``betas``) for (C_i, G_i) and for D_i.

    Schedule: one entry per scale (4x4, 8x8, ..., the classifier's image size) in
    ``scale_iterations`` (iterations), or else ``scale_epochs`` (epochs over the ``n_train``
    training images, rounded up to whole batches); a list shorter than the number of scales repeats
    its last value. Each new scale fades in over its first ``fade_fraction`` of iterations.

    ``joint``: all layers in one loop that runs the classifier once per batch (else one loop per
    layer, the paper's way). ``fuse``: with ``joint``, run all layers' G and D as one stack of
    grouped convolutions (faster on GPUs, slower on CPUs). ``layers`` empty means all layers.
    """

    _what = "explainer"

    dataset: str = "mnist"
    preset: str = "cpu"
    seed: int = 0
    layers: list[str] = field(default_factory=list)
    joint: bool = True
    fuse: bool = False
    latent_dim: int = 128
    gan_channels: int = 128
    gan_channel_base: int = 4096
    compression_width: float = 1.0
    mbstd_group: int = 4
    batch_size: int = 16
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.0, 0.99])
    gp_weight: float = 10.0
    drift: float = 0.001
    interp_weight: float = 1.0
    interp_target: str = "label"  # "label": argmax f(x); "distribution": softmax f(x) (Eq. 3's y ~ f(x))
    scale_epochs: list[float] = field(default_factory=lambda: [6.0, 6.0, 6.0, 12.0])
    scale_iterations: list[int] = field(default_factory=list)
    fade_fraction: float = 0.5
    n_train: int | None = None  # train on a seeded subset of this size (None: all)
    n_test: int | None = None  # evaluate on a seeded subset of this size (None: all)
    eval_batch_size: int = 500
    log_every: int = 100  # a metrics record per layer every k iterations
    checkpoint_every: int = 1000  # per-layer weights and the resume state every k iterations
    collapse_std: float = 0.02  # warn when the per-pixel std of G's outputs over a batch falls below
    collapse_critic: float = 100.0  # warn when |critic loss| exceeds this (a critic running away)
    # A classifier whose input side is not 4 * 2^k: its images reach the GAN resized (None: "resize")
    # or zero-padded ("pad") to the next such side, and the explanations go back the same way.
    fit: str | None = None

    def validate(self) -> None:
        """Raise ConfigError on impossible values (one sentence each)."""
        for name in ("lr", "compression_width", "gp_weight", "drift", "interp_weight", "fade_fraction",
                     "collapse_std", "collapse_critic"):
            check_finite(f"--{name.replace('_', '-')}", getattr(self, name))
        for name in ("betas", "scale_epochs"):
            for v in getattr(self, name):
                check_finite(f"--{name.replace('_', '-')}", v)
        if self.fit not in (None, *FITS):
            raise ConfigError(f"--fit must be resize or pad, got '{self.fit}'")
        check_seed(self.seed)
        for name in ("latent_dim", "gan_channels", "gan_channel_base", "mbstd_group", "batch_size",
                     "eval_batch_size", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.batch_size < 2:  # G's per-pixel spread over a batch (the collapse check) needs two images
            raise ConfigError(f"--batch-size must be at least 2 for the explainers, got {self.batch_size}")
        if self.lr <= 0 or self.compression_width <= 0:
            raise ConfigError(f"--lr and --compression-width must be positive, got {self.lr} and {self.compression_width}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"--betas must be two numbers in [0, 1), got {self.betas}")
        if self.interp_target not in ("label", "distribution"):
            raise ConfigError(f"--interp-target must be 'label' or 'distribution', got '{self.interp_target}'")
        if not 0 < self.fade_fraction <= 1:
            raise ConfigError(f"--fade-fraction must be in (0, 1], got {self.fade_fraction}")
        if not self.scale_iterations and not self.scale_epochs:
            raise ConfigError("the schedule is empty: give scale_iterations or scale_epochs")
        if any(v <= 0 for v in [*self.scale_iterations, *self.scale_epochs]):
            raise ConfigError("every scale needs a positive number of iterations or epochs")
        if self.n_train is not None and self.n_train < 1:
            raise ConfigError(f"--n-train must be at least 1, got {self.n_train}")
        if self.n_test is not None and self.n_test < 2:
            raise ConfigError(f"--n-test must be at least 2 (the Frechet distance needs a covariance), got {self.n_test}")
        if self.fuse and not self.joint:
            raise ConfigError("--fuse stacks the layers of one joint loop; it cannot go with --separate (one loop a layer)")

    def iterations_per_scale(self, n_scales: int, n_train: int) -> list[int]:
        """The schedule resolved to iterations for ``n_scales`` scales and ``n_train`` training images."""
        values = self.scale_iterations or self.scale_epochs
        if len(values) > n_scales:
            raise ConfigError(f"the schedule lists {len(values)} scales but the images have only {n_scales} (4x4 up)")
        values = list(values) + [values[-1]] * (n_scales - len(values))
        if self.scale_iterations:
            return [int(v) for v in values]
        return [max(1, int(-(-e * n_train // self.batch_size))) for e in values]  # ceil


# Key: dataset; value: preset -> field values. ``paper`` follows Appendix C and the two progressive
# GAN implementations it names (batch 16 in both; 128 feature maps at every MNIST scale and a
# 128-d latent as jeromerony's MNIST example; 512 feature maps and a 512-d latent as pytorch_GAN_zoo).
# ``cpu`` (MNIST) is sized for all 7 SmallCNN layers in about 40 minutes on 2 CPU cores: measured on
# one thread of a loaded 2-core machine, one joint iteration of the 7 layers at batch 32 took 0.44 s
# at 4x4, 0.65 s at 8x8, 1.3 s at 16x16 and 2.9 s at 32x32, so 400/400/600/400 iterations take about
# 40 minutes there and less on two free cores. A single conv2 explainer trained 100/100/100/150
# iterations with these widths reached 94 % consistency on 1,000 test images, digits recognisable.
_MNIST_EXPLAIN_PAPER = dict(latent_dim=128, gan_channels=128, gan_channel_base=4096, compression_width=1.0, batch_size=16,
                            scale_epochs=[6.0, 6.0, 6.0, 12.0], log_every=200, checkpoint_every=2000)
_CPU_GAN = dict(latent_dim=64, gan_channels=32, gan_channel_base=512, batch_size=32, scale_epochs=[],
                scale_iterations=[400, 400, 600, 400], n_test=2000, log_every=25, checkpoint_every=200)
EXPLAIN_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "mnist": {
        "paper": _MNIST_EXPLAIN_PAPER,
        "cpu": dict(_CPU_GAN, compression_width=0.25),
        "smoke": dict(latent_dim=16, gan_channels=8, gan_channel_base=256, compression_width=0.125, batch_size=8,
                      scale_epochs=[], scale_iterations=[3, 3, 3, 3], n_train=256, n_test=64, eval_batch_size=64,
                      log_every=3, checkpoint_every=6),
    },
    "celeba": {
        # 48,000 iterations at the first scale, 96,000 at each other (the last value repeats); 512
        # feature maps up to 32x32, then 256 and 128, as pytorch_GAN_zoo's PGAN for CelebA.
        "paper": dict(latent_dim=512, gan_channels=512, gan_channel_base=16384, compression_width=1.0, batch_size=16,
                      scale_epochs=[], scale_iterations=[48000, 96000], log_every=500, checkpoint_every=4000),
        # For the ``cpu`` classifier (VGG16 at 32x32, width 0.25): MNIST's GAN sizes with 3 channels
        # (not timed; Table 5's 512-channel convolutions become 64).
        "cpu": dict(_CPU_GAN, compression_width=0.125),
        "smoke": dict(latent_dim=16, gan_channels=8, gan_channel_base=256, compression_width=0.0625, batch_size=8,
                      scale_epochs=[], scale_iterations=[2], n_train=128, n_test=32, eval_batch_size=32,
                      log_every=2, checkpoint_every=4),
    },
}


def explain_preset(dataset: str, preset: str) -> dict[str, Any]:
    """The field values of ``preset`` for explaining a classifier of ``dataset``."""
    if preset not in PRESET_NAMES:
        raise ConfigError(f"unknown preset '{preset}'; expected one of {', '.join(PRESET_NAMES)}")
    key = "mnist" if dataset == "mnist-sample" else dataset
    if key not in EXPLAIN_PRESETS:
        raise ConfigError(f"no explainer presets for dataset '{dataset}'; available: {', '.join(sorted(EXPLAIN_PRESETS))}")
    return dict(EXPLAIN_PRESETS[key][preset])


def resolve_explain_config(dataset: str, preset: str, overrides: dict[str, Any] | None = None) -> ExplainConfig:
    """Preset values, then ``overrides`` (fields the user set explicitly), validated."""
    values: dict[str, Any] = dict(dataset=dataset, preset=preset)
    values.update(explain_preset(dataset, preset))
    return _resolve(ExplainConfig, values, overrides)
