"""Stochastic-gradient Langevin dynamics on an energy ``E`` (density proportional to ``exp(-E)``).

One step: ``x <- x - step_size * grad_x E(x) + noise * xi``, ``xi ~ N(0, I)``.
With ``noise = sqrt(2 * step_size)`` this is the unadjusted Langevin algorithm, whose
stationary law tends to ``exp(-E) / Z`` as ``step_size -> 0`` (for a quadratic energy
``E = x^T A x / 2`` the exact stationary variance along an eigenvalue ``a`` of A is
``1 / (a (1 - step_size * a / 2))``). The IGEBM / JEM recipe decouples the two (a larger
step, a small noise), which samples a colder distribution; presets say which they use.

Each step costs one forward and one backward pass of the energy network.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def randn_like_from(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like ``x`` on ``x``'s device, drawn from ``generator``
    (on the generator's device, then moved) or from the global RNG when it is None."""
    if generator is None:
        return torch.randn_like(x)
    return torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype).to(x.device)


def energy_grad(energy: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``grad_x sum_i E(x_i)`` without building a graph to the parameters' gradients."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(energy(x).sum(), x)
    return g


def sgld(energy: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, steps: int, step_size: float,
         noise: float, *, generator: torch.Generator | None = None,
         clamp: tuple[float, float] | None = None) -> torch.Tensor:
    """Run ``steps`` SGLD steps from ``x``; returns the detached final states.

    ``clamp`` (lo, hi) projects every step back onto a box (image EBMs). All noise comes
    from ``generator`` (or the global RNG), so a fixed seed reproduces the chain on CPU.
    """
    x = x.detach()
    for _ in range(int(steps)):
        g = energy_grad(energy, x)
        x = x - step_size * g
        if noise:
            x = x + noise * randn_like_from(x, generator)
        if clamp is not None:
            x = x.clamp(*clamp)
    return x.detach()
