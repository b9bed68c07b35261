"""What each ``interpretgan reproduce`` chain runs: :class:`ChainSpec` per target and preset, and
:class:`OwnModel`, the user's classifier in place of the paper's (``reproduce --model``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from interpretgan.config import TrainConfig
from interpretgan.config.presets import resolve_train_config
from interpretgan.data.integrity import file_digest
from interpretgan.diagnose.pooling import POOLING_ATTACKS
from interpretgan.errors import ConfigError
from interpretgan.models.external import reference_stem
from interpretgan.pipeline.train import check_model_options


@dataclass(frozen=True)
class ChainSpec:
    """What one preset of a chain runs: training/explainer presets plus overrides, and evaluation sizes."""

    train_preset: str
    explain_preset: str
    natural: dict[str, Any] = field(default_factory=dict)  # overrides of the natural training preset
    adversarial: dict[str, Any] = field(default_factory=dict)  # overrides of trades+atta (both pools)
    explain: dict[str, Any] = field(default_factory=dict)  # overrides of the explainer preset
    attack: dict[str, Any] = field(default_factory=dict)  # the attacks' arithmetic (attack_run's precision, ...)
    n_eval: int | None = 1000  # test images attacked (None: all)
    n_boot: int = 1000  # bootstrap resamples for Table 1's intervals
    n_show: int = 6  # examples in the explanation and baselines grids
    models: tuple[str, ...] = ("vgg16",)  # cifar10: the pooling study's models
    # AutoAttack (APGD-CE, APGD-T, Square): on the first autoattack_n of the n_eval images (0: not run; None: all)
    autoattack_n: int | None = 0
    autoattack: str = "autoattack"  # its spec: smoke presets run a reduced ensemble (autoattack-apgd5-square50)

    def autoattack_images(self) -> int | None:
        """Test images AutoAttack runs on (None: all; 0: none), never more than the other attacks see."""
        if self.autoattack_n == 0 or self.n_eval is None:
            return self.autoattack_n
        return self.n_eval if self.autoattack_n is None else min(self.autoattack_n, self.n_eval)


#: Fields added to :class:`ChainSpec` after folders were made: they add stages, or (``attack``) default to what
#: the folder's stages did, so a folder whose config lacks them resumes with the current values (and records them).
ADDED_FIELDS = ("autoattack_n", "autoattack", "attack")
#: The smoke presets' AutoAttack: a reduced ensemble that shows the stages working in seconds.
_SMOKE_AUTOATTACK = "autoattack-apgd5-square50"


MNIST_CHAIN: dict[str, ChainSpec] = {
    "smoke": ChainSpec(
        "smoke", "smoke", n_eval=64, n_boot=200, n_show=2, autoattack_n=32, autoattack=_SMOKE_AUTOATTACK
    ),
    # Table 1 and 2 on 1,000 test images: PGD-100 on all 10,000 would take ~18 min a model here.
    # AutoAttack on the first 300 of them (experiments/2026-12-04-autoattack-cpu-cost).
    "cpu": ChainSpec("cpu", "cpu", n_eval=1000, autoattack_n=300),
    "paper": ChainSpec("paper", "paper", n_eval=None, n_show=8, autoattack_n=None),
}

#: ``interpretgan demo --train``: the MNIST chain in miniature, sized to show the method working within
#: 10 minutes on 2 CPU cores (experiments/2026-12-03-demo-train-miniature): 5,000 training images and a
#: raised lr for the classifiers; for the explainers 160 joint iterations with the interpretability
#: term at lambda = 10 (the paper's 1 leaves the conv layers' explainers collapsed this early).
DEMO_CHAIN: dict[str, ChainSpec] = {
    "smoke": replace(MNIST_CHAIN["smoke"], autoattack_n=0),  # the demo runs the paper's attacks only
    "cpu": ChainSpec(
        "cpu", "cpu",
        natural=dict(epochs=8, lr=0.05, lr_milestones=[6], n_train=5000, n_test=1000),
        # ATTA-1 grows the stored perturbation one step an epoch: 3 steps of 0.1 reach eps 0.3.
        adversarial=dict(epochs=7, lr=0.05, lr_milestones=[5], attack_step=0.1, n_train=5000, n_test=1000),
        # No moving average: the cpu preset's spans 100 iterations, more than this schedule's last scale.
        explain=dict(scale_iterations=[10, 60, 60, 30], interp_weight=10.0, ema_decay=0.0, n_train=5000, n_test=500,
                     log_every=10, checkpoint_every=100),
        n_eval=200, n_boot=500, n_show=4),
}

CIFAR_CHAIN: dict[str, ChainSpec] = {
    "smoke": ChainSpec("smoke", "smoke", n_eval=32, autoattack_n=32, autoattack=_SMOKE_AUTOATTACK),
    # 1,000 test images: Table 3's four attacks take about 2 minutes a model here, AutoAttack 11-12 (measured)
    # (experiments/2026-12-04-cifar10-cpu-autoattack).
    "cpu": ChainSpec("cpu", "cpu", n_eval=1000, autoattack_n=1000),
    "paper": ChainSpec("paper", "paper", n_eval=None, models=("vgg16", "wrn34_10"), autoattack_n=None),
}

CELEBA_CHAIN: dict[str, ChainSpec] = {
    "smoke": ChainSpec("smoke", "smoke", n_eval=32, n_boot=200, n_show=2),
    "cpu": ChainSpec("cpu", "cpu", n_eval=500),
    "paper": ChainSpec("paper", "paper", n_eval=None, n_show=8),
}

CHAINS: dict[str, dict[str, ChainSpec]] = {"mnist": MNIST_CHAIN, "cifar10": CIFAR_CHAIN, "celeba": CELEBA_CHAIN}


def with_arithmetic(spec: ChainSpec, precision: str | None, channels_last: bool, compile: bool = False) -> ChainSpec:
    """``spec`` with every stage that takes them in these formats (``reproduce --precision --channels-last
    --compile``): the classifiers' training, the explainers' and the attacks' (whose bf16 keeps the input layer
    in fp32 and is judged by the fp32 model: experiments/2026-12-04-bf16-attack)."""
    options = {**({"precision": precision} if precision not in (None, "fp32") else {}),  # fp32: the spec as it is
               **({"channels_last": True} if channels_last else {}), **({"compile": True} if compile else {})}
    if not options:
        return spec
    return replace(spec, natural={**spec.natural, **options}, adversarial={**spec.adversarial, **options},
                   explain={**spec.explain, **options}, attack={**spec.attack, **options})


def arithmetic_tag(spec: ChainSpec) -> str:
    """``-bf16``, ``-cl`` or both for a spec made by :func:`with_arithmetic` (for the default folder's name)."""
    options = spec.adversarial
    return (f"-{options['precision']}" if options.get("precision", "fp32") != "fp32" else "") + (
        "-cl" if options.get("channels_last") else "")


@dataclass(frozen=True)
class OwnModel:
    """``reproduce --model``: the user's classifier in place of the paper's, on the target's dataset and preset.

    ``model``: ``file.py:build`` or ``package.module:build`` (a file by its absolute path, as runs store
    it); ``layers``: the module paths to explain, in forward order; ``weights``: a trained state_dict
    (safetensors, absolute path) that stands as the natural model as it is, instead of training one;
    ``image_size``: the input side (None: the preset's); ``fit``: how inputs reach the GAN's 4 * 2^k
    side (None: resize). The adversarially trained model is always trained here, from scratch.
    """

    model: str
    layers: tuple[str, ...]
    weights: str | None = None
    image_size: int | None = None
    fit: str | None = None

    def stem(self) -> str:
        """The callable's name, for folder and run names."""
        return reference_stem(self.model)

    def record(self) -> dict[str, Any]:
        """What the chain's ``config.json`` stores: the fields and the weights file's sha256, so that a
        changed file refuses the folder instead of resuming it."""
        digest = None if self.weights is None else file_digest(Path(self.weights), "sha256")
        return {**asdict(self), "weights_sha256": digest}

    def train_configs(self, dataset: str, spec: ChainSpec) -> dict[str, TrainConfig]:
        """``{"natural", "adversarial"}``: the preset's natural and trades+atta schedules for this model
        (the presets' ``model_kwargs`` size the registered models, so they give way to ``layers``)."""
        ref = {"model": self.model, "model_kwargs": {"layers": list(self.layers)}, "image_size": self.image_size}
        natural = {**spec.natural, **ref, **({} if self.weights is None else {"weights": self.weights, "epochs": 0})}
        return {
            "natural": resolve_train_config(dataset, "natural", spec.train_preset, natural),
            "adversarial": resolve_train_config(dataset, "trades+atta", spec.train_preset, {**spec.adversarial, **ref}),
        }


def check_own_model(own: OwnModel, target: str, spec: ChainSpec, dataset: str) -> None:
    """The own-model chain's checks, its model built once from its training config: a bad target,
    reference, layer, size or weights file ends here, before the chain's folder exists."""
    if target not in POOLING_ATTACKS:
        raise ConfigError(f"reproduce --model covers {' and '.join(POOLING_ATTACKS)} (the datasets with an "
                          f"adversarial training preset); got '{target}'")
    if not own.layers:
        raise ConfigError("reproduce --model needs --layers: the module paths whose explainers Table 1 compares")
    check_model_options(own.train_configs(dataset, spec)["natural"])
