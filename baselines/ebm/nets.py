"""Energy networks ``E(x) -> (N,)``, smooth in x (SiLU / LeakyReLU), for SGLD.

- :class:`ConvEnergy`: a small IGEBM/JEM-style convolutional energy for images in [-1, 1]:
  3x3 convolutions, stride-2 downsampling to a base resolution, global sum pooling, linear.
- :class:`StridedConvEnergy`: the short-run EBM's ConvNet (Nijkamp et al. 2019): a 3x3
  convolution, then 4x4 stride-2 convolutions doubling the width down to a side <= 4, and a
  final convolution over the whole remaining map to one number; LeakyReLU(0.2), no pooling,
  no normalisation. About 4 times cheaper per SGLD step than :class:`ConvEnergy` at equal width.
- :class:`MLPEnergy`: an MLP energy ``energy_scale * net(input_scale * x)`` for 2-D points
  (``input_scale > 1`` lets a standard-initialised MLP form features as narrow as the
  toy mixtures' modes; it counters the MLP's bias towards smooth functions) plus an optional quadratic confinement
  ``|x|^2 / (2 prior_std^2)``, which makes ``exp(-E)`` integrable on R^D (the MLP grows at
  most linearly), so ``log Z`` is finite and AIS has something to estimate.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from dgmbench.errors import UsageError

ACTIVATIONS = {"silu": nn.SiLU, "lrelu": lambda: nn.LeakyReLU(0.2), "softplus": nn.Softplus}


def _act(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise UsageError(f"unknown activation '{name}' (known: {', '.join(ACTIVATIONS)})")
    return ACTIVATIONS[name]()


def _maybe_sn(layer: nn.Module, use: bool) -> nn.Module:
    return _sn(layer) if use else layer


class ConvEnergy(nn.Module):
    def __init__(self, in_shape: tuple[int, int, int], ch: int = 32, act: str = "silu", spectral_norm: bool = False,
                 max_ch: int = 256, energy_scale: float = 1.0):
        super().__init__()
        self.energy_scale = float(energy_scale)
        c_in, h, w = in_shape
        layers: list[nn.Module] = [_maybe_sn(nn.Conv2d(c_in, ch, 3, 1, 1), spectral_norm), _act(act)]
        c, side = ch, min(h, w)
        while side > 4 and side % 2 == 0:
            c_next = min(2 * c, max_ch)
            layers += [_maybe_sn(nn.Conv2d(c, c, 3, 1, 1), spectral_norm), _act(act),
                       _maybe_sn(nn.Conv2d(c, c_next, 4, 2, 1), spectral_norm), _act(act)]
            c, side = c_next, side // 2
        layers += [_maybe_sn(nn.Conv2d(c, c, 3, 1, 1), spectral_norm), _act(act)]
        self.net = nn.Sequential(*layers)
        self.head = _maybe_sn(nn.Linear(c, 1), spectral_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.energy_scale * self.head(self.net(x).sum((2, 3))).squeeze(1)


class StridedConvEnergy(nn.Module):
    """``E(x) = energy_scale * net(x)``; for 28x28 and width ``ch``: 28 -> 14 -> 7 -> 3 at ``ch``,
    2 ``ch``, 4 ``ch``, 8 ``ch`` channels (capped at ``max_ch``), then a 3x3 convolution to one value."""

    def __init__(self, in_shape: tuple[int, int, int], ch: int = 16, act: str = "lrelu", spectral_norm: bool = False,
                 max_ch: int = 512, energy_scale: float = 1.0):
        super().__init__()
        self.energy_scale = float(energy_scale)
        c_in, h, w = in_shape
        layers: list[nn.Module] = [_maybe_sn(nn.Conv2d(c_in, ch, 3, 1, 1), spectral_norm), _act(act)]
        c, side = ch, min(h, w)
        while side > 4:
            c_next = min(2 * c, max_ch)
            layers += [_maybe_sn(nn.Conv2d(c, c_next, 4, 2, 1), spectral_norm), _act(act)]
            c, side = c_next, side // 2
        layers += [_maybe_sn(nn.Conv2d(c, 1, side, 1, 0), spectral_norm)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.energy_scale * self.net(x).flatten(1).sum(1)


class MLPEnergy(nn.Module):
    def __init__(self, in_dim: int, hidden: int = 128, layers: int = 3, act: str = "silu", spectral_norm: bool = False,
                 prior_std: float | None = None, energy_scale: float = 1.0, input_scale: float = 1.0):
        super().__init__()
        dims = [in_dim] + [hidden] * layers
        mods: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            mods += [_maybe_sn(nn.Linear(a, b), spectral_norm), _act(act)]
        self.net = nn.Sequential(*mods, _maybe_sn(nn.Linear(dims[-1], 1), spectral_norm))
        self.prior_std = prior_std
        self.energy_scale = float(energy_scale)
        self.input_scale = float(input_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.energy_scale * self.net(self.input_scale * x).squeeze(1)
        if self.prior_std:
            e = e + 0.5 * (x**2).sum(1) / self.prior_std**2
        return e
