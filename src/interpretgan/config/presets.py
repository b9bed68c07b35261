"""The named presets (``smoke``, ``cpu``, ``paper``) in one table per stage, and the configs resolved from them.

A preset is a set of field values for a (stage, dataset, objective family) triple; the values are
the paper's (Appendix C) for ``paper`` and reduced for 2 CPU cores for ``cpu``; the records that
chose the reduced ones are named beside them.
"""

from __future__ import annotations

from typing import Any

from interpretgan.config import PRESET_NAMES, ExplainConfig, TrainConfig, resolve_config
from interpretgan.errors import ConfigError

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
        "smoke": dict(
            _MNIST_ADV_PAPER,
            epochs=2,
            lr_milestones=[],
            n_train=256,
            n_test=128,
            batch_size=64,
            attack_step=0.1,
            attack_steps=2,
        ),
    },
    ("cifar10", "natural"): {
        # A standard recipe: SGD 0.1, momentum 0.9, weight decay 5e-4, crop + flip, lr /10 at 50 % and 75 %.
        "paper": dict(
            epochs=100, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4, lr_milestones=[50, 75], augment=True
        ),
        "cpu": dict(
            epochs=4,
            batch_size=128,
            lr=0.05,
            momentum=0.9,
            weight_decay=5e-4,
            lr_milestones=[3],
            augment=True,
            n_train=10000,
            n_test=2000,
            model_kwargs={"width": 0.25, "fc_width": 128},
        ),
        "smoke": dict(
            epochs=1,
            batch_size=64,
            lr=0.05,
            augment=True,
            n_train=256,
            n_test=128,
            model_kwargs={"width": 0.125, "fc_width": 32},
        ),
    },
    ("cifar10", "adversarial"): {
        "paper": _CIFAR_ADV_PAPER,
        # VGG16 at 1/4 width, 9 epochs (about 25 minutes on 2 cores): at this width the paper's lr 0.1
        # and fc dropout barely learn, so lr 0.02 and no dropout (experiments/2026-11-30-cpu-cifar10-reproduce).
        "cpu": dict(
            _CIFAR_ADV_PAPER,
            epochs=9,
            lr=0.02,
            lr_milestones=[7],
            batch_size=128,
            n_test=1000,
            atta_reset=0,
            model_kwargs={"width": 0.25, "fc_width": 128, "dropout": 0.0},
        ),
        "smoke": dict(
            _CIFAR_ADV_PAPER,
            epochs=2,
            lr_milestones=[],
            batch_size=64,
            n_train=256,
            n_test=128,
            attack_steps=2,
            model_kwargs={"width": 0.125, "fc_width": 32},
        ),
    },
    ("celeba", "natural"): {
        # Appendix C: 7 epochs, lr 0.001 (SGD momentum 0.9), at 128x128.
        "paper": dict(epochs=7, batch_size=64, lr=0.001, momentum=0.9, image_size=128, model_kwargs={"fc_width": 4096}),
        "cpu": dict(
            epochs=7, batch_size=64, lr=0.01, momentum=0.9, image_size=32, model_kwargs={"width": 0.25, "fc_width": 256}
        ),
        "smoke": dict(
            epochs=1,
            batch_size=32,
            lr=0.01,
            image_size=32,
            n_train=256,
            n_test=128,
            model_kwargs={"width": 0.125, "fc_width": 32},
        ),
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


def resolve_train_config(
    dataset: str, objective: str, preset: str, overrides: dict[str, Any] | None = None
) -> TrainConfig:
    """Preset values, then ``overrides`` (fields the user set explicitly), validated."""
    values: dict[str, Any] = dict(
        dataset=dataset, objective=objective, preset=preset, model=DEFAULT_MODEL.get(dataset, "smallcnn")
    )
    values.update(train_preset(dataset, objective, preset))
    return resolve_config(TrainConfig, values, overrides)


# Key: dataset; value: preset -> field values. ``paper`` follows Appendix C and the two progressive
# GAN implementations it names (batch 16 in both; 128 feature maps at every MNIST scale and a
# 128-d latent as jeromerony's MNIST example; 512 feature maps and a 512-d latent as pytorch_GAN_zoo).
# ``cpu`` (MNIST) is sized for all 7 SmallCNN layers in about 40 minutes on 2 CPU cores
# (experiments/2026-11-28-cpu-explain-diagnosis).
_MNIST_EXPLAIN_PAPER = dict(
    latent_dim=128,
    gan_channels=128,
    gan_channel_base=4096,
    compression_width=1.0,
    batch_size=16,
    scale_epochs=[6.0, 6.0, 6.0, 12.0],
    ema_decay=0.999,  # pytorch_GAN_zoo's averaged generator
    log_every=200,
    checkpoint_every=2000,
)
# The average of the weights spans about 100 iterations (decay 0.99), a quarter of a scale here: it made
# conv2's explanations of the natural SmallCNN consistent with f 1.1 to 2.4 points more often than the last
# iterate (experiments/2026-12-04-conv2-consistency).
_CPU_GAN = dict(latent_dim=64, gan_channels=32, gan_channel_base=512, batch_size=32, scale_epochs=[],
                scale_iterations=[400, 400, 600, 400], ema_decay=0.99, n_test=2000, log_every=25,
                checkpoint_every=200)
EXPLAIN_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "mnist": {
        "paper": _MNIST_EXPLAIN_PAPER,
        "cpu": dict(_CPU_GAN, compression_width=0.25),
        "smoke": dict(latent_dim=16, gan_channels=8, gan_channel_base=256, compression_width=0.125, batch_size=8,
                      scale_epochs=[], scale_iterations=[3, 3, 3, 3], ema_decay=0.5, n_train=256, n_test=64,
                      eval_batch_size=64, log_every=3, checkpoint_every=6),
    },
    "celeba": {
        # 48,000 iterations at the first scale, 96,000 at each other (the last value repeats); 512
        # feature maps up to 32x32, then 256 and 128, as pytorch_GAN_zoo's PGAN for CelebA.
        "paper": dict(latent_dim=512, gan_channels=512, gan_channel_base=16384, compression_width=1.0, batch_size=16,
                      scale_epochs=[], scale_iterations=[48000, 96000], ema_decay=0.999, log_every=500,
                      checkpoint_every=4000),
        # For the ``cpu`` classifier (VGG16 at 32x32, width 0.25): MNIST's GAN sizes with 3 channels
        # (not timed; Table 5's 512-channel convolutions become 64).
        "cpu": dict(_CPU_GAN, compression_width=0.125),
        "smoke": dict(latent_dim=16, gan_channels=8, gan_channel_base=256, compression_width=0.0625, batch_size=8,
                      scale_epochs=[], scale_iterations=[2], ema_decay=0.5, n_train=128, n_test=32, eval_batch_size=32,
                      log_every=2, checkpoint_every=4),
    },
}


def explain_preset(dataset: str, preset: str) -> dict[str, Any]:
    """The field values of ``preset`` for explaining a classifier of ``dataset``."""
    if preset not in PRESET_NAMES:
        raise ConfigError(f"unknown preset '{preset}'; expected one of {', '.join(PRESET_NAMES)}")
    key = "mnist" if dataset == "mnist-sample" else dataset
    if key not in EXPLAIN_PRESETS:
        raise ConfigError(
            f"no explainer presets for dataset '{dataset}'; available: {', '.join(sorted(EXPLAIN_PRESETS))}"
        )
    return dict(EXPLAIN_PRESETS[key][preset])


def resolve_explain_config(dataset: str, preset: str, overrides: dict[str, Any] | None = None) -> ExplainConfig:
    """Preset values, then ``overrides`` (fields the user set explicitly), validated."""
    values: dict[str, Any] = dict(dataset=dataset, preset=preset)
    values.update(explain_preset(dataset, preset))
    return resolve_config(ExplainConfig, values, overrides)
