"""Normalizing flows: a multi-scale Glow-style flow for images, a RealNVP-style flow for 2-D.

Likelihood convention (see :mod:`dgmbench.units`):

- Images: the flow is a density p on dequantised data y = (255 x + u) / 256, u ~ U[0, 1)^D
  (shifted to y - 1/2 before the first layer, a volume-preserving step). Its log-density
  is exact, but the reported 8-bit value is
  ``log p(y) - D log 256`` averaged over ``k`` draws of u (log-mean-exp), which by Jensen's
  inequality is in expectation a *lower bound* on the discrete log P(x) (tightening as k
  grows). It is labelled ``bound``, the same kind as an ELBO: the NLL it gives is an upper
  bound in expectation. ``log_density(y)`` gives the exact continuous log-density.
- 2-D points: the exact continuous log-density in nats, labelled ``exact``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import nn

from dgmbench.errors import UsageError

from ..base import BaselineModel
from .layers import FlowStep, squeeze, standard_normal_logprob, student_t_logprob, unsqueeze


def _randn(shape, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Standard normal noise drawn with ``generator`` (on its device), returned on ``device``."""
    gdev = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=gdev).to(device)


def _check_unconditional(model: BaselineModel, labels: torch.Tensor | None) -> None:
    if labels is not None:
        raise UsageError(f"the {model.family} baseline '{model.name}' is not class-conditional; sample without labels")


