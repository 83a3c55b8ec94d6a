"""NCSN / NCSNv2: a noise-conditional score network trained with denoising score matching over
a geometric sequence of noise levels, sampled with annealed Langevin dynamics.

The score is parametrised as s(x, sigma) = net(x, 1000 t(sigma)) / sigma (NCSNv2), and the loss
is DSM with lambda(sigma) = sigma^2: E || sigma s(x + sigma z, sigma) + z ||^2 (mean over
elements), with sigma drawn uniformly from the L training levels ("discrete", NCSNv2) or
log-uniformly in [sigma_min, sigma_max] ("continuous", VE SDE).

Model config keys (all optional): ``sigma_min`` (0.01), ``sigma_max`` (1.0 for points, 50 for
images; NCSNv2 technique 1: about the largest pairwise distance of the data in model space),
``num_levels`` (L, 10), ``sigma_sampling`` ("discrete" | "continuous"), ``net`` (UNet / MLPNet
kwargs), ``data_scale`` (points), ``p_uncond`` (label dropout of conditional models, 0.1),
``sample_batch_size`` (500), ``sampling`` (see :meth:`ScoreModel.configure_sampling`) and
``likelihood`` (trace "hutchinson" | "exact", rtol, atol, method for the probability-flow ODE).

Data live in the same model space as the diffusion family ([-1, 1] images; scaled points).
"""

from __future__ import annotations

import math

import torch

from dgmbench.errors import UsageError
from dgmbench.units import dequantize

from ..base import BaselineModel
from ..diffusion.gaussian import randn
from ..diffusion.nets import build_net
from ..diffusion.space import DataSpace
from .langevin import annealed_langevin
from .likelihood import pf_ode_log_likelihood
from .sigmas import VESigmas

LL_OPTIONS = ("trace", "rtol", "atol", "method")


