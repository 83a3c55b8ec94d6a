"""DDPM with epsilon prediction, classifier-free guidance, DDPM/DDIM samplers and the VLB.

Model config keys (all optional): ``T`` (1000), ``schedule`` ("linear" | "cosine"),
``variance`` ("fixed_large" | "fixed_small"), ``net`` (kwargs of :class:`~.nets.UNet` or
:class:`~.nets.MLPNet`), ``p_uncond`` (label dropout probability for classifier-free guidance,
0.1), ``clip_denoised`` (clip x0_hat to [-1, 1]; default True for images, False for points),
``data_scale`` (points only), ``sample_batch_size`` (500) and ``sampling`` (default sampling
options, see :meth:`DiffusionModel.configure_sampling`).

Guidance (Ho & Salimans 2022): eps = eps_uncond + w (eps_cond - eps_uncond); w = 1 is the
plain conditional model, w = 0 the unconditional one. Both are one network evaluation per
step (w = 0 calls the net with the null label only). Any other w batches the conditional and
unconditional evaluations into one network call of 2N rows, so a guided step costs two
network evaluations per sample and ``nfe_per_sample`` counts both (2 x steps).
"""

from __future__ import annotations

import torch

from dgmbench.errors import UsageError
from dgmbench.units import to_uint8

from ..base import BaselineModel
from .gaussian import GaussianDiffusion, randn
from .nets import build_net
from .samplers import ddim_sample, ddpm_sample
from .space import DataSpace

SAMPLERS = ("ddpm", "ddim")


