"""Variational bounds on log p(x), in nats.

- ELBO: E_q[log p(x|z)] - KL(q(z|x) || p(z)), with the Gaussian KL in closed form.
- IWAE-k (Burda et al. 2016): E[log (1/k) sum_i p(x, z_i) / q(z_i|x)], z_i ~ q(z|x). IWAE-1 has
  the ELBO's expectation; E[IWAE-k] is non-decreasing in k and tends to log p(x).
"""

from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2 * math.pi)


def log_normal(x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(x; mu, diag(exp(logvar))) summed over the last dimension."""
    return (-0.5 * (LOG_2PI + logvar + (x - mu).pow(2) * torch.exp(-logvar))).sum(-1)


def log_std_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over the last dimension."""
    return (-0.5 * (LOG_2PI + z.pow(2))).sum(-1)


def kl_std_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) summed over the last dimension, in closed form."""
    return 0.5 * (mu.pow(2) + torch.exp(logvar) - 1.0 - logvar).sum(-1)


def iwae_from_log_weights(log_w: torch.Tensor) -> torch.Tensor:
    """(k, N) log importance weights -> (N,) IWAE-k estimate log (1/k) sum_i w_i."""
    return torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])