class ScoreModel(BaselineModel):
    family = "score"
    likelihood_kind = "estimate"

    def __init__(self, config: dict, data_shape: tuple[int, ...], num_classes: int | None = None):
        super().__init__(config, data_shape, num_classes)
        c = self.config
        self.space = DataSpace(self.data_shape, c.get("data_scale", 1.0))
        self.ve = VESigmas(c.get("sigma_min", 0.01), c.get("sigma_max", 50.0 if self.space.is_image else 1.0))
        self.num_levels = int(c.get("num_levels", 10))
        self.sigma_sampling = c.get("sigma_sampling", "discrete")
        if self.sigma_sampling not in ("discrete", "continuous"):
            raise UsageError(f"sigma_sampling must be 'discrete' or 'continuous', got '{self.sigma_sampling}'")
        self.register_buffer("sigmas", self.ve.levels(self.num_levels).float(), persistent=False)
        self.net = build_net(c, self.data_shape, num_classes)
        self.p_uncond = float(c.get("p_uncond", 0.1))
        self.sample_batch_size = int(c.get("sample_batch_size", 500))
        self.ll_options = {"trace": "hutchinson", "rtol": 1e-5, "atol": 1e-5, "method": "RK45"}
        self.ll_options.update(c.get("likelihood", {}))
        self.levels, self.steps_per_level, self.step_lr, self.denoise = self.num_levels, 5, 1e-5, True
        self.configure_sampling(**c.get("sampling", {}))

    # --- sampling options --------------------------------------------------------
    def configure_sampling(self, *, levels: int | None = None, steps_per_level: int | None = None,
                           step_lr: float | None = None, denoise: bool | None = None) -> ScoreModel:
        """Annealed Langevin settings: ``levels`` geometric levels from sigma_max to sigma_min
        (default: the L training levels), ``steps_per_level`` K, ``step_lr`` eps (step a_i =
        eps sigma_i^2 / sigma_min^2, in model-space units), final ``denoise`` step. Returns self."""
        if levels is not None and int(levels) < 1:
            raise UsageError(f"levels must be >= 1, got {levels}")
        if steps_per_level is not None and int(steps_per_level) < 1:
            raise UsageError(f"steps_per_level must be >= 1, got {steps_per_level}")
        if step_lr is not None and not step_lr > 0:
            raise UsageError(f"step_lr must be > 0, got {step_lr}")
        self.levels = int(levels) if levels is not None else self.levels
        self.steps_per_level = int(steps_per_level) if steps_per_level is not None else self.steps_per_level
        self.step_lr = float(step_lr) if step_lr is not None else self.step_lr
        self.denoise = bool(denoise) if denoise is not None else self.denoise
        return self

    @property
    def nfe_per_sample(self) -> float:
        return float(self.levels * self.steps_per_level + (1 if self.denoise else 0))

    # --- the score ---------------------------------------------------------------
    def _labels(self, y: torch.Tensor | None, n: int) -> torch.Tensor | None:
        if not self.num_classes:
            return None
        return y if y is not None else torch.full((n,), self.num_classes, dtype=torch.long, device=self.device)

    def score(self, x: torch.Tensor, sigma: torch.Tensor | float, y: torch.Tensor | None = None) -> torch.Tensor:
        """s(x, sigma) in model space; ``sigma`` a float or a (N,) tensor."""
        n = x.shape[0]
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device)
        if sigma.ndim == 0:
            sigma = sigma.expand(n)
        out = self.net(x, 1000.0 * self.ve.time(sigma), self._labels(y, n))
        return out / sigma.reshape(-1, *([1] * (x.ndim - 1)))

    def _check_labels(self, labels, n: int) -> torch.Tensor | None:
        if labels is None:
            return None
        if not self.num_classes:
            raise UsageError("this score model is unconditional; sample without labels")
        labels = torch.as_tensor(labels).long().reshape(-1)
        if labels.shape[0] != n or labels.min() < 0 or labels.max() >= self.num_classes:
            raise UsageError(f"labels must be {n} integers in [0, {self.num_classes}), got shape {tuple(labels.shape)}")
        return labels.to(self.device)

    # --- training ----------------------------------------------------------------
    def draw_sigmas(self, n: int, device: torch.device) -> torch.Tensor:
        if self.sigma_sampling == "discrete":
            return self.sigmas.to(device)[torch.randint(0, self.num_levels, (n,), device=device)]
        return self.ve.sigma(torch.rand(n, device=device))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Denoising score matching loss, lambda(sigma) = sigma^2, mean over elements."""
        z0 = self.space.to_model(x)
        n = z0.shape[0]
        sigma = self.draw_sigmas(n, z0.device)
        noise = torch.randn_like(z0)
        if self.num_classes and y is not None:
            y = torch.where(torch.rand(n, device=z0.device) < self.p_uncond, torch.full_like(y, self.num_classes), y)
        s = sigma.reshape(-1, *([1] * (z0.ndim - 1)))
        return torch.mean((s * self.score(z0 + s * noise, sigma, y) + noise) ** 2)

    # --- sampling ----------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, labels: torch.Tensor | None = None,
               **options) -> torch.Tensor:
        """``n`` samples in the data convention: x ~ N(0, sigma_max^2 I), then annealed Langevin.
        ``options`` (levels, steps_per_level, step_lr, denoise) apply to this call only. A
        conditional model given no labels draws them uniformly with ``generator``."""
        if options:
            saved = (self.levels, self.steps_per_level, self.step_lr, self.denoise)
            try:
                return self.configure_sampling(**options).sample(n, generator=generator, labels=labels)
            finally:
                self.levels, self.steps_per_level, self.step_lr, self.denoise = saved
        labels = self._check_labels(labels, n)
        if self.num_classes and labels is None:
            labels = torch.randint(0, self.num_classes, (n,), generator=generator).to(self.device)
        sigmas = self.ve.levels(self.levels)
        out = []
        for start in range(0, n, self.sample_batch_size):
            m = min(self.sample_batch_size, n - start)
            x = self.ve.sigma_max * randn((m, *self.data_shape), generator, self.device)
            lab = None if labels is None else labels[start:start + m]
            z = annealed_langevin(lambda v, s, lab=lab: self.score(v, s, lab), x, sigmas, steps_per_level=self.steps_per_level,
                                  step_lr=self.step_lr, denoise=self.denoise, generator=generator)
            out.append(self.space.from_model(z).float().cpu())
        return torch.cat(out) if out else torch.empty(0, *self.data_shape)

    # --- likelihood --------------------------------------------------------------
    def log_likelihood(self, x: torch.Tensor, *, generator: torch.Generator | None = None, labels: torch.Tensor | None = None,
                       batch_size: int | None = None, **options) -> tuple[torch.Tensor, str]:
        """Probability-flow ODE estimate of log p(x), nats per sample, kind "estimate".

        Images: uniformly dequantised (generator), so the value estimates the 8-bit log-probability
        (bpd = -value / (D ln 2)); points: continuous log-density. ``options`` override the
        ``likelihood`` config (trace, rtol, atol, method)."""
        x = self.space.check(torch.as_tensor(x)).float()
        labels = self._check_labels(labels, x.shape[0])
        unknown = set(options) - set(LL_OPTIONS)
        if unknown:
            raise UsageError(f"unknown likelihood options {sorted(unknown)} (known: {', '.join(LL_OPTIONS)})")
        opts = {**self.ll_options, **options}
        bs = batch_size or self.sample_batch_size
        out = []
        self.last_ll_nfe = 0
        for start in range(0, x.shape[0], bs):
            xb = x[start:start + bs]
            if self.space.is_image:
                xb = dequantize(xb, generator)
            z = self.space.to_model(xb.to(self.device))
            lab = None if labels is None else labels[start:start + bs]

            def score_t(v, t, lab=lab):
                return self.score(v, self.ve.sigma(t), lab)
            ll, nfe = pf_ode_log_likelihood(score_t, z, self.ve, generator=generator, **opts)
            self.last_ll_nfe = max(self.last_ll_nfe, nfe)
            ll = ll + self.space.log_det  # model space -> data space ([0, 1) images or points)
            if self.space.is_image:
                ll = ll - self.space.dims * math.log(256.0)  # density on [0, 1)^D -> 8-bit probability scale
            out.append(ll.cpu())
        return torch.cat(out), "estimate"