class DiffusionModel(BaselineModel):
    family = "diffusion"
    likelihood_kind = "bound"

    def __init__(self, config: dict, data_shape: tuple[int, ...], num_classes: int | None = None):
        super().__init__(config, data_shape, num_classes)
        c = self.config
        self.space = DataSpace(self.data_shape, c.get("data_scale", 1.0))
        self.diffusion = GaussianDiffusion(c.get("T", 1000), c.get("schedule", "linear"), c.get("variance", "fixed_large"))
        self.net = build_net(c, self.data_shape, num_classes)
        self.p_uncond = float(c.get("p_uncond", 0.1))
        self.clip = bool(c.get("clip_denoised", self.space.is_image))
        self.sample_batch_size = int(c.get("sample_batch_size", 500))
        self.sampler, self.steps, self.eta, self.guidance = "ddpm", None, 0.0, 1.0
        self.configure_sampling(**c.get("sampling", {}))

    # --- sampling options ----------------------------------------------------------
    def configure_sampling(self, *, sampler: str | None = None, steps: int | None = None, eta: float | None = None,
                           guidance: float | None = None) -> DiffusionModel:
        """Set the sampler ("ddpm": T ancestral steps; "ddim": ``steps`` steps with ``eta``) and the
        guidance scale w (conditional models only). Returns self."""
        sampler = self.sampler if sampler is None else sampler
        if sampler not in SAMPLERS:
            raise UsageError(f"unknown diffusion sampler '{sampler}' (known: {', '.join(SAMPLERS)})")
        if steps is not None and not 1 <= int(steps) <= self.diffusion.T:
            raise UsageError(f"steps must be between 1 and T={self.diffusion.T}, got {steps}")
        if sampler == "ddpm" and steps not in (None, self.diffusion.T):
            raise UsageError(f"the ddpm sampler always takes T={self.diffusion.T} steps; use sampler='ddim' for {steps}")
        if eta is not None and eta < 0:
            raise UsageError(f"eta must be >= 0, got {eta}")
        if guidance is not None and guidance != 1.0 and not self.num_classes:
            raise UsageError("guidance needs a class-conditional model (train with model config conditional: true)")
        self.sampler = sampler
        self.steps = int(steps) if steps is not None else (self.steps if sampler == "ddim" else None)
        self.eta = float(eta) if eta is not None else self.eta
        self.guidance = float(guidance) if guidance is not None else self.guidance
        return self

    @property
    def num_steps(self) -> int:
        return self.diffusion.T if self.sampler == "ddpm" or self.steps is None else self.steps

    @property
    def guided(self) -> bool:
        """True when a step evaluates the net twice (conditional and unconditional rows): w not in {0, 1}."""
        return bool(self.num_classes) and self.guidance not in (0.0, 1.0)

    @property
    def nfe_per_sample(self) -> float:
        """Network evaluations per sample: steps, doubled under guidance (cond + uncond rows)."""
        return float(self.num_steps * (2 if self.guided else 1))

    # --- network wrappers --------------------------------------------------------
    def _null(self, n: int) -> torch.Tensor | None:
        return torch.full((n,), self.num_classes, dtype=torch.long, device=self.device) if self.num_classes else None

    def eps_fn(self, labels: torch.Tensor | None, guidance: float = 1.0):
        """``(x_t, t) -> eps``: w = 1 the conditional net, w = 0 the unconditional one (null label), any
        other w one batched call on [cond; uncond]."""
        if labels is None or guidance in (0.0, 1.0):
            def fn(x, t):
                use = labels if labels is not None and guidance == 1.0 else self._null(x.shape[0])
                return self.net(x, t.float(), use)
            return fn

        def guided(x, t):
            n = x.shape[0]
            out = self.net(torch.cat([x, x]), torch.cat([t, t]).float(), torch.cat([labels, self._null(n)]))
            cond, uncond = out[:n], out[n:]
            return uncond + guidance * (cond - uncond)
        return guided

    def _check_labels(self, labels: torch.Tensor | None, n: int) -> torch.Tensor | None:
        if labels is None:
            return None
        if not self.num_classes:
            raise UsageError("this diffusion model is unconditional; sample without labels")
        labels = torch.as_tensor(labels).long().reshape(-1)
        if labels.shape[0] != n or labels.min() < 0 or labels.max() >= self.num_classes:
            raise UsageError(f"labels must be {n} integers in [0, {self.num_classes}), got shape {tuple(labels.shape)}")
        return labels.to(self.device)

    # --- training ----------------------------------------------------------------
    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Simple eps-MSE loss; labels are replaced by the null label with probability ``p_uncond``."""
        x0 = self.space.to_model(x)
        n = x0.shape[0]
        t = torch.randint(0, self.diffusion.T, (n,), device=x0.device)
        noise = torch.randn_like(x0)
        if self.num_classes and y is not None:
            drop = torch.rand(n, device=x0.device) < self.p_uncond
            y = torch.where(drop, torch.full_like(y, self.num_classes), y)
        else:
            y = self._null(n)
        return self.diffusion.eps_loss(lambda xt, tt: self.net(xt, tt.float(), y), x0, t, noise)

    # --- sampling ----------------------------------------------------------------
    @torch.no_grad()
    def sample_from(self, x_T: torch.Tensor, labels: torch.Tensor | None = None, *,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """Run the configured sampler from a given x_T (model space); returns data-space samples."""
        fn = self.eps_fn(labels, self.guidance if labels is not None else 1.0)
        if self.sampler == "ddpm":
            z = ddpm_sample(self.diffusion, fn, x_T, clip=self.clip, generator=generator)
        else:
            z = ddim_sample(self.diffusion, fn, x_T, steps=self.num_steps, eta=self.eta, clip=self.clip, generator=generator)
        return self.space.from_model(z)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, labels: torch.Tensor | None = None,
               **options) -> torch.Tensor:
        """``n`` samples in the data convention. ``options`` (sampler, steps, eta, guidance) override the
        model's sampling settings for this call only. A conditional model given no labels draws
        them uniformly with ``generator``."""
        if options:
            saved = (self.sampler, self.steps, self.eta, self.guidance)
            try:
                return self.configure_sampling(**options).sample(n, generator=generator, labels=labels)
            finally:
                self.sampler, self.steps, self.eta, self.guidance = saved
        labels = self._check_labels(labels, n)
        if self.num_classes and labels is None:
            labels = torch.randint(0, self.num_classes, (n,), generator=generator).to(self.device)
        out = []
        for start in range(0, n, self.sample_batch_size):
            m = min(self.sample_batch_size, n - start)
            x_T = randn((m, *self.data_shape), generator, self.device)
            lab = None if labels is None else labels[start:start + m]
            out.append(self.sample_from(x_T, lab, generator=generator).float().cpu())
        return torch.cat(out) if out else torch.empty(0, *self.data_shape)

    # --- likelihood --------------------------------------------------------------
    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, *, generator: torch.Generator | None = None, labels: torch.Tensor | None = None,
                       batch_size: int | None = None) -> tuple[torch.Tensor, str]:
        """Negative VLB (a lower bound on log-likelihood), nats per sample, kind "bound".

        Images: log-probability of the 8-bit image (discretised decoder; bpd = -value / (D ln 2)); the
        data are read on the 8-bit grid first (round(255 x) / 255, as the PixelCNN and VAE round to
        theirs), so every term of the bound sees the image that is scored.
        Points: continuous log-density. Conditional models use the null label unless ``labels``.
        """
        x = self.space.check(torch.as_tensor(x))
        if self.space.is_image:
            x = to_uint8(x).to(x.dtype) / 255.0
        labels = self._check_labels(labels, x.shape[0])
        bs = batch_size or self.sample_batch_size
        out = []
        for start in range(0, x.shape[0], bs):
            x0 = self.space.to_model(x[start:start + bs].to(self.device).float())
            lab = None if labels is None else labels[start:start + bs]
            total, _ = self.diffusion.vlb_terms(self.eps_fn(lab), x0, discrete=self.space.is_image, clip=self.clip,
                                                generator=generator)
            out.append((-total + (0.0 if self.space.is_image else self.space.log_det)).cpu())
        return torch.cat(out), "bound"
