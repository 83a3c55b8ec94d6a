"""Invertible layers of a Glow/RealNVP-style flow.

Every layer maps data-side ``x`` to latent-side ``z`` with ``forward(x) -> (z, logdet)``,
where ``logdet`` (N,) is log |det dz/dx| in nats, and inverts with ``inverse(z) -> x``.
Layers work on images (N, C, H, W) or on vectors (N, D) (treated as (N, D, 1, 1) where a
layer needs spatial dimensions).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def _spatial(x: torch.Tensor) -> int:
    """Number of positions per channel: H*W for images, 1 for vectors."""
    return x.shape[2] * x.shape[3] if x.ndim == 4 else 1


def _view(p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-channel parameter (C,) shaped to broadcast against ``x``."""
    return p.view(1, -1, 1, 1) if x.ndim == 4 else p.view(1, -1)


class ActNorm(nn.Module):
    """Per-channel affine ``z = (x + bias) * exp(logs)`` with data-dependent initialisation.

    The first forward pass in training mode sets bias and scale so that the batch has zero
    mean and unit variance per channel (Kingma & Dhariwal 2018). ``initialized`` is a buffer,
    so a checkpoint never re-initialises.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.logs = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))

    @torch.no_grad()
    def _init(self, x: torch.Tensor) -> None:
        dims = [0, 2, 3] if x.ndim == 4 else [0]
        mean = x.mean(dims)
        std = x.std(dims, unbiased=False)
        self.bias.copy_(-mean)
        self.logs.copy_(-torch.log(std + 1e-6))
        self.initialized.fill_(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not self.initialized:
            self._init(x)
        z = (x + _view(self.bias, x)) * _view(self.logs.exp(), x)
        logdet = self.logs.sum() * _spatial(x)
        return z, logdet.expand(x.shape[0])

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return z * _view(torch.exp(-self.logs), z) - _view(self.bias, z)


class InvConv1x1(nn.Module):
    """Invertible 1x1 convolution (a learned channel mixing), LU-parametrised.

    W = P L (U + diag(sign * exp(log_s))) with P a fixed permutation, L unit lower and U
    strictly upper triangular, so log |det W| = sum(log_s) per position.
    """

    def __init__(self, channels: int, generator: torch.Generator | None = None):
        super().__init__()
        w = torch.linalg.qr(torch.randn(channels, channels, generator=generator))[0]
        p, lower, upper = torch.linalg.lu(w)
        s = torch.diagonal(upper)
        self.register_buffer("p", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("l_mask", torch.tril(torch.ones(channels, channels), -1))
        self.register_buffer("eye", torch.eye(channels))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(torch.abs(s)))

    def weight(self) -> torch.Tensor:
        lower = self.lower * self.l_mask + self.eye
        upper = self.upper * self.l_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.p @ lower @ upper

    def _mix(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:
            return F.conv2d(x, w.view(*w.shape, 1, 1))
        return x @ w.T

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = self.log_s.sum() * _spatial(x)
        return self._mix(x, self.weight()), logdet.expand(x.shape[0])

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return self._mix(z, torch.linalg.inv(self.weight()))


class ZeroConv2d(nn.Conv2d):
    """3x3 convolution initialised to zero, so a coupling starts as the identity."""

    def __init__(self, cin: int, cout: int):
        super().__init__(cin, cout, 3, padding=1)
        nn.init.zeros_(self.weight)
        nn.init.zeros_(self.bias)


def conv_net(cin: int, cout: int, hidden: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(cin, hidden, 3, padding=1), nn.ReLU(),
        nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
        ZeroConv2d(hidden, cout),
    )


def mlp_net(cin: int, cout: int, hidden: int, depth: int = 2) -> nn.Module:
    layers: list[nn.Module] = []
    d = cin
    for _ in range(depth):
        layers += [nn.Linear(d, hidden), nn.ReLU()]
        d = hidden
    last = nn.Linear(d, cout)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*layers, last)


class AffineCoupling(nn.Module):
    """Affine coupling: the first half of the channels passes through and sets a shift and a
    scale for the second half, ``z_b = (x_b + t(x_a)) * s(x_a)``.

    ``scale="sigmoid"``: s = sigmoid(h + 2) (Glow; s < 1, stable for images);
    ``scale="exp"``: s = exp(bound * tanh(h / bound)) (RealNVP with a soft clamp; can expand,
    needed for tight 2-D mixtures).
    """

    def __init__(self, channels: int, hidden: int, *, kind: str = "conv", scale: str = "sigmoid",
                 bound: float = 3.0, depth: int = 2):
        super().__init__()
        self.ca = channels // 2
        self.cb = channels - self.ca
        self.scale, self.bound = scale, bound
        if kind == "conv":
            self.net = conv_net(self.ca, 2 * self.cb, hidden)
        else:
            self.net = mlp_net(self.ca, 2 * self.cb, hidden, depth)

    def _shift_logscale(self, xa: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.net(xa)
        t, s = h[:, : self.cb], h[:, self.cb:]
        if self.scale == "sigmoid":
            return t, F.logsigmoid(s + 2.0)
        return t, self.bound * torch.tanh(s / self.bound)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xa, xb = x[:, : self.ca], x[:, self.ca:]
        t, logs = self._shift_logscale(xa)
        zb = (xb + t) * torch.exp(logs)
        return torch.cat([xa, zb], 1), logs.flatten(1).sum(1)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        za, zb = z[:, : self.ca], z[:, self.ca:]
        t, logs = self._shift_logscale(za)
        return torch.cat([za, zb * torch.exp(-logs) - t], 1)


class FlowStep(nn.Module):
    """One Glow step: actnorm -> invertible 1x1 -> affine coupling."""

    def __init__(self, channels: int, hidden: int, *, generator: torch.Generator | None = None, **coupling):
        super().__init__()
        self.layers = nn.ModuleList([
            ActNorm(channels), InvConv1x1(channels, generator), AffineCoupling(channels, hidden, **coupling),
        ])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z


def squeeze(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, 4C, H/2, W/2), each 2x2 block into channels (volume preserving)."""
    n, c, h, w = x.shape
    x = x.view(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(n, c * 4, h // 2, w // 2)


def unsqueeze(x: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    x = x.view(n, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(n, c // 4, h * 2, w * 2)


def standard_normal_logprob(z: torch.Tensor) -> torch.Tensor:
    """Sum over all but the batch dimension of log N(z; 0, 1), in nats."""
    return (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)


def student_t_logprob(z: torch.Tensor, df: float) -> torch.Tensor:
    """log density (nats, per row) of the D-variate Student's t with ``df`` degrees of freedom,
    location 0 and identity scale matrix, at the rows of ``z`` (flattened to (N, D)):
    lgamma((df + D) / 2) - lgamma(df / 2) - D/2 log(df pi) - (df + D)/2 log(1 + |z|^2 / df).
    Its log-density falls like -(df + D) log|z| instead of the Gaussian's -|z|^2 / 2."""
    z = z.flatten(1)
    d = z.shape[1]
    const = math.lgamma((df + d) / 2) - math.lgamma(df / 2) - 0.5 * d * math.log(df * math.pi)
    return const - 0.5 * (df + d) * torch.log1p(z.pow(2).sum(1) / df)