class FlowModel(BaselineModel):
    """Shared parts: a bijection ``transform`` x -> z (flat) with log-det, a N(0, I) prior."""

    family = "flow"
    likelihood_kind = "exact"

    def transform(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def inverse_transform(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def base_logprob(self, z: torch.Tensor) -> torch.Tensor:
        """log density (nats per sample) of the base distribution: N(0, I)."""
        return standard_normal_logprob(z)

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-density (nats per sample) of the flow's input space."""
        z, logdet = self.transform(x)
        return self.base_logprob(z) + logdet


class ImageFlow(FlowModel):
    """Glow-style multi-scale flow: ``levels`` x (squeeze, ``steps`` x (actnorm, 1x1, coupling),
    split half of the channels off to the prior) on (C, H, W) images, H and W divisible by
    2**levels. Its density is on [0, 1]^D (dequantised data), after a preprocessing step:
    y - 1/2 by default, or RealNVP's logit(a + (1 - 2a) y) with ``logit_alpha`` a.
    ``forward`` returns the training loss in bits per dimension (8-bit scale).
    """

    likelihood_kind = "bound"
    INVERSE_LIMIT = 1e4  # |activation| bound of the sampling guard (data lie within +-14 after the logit)

    def __init__(self, config: dict[str, Any], data_shape: tuple[int, ...], num_classes: int | None = None):
        super().__init__(config, data_shape, num_classes)
        self.last_sample_guarded = 0  # samples the inverse guard held in the last sample() call
        c, h, w = data_shape
        self.levels = int(config.get("levels", 2))
        self.steps = int(config.get("steps", 4))
        self.hidden = int(config.get("hidden", 64))
        self.temperature = float(config.get("temperature", 1.0))
        self.eval_k = int(config.get("eval_k", 1))
        coupling = {"scale": config.get("coupling_scale", "sigmoid"), "bound": float(config.get("scale_bound", 3.0))}
        self.logit_alpha = config.get("logit_alpha")
        if h % 2 ** self.levels or w % 2 ** self.levels:
            raise UsageError(f"flow with {self.levels} levels needs H and W divisible by {2 ** self.levels}, "
                             f"got {h}x{w}; lower model.levels")
        if num_classes is not None:
            raise UsageError("the flow baseline has no class-conditional variant; drop 'conditional' from the config")
        self.flows = nn.ModuleList()
        self.z_shapes: list[tuple[int, int, int]] = []
        for level in range(self.levels):
            c, h, w = c * 4, h // 2, w // 2
            self.flows.append(nn.ModuleList([FlowStep(c, self.hidden, **coupling) for _ in range(self.steps)]))
            if level < self.levels - 1:
                self.z_shapes.append((c // 2, h, w))
                c = c - c // 2
            else:
                self.z_shapes.append((c, h, w))
        self.num_dims = math.prod(data_shape)

    def _preprocess(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[0, 1] data -> flow input: y - 1/2 (Glow), or logit(a + (1 - 2a) y) (RealNVP, ``logit_alpha`` a)."""
        if self.logit_alpha is None:
            return y - 0.5, y.new_zeros(y.shape[0])
        a = float(self.logit_alpha)
        v = a + (1 - 2 * a) * y
        logdet = (math.log(1 - 2 * a) - torch.log(v) - torch.log1p(-v)).flatten(1).sum(1)
        return torch.log(v) - torch.log1p(-v), logdet

    def _postprocess(self, x: torch.Tensor) -> torch.Tensor:
        if self.logit_alpha is None:
            return x + 0.5
        a = float(self.logit_alpha)
        return (torch.sigmoid(x) - a) / (1 - 2 * a)

    def transform(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, H, W) data in [0, 1] -> (N, D) latent (all scales concatenated), log|det dz/dy| (N,)."""
        x, logdet = self._preprocess(y)
        zs = []
        for level, steps in enumerate(self.flows):
            x = squeeze(x)
            for step in steps:
                x, ld = step(x)
                logdet = logdet + ld
            if level < self.levels - 1:
                cz = self.z_shapes[level][0]
                zs.append(x[:, :cz].flatten(1))
                x = x[:, cz:]
        zs.append(x.flatten(1))
        return torch.cat(zs, 1), logdet

    def inverse_transform(self, z: torch.Tensor) -> torch.Tensor:
        """(N, D) latent -> (N, C, H, W) data in [0, 1], with the sampling guard of :meth:`guarded_inverse`."""
        return self.guarded_inverse(z)[0]

    def guarded_inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The inverse and a (N,) bool mask of the rows the guard held.

        Numerical guard: a learned sigmoid-scale coupling can make the inverse overflow for a
        few latents in the prior's tail (division by a scale that underflows to 0, then
        inf - inf = NaN in the next layer, even in float64). After every step, values beyond
        +-``INVERSE_LIMIT`` (far outside anything the forward pass produces on data) are held
        at the limit, which maps such a sample to saturated pixels instead of NaN. Rows that
        stay inside the limit are computed exactly as without the guard (the clamp is the
        identity there). ``INVERSE_LIMIT = math.inf`` turns the guard off.
        """
        guard = self.INVERSE_LIMIT != math.inf
        sizes = [math.prod(s) for s in self.z_shapes]
        parts = list(torch.split(z, sizes, dim=1))
        x = parts[-1].view(-1, *self.z_shapes[-1])
        held = torch.zeros(z.shape[0], dtype=torch.bool, device=z.device)
        for level in reversed(range(self.levels)):
            if level < self.levels - 1:
                x = torch.cat([parts[level].view(-1, *self.z_shapes[level]), x], 1)
            for step in reversed(self.flows[level]):
                x = step.inverse(x)
                if guard:  # no host sync: the mask is accumulated on the device
                    held |= ~(x.abs() <= self.INVERSE_LIMIT).flatten(1).all(1)  # also catches NaN
                    x = torch.nan_to_num(x, nan=0.0).clamp(-self.INVERSE_LIMIT, self.INVERSE_LIMIT)
            x = unsqueeze(x)
        return self._postprocess(x), held

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Training loss: mean NLL in bits/dim of uniformly dequantised 8-bit data."""
        u = torch.rand_like(x)
        yq = ((x * 255).round() + u) / 256
        nll = -(self.log_density(yq) - self.num_dims * math.log(256.0))
        return nll.mean() / (self.num_dims * math.log(2.0))

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, *, k: int | None = None,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, str]:
        """Dequantised 8-bit log-likelihood in nats per image and its kind (``bound``).

        ``k`` dequantisation draws per image (default ``config['eval_k']``, 1) are combined
        by log-mean-exp; they come from ``generator``, or from the global torch RNG (which
        dgmbench's harness seeds) when it is None.
        """
        k = k or self.eval_k
        x = x.to(self.device)
        levels = (x * 255).round()
        gdev = generator.device if generator is not None else x.device
        out = []
        for _ in range(k):
            u = torch.rand(x.shape, generator=generator, device=gdev).to(x.device, x.dtype)
            out.append(self.log_density((levels + u) / 256) - self.num_dims * math.log(256.0))
        lp = torch.stack(out, 0)
        return torch.logsumexp(lp, 0) - math.log(k), self.likelihood_kind

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` images on the 8-bit grid in [0, 1]: the bin of the dequantised sample, k / 255."""
        _check_unconditional(self, labels)
        z = _randn((n, self.num_dims), generator, self.device) * self.temperature
        bs = int(self.config.get("sample_batch_size", 256))
        ys, held = [], []
        for s in range(0, n, bs):
            y, h = self.guarded_inverse(z[s:s + bs])
            ys.append(y)
            held.append(h)
        guarded = self.last_sample_guarded = int(torch.cat(held).sum()) if held else 0
        if guarded:
            warnings.warn(f"flow sampler: {guarded} of {n} samples overflowed the inverse (a sigmoid coupling scale "
                          f"underflowed) and were held at +-{self.INVERSE_LIMIT:g}, i.e. saturated pixels; a lower "
                          "sampling temperature (model config 'temperature') avoids the prior's tail", stacklevel=3)
        k = torch.floor(torch.cat(ys) * 256).clamp(0, 255)
        return (k / 255).float()


class PointFlow(FlowModel):
    """RealNVP-style flow on (N, D) points: ``steps`` x (actnorm, invertible linear map, affine
    coupling with an MLP and a soft-clamped exponential scale). ``forward`` = mean NLL in nats.

    Base distribution (config ``base``): ``normal`` N(0, I), or ``student_t``, the D-variate
    Student's t with ``base_df`` (a positive integer) degrees of freedom, location 0 and identity
    scale (a "Studentising flow", Alexanderson & Henter 2020). Off the training data the
    couplings' soft-clamped scales saturate, so a point a little outside a narrow mode can be
    expanded by up to e^bound per step and land at a latent |z| of 10^3 or more; under N(0, I)
    that costs |z|^2 / 2 nats (10^5 and more), under the t only (df + D) log|z|, a few tens.
    The fat-tailed base also bounds each point's gradient in training (no loss spikes from a
    few points in a mode's tail), which is the paper's robustness argument.
    """

    def __init__(self, config: dict[str, Any], data_shape: tuple[int, ...], num_classes: int | None = None):
        super().__init__(config, data_shape, num_classes)
        if num_classes is not None:
            raise UsageError("the flow baseline has no class-conditional variant; drop 'conditional' from the config")
        d = data_shape[0]
        if d < 2:
            raise UsageError(f"PointFlow needs at least 2 dimensions, got {d}")
        self.num_dims = d
        self.temperature = float(config.get("temperature", 1.0))
        self.base = str(config.get("base", "normal"))
        if self.base not in ("normal", "student_t"):
            raise UsageError(f"flow base must be 'normal' or 'student_t', got '{self.base}'")
        df = config.get("base_df", 5)
        if self.base == "student_t" and (isinstance(df, bool) or not isinstance(df, int) or df < 1):
            raise UsageError(f"base_df (the Student's t degrees of freedom) must be a positive integer, got {df!r}")
        self.base_df = int(df)
        hidden = int(config.get("hidden", 64))
        depth = int(config.get("depth", 2))
        bound = float(config.get("scale_bound", 3.0))
        self.steps = nn.ModuleList([
            FlowStep(d, hidden, kind="mlp", scale="exp", bound=bound, depth=depth)
            for _ in range(int(config.get("steps", 8)))
        ])

    def transform(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = x.new_zeros(x.shape[0])
        for step in self.steps:
            x, ld = step(x)
            logdet = logdet + ld
        return x, logdet

    def inverse_transform(self, z: torch.Tensor) -> torch.Tensor:
        for step in reversed(self.steps):
            z = step.inverse(z)
        return z

    def base_logprob(self, z: torch.Tensor) -> torch.Tensor:
        """log density (nats per sample) of the base: N(0, I) or the Student's t (``base``)."""
        if self.base == "student_t":
            return student_t_logprob(z, float(self.base_df))
        return standard_normal_logprob(z)

    def sample_base(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` base draws (N, D) from ``generator``: N(0, I), or the t as g / sqrt(u / df) with
        g ~ N(0, I) and u ~ chi^2_df drawn as a sum of df squared standard normals."""
        z = _randn((n, self.num_dims), generator, self.device)
        if self.base == "student_t":
            u = _randn((n, self.base_df), generator, self.device).pow(2).sum(1, keepdim=True)
            z = z / torch.sqrt(u / self.base_df)
        return z

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return -self.log_density(x).mean()

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, **_: Any) -> tuple[torch.Tensor, str]:
        """Exact continuous log-density of the points, nats per sample."""
        return self.log_density(x.to(self.device)), self.likelihood_kind

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None) -> torch.Tensor:
        _check_unconditional(self, labels)
        z = self.sample_base(n, generator) * self.temperature
        return self.inverse_transform(z).float()


def build(config: dict[str, Any], data_shape: tuple[int, ...], num_classes: int | None = None) -> FlowModel:
    if len(data_shape) == 3:
        return ImageFlow(config, data_shape, num_classes)
    if len(data_shape) == 1:
        return PointFlow(config, data_shape, num_classes)
    raise UsageError(f"the flow baseline takes images (C, H, W) or points (D,), not data of shape {data_shape}")
