"""GAN objectives and the WGAN-GP gradient penalty.

Discriminator outputs are logits (non-saturating, hinge) or critic values (WGAN-GP), one
per sample. Every loss is a mean over the batch.

- ``ns``: non-saturating GAN (Goodfellow et al. 2014): D minimises
  ``softplus(-D(x)) + softplus(D(G(z)))``, G minimises ``softplus(-D(G(z)))``.
- ``hinge``: D minimises ``relu(1 - D(x)) + relu(1 + D(G(z)))``, G minimises ``-D(G(z))``.
- ``wgan-gp`` (Gulrajani et al. 2017): D minimises ``D(G(z)) - D(x) + lambda * GP``,
  G minimises ``-D(G(z))``, with ``GP = E[(||grad_x D(x_hat)||_2 - 1)^2]`` at random
  interpolates ``x_hat = eps x + (1 - eps) G(z)``, ``eps ~ U[0, 1]`` per sample.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

LOSSES = ("ns", "hinge", "wgan-gp")


def d_loss_fn(kind: str, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Discriminator loss without the gradient penalty."""
    if kind == "ns":
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    if kind == "hinge":
        return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
    if kind == "wgan-gp":
        return d_fake.mean() - d_real.mean()
    raise ValueError(kind)


def g_loss_fn(kind: str, d_fake: torch.Tensor) -> torch.Tensor:
    if kind == "ns":
        return F.softplus(-d_fake).mean()
    return -d_fake.mean()


def gradient_penalty(critic: Callable[..., torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     labels: torch.Tensor | None = None, *, eps: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean((||grad D(x_hat)|| - 1)^2), per-sample gradient norms)``.

    ``eps`` (N,) in [0, 1] picks the interpolates; drawn from the global torch RNG when
    not given. The penalty is built with ``create_graph=True`` so it back-propagates to
    the critic's parameters. ``critic(x)`` (or ``critic(x, labels)``) returns (N,) or (N, 1).
    """
    n = real.shape[0]
    if eps is None:
        eps = torch.rand(n, device=real.device, dtype=real.dtype)
    eps = eps.view(n, *([1] * (real.ndim - 1)))
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = critic(x_hat) if labels is None else critic(x_hat, labels)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).norm(dim=1)
    return ((norms - 1) ** 2).mean(), norms
