"""Noise levels of the score family: a geometric sequence sigma_max = sigma_1 > ... > sigma_L = sigma_min
(NCSNv2), seen as the discretisation of the variance-exploding SDE with
sigma(t) = sigma_min (sigma_max / sigma_min)^t, t in [0, 1] (Song et al. 2021).

The network is conditioned on ``1000 t`` (the same [0, 1000) scale as DDPM time steps).
"""

from __future__ import annotations

import math

import torch

from dgmbench.errors import UsageError


class VESigmas:
    """sigma(t) = sigma_min (sigma_max / sigma_min)^t and its inverse."""

    def __init__(self, sigma_min: float, sigma_max: float):
        if not 0 < sigma_min < sigma_max:
            raise UsageError(f"noise levels need 0 < sigma_min < sigma_max, got sigma_min={sigma_min}, sigma_max={sigma_max}")
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self.log_ratio = math.log(self.sigma_max / self.sigma_min)

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        return self.sigma_min * torch.exp(t * self.log_ratio)

    def time(self, sigma: torch.Tensor) -> torch.Tensor:
        return torch.log(sigma / self.sigma_min) / self.log_ratio

    def g2(self, t: torch.Tensor) -> torch.Tensor:
        """Diffusion coefficient squared g(t)^2 = d sigma(t)^2 / dt = 2 sigma(t)^2 log(sigma_max / sigma_min)."""
        return 2.0 * self.sigma(t) ** 2 * self.log_ratio

    def levels(self, num: int) -> torch.Tensor:
        """``num`` geometric levels from sigma_max down to sigma_min (float64)."""
        if num < 1:
            raise UsageError(f"need at least one noise level, got {num}")
        if num == 1:
            return torch.tensor([self.sigma_min], dtype=torch.float64)
        return torch.exp(torch.linspace(math.log(self.sigma_max), math.log(self.sigma_min), num, dtype=torch.float64))
