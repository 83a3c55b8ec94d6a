"""Annealed Langevin dynamics (Song & Ermon 2019, NCSNv2 step-size rule).

For each level sigma_i (descending) take K steps
  x <- x + a_i s(x, sigma_i) + sqrt(2 a_i) z,   a_i = eps (sigma_i / sigma_L)^2,
then optionally one denoising step x <- x + sigma_L^2 s(x, sigma_L) (Tweedie's formula,
NCSNv2). Network evaluations per sample: L K (+ 1 when denoising).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from dgmbench.errors import UsageError

from ..diffusion.gaussian import randn

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
