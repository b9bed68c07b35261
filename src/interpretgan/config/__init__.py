"""Typed configurations: :class:`TrainConfig` and :class:`ExplainConfig`, their checks, and the names
the options take. The named presets (``smoke``, ``cpu``, ``paper``) and the functions that resolve
a config from one are in :mod:`interpretgan.config.presets`.

The CLI starts from a preset and overrides single fields; the resolved config is written into the
run folder before any training starts.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from interpretgan.devices import PRECISIONS, check_precision
from interpretgan.errors import ConfigError

PRESET_NAMES = ("smoke", "cpu", "paper")
OBJECTIVES = ("natural", "trades", "atta", "trades+atta", "pgd-at")
INNER_LOSSES = ("ce", "kl")  # --inner-loss
KL_TARGETS = ("shared", "separate")  # --kl-target; the first is the default
FITS = ("resize", "pad")  # --fit (explain.fit); the first is the default
#: --objective of the explainers: the paper's WGAN-GP critic, or none (pixel MSE); the first is the default
EXPLAIN_OBJECTIVES = ("wgan-gp", "mse")


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


def option(default: Any = dataclasses.MISSING, help: str = "", *, choices: tuple[str, ...] | None = None,
           default_factory: Any = dataclasses.MISSING) -> Any:
    """A config field the command line offers as ``--name``: its help and choices are declared here, its
    type in the annotation, and :func:`interpretgan.cli.common.add_config_options` builds the option from
    both (so no parser repeats them)."""
    metadata = {"cli": True, "help": help, "choices": choices}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


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
                raise ConfigError(
                    f"the {cls._what} option {name} is {value!r}; expected a value of type "
                    f"{getattr(hints[name], '__name__', None) or str(hints[name]).replace('typing.', '')}"
                )
        return cls(**d)


def resolve_config(cls: type, values: dict[str, Any], overrides: dict[str, Any] | None) -> Any:
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
    pool: str = option("max", "the registered models' pooling", choices=("max", "avg"))
    objective: str = "natural"
    preset: str = "cpu"
    seed: int = option(0, "seed of the initial weights, the batches and the training attacks")
    epochs: int = option(10, "epochs (0 keeps the starting --weights of a --model reference)")
    batch_size: int = option(128, "training batch size")
    lr: float = option(0.01, "SGD learning rate before the milestones")
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_milestones: list[int] = field(default_factory=list)
    lr_gamma: float = 0.1
    image_size: int = option(32, "the side the images are resized to, the model's input side")
    n_train: int | None = option(None, "train on a seeded subset of this size (default: all)")
    n_test: int | None = option(None, "evaluate on a seeded subset of this size (default: all)")
    augment: bool = False  # random crop (padding 4) + horizontal flip, for CIFAR-10
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    # A --model reference's starting weights (its own state_dict as safetensors): with epochs 0 the
    # run holds them as they are (how attack / explain take a model trained elsewhere).
    weights: str | None = None
    # Adversarial objectives (Section 2.1, Appendix C): l-inf ball of radius eps.
    eps: float = option(0.3, "the adversarial objectives' l-inf radius")
    attack_step: float = option(0.01, "inner step size (ATTA's per-epoch step, PGD's alpha)")
    attack_steps: int = option(10, "inner steps of trades and pgd-at (ATTA-1 takes one an epoch)")
    # "ce" with trades+atta is what ATTA's reference code runs (its inner step is always
    # cross-entropy, whatever the outer loss).
    inner_loss: str | None = option(None, "the inner attack's loss (default: KL for the trades objectives, CE "
                                          "otherwise; ATTA's reference code uses ce with trades+atta)",
                                    choices=INNER_LOSSES)
    kl_target: str = option(KL_TARGETS[0], "the TRADES KL term's f(x): the cross-entropy term's forward pass (shared, "
                                           "ATTA's code; default) or a forward pass of its own with a fresh dropout "
                                           "mask (separate, TRADES' code)", choices=KL_TARGETS)
    beta: float = option(6.0, "TRADES trade-off between the natural and the robust term")
    atta_reset: int = 0  # reset the ATTA buffer before epochs k-1, 2k-1, ... (0: never), as ATTA's code
    atta_init_std: float = 0.001  # buffer initialised as x + atta_init_std * N(0, 1)
    eval_batch_size: int = 500
    checkpoint_every: int = option(1, "write the resume state every k epochs (and after the last one)")
    # None reads as fp32 / off, so that runs made before these options resume with them unchanged.
    precision: str | None = option(None, "fp32 (default) or bf16: the forward passes, the inner attack's "
                                         "included, under autocast in bfloat16", choices=PRECISIONS)
    channels_last: bool | None = option(None, "the model's weights and the batches in channels-last order")
    compile: bool | None = option(None, "torch.compile the model's forward and backward passes (inductor; the "
                                        "first steps compile)")

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
            raise ConfigError(
                f"--weights applies to a --model reference (file.py:build); '{self.model}' is a registered model"
            )
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
        check_precision(self.precision)
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
        return {
            **self.model_options(num_classes, channels),
            **({} if self.weights is None else {"weights": self.weights}),
        }

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
        opts: dict[str, Any] = dict(
            pool=self.pool, in_channels=channels, num_classes=num_classes, image_size=self.image_size
        )
        if self.dataset == "cifar10" and self.model != "smallcnn":
            opts.update(mean=CIFAR10_MEAN, std=CIFAR10_STD)
        opts.update(self.model_kwargs)
        return opts


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
    seed: int = option(0, "seed of the explainers' weights and batches")
    layers: list[str] = option(help="comma-separated layer names (default: all); for your own model, module paths "
                                    "such as features.2,features.5", default_factory=list)
    joint: bool = True
    fuse: bool = False
    latent_dim: int = 128
    gan_channels: int = 128
    gan_channel_base: int = 4096
    compression_width: float = 1.0
    mbstd_group: int = 4
    batch_size: int = option(16, "explainer training batch size")
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.0, 0.99])
    gp_weight: float = 10.0
    drift: float = 0.001
    interp_weight: float = option(1.0, "lambda, the weight of the interpretability term (Eq. 4; 0: none)")
    interp_target: str = "label"  # "label": argmax f(x); "distribution": softmax f(x) (Eq. 3's y ~ f(x))
    # None reads as wgan-gp, so that runs made before this option resume with it unchanged.
    objective: str | None = option(None, "wgan-gp (default: the paper's critic, Eq. 2-4) or mse (no critic: C_i and "
                                         "G_i fit the image by pixel MSE, the Dosovitskiy-Brox inverter), each plus "
                                         "lambda times the interpretability term", choices=EXPLAIN_OBJECTIVES)
    scale_epochs: list[float] = field(default_factory=lambda: [6.0, 6.0, 6.0, 12.0])
    scale_iterations: list[int] = option(help="iterations per scale, comma-separated (4x4 first); replaces the "
                                              "preset's epochs per scale", default_factory=list)
    fade_fraction: float = 0.5
    # None reads as 0 (no average), so that runs made before this option resume with it unchanged.
    ema_decay: float | None = option(None, "the explainers kept are a moving average of C_i's and G_i's weights "
                                           "with this decay per iteration, as pytorch_GAN_zoo's averaged "
                                           "generator (0: the last iterate)")
    n_train: int | None = option(None, "train on a seeded subset of this size (default: all)")
    n_test: int | None = option(None, "evaluate on a seeded subset of this size (default: all)")
    eval_batch_size: int = 500
    log_every: int = 100  # a metrics record per layer every k iterations
    checkpoint_every: int = 1000  # per-layer weights and the resume state every k iterations
    collapse_std: float = 0.02  # warn when the per-pixel std of G's outputs over a batch falls below
    collapse_critic: float = 100.0  # warn when |critic loss| exceeds this (a critic running away)
    precision: str | None = option(None, "fp32 (default) or bf16: C_i, G_i, D_i and f's forward passes under "
                                         "autocast in bfloat16", choices=PRECISIONS)
    channels_last: bool | None = option(None, "f, C_i, G_i and D_i and the batches in channels-last order")
    compile: bool | None = option(None, "torch.compile f's forward through the explanations (the interpretability "
                                        "term); C_i, G_i and D_i stay eager (D_i's gradient penalty needs a double "
                                        "backward, which compiled graphs do not run)")
    fit: str | None = option(None, "a classifier whose input side is not 4*2^k (28x28 MNIST): its images reach the GAN "
                                   "resized (default) or zero-padded to the next such side, and the explanations go "
                                   "back the same way", choices=FITS)

    def validate(self) -> None:
        """Raise ConfigError on impossible values (one sentence each)."""
        for name in ("lr", "compression_width", "gp_weight", "drift", "interp_weight", "fade_fraction",
                     "collapse_std", "collapse_critic"):
            check_finite(f"--{name.replace('_', '-')}", getattr(self, name))
        for name in ("betas", "scale_epochs"):
            for v in getattr(self, name):
                check_finite(f"--{name.replace('_', '-')}", v)
        if self.ema_decay is not None and not 0 <= self.ema_decay < 1:  # NaN fails this too
            raise ConfigError(f"--ema-decay must be in [0, 1), got {self.ema_decay}")
        if self.fit not in (None, *FITS):
            raise ConfigError(f"--fit must be resize or pad, got '{self.fit}'")
        check_precision(self.precision)
        check_seed(self.seed)
        for name in ("latent_dim", "gan_channels", "gan_channel_base", "mbstd_group", "batch_size",
                     "eval_batch_size", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.batch_size < 2:  # G's per-pixel spread over a batch (the collapse check) needs two images
            raise ConfigError(f"--batch-size must be at least 2 for the explainers, got {self.batch_size}")
        if self.lr <= 0 or self.compression_width <= 0:
            raise ConfigError(
                f"--lr and --compression-width must be positive, got {self.lr} and {self.compression_width}"
            )
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"--betas must be two numbers in [0, 1), got {self.betas}")
        if self.objective not in (None, *EXPLAIN_OBJECTIVES):
            raise ConfigError(f"--objective must be one of {', '.join(EXPLAIN_OBJECTIVES)}, got '{self.objective}'")
        if self.interp_weight < 0:
            raise ConfigError(f"--interp-weight must be at least 0, got {self.interp_weight}")
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
            raise ConfigError(
                f"--n-test must be at least 2 (the Frechet distance needs a covariance), got {self.n_test}"
            )
        if self.fuse and not self.joint:
            raise ConfigError(
                "--fuse stacks the layers of one joint loop; it cannot go with --separate (one loop a layer)"
            )

    def iterations_per_scale(self, n_scales: int, n_train: int) -> list[int]:
        """The schedule resolved to iterations for ``n_scales`` scales and ``n_train`` training images."""
        values = self.scale_iterations or self.scale_epochs
        if len(values) > n_scales:
            raise ConfigError(f"the schedule lists {len(values)} scales but the images have only {n_scales} (4x4 up)")
        values = list(values) + [values[-1]] * (n_scales - len(values))
        if self.scale_iterations:
            return [int(v) for v in values]
        return [max(1, int(-(-e * n_train // self.batch_size))) for e in values]  # ceil
