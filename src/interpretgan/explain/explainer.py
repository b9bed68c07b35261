"""One layer's explainer ``x_hat_i = G_i(C_i(l_i))`` (Section 3): the module, its training schedule,
how it is built from a seed, and its files.

An explainer's files are ``explainer.safetensors`` (C, G and D, prefixed ``compression.``,
``generator.``, ``discriminator.``) and ``explainer.json`` (what rebuilds them, and how far training
got); :mod:`interpretgan.explain.loop` trains explainers, in memory or into a store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from interpretgan.config import ExplainConfig
from interpretgan.devices import eval_mode
from interpretgan.errors import RunError
from interpretgan.explain.compression import CompressionNet, saved_compression_config
from interpretgan.explain.fit import from_gan
from interpretgan.explain.progan import ProDiscriminator, ProGenerator, resize_nearest, saved_generator_config
from interpretgan.io import load_tensors, read_json, save_tensors, tensor_metadata, write_json
from interpretgan.models import TappedModel

#: Where the gradient penalty is taken, recorded in each explainer.json: the critic's own [-1, 1] pixel
#: space, as in ProGAN. Explainers checkpointed before 2026-11-30 took it on their [0, 1] inputs
#: (twice the gradient norm), and their files say nothing.
GP_SPACE, LEGACY_GP_SPACE = "[-1, 1]", "[0, 1]"


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

    ``forward(latent)`` maps ``l_i`` ``(B, *tap_shape)`` to ``x_hat`` ``(B, C, H, W)`` in [0, 1], at the
    scale training reached (upsampled to the GAN's side when below it), then mapped to the
    classifier's ``image_shape`` ``(H, W)`` by ``fit`` where the two differ (:mod:`interpretgan.explain.fit`).
    """

    def __init__(self, layer: str, compression: CompressionNet, generator: ProGenerator,
                 discriminator: ProDiscriminator | None = None, *, scale: int | None = None, alpha: float = 1.0,
                 image_shape: tuple[int, int] | None = None, fit: str | None = None) -> None:
        super().__init__()
        self.layer = layer
        self.compression, self.generator, self.discriminator = compression, generator, discriminator
        self.scale = generator.n_scales - 1 if scale is None else scale
        self.alpha = alpha
        self.image_size = int(generator.config["image_size"])  # the GAN's side
        self.image_shape = (self.image_size, self.image_size) if image_shape is None else tuple(image_shape)
        self.fit = fit

    def forward(self, latent: Tensor) -> Tensor:
        x = resize_nearest(self.generator(self.compression(latent), self.scale, self.alpha), self.image_size)
        return from_gan(x, *self.image_shape, self.fit)


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
def detect_collapse(
    fake_std: float, critic_loss: float, *, min_std: float, max_critic: float
) -> list[tuple[str, float, float]]:
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


# --- building ------------------------------------------------------------------------------------
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


# --- files ---------------------------------------------------------------------------------------
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
    write_json(
        directory / "explainer.json",
        {
            "layer": layer,
            "compression": compression.config,
            "generator": generator_config,
            "discriminator": discriminator_config,
            **meta,
        },
    )


def load_explainer(directory: str | Path, device: str | torch.device = "cpu") -> Explainer:
    """Rebuild one layer's :class:`Explainer` from ``directory`` (``ckpt/<layer>``), in eval mode."""
    directory = Path(directory)
    spec = read_json(directory / "explainer.json")
    weights = directory / "explainer.safetensors"
    tensors = load_tensors(weights, device)
    written = tensor_metadata(weights).get("iteration")  # files written before 2026-11-30 have none
    if written is not None and "iteration" in spec and int(written) != int(spec["iteration"]):
        raise RunError(
            f"{weights} holds the weights of iteration {written} but {directory / 'explainer.json'} describes "
            f"iteration {spec['iteration']} (interrupted between the two writes); resume the explain run to "
            "rewrite them"
        )
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
            raise RunError(
                f"{directory / 'explainer.safetensors'} does not fit its explainer.json ({err.__class__.__name__})"
            ) from None
    exp = Explainer(
        spec["layer"],
        comp,
        gen,
        disc,
        scale=int(spec.get("scale", gen.n_scales - 1)),
        alpha=float(spec.get("alpha", 1.0)),
        image_shape=spec.get("image_shape"),
        fit=spec.get("fit"),
    )
    return exp.to(device).eval()
