"""Reverse-process samplers: ancestral DDPM (T steps) and DDIM (k steps, eta).

Both start from a given ``x_T`` (so tests can fix it), draw every further noise with
``generator`` and call ``eps_fn`` once per step.

DDIM (Song et al. 2021, eq. 12) on the timesteps round(linspace(-1, T-1, k+1)), from T-1
down to -1 (x_{-1} = the data):
  x0_hat = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t)
  sigma  = eta sqrt((1 - ab_s) / (1 - ab_t)) sqrt(1 - ab_t / ab_s)
  x_s    = sqrt(ab_s) x0_hat + sqrt(1 - ab_s - sigma^2) eps + sigma z,  ab_{-1} = 1.
eta = 0 is deterministic given x_T; eta = 1 with k = T is ancestral DDPM with the
"fixed_small" variance.
"""

from __future__ import annotations

import torch

from dgmbench.errors import UsageError

from .gaussian import EpsFn, GaussianDiffusion, randn


@torch.no_grad()
def ddpm_sample(diffusion: GaussianDiffusion, eps_fn: EpsFn, x_T: torch.Tensor, *, clip: bool = False,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Ancestral sampling with p(x_{t-1} | x_t), t = T-1 .. 0 (T network evaluations); no noise at the last step."""
    x = x_T
    for step in range(diffusion.T - 1, -1, -1):
        t = torch.full((x.shape[0],), step, dtype=torch.long, device=x.device)
        mean, logvar, _ = diffusion.p_mean_var(eps_fn, x, t, clip=clip)
        x = mean + torch.exp(0.5 * logvar) * randn(x.shape, generator, x.device) if step > 0 else mean
    return x


def ddim_timesteps(T: int, steps: int) -> list[int]:
    """k + 1 integer times from T-1 down to -1, evenly spaced."""
    if not 1 <= steps <= T:
        raise UsageError(f"DDIM steps must be between 1 and T={T}, got {steps}")
    return [int(v) for v in torch.linspace(-1, T - 1, steps + 1, dtype=torch.float64).round().long().flip(0)]


@torch.no_grad()
def ddim_sample(diffusion: GaussianDiffusion, eps_fn: EpsFn, x_T: torch.Tensor, *, steps: int, eta: float = 0.0,
                clip: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """DDIM with ``steps`` network evaluations (see module docstring)."""
    if eta < 0:
        raise UsageError(f"DDIM eta must be >= 0, got {eta}")
    times = ddim_timesteps(diffusion.T, steps)
    x = x_T
    for cur, nxt in zip(times[:-1], times[1:]):
        t = torch.full((x.shape[0],), cur, dtype=torch.long, device=x.device)
        eps = eps_fn(x, t)
        x0 = diffusion.predict_x0(x, t, eps)
        if clip:
            x0 = x0.clamp(-1.0, 1.0)
            eps = diffusion.predict_eps(x, t, x0)
        ab = float(diffusion.alpha_bar[cur])
        ab_next = float(diffusion.alpha_bar[nxt]) if nxt >= 0 else 1.0
        sigma = eta * ((1 - ab_next) / (1 - ab) * (1 - ab / ab_next)) ** 0.5
        x = ab_next ** 0.5 * x0 + max(1 - ab_next - sigma ** 2, 0.0) ** 0.5 * eps
        if nxt >= 0 and eta > 0:
            x = x + sigma * randn(x.shape, generator, x.device)
    return x
