"""Log-likelihood through the probability-flow ODE of the VE SDE (Song et al. 2021, app. D.2).

dx/dt = f(x, t) = -1/2 g(t)^2 s(x, sigma(t)),  t from 0 (sigma_min) to 1 (sigma_max), and
log p_0(x(0)) = log N(x(1); 0, sigma_max^2 I) + int_0^1 div f(x(t), t) dt.

The divergence is the exact trace (one vector-Jacobian product per dimension; for low-D
data) or Hutchinson's estimator v^T (df/dx) v with one Rademacher v per sample, fixed along
the trajectory (unbiased; the log-likelihood is then an *estimate*). The ODE is integrated
with ``scipy.integrate.solve_ivp`` (RK45, rtol = atol = 1e-5 by default), as in
score_sde_pytorch. All values are in nats, in the model space, per sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from scipy.integrate import solve_ivp

from dgmbench.errors import UsageError

from .sigmas import VESigmas

TimeScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x, t (N,) in [0, 1]) -> score


def _divergence(f: torch.Tensor, x: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor:
    if v is not None:
        (vjp,) = torch.autograd.grad(f, x, v)
        return (vjp * v).flatten(1).sum(1)
    flat_f = f.flatten(1)
    div = torch.zeros(x.shape[0], device=x.device)
    for i in range(flat_f.shape[1]):
        (g,) = torch.autograd.grad(flat_f[:, i].sum(), x, retain_graph=True)
        div = div + g.flatten(1)[:, i]
    return div


def pf_ode_log_likelihood(score_fn: TimeScoreFn, z: torch.Tensor, sigmas: VESigmas, *, trace: str = "hutchinson",
                          rtol: float = 1e-5, atol: float = 1e-5, method: str = "RK45",
                          generator: torch.Generator | None = None) -> tuple[torch.Tensor, int]:
    """log p(z) (nats per sample, model space) and the number of ODE-function evaluations."""
    if trace not in ("hutchinson", "exact"):
        raise UsageError(f"trace must be 'hutchinson' or 'exact', got '{trace}'")
    shape, n, device = z.shape, z.shape[0], z.device
    dims = math.prod(shape[1:])
    v = None
    if trace == "hutchinson":
        gdev = generator.device if generator is not None else device
        v = (torch.randint(0, 2, shape, generator=generator, device=gdev).float() * 2 - 1).to(device)
    nfe = 0

    def rhs(t: float, state: np.ndarray) -> np.ndarray:
        nonlocal nfe
        nfe += 1
        x = torch.from_numpy(state[: n * dims]).reshape(shape).to(device=device, dtype=torch.float32)
        tt = torch.full((n,), t, device=device, dtype=torch.float32)
        with torch.enable_grad():
            x.requires_grad_(True)
            f = -0.5 * sigmas.g2(tt).reshape(-1, *([1] * (len(shape) - 1))) * score_fn(x, tt)
            div = _divergence(f, x, v)
        return np.concatenate([f.detach().cpu().double().numpy().ravel(), div.detach().cpu().double().numpy()])

    init = np.concatenate([z.detach().cpu().double().numpy().ravel(), np.zeros(n)])
    sol = solve_ivp(rhs, (0.0, 1.0), init, rtol=rtol, atol=atol, method=method)
    if not sol.success:
        raise UsageError(f"the probability-flow ODE solver failed: {sol.message}; try a larger rtol/atol")
    end = torch.from_numpy(sol.y[:, -1])
    x1, delta = end[: n * dims].reshape(n, dims), end[n * dims:]
    prior = -0.5 * dims * math.log(2 * math.pi * sigmas.sigma_max ** 2) - (x1 ** 2).sum(1) / (2 * sigmas.sigma_max ** 2)
    return (prior + delta).float(), nfe
