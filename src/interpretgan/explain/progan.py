"""The progressive GAN behind every explanation generator G_i and its critic D_i (Appendix C).

Karras et al.'s progressive growing, as in the two implementations the paper builds on
(jeromerony/Progressive_Growing_of_GANs-PyTorch for MNIST, facebookresearch/pytorch_GAN_zoo for
CelebFaces), written anew:

* scales 4x4 -> 8x8 -> ... -> ``image_size``; G's first block maps the latent to 4x4 with a dense
  layer (a 4x4 convolution on a 1x1 input) and a 3x3 convolution, each later block upsamples x2
  (nearest) and applies two 3x3 convolutions; a 1x1 ``toRGB`` per scale;
* D is the mirror: a 1x1 ``fromRGB`` per scale, blocks of two 3x3 convolutions and a 2x2
  average pool, a minibatch standard deviation channel before the last block, which ends in a
  4x4 convolution and a dense layer to one score;
* a new scale fades in: G blends ``alpha * toRGB_s(h_s) + (1 - alpha) * up(toRGB_{s-1}(h_{s-1}))``
  and D blends the new ``fromRGB`` + block with the previous ``fromRGB`` of the pooled image;
* equalized learning rate for every convolution and dense layer of G and D (weights drawn
  from N(0, 1), multiplied at run time by He's constant ``gain / sqrt(fan_in)``), pixel-norm after
  every convolution of G (and on its input), leaky ReLU 0.2 everywhere.

Images are in [0, 1] on both sides, because explanations are fed back to the classifier, whose
inputs are in [0, 1]: G ends in ``(tanh(y) + 1) / 2`` and D maps its input to [-1, 1] first.

**Stacked explainers.** Every weight carries a leading *stack* dimension ``S`` so that the
explainers of ``S`` layers can run as one set of grouped convolutions (useful on GPUs, where
these small networks are launch-bound). Tensors of a stack lay the members' channels side by
side: images are ``(B, S * C, H, W)`` with member ``i`` in channels ``[i*C, (i+1)*C)``. With
``S = 1`` (the default) everything is an ordinary single GAN: ``(B, C, H, W)`` images.
:func:`stack_state_dicts` and :func:`member_state_dict` move weights between the two forms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from interpretgan.errors import ConfigError

LRELU_SLOPE = 0.2
#: Equalized-lr gain of G's first (dense) layer: Karras et al.'s sqrt(2) / 4, the scale of
#: jeromerony's 4x4 convolution of a 1x1 latent. (Explainers saved before 2026-11-29 used sqrt(2).)
DENSE_GAIN = math.sqrt(2.0) / 4
LEGACY_GENERATOR = {
    "dense_gain": math.sqrt(2.0),
    "image_fade": False,
}  # what an explainer.json without these keys means
_PIXEL_NORM_EPS = 1e-8


def saved_generator_config(config: dict) -> dict:
    """A generator config read from an explainer.json, completed with what older files meant by omission."""
    return {**LEGACY_GENERATOR, **config}


# --- scales --------------------------------------------------------------------------------------
def num_scales(image_size: int) -> int:
    """Number of scales from 4x4 up to ``image_size`` (32 -> 4, 64 -> 5, 128 -> 6).

    Raises ConfigError unless ``image_size`` is 4 times a power of two.
    """
    k = image_size // 4
    if image_size < 4 or image_size % 4 or k & (k - 1):
        raise ConfigError(
            f"the progressive GAN needs an image size of 4 * 2^k (4, 8, ..., 32, 64, 128), got {image_size}"
        )
    return int(math.log2(k)) + 1


def scale_side(scale: int) -> int:
    """Side length of scale ``scale`` (0 -> 4, 1 -> 8, ...)."""
    return 4 * 2**scale


def scale_channels(side: int, max_channels: int, channel_base: int) -> int:
    """Feature maps at a scale of side ``side``: ``min(max_channels, channel_base // side)``.

    ProGAN's ``nf`` with ``channel_base`` twice its ``fmap_base`` (ProGAN: ``fmap_base / (side / 2)``).
    """
    return max(1, min(max_channels, channel_base // side))


# --- layers --------------------------------------------------------------------------------------
class EqualizedConv2d(nn.Module):
    """A convolution with equalized learning rate, for a stack of ``stack`` independent members.

    ``weight`` ``(S, out, in, k, k)`` is drawn from N(0, 1) and multiplied at run time by
    ``gain / sqrt(in * k * k)``; ``bias`` ``(S, out)`` starts at zero. Input ``(B, S * in, H, W)``,
    output ``(B, S * out, H', W')`` (a grouped convolution with ``S`` groups).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, padding: int = 0,
                 gain: float = math.sqrt(2.0), stack: int = 1) -> None:
        super().__init__()
        self.stack, self.padding = stack, padding
        self.weight = nn.Parameter(torch.randn(stack, out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(stack, out_channels))
        self.scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        w = (self.weight * self.scale).flatten(0, 1)
        return F.conv2d(x, w, self.bias.flatten(), padding=self.padding, groups=self.stack)


class EqualizedLinear(nn.Module):
    """A dense layer with equalized learning rate for a stack: ``(B, S, in) -> (B, S, out)``."""

    def __init__(self, in_features: int, out_features: int, *, gain: float = math.sqrt(2.0), stack: int = 1) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(stack, out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(stack, out_features))
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: Tensor) -> Tensor:
        return torch.einsum("bsi,soi->bso", x, self.weight * self.scale) + self.bias


