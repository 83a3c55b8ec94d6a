"""Annealed importance sampling (Neal 2001) of the log normaliser ``log Z`` of ``exp(-E)``.

Intermediate targets ``log pi_t(x) = (1 - b_t) log p0(x) - b_t E(x)`` with ``0 = b_0 < ... < b_T = 1``
(a sigmoid schedule) and a normalised base ``p0``: ``N(0, base_std^2 I)`` on R^D, or the
uniform distribution on a box (images). Each chain accumulates
``log w += (b_t - b_{t-1}) (-E(x) - log p0(x))`` and then takes Metropolis-adjusted
Langevin (MALA) steps that leave ``pi_t`` invariant, so ``mean(w)`` is an unbiased
estimate of Z. Reported: ``log Z = logmeanexp(log w)`` (a stochastic lower bound in
expectation, by Jensen) and its standard error by the delta method,
``se = std(w) / (sqrt(n) mean(w))``. The MALA step size is adapted between temperatures
towards an acceptance rate of about 0.6 from the previous temperature's acceptance
(shared by all chains).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .sgld import energy_grad, randn_like_from


@dataclass
class LogZEstimate:
    log_z: float  # nats
    stderr: float  # nats, delta method over chains
    n_chains: int
    n_steps: int
    acceptance: float  # mean MALA acceptance rate
    ess: float  # effective sample size of the importance weights

    @property
    def kind(self) -> str:
        return "estimate"


def sigmoid_schedule(n: int, rad: float = 4.0) -> torch.Tensor:
    """``n + 1`` inverse temperatures from 0 to 1, dense at both ends (Grosse et al. 2015)."""
    t = torch.linspace(-rad, rad, n + 1, dtype=torch.float64)
    s = torch.sigmoid(t)
    return (s - s[0]) / (s[-1] - s[0])


def _rand(shape, generator, device, dtype, uniform: bool) -> torch.Tensor:
    dev = generator.device if generator is not None else device
    f = torch.rand if uniform else torch.randn
    return f(shape, generator=generator, device=dev, dtype=dtype).to(device)


@torch.no_grad()
def ais_log_z(energy: Callable[[torch.Tensor], torch.Tensor], shape: tuple[int, ...], *, n_chains: int = 256,
              n_steps: int = 1000, base_std: float | None = 1.0, box: tuple[float, float] | None = None,
              step_size: float = 0.01, mala_steps: int = 1, generator: torch.Generator | None = None,
              device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> LogZEstimate:
    """Estimate ``log Z = log integral exp(-E(x)) dx`` over R^D (Gaussian base, ``base_std``)
    or over the box ``[lo, hi]^D`` (uniform base; proposals leaving the box are rejected).

    ``shape`` is one sample's shape; ``E`` maps (n, *shape) to (n,).
    """
    dim = math.prod(shape)
    if box is not None:
        lo, hi = box
        x = lo + (hi - lo) * _rand((n_chains, *shape), generator, device, dtype, uniform=True)

        def log_p0(v):
            return torch.full((v.shape[0],), -dim * math.log(hi - lo), device=v.device, dtype=v.dtype)

        def grad_log_p0(v):
            return torch.zeros_like(v)
    else:
        s = float(base_std)
        x = s * _rand((n_chains, *shape), generator, device, dtype, uniform=False)

        def log_p0(v):
            return -0.5 * (v.flatten(1) ** 2).sum(1) / s**2 - 0.5 * dim * math.log(2 * math.pi * s**2)

        def grad_log_p0(v):
            return -v / s**2

    def in_box(v):
        if box is None:
            return torch.ones(v.shape[0], dtype=torch.bool, device=v.device)
        return ((v >= box[0]) & (v <= box[1])).flatten(1).all(1)

    betas = sigmoid_schedule(n_steps).tolist()
    log_w = torch.zeros(n_chains, dtype=torch.float64, device=device)
    h = float(step_size)
    acc_total, acc_count = 0.0, 0

    def log_pi(v, b):
        return (1 - b) * log_p0(v) - b * energy(v)

    def grad_log_pi(v, b):
        return (1 - b) * grad_log_p0(v) - b * energy_grad(energy, v)

    e_x = energy(x)
    for t in range(1, n_steps + 1):
        b_prev, b = betas[t - 1], betas[t]
        log_w += (b - b_prev) * (-e_x - log_p0(x)).double()
        for _ in range(mala_steps):
            g = grad_log_pi(x, b)
            mean_fwd = x + h * g
            prop = mean_fwd + math.sqrt(2 * h) * randn_like_from(x, generator)
            ok = in_box(prop)
            prop_safe = torch.where(ok.view(-1, *([1] * len(shape))), prop, x)
            g_prop = grad_log_pi(prop_safe, b)
            mean_bwd = prop_safe + h * g_prop
            log_q_fwd = -((prop_safe - mean_fwd).flatten(1) ** 2).sum(1) / (4 * h)
            log_q_bwd = -((x - mean_bwd).flatten(1) ** 2).sum(1) / (4 * h)
            log_alpha = log_pi(prop_safe, b) - log_pi(x, b) + log_q_bwd - log_q_fwd
            u = _rand((n_chains,), generator, device, dtype, uniform=True)
            accept = ok & (torch.log(u) < log_alpha)
            x = torch.where(accept.view(-1, *([1] * len(shape))), prop_safe, x)
            rate = float(accept.float().mean())
            acc_total += rate
            acc_count += 1
            h *= 1.1 if rate > 0.6 else 0.9
        e_x = energy(x)
    log_n = math.log(n_chains)
    log_z = float(torch.logsumexp(log_w, 0) - log_n)
    w = torch.exp(log_w - log_w.max())
    ess = float(w.sum() ** 2 / (w**2).sum())
    se = float(w.std(unbiased=True) / (math.sqrt(n_chains) * w.mean())) if n_chains > 1 else math.inf
    return LogZEstimate(log_z, se, n_chains, n_steps, acc_total / max(acc_count, 1), ess)
