"""Noise schedules: betas (T,) in float64.

- ``linear``: Ho et al. 2020, beta from 1e-4 to 0.02 at T = 1000, rescaled by 1000 / T for
  other T (as in improved-diffusion) so the total noise stays comparable; clipped at 0.999.
- ``cosine``: Nichol & Dhariwal 2021, alpha_bar(t) = cos^2(((t/T + s)/(1 + s)) pi/2), s = 0.008,
  betas clipped at 0.999.
"""

from __future__ import annotations

import math

import torch

from dgmbench.errors import UsageError, suggest


def linear_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02, max_beta: float = 0.999) -> torch.Tensor:
    scale = 1000.0 / T
    return torch.linspace(scale * beta_start, scale * beta_end, T, dtype=torch.float64).clamp(max=max_beta)


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    def alpha_bar(u: float) -> float:
        return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    betas = [min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), max_beta) for i in range(T)]
    return torch.tensor(betas, dtype=torch.float64)


SCHEDULES = {"linear": linear_betas, "cosine": cosine_betas}


def make_betas(name: str, T: int) -> torch.Tensor:
    if name not in SCHEDULES:
        raise UsageError(suggest(name, SCHEDULES, "noise schedule"))
    if T < 2:
        raise UsageError(f"a diffusion needs at least 2 timesteps, got T={T}")
    return SCHEDULES[name](T)
