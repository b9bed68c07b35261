"""Compression networks C_i: a layer's latent variable -> the generator's latent (Section 3, Tables 4-5).

``C_i`` sits between ``l_i = f_pre_i(x)`` and the generator, so that every layer's explainer
starts from a vector of the same size ``latent_dim`` (Fig. 2). Its shape follows the paper:

* MNIST SmallCNN, Table 4 (for a 32x32 input): conv1 ``conv 64, pool, conv 128, pool, conv 256,
  pool, FC``; conv2 ``conv 64, pool, conv 128, pool, FC``; conv3 ``conv 128, pool, conv 256,
  pool, FC``; conv4, fc1, fc2, fc3 ``FC``;
* CelebFaces VGG16, Table 5: block1 ``conv 128, pool, conv 256, pool, conv 512, pool, conv 512,
  pool``; block2 ``256, 512, 512`` (each conv + pool); block3 ``512, 512``; block4 ``512``;
  block5 ``conv 512`` (no pool); then ``FC``; fc1..fc3 ``FC``;
* any other model or layer, :func:`generic_stages`: while the feature map's side is at least 6,
  a 3x3 convolution and a 2x2 average pool, the first with twice the tap's channels, each next one
  doubling, capped at 512; then ``FC``. This rule gives exactly Table 4 for all seven SmallCNN
  layers, and Table 5 for a 128x128 VGG16 except block5's single unpooled convolution.

Every convolution is 3x3 with padding 1, followed by leaky ReLU 0.2 (the GAN's activation);
pools are 2x2 averages (skipped if the map is already 1 pixel wide); the final dense layer
outputs ``latent_dim`` numbers with no activation (the generator pixel-normalises its input).
``width`` multiplies every convolution's channels (smaller values for CPU presets).

Initialisation (the paper states none): He-normal weights for leaky ReLU 0.2 and zero biases, the
He scaling and zero biases of the progressive GAN's own layers (which apply it at run time).
PyTorch's default (uniform weights of variance 1 / (3 fan_in), about a sixth of He's, and uniform
biases) shrinks the signal at every convolution while the biases do not shrink, so a deep C_i
starts out giving nearly the same latent for every input, and G_i, a deterministic function of
that latent, nearly the same image: CelebA block1's explainer collapsed with it
(experiments/2026-11-30-cpu-explainer-init). ``init="torch"`` rebuilds explainers
saved before this choice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from interpretgan.errors import ConfigError
from interpretgan.models import TappedModel

MAX_CHANNELS = 512
LRELU_SLOPE = 0.2
#: ``he``: He-normal weights, zero biases (see the module docstring); ``torch``: PyTorch's default,
#: which explainers saved before 2026-11-30 were trained with (their explainer.json has no ``init``).
INITS = ("he", "torch")


def saved_compression_config(config: dict[str, Any]) -> dict[str, Any]:
    """A compression-net config read from an explainer.json, completed with what older files meant by omission."""
    return {"init": "torch", **config}


#: (channels, pool after it) per convolution; layers absent from a table get only the FC.
PAPER_STAGES: dict[str, dict[str, tuple[tuple[int, bool], ...]]] = {
    "smallcnn": {  # Table 4
        "conv1": ((64, True), (128, True), (256, True)),
        "conv2": ((64, True), (128, True)),
        "conv3": ((128, True), (256, True)),
        "conv4": (),
        "fc1": (),
        "fc2": (),
        "fc3": (),
    },
    "vgg16": {  # Table 5
        "block1": ((128, True), (256, True), (512, True), (512, True)),
        "block2": ((256, True), (512, True), (512, True)),
        "block3": ((512, True), (512, True)),
        "block4": ((512, True),),
        "block5": ((512, False),),
        "fc1": (),
        "fc2": (),
        "fc3": (),
    },
}


def generic_stages(tap_shape: Sequence[int], max_channels: int = MAX_CHANNELS) -> tuple[tuple[int, bool], ...]:
    """The documented rule for layers without a paper table (see the module docstring).

    ``tap_shape``: the latent's shape without the batch dimension, ``(C, H, W)`` or ``(D,)``.
    """
    if len(tap_shape) != 3:
        return ()
    c, side = tap_shape[0], min(tap_shape[1:])
    stages = []
    width = 2 * c
    while side >= 6:
        stages.append((min(width, max_channels), True))
        width *= 2
        side //= 2
    return tuple(stages)


def compression_stages(model_name: str | None, layer: str, tap_shape: Sequence[int]) -> tuple[tuple[int, bool], ...]:
    """Table 4/5 for ``smallcnn``/``vgg16`` layers, else :func:`generic_stages`."""
    table = PAPER_STAGES.get(model_name or "", {})
    if layer in table:
        return table[layer]
    return generic_stages(tap_shape)


class CompressionNet(nn.Module):
    """C_i: latent ``(B, *in_shape)`` -> ``(B, latent_dim)``.

    ``stages`` lists ``(channels, pool)`` per 3x3 convolution (empty for an FC-only net).
    ``config`` holds the keyword arguments that rebuild it.
    """

    def __init__(
        self, in_shape: Sequence[int], stages: Sequence[Sequence[Any]], latent_dim: int, init: str = "he"
    ) -> None:
        super().__init__()
        if init not in INITS:
            raise ConfigError(f"unknown compression-net initialisation '{init}'; expected one of {', '.join(INITS)}")
        in_shape, stages = [int(s) for s in in_shape], [(int(c), bool(p)) for c, p in stages]
        self.config = dict(in_shape=in_shape, stages=[list(s) for s in stages], latent_dim=latent_dim, init=init)
        if stages and len(in_shape) != 3:
            raise ConfigError(
                f"a compression net with convolutions needs a (C, H, W) latent, got shape {tuple(in_shape)}"
            )
        layers: list[nn.Module] = []
        c = in_shape[0]
        side = list(in_shape[1:])
        for c_out, pool in stages:
            layers += [nn.Conv2d(c, c_out, 3, padding=1), nn.LeakyReLU(LRELU_SLOPE)]
            if pool and min(side) >= 2:
                layers.append(nn.AvgPool2d(2))
                side = [s // 2 for s in side]
            c = c_out
        flat = c * int(torch.tensor(side).prod()) if len(in_shape) == 3 else int(torch.tensor(in_shape).prod())
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(flat, latent_dim)
        if init == "he":
            for module in self.modules():
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    nn.init.kaiming_normal_(module.weight, a=LRELU_SLOPE, nonlinearity="leaky_relu")
                    nn.init.zeros_(module.bias)

    def forward(self, latent: Tensor) -> Tensor:
        return self.fc(self.features(latent).flatten(1))


def scaled_stages(stages: Iterable[tuple[int, bool]], width: float) -> tuple[tuple[int, bool], ...]:
    """``stages`` with every channel count multiplied by ``width`` (rounded, at least 1)."""
    return tuple((max(1, round(c * width)), p) for c, p in stages)


def compression_configs(model: TappedModel, layers: Iterable[str], latent_dim: int, *, width: float = 1.0,
                        image_size: int | None = None) -> dict[str, dict[str, Any]]:
    """The :class:`CompressionNet` keyword arguments for each of ``layers`` of ``model``.

    Raises ConfigError for a layer the model does not have (naming the valid ones).
    ``image_size`` defaults to the model's own.
    """
    layers = model.check_layers(layers)
    shapes = model.tap_shapes(image_size)  # None: the model's own input shape
    name = getattr(model, "registry_name", None)
    out = {}
    for layer in layers:
        stages = scaled_stages(compression_stages(name, layer, shapes[layer]), width)
        out[layer] = dict(in_shape=list(shapes[layer]), stages=[list(s) for s in stages], latent_dim=latent_dim)
    return out


def build_compression(model: TappedModel, layer: str, latent_dim: int, *, width: float = 1.0,
                      image_size: int | None = None) -> CompressionNet:
    """C_i for ``layer`` of ``model`` (Tables 4-5 or the generic rule), on the CPU."""
    return CompressionNet(**compression_configs(model, [layer], latent_dim, width=width, image_size=image_size)[layer])
