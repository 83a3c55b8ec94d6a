"""The DDPM forward process, its posterior, the reverse model's Gaussians and the VLB.

Index convention (as in improved-diffusion / lucidrains): ``t`` in {0, ..., T-1}; code's x_t
is the paper's x_{t+1}; x_{-1} is the data x_0. ``alpha_bar[t] = prod_{s <= t} (1 - beta[s])``.

- forward step  q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)
- marginal      q(x_t | x_0)     = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)
- posterior     q(x_{t-1} | x_t, x_0) = N(c0_t x_0 + ct_t x_t, beta_tilde_t I), with
  c0 = beta_t sqrt(alpha_bar_{t-1}) / (1 - alpha_bar_t), ct = (1 - alpha_bar_{t-1}) sqrt(alpha_t) / (1 - alpha_bar_t),
  beta_tilde = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)  (alpha_bar_{-1} = 1).
- reverse       p(x_{t-1} | x_t) = N(posterior mean at x0_hat(x_t, eps), sigma_t^2 I) with
  sigma_t^2 = beta_t ("fixed_large", DDPM's CIFAR-10 choice) or beta_tilde_t ("fixed_small"; at t = 0,
  where beta_tilde is 0, it uses beta_tilde_1 like improved-diffusion). The decoder p(x_0 | x_1)
  is the t = 0 step with the same variance.

All likelihood terms are in nats, summed over dimensions, per sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from dgmbench.errors import UsageError

from .schedules import make_betas

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t (N,) long) -> predicted eps


def randn(shape, generator: torch.Generator | None, device: torch.device, dtype=torch.float32) -> torch.Tensor:
    """Standard normal noise drawn with ``generator`` (on the generator's device), moved to ``device``."""
    gdev = generator.device if generator is not None else device
    return torch.randn(tuple(shape), generator=generator, device=gdev, dtype=dtype).to(device)


def normal_kl(mean1, logvar1, mean2, logvar2) -> torch.Tensor:
    """KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2))) elementwise, nats."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def gaussian_log_density(x, mean, logvar) -> torch.Tensor:
    """log N(x; mean, exp(logvar)) elementwise, nats."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (x - mean) ** 2 * torch.exp(-logvar))


def _log_diff_ndtr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(Phi(b) - Phi(a)) for b > a, stable in both tails (float64)."""
    flip = a > 0  # Phi(b) - Phi(a) = Phi(-a) - Phi(-b): keep the arguments in the lower tail
    hi = torch.where(flip, -a, b)
    lo = torch.where(flip, -b, a)
    lhi, llo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
    return lhi + torch.log1p(-torch.exp((llo - lhi).clamp(max=0.0)).clamp(max=1.0 - 1e-16))


def discretized_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log P(x) of 8-bit data scaled to [-1, 1] (values 2k/255 - 1) under N(mean, exp(logvar))
    integrated over each value's bin of width 2/255; the edge bins extend to -inf / +inf (Ho et al.).
    ``x`` is read on the 8-bit grid, k = round(255 (x + 1) / 2) clamped to [0, 255], as the
    PixelCNN and VAE read their data: the bins partition the line, so the 256 values' probabilities
    sum to 1 whatever ``x`` holds (off-grid data is scored as the 8-bit value it rounds to).
    Elementwise, nats."""
    mean, logvar = mean.double(), logvar.double()
    k = ((x.double() + 1.0) * 127.5).round().clamp(0, 255)
    centre = k * (2.0 / 255.0) - 1.0
    inv_std = torch.exp(-0.5 * logvar)
    upper = inv_std * (centre - mean + 1.0 / 255.0)
    lower = inv_std * (centre - mean - 1.0 / 255.0)
    mid = _log_diff_ndtr(lower, upper)
    out = torch.where(k == 0, torch.special.log_ndtr(upper), torch.where(k == 255, torch.special.log_ndtr(-lower), mid))
    return out.float()


def _gather(a: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
    return a[t].float().reshape(-1, *([1] * (ndim - 1)))


class GaussianDiffusion(nn.Module):
    """Schedule-derived coefficients (non-persistent buffers, rebuilt from the config) and the
    Gaussian algebra of DDPM. Networks are passed in as ``eps_fn``; nothing here is learned."""

    def __init__(self, T: int = 1000, schedule: str = "linear", variance: str = "fixed_large"):
        super().__init__()
        if variance not in ("fixed_small", "fixed_large"):
            raise UsageError(f"unknown reverse variance '{variance}' (known: fixed_small, fixed_large)")
        self.T, self.schedule, self.variance = int(T), schedule, variance
        betas = make_betas(schedule, self.T)
        alphas = 1.0 - betas
        ab = torch.cumprod(alphas, 0)
        ab_prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
        post_var = betas * (1 - ab_prev) / (1 - ab)
        bufs = {
            "betas": betas, "alphas": alphas, "alpha_bar": ab, "alpha_bar_prev": ab_prev,
            "sqrt_ab": ab.sqrt(), "sqrt_1mab": (1 - ab).sqrt(),
            "post_var": post_var,
            "post_logvar_clipped": torch.log(torch.cat([post_var[1:2], post_var[1:]])),
            "post_c0": betas * ab_prev.sqrt() / (1 - ab),
            "post_ct": (1 - ab_prev) * alphas.sqrt() / (1 - ab),
            "large_logvar": torch.log(betas),
        }
        for k, v in bufs.items():
            self.register_buffer(k, v, persistent=False)

    # --- forward process ----------------------------------------------------------
    def q_mean_var(self, x0: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of q(x_t | x_0)."""
        return _gather(self.sqrt_ab, t, x0.ndim) * x0, _gather(1 - self.alpha_bar, t, x0.ndim).expand_as(x0)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t ~ q(x_t | x_0) in one step."""
        return _gather(self.sqrt_ab, t, x0.ndim) * x0 + _gather(self.sqrt_1mab, t, x0.ndim) * noise

    def q_step(self, x_prev: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t ~ q(x_t | x_{t-1}): one forward step."""
        return _gather(self.alphas.sqrt(), t, x_prev.ndim) * x_prev + _gather(self.betas.sqrt(), t, x_prev.ndim) * noise

    def q_posterior(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean, variance and clipped log-variance of q(x_{t-1} | x_t, x_0)."""
        mean = _gather(self.post_c0, t, xt.ndim) * x0 + _gather(self.post_ct, t, xt.ndim) * xt
        return mean, _gather(self.post_var, t, xt.ndim).expand_as(xt), _gather(self.post_logvar_clipped, t, xt.ndim).expand_as(xt)

    # --- reverse model ----------------------------------------------------------
    def predict_x0(self, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return (xt - _gather(self.sqrt_1mab, t, xt.ndim) * eps) / _gather(self.sqrt_ab, t, xt.ndim)

    def predict_eps(self, xt: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return (xt - _gather(self.sqrt_ab, t, xt.ndim) * x0) / _gather(self.sqrt_1mab, t, xt.ndim)

    def p_mean_var(self, eps_fn: EpsFn, xt: torch.Tensor, t: torch.Tensor, *, clip: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean and log-variance of p(x_{t-1} | x_t), and x0_hat (clipped to [-1, 1] when ``clip``)."""
        x0 = self.predict_x0(xt, t, eps_fn(xt, t))
        if clip:
            x0 = x0.clamp(-1.0, 1.0)
        mean, _, logvar = self.q_posterior(x0, xt, t)
        if self.variance == "fixed_large":
            logvar = _gather(self.large_logvar, t, xt.ndim).expand_as(xt)
        return mean, logvar, x0

    # --- training loss and bound ------------------------------------------------
    def eps_loss(self, eps_fn: EpsFn, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Ho et al.'s simple loss: mean squared error of the predicted noise (mean over all elements)."""
        return torch.mean((eps_fn(self.q_sample(x0, t, noise), t) - noise) ** 2)

    def prior_kl(self, x0: torch.Tensor) -> torch.Tensor:
        """KL(q(x_{T-1} | x_0) || N(0, I)) summed over dimensions, nats per sample."""
        t = torch.full((x0.shape[0],), self.T - 1, dtype=torch.long, device=x0.device)
        mean, var = self.q_mean_var(x0, t)
        return normal_kl(mean, var.log(), torch.zeros_like(mean), torch.zeros_like(mean)).flatten(1).sum(1)

    @torch.no_grad()
    def vlb_terms(self, eps_fn: EpsFn, x0: torch.Tensor, *, discrete: bool, clip: bool = False,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The variational bound on -log p(x0): returns (total (N,), per-step terms (N, T)), nats.

        Term t >= 1 is KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) at one x_t ~ q(x_t | x_0);
        term 0 is the decoder's -log p(x0 | x_0-step sample): discretised on the 8-bit grid
        (``discrete``, data in [-1, 1]) or a continuous Gaussian density. Total adds the prior KL.
        """
        n = x0.shape[0]
        terms = torch.zeros(n, self.T, device=x0.device)
        for step in range(self.T - 1, -1, -1):
            t = torch.full((n,), step, dtype=torch.long, device=x0.device)
            xt = self.q_sample(x0, t, randn(x0.shape, generator, x0.device))
            mean, logvar, _ = self.p_mean_var(eps_fn, xt, t, clip=clip)
            if step == 0:
                ll = discretized_gaussian_log_likelihood(x0, mean, logvar) if discrete else gaussian_log_density(x0, mean, logvar)
                terms[:, 0] = -ll.flatten(1).sum(1)
            else:
                tmean, _, tlogvar = self.q_posterior(x0, xt, t)
                terms[:, step] = normal_kl(tmean, tlogvar, mean, logvar).flatten(1).sum(1)
        return terms.sum(1) + self.prior_kl(x0), terms
