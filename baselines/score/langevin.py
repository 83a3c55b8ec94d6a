"""Annealed Langevin dynamics (Song & Ermon 2019, NCSNv2 step-size rule).

For each level sigma_i (descending) take K steps
  x <- x + a_i s(x, sigma_i) + sqrt(2 a_i) z,   a_i = eps (sigma_i / sigma_L)^2,
then optionally one denoising step x <- x + sigma_L^2 s(x, sigma_L) (Tweedie's formula,
NCSNv2). Network evaluations per sample: L K (+ 1 when denoising). :func:`ncsnv2_step_lr`
picks eps by NCSNv2's technique 4 from the noise levels and K.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from scipy.optimize import minimize_scalar

from dgmbench.errors import UsageError

from ..diffusion.gaussian import randn


def _ncsnv2_ratio(step_lr: float, sigma_min: float, gamma: float, steps_per_level: int) -> float:
    """NCSNv2 (Song & Ermon 2020) eq. 7: the variance ratio s_T^2 / sigma_i^2 that K steps leave,
    for levels in ratio ``gamma`` = sigma_{i-1} / sigma_i; 1 means the chain has caught up with the level."""
    x = step_lr / sigma_min**2
    a = 2 * x / (1 - (1 - x) ** 2)
    return (1 - x) ** (2 * steps_per_level) * (gamma**2 - a) + a


def ncsnv2_step_lr(sigma_max: float, sigma_min: float, num_levels: int, steps_per_level: int) -> float:
    """NCSNv2's technique 4: the step eps (a_i = eps (sigma_i / sigma_min)^2, same units as sigma^2)
    that brings eq. 7's variance ratio closest to 1 for a geometric sequence of ``num_levels``
    levels. Reproduces the paper's CIFAR-10 (sigma 50 -> 0.01, L 232, K 5) choice eps = 6.2e-6."""
    if not (sigma_max > sigma_min > 0) or num_levels < 2 or steps_per_level < 1:
        raise UsageError("ncsnv2_step_lr needs sigma_max > sigma_min > 0, num_levels >= 2 and steps_per_level >= 1")
    gamma = (sigma_max / sigma_min) ** (1.0 / (num_levels - 1))
    res = minimize_scalar(lambda lx: abs(_ncsnv2_ratio(math.exp(lx) * sigma_min**2, sigma_min, gamma, steps_per_level) - 1),
                          bounds=(math.log(1e-9), math.log(0.5)), method="bounded", options={"xatol": 1e-6})
    return float(math.exp(res.x) * sigma_min**2)


ScoreFn = Callable[[torch.Tensor, float], torch.Tensor]  # (x, sigma) -> score of the sigma-noised data


@torch.no_grad()
def annealed_langevin(score_fn: ScoreFn, x: torch.Tensor, sigmas, *, steps_per_level: int, step_lr: float,
                      denoise: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
    """Run annealed Langevin from ``x`` over ``sigmas`` (descending); noise drawn with ``generator``."""
    if steps_per_level < 1:
        raise UsageError(f"steps_per_level must be >= 1, got {steps_per_level}")
    if step_lr <= 0:
        raise UsageError(f"step_lr must be > 0, got {step_lr}")
    sigmas = [float(s) for s in sigmas]
    last = sigmas[-1]
    for sigma in sigmas:
        a = step_lr * (sigma / last) ** 2
        for _ in range(steps_per_level):
            x = x + a * score_fn(x, sigma) + (2 * a) ** 0.5 * randn(x.shape, generator, x.device)
    if denoise:
        x = x + last ** 2 * score_fn(x, last)
    return x
