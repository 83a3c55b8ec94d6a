"""MADE (Germain et al. 2015) for continuous low-dimensional data (the 2-D toys).

p(x) = prod_d p(x_d | x_<d) with each conditional a mixture of ``components`` Gaussians
whose parameters come from one masked MLP pass. The log-density is exact, in nats.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from dgmbench.errors import UsageError

from ..base import BaselineModel

MIN_LOG_STD = -9.0


class MaskedLinear(nn.Linear):
    def __init__(self, cin: int, cout: int, mask: torch.Tensor):
        super().__init__(cin, cout)
        self.register_buffer("mask", mask.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(BaselineModel):
    """Masked autoencoder with Gaussian-mixture conditionals. ``forward`` = mean NLL in nats."""

    family = "autoregressive"
    likelihood_kind = "exact"

    def __init__(self, config: dict[str, Any], data_shape: tuple[int, ...], num_classes: int | None = None):
        super().__init__(config, data_shape, num_classes)
        if num_classes is not None:
            raise UsageError("MADE has no class-conditional variant; drop 'conditional' from the config")
        d = data_shape[0]
        self.dim = d
        self.components = int(config.get("components", 10))
        hidden = [int(h) for h in config.get("hidden", [128, 128])]
        deg_in = torch.arange(1, d + 1)
        degrees = [deg_in]
        for h in hidden:
            degrees.append(torch.arange(h) % max(1, d - 1) + 1)
        layers: list[nn.Module] = []
        for a, b in zip(degrees[:-1], degrees[1:]):
            layers += [MaskedLinear(len(a), len(b), b[:, None] >= a[None, :]), nn.ReLU()]
        # output unit (parameter p, dimension j) has degree j + 1 and reads strictly lower degrees
        deg_out = deg_in.repeat(3 * self.components)
        out = MaskedLinear(len(degrees[-1]), len(deg_out), deg_out[:, None] > degrees[-1][None, :])
        with torch.no_grad():  # start with narrower components (log-std bias), as the toys are tight
            out.bias.view(3, self.components, d)[2].fill_(float(config.get("init_log_std", 0.0)))
        layers.append(out)
        self.net = nn.Sequential(*layers)

    def params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mixture log-weights, means and log-stds, each (N, K, D), of p(x_d | x_<d)."""
        out = self.net(x).view(x.shape[0], 3, self.components, self.dim)
        logw = F.log_softmax(out[:, 0], dim=1)
        return logw, out[:, 1], out[:, 2].clamp(min=MIN_LOG_STD)

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        logw, mu, logs = self.params(x)
        z = (x[:, None, :] - mu) * torch.exp(-logs)
        comp = -0.5 * z.pow(2) - logs - 0.5 * math.log(2 * math.pi)
        return torch.logsumexp(logw + comp, dim=1).sum(1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return -self.log_density(x).mean()

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, **_: Any) -> tuple[torch.Tensor, str]:
        """Exact log-density of the points, nats per sample."""
        return self.log_density(x.to(self.device)), self.likelihood_kind

    @property
    def nfe_per_sample(self) -> float:
        return float(self.dim)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is not None:
            raise UsageError("MADE is not class-conditional; sample without labels")
        gdev = generator.device if generator is not None else self.device
        dtype = self.net[0].weight.dtype
        u = torch.rand((n, self.dim), generator=generator, device=gdev).to(self.device)
        eps = torch.randn((n, self.dim), generator=generator, device=gdev).to(self.device, dtype)
        x = torch.zeros(n, self.dim, device=self.device, dtype=dtype)
        for d in range(self.dim):
            logw, mu, logs = self.params(x)
            cdf = logw[:, :, d].double().exp().cumsum(1)
            comp = torch.searchsorted(cdf, u[:, d, None].double().contiguous()).clamp(max=self.components - 1)
            m = mu[:, :, d].gather(1, comp).squeeze(1)
            s = logs[:, :, d].gather(1, comp).squeeze(1).exp()
            x[:, d] = m + s * eps[:, d]
        return x