def pixel_norm(x: Tensor, stack: int = 1) -> Tensor:
    """Normalise each pixel's feature vector to unit mean square, per stack member.

    ``x``: ``(B, S * C, H, W)`` or ``(B, S, C)`` (the latent); same shape out.
    """
    if x.dim() == 3:
        return x * torch.rsqrt(x.pow(2).mean(dim=2, keepdim=True) + _PIXEL_NORM_EPS)
    b, sc, h, w = x.shape
    y = x.view(b, stack, sc // stack, h, w)
    return (y * torch.rsqrt(y.pow(2).mean(dim=2, keepdim=True) + _PIXEL_NORM_EPS)).view(b, sc, h, w)


def stddev_group(batch: int, group_size: int = 4) -> int:
    """The size of :func:`minibatch_stddev`'s groups in a batch of ``batch``: ``group_size`` when it divides
    the batch (at most the batch), else the whole batch."""
    g = min(group_size, batch)
    return g if batch % g == 0 else batch


def minibatch_stddev(x: Tensor, stack: int = 1, group_size: int = 4) -> Tensor:
    """Append ProGAN's minibatch standard deviation channel to every stack member.

    The batch is split into groups of ``group_size`` examples (example ``b`` is in group
    ``b % (B // group_size)``, as in ProGAN; the whole batch when ``B`` is not a multiple of it).
    For each group: the standard deviation over the group of every feature and pixel (population
    variance + 1e-8, square root), averaged over features and pixels, is one number that fills the
    new channel of the group's examples. ``(B, S * C, H, W) -> (B, S * (C + 1), H, W)``.
    """
    b, sc, h, w = x.shape
    c = sc // stack
    g = stddev_group(b, group_size)
    m = b // g
    y = x.view(g, m, stack, c, h, w)
    std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()  # (M, S, C, H, W)
    stat = std.mean(dim=(2, 3, 4)).repeat(g, 1)  # (B, S): example b gets its group's value
    extra = stat.view(b, stack, 1, 1, 1).expand(b, stack, 1, h, w)
    return torch.cat([x.view(b, stack, c, h, w), extra], dim=2).view(b, stack * (c + 1), h, w)


def upsample2(x: Tensor) -> Tensor:
    """Nearest-neighbour x2 upsampling ``(B, C, H, W) -> (B, C, 2H, 2W)``."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def resize_nearest(x: Tensor, side: int) -> Tensor:
    """Nearest-neighbour upsampling to ``side`` (an integer multiple of the current side)."""
    if x.shape[-1] == side:
        return x
    return F.interpolate(x, size=(side, side), mode="nearest")


def downsample_to(x: Tensor, side: int) -> Tensor:
    """Average-pool ``(B, C, H, H)`` down to ``(B, C, side, side)`` (``H`` a multiple of ``side``)."""
    if x.shape[-1] == side:
        return x
    return F.avg_pool2d(x, kernel_size=x.shape[-1] // side)


def _lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, LRELU_SLOPE)


def _to_image(y: Tensor) -> Tensor:
    """toRGB's output mapped into [0, 1]."""
    return (torch.tanh(y) + 1.0) / 2.0


def _key(side: int) -> str:
    return str(side)


# --- generator -----------------------------------------------------------------------------------
class _GBlock(nn.Module):
    """Upsample x2, then two 3x3 convolutions, each followed by leaky ReLU and pixel-norm."""

    def __init__(self, c_in: int, c_out: int, stack: int) -> None:
        super().__init__()
        self.stack = stack
        self.conv1 = EqualizedConv2d(c_in, c_out, 3, padding=1, stack=stack)
        self.conv2 = EqualizedConv2d(c_out, c_out, 3, padding=1, stack=stack)

    def forward(self, h: Tensor) -> Tensor:
        h = pixel_norm(_lrelu(self.conv1(upsample2(h))), self.stack)
        return pixel_norm(_lrelu(self.conv2(h)), self.stack)


class ProGenerator(nn.Module):
    """G: latent ``(B, latent_dim)`` (or ``(B, S, latent_dim)`` for a stack) -> image in [0, 1].

    ``forward(z, scale, alpha)`` returns ``(B, S * image_channels, side, side)`` with
    ``side = 4 * 2**scale``; ``scale=None`` means the last scale. ``alpha`` in [0, 1] blends the
    new scale in (1: only the new ``toRGB``; 0: the previous scale's output, upsampled).
    Feature maps per scale: :func:`scale_channels`.
    """

    def __init__(
        self,
        latent_dim: int,
        image_channels: int,
        image_size: int,
        *,
        max_channels: int = 128,
        channel_base: int = 4096,
        stack: int = 1,
        dense_gain: float = DENSE_GAIN,
        image_fade: bool = True,
    ) -> None:
        super().__init__()
        self.config = dict(
            latent_dim=latent_dim,
            image_channels=image_channels,
            image_size=image_size,
            max_channels=max_channels,
            channel_base=channel_base,
            dense_gain=dense_gain,
            image_fade=image_fade,
        )
        self.image_fade = image_fade
        self.stack, self.latent_dim, self.image_channels = stack, latent_dim, image_channels
        self.n_scales = num_scales(image_size)
        ch = [scale_channels(scale_side(s), max_channels, channel_base) for s in range(self.n_scales)]
        self.channels = ch
        # First block: the dense layer is ProGAN's 4x4 convolution of a 1x1 latent, with its gain.
        self.dense = EqualizedLinear(latent_dim, ch[0] * 16, gain=dense_gain, stack=stack)
        self.conv4 = EqualizedConv2d(ch[0], ch[0], 3, padding=1, stack=stack)
        self.blocks = nn.ModuleDict(
            {_key(scale_side(s)): _GBlock(ch[s - 1], ch[s], stack) for s in range(1, self.n_scales)}
        )
        self.to_rgb = nn.ModuleDict(
            {
                _key(scale_side(s)): EqualizedConv2d(ch[s], image_channels, 1, gain=1.0, stack=stack)
                for s in range(self.n_scales)
            }
        )

    def forward(self, z: Tensor, scale: int | None = None, alpha: float = 1.0) -> Tensor:
        scale = self.n_scales - 1 if scale is None else scale
        if not 0 <= scale < self.n_scales:
            raise ConfigError(f"scale {scale} is outside 0..{self.n_scales - 1} of this generator")
        if z.dim() == 2:
            z = z.unsqueeze(1)  # (B, 1, latent)
        if z.shape[1:] != (self.stack, self.latent_dim):
            raise ConfigError(
                f"the generator expects latents (B, {self.stack}, {self.latent_dim}), got {tuple(z.shape)}"
            )
        b, s = z.shape[0], self.stack
        h = _lrelu(self.dense(pixel_norm(z)))  # (B, S, C0 * 16)
        h = pixel_norm(h.view(b, s, self.channels[0], 4, 4).flatten(1, 2), s)  # (B, S * C0, 4, 4)
        h = pixel_norm(_lrelu(self.conv4(h)), s)
        prev = h
        for t in range(1, scale + 1):
            prev, h = h, self.blocks[_key(scale_side(t))](h)
        y = self.to_rgb[_key(scale_side(scale))](h)
        if scale > 0 and alpha < 1.0:
            y_prev = upsample2(self.to_rgb[_key(scale_side(scale - 1))](prev))
            if self.image_fade:  # blended as images, the way the critic's real images are
                return alpha * _to_image(y) + (1.0 - alpha) * _to_image(y_prev)
            y = alpha * y + (1.0 - alpha) * y_prev  # explainers trained before 2026-11-29 blended before tanh
        return _to_image(y)


# --- discriminator -------------------------------------------------------------------------------
class _DBlock(nn.Module):
    """Two 3x3 convolutions with leaky ReLU, then a 2x2 average pool."""

    def __init__(self, c_in: int, c_out: int, stack: int) -> None:
        super().__init__()
        self.conv1 = EqualizedConv2d(c_in, c_in, 3, padding=1, stack=stack)
        self.conv2 = EqualizedConv2d(c_in, c_out, 3, padding=1, stack=stack)

    def forward(self, h: Tensor) -> Tensor:
        return F.avg_pool2d(_lrelu(self.conv2(_lrelu(self.conv1(h)))), 2)


class ProDiscriminator(nn.Module):
    """D (the WGAN critic): images ``(B, S * image_channels, side, side)`` in [0, 1] -> scores ``(B, S)``.

    The mirror of :class:`ProGenerator`; ``scale``/``alpha`` as there (the input's side must be
    ``4 * 2**scale``). ``mbstd_group`` is the group size of :func:`minibatch_stddev`. It works in
    ProGAN's [-1, 1]: an input ``x`` becomes ``input_scale * x - 1`` first.
    """

    input_scale = 2.0

    def __init__(self, image_channels: int, image_size: int, *, max_channels: int = 128, channel_base: int = 4096,
                 mbstd_group: int = 4, stack: int = 1) -> None:
        super().__init__()
        self.config = dict(image_channels=image_channels, image_size=image_size, max_channels=max_channels,
                           channel_base=channel_base, mbstd_group=mbstd_group)
        self.stack, self.mbstd_group, self.image_channels = stack, mbstd_group, image_channels
        self.n_scales = num_scales(image_size)
        ch = [scale_channels(scale_side(s), max_channels, channel_base) for s in range(self.n_scales)]
        self.channels = ch
        self.from_rgb = nn.ModuleDict(
            {_key(scale_side(s)): EqualizedConv2d(image_channels, ch[s], 1, stack=stack) for s in range(self.n_scales)}
        )
        self.blocks = nn.ModuleDict(
            {_key(scale_side(s)): _DBlock(ch[s], ch[s - 1], stack) for s in range(1, self.n_scales)}
        )
        self.conv_std = EqualizedConv2d(ch[0] + 1, ch[0], 3, padding=1, stack=stack)
        self.conv4 = EqualizedConv2d(ch[0], ch[0], 4, stack=stack)  # 4x4 -> 1x1
        self.dense = EqualizedLinear(ch[0], 1, gain=1.0, stack=stack)

    def forward(self, x: Tensor, scale: int | None = None, alpha: float = 1.0) -> Tensor:
        scale = self.n_scales - 1 if scale is None else scale
        side = scale_side(scale)
        if not 0 <= scale < self.n_scales or x.shape[-1] != side or x.shape[1] != self.stack * self.image_channels:
            raise ConfigError(
                f"the discriminator at scale {scale} expects images "
                f"(B, {self.stack * self.image_channels}, {side}, {side}), "
                f"got {tuple(x.shape)}"
            )
        x = x * self.input_scale - 1.0
        h = _lrelu(self.from_rgb[_key(side)](x))
        if scale > 0:
            h = self.blocks[_key(side)](h)
            if alpha < 1.0:
                h_prev = _lrelu(self.from_rgb[_key(side // 2)](F.avg_pool2d(x, 2)))
                h = alpha * h + (1.0 - alpha) * h_prev
            for t in range(scale - 1, 0, -1):
                h = self.blocks[_key(scale_side(t))](h)
        h = minibatch_stddev(h, self.stack, self.mbstd_group)
        h = _lrelu(self.conv_std(h))
        h = _lrelu(self.conv4(h))  # (B, S * C0, 1, 1)
        return self.dense(h.view(x.shape[0], self.stack, -1)).squeeze(-1)


# --- stacking ------------------------------------------------------------------------------------
def stack_state_dicts(members: Sequence[dict[str, Tensor]]) -> dict[str, Tensor]:
    """The state dict of a stack from its members' (each with a stack dimension of 1)."""
    return {k: torch.cat([m[k] for m in members], dim=0) for k in members[0]}


def member_state_dict(state: dict[str, Tensor], i: int) -> dict[str, Tensor]:
    """Member ``i`` of a stack's state dict, with a stack dimension of 1."""
    return {k: v[i : i + 1] for k, v in state.items()}
