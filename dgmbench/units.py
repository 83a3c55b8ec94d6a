"""Unit conventions shared by metrics and baselines.

Likelihoods are per-sample log-likelihoods in nats. For 8-bit images (values k/255 in
[0, 1]), ``log_likelihood`` is the log-probability of the discrete 8-bit image, which
equals the log-density of the uniformly dequantised image on the [0, 256)^D scale.
Bits per dimension: bpd = nll_nats / (D ln 2). A uniform model scores 8 bpd.

A model whose likelihood is that of a coarser grid (a PixelCNN or VAE softmax over
``levels`` < 256 values per sub-pixel, data read as round(x (levels - 1))) states it in
``likelihood_levels``; its bits/dim are those of the ``levels``-level image (a uniform model
scores log2(levels)), labelled with the grid (:func:`bpd_unit`) and not comparable with 8-bit
bits/dim.
"""

from __future__ import annotations

import math

import torch

LIKELIHOOD_KINDS = ("exact", "bound", "estimate")
LN2 = math.log(2.0)
EIGHT_BIT_LEVELS = 256


def bpd_unit(levels: int = EIGHT_BIT_LEVELS) -> str:
    """The unit of bits/dim on a grid of ``levels`` values per sub-pixel: 'bits/dim' on the 8-bit
    grid (the registry's unit), 'bits/dim on a 17-level grid' otherwise."""
    return "bits/dim" if levels == EIGHT_BIT_LEVELS else f"bits/dim on a {levels}-level grid"


def uniform_bpd(levels: int = EIGHT_BIT_LEVELS) -> float:
    """Bits/dim of the uniform model on a grid of ``levels`` values: log2(levels) (8.0 for 8-bit data)."""
    return math.log2(levels)


def bits_per_dim(nll_nats: torch.Tensor | float, num_dims: int) -> torch.Tensor | float:
    """Convert NLL in nats (per sample, on the [0, 256)^D scale) to bits per dimension."""
    return nll_nats / (num_dims * LN2)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Quantise [0, 1] floats to uint8 the way torchvision's ToPILImage does: round(x * 255)."""
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def dequantize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform dequantisation of 8-bit images in [0, 1]: y = (255 x + u) / 256, u ~ U[0, 1).

    A density p(y) on [0, 1)^D corresponds to log P(x) >= log p(y) - D log 256 (Jensen);
    with a single sample of u it is an unbiased estimate of that bound's expectation.
    """
    k = (x * 255).round()
    gen_device = generator.device if generator is not None else x.device
    u = torch.rand(x.shape, generator=generator, device=gen_device, dtype=x.dtype).to(x.device)
    return (k + u) / 256.0


def unit_scale_to_8bit_nll(nll_unit_scale: torch.Tensor, num_dims: int) -> torch.Tensor:
    """NLL of a density on [0, 1)^D (dequantised data) -> NLL on the [0, 256)^D scale."""
    return nll_unit_scale + num_dims * math.log(256.0)
