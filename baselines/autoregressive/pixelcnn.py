"""Gated PixelCNN (van den Oord et al. 2016) with a categorical distribution per sub-pixel.

The image is modelled as p(x) = prod over pixels (raster order) and, within a pixel, over
channels (R, then G, then B) of a ``levels``-way softmax. With the default ``levels=256``
on 8-bit data this is the exact discrete 8-bit log-likelihood of :mod:`dgmbench.units`;
with fewer levels, data x in [0, 1] is read as round(x * (levels - 1)) and the likelihood
is that of the ``levels``-level image.

Causality is enforced with masks:

- the vertical stack at row i sees only rows < i (first layer: strictly above the centre
  row; later layers: rows up to the centre of features that already look only upwards);
- the horizontal stack at (i, j) sees row i at columns < j, the vertical stack, and at
  (i, j) itself only channel groups before its own (mask "A" in the first layer) or up to
  its own (mask "B" afterwards). Feature channels are split into ``C`` contiguous groups,
  one per colour channel, and the logits of channel c read groups <= c.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from dgmbench.errors import UsageError

from ..base import BaselineModel


def _groups(n: int, data_channels: int, period: int | None = None) -> torch.Tensor:
    """Colour group of each of ``n`` feature channels (contiguous blocks; ``period`` for gate halves)."""
    idx = torch.arange(n)
    if period is not None:
        idx = idx % period
        n = period
    return idx * data_channels // n


class MaskedConv2d(nn.Conv2d):
    """Conv2d whose weight is multiplied by a fixed 0/1 mask at every call."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int], mask: torch.Tensor):
        super().__init__(cin, cout, kernel, padding=(kernel[0] // 2, kernel[1] // 2))
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


def vertical_mask(cin: int, cout: int, k: int, strict: bool) -> torch.Tensor:
    """k x k mask: rows above the centre (``strict``), or up to and including it."""
    m = torch.zeros(cout, cin, k, k)
    m[:, :, : k // 2 + (0 if strict else 1), :] = 1
    return m


def horizontal_mask(gin: torch.Tensor, gout: torch.Tensor, k: int, mask_type: str) -> torch.Tensor:
    """1 x k mask: columns left of the centre; at the centre, channel groups g_in < g_out ("A") or <= ("B")."""
    m = torch.zeros(len(gout), len(gin), 1, k)
    m[:, :, 0, : k // 2] = 1
    centre = (gin[None, :] < gout[:, None]) if mask_type == "A" else (gin[None, :] <= gout[:, None])
    m[:, :, 0, k // 2] = centre.float()
    return m


def pointwise(gin: torch.Tensor, gout: torch.Tensor) -> MaskedConv2d:
    """1x1 convolution with mask "B" (group g_out reads groups <= g_out)."""
    return MaskedConv2d(len(gin), len(gout), (1, 1), horizontal_mask(gin, gout, 1, "B"))


class GatedLayer(nn.Module):
    """One gated layer: vertical and horizontal stacks, tanh * sigmoid gates, residual horizontal."""

    def __init__(self, cin: int, hidden: int, c: int, k: int, first: bool, num_classes: int | None):
        super().__init__()
        g_in = torch.arange(c) if first else _groups(hidden, c)
        g_h = _groups(hidden, c)
        g_gate = _groups(2 * hidden, c, period=hidden)
        self.first = first
        self.v = MaskedConv2d(cin, 2 * hidden, (k, k), vertical_mask(cin, 2 * hidden, k, strict=first))
        self.h = MaskedConv2d(cin, 2 * hidden, (1, k), horizontal_mask(g_in, g_gate, k, "A" if first else "B"))
        self.v_to_h = nn.Conv2d(2 * hidden, 2 * hidden, 1)  # the vertical stack only looks upwards: no mask
        self.h_out = pointwise(g_h, g_h)
        self.embed = nn.Embedding(num_classes, 4 * hidden) if num_classes else None

    @staticmethod
    def gate(a: torch.Tensor) -> torch.Tensor:
        t, s = a.chunk(2, 1)
        return torch.tanh(t) * torch.sigmoid(s)

    def forward(self, v: torch.Tensor, h: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        v_pre = self.v(v)
        h_pre = self.h(h) + self.v_to_h(v_pre)
        if self.embed is not None and y is not None:
            bv, bh = self.embed(y)[:, :, None, None].chunk(2, 1)
            v_pre, h_pre = v_pre + bv, h_pre + bh
        h_new = self.h_out(self.gate(h_pre))
        return self.gate(v_pre), h_new if self.first else h + h_new


class PixelCNN(BaselineModel):
    """Gated PixelCNN over ``levels`` levels. ``forward`` = mean NLL in bits per sub-pixel."""

    family = "autoregressive"
    likelihood_kind = "exact"

    def __init__(self, config: dict[str, Any], data_shape: tuple[int, ...], num_classes: int | None = None):
        super().__init__(config, data_shape, num_classes)
        c = data_shape[0]
        self.levels = int(config.get("levels", 256))
        hidden = int(config.get("hidden", 64))
        k = int(config.get("kernel", 5))
        if k % 2 == 0 or k < 3:
            raise UsageError(f"PixelCNN kernel must be odd and >= 3, got {k}")
        if hidden % c:
            raise UsageError(f"PixelCNN hidden ({hidden}) must be divisible by the number of channels ({c})")
        if self.levels < 2:
            raise UsageError(f"PixelCNN needs at least 2 levels, got {self.levels}")
        self.kernel = k
        self.layers = nn.ModuleList(
            [GatedLayer(c if i == 0 else hidden, hidden, c, k, i == 0, num_classes)
             for i in range(int(config.get("layers", 5)))]
        )
        g_h = _groups(hidden, c)
        g_out = torch.arange(c).repeat_interleave(self.levels)  # logits of channel c are in group c
        self.head = nn.Sequential(nn.ReLU(), pointwise(g_h, g_h), nn.ReLU(), pointwise(g_h, g_out))
        self.num_dims = math.prod(data_shape)

    @property
    def likelihood_levels(self) -> int:
        """The grid ``log_likelihood`` scores (256: 8-bit bits/dim; fewer: bits/dim of that grid)."""
        return self.levels

    def to_levels(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] data -> integer levels 0..levels-1 (round(x * (levels - 1)))."""
        return (x.clamp(0, 1) * (self.levels - 1)).round().long()

    def logits(self, k: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Integer levels (N, C, H, W) -> logits (N, C, levels, H, W) of each sub-pixel given its past."""
        return self.net(k.to(self.head[1].weight.dtype) * (2.0 / (self.levels - 1)) - 1.0, y)

    def net(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The network on the float input in [-1, 1] (exposed for causality tests)."""
        v = h = x
        for layer in self.layers:
            v, h = layer(v, h, y)
        out = self.head(h)
        n, _, hh, ww = out.shape
        return out.view(n, self.data_shape[0], self.levels, hh, ww)

    @property
    def receptive_rows(self) -> int:
        """Rows above row i that the logits of row i depend on: k // 2 per gated layer."""
        return len(self.layers) * (self.kernel // 2)

    def row_logits(self, k: torch.Tensor, i: int, y: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (N, C, levels, W) of row ``i`` alone, equal to ``logits(k, y)[..., i, :]``.

        The network runs only on rows ``i - receptive_rows .. i``: each gated layer reaches
        ``k // 2`` rows up, so the zero padding above a cropped top row corrupts at most
        ``receptive_rows`` rows, all above row i, and rows below i are masked out. The
        head (the widest layer, ``levels`` logits per channel) runs on row i only.
        """
        top = max(0, i - self.receptive_rows)
        v = h = k[:, :, top:i + 1].to(self.head[1].weight.dtype) * (2.0 / (self.levels - 1)) - 1.0
        for layer in self.layers:
            v, h = layer(v, h, y)
        out = self.head(h[:, :, -1:])
        return out.view(out.shape[0], self.data_shape[0], self.levels, out.shape[-1])

    def _check_labels(self, y: torch.Tensor | None, n: int) -> torch.Tensor | None:
        if self.num_classes is None:
            if y is not None:
                raise UsageError("this PixelCNN is not class-conditional; sample without labels")
            return None
        if y is None:
            raise UsageError(f"this PixelCNN is class-conditional ({self.num_classes} classes): pass labels")
        if y.shape != (n,):
            raise UsageError(f"labels must have shape ({n},), got {tuple(y.shape)}")
        return y.to(self.device).long()

    def log_prob_levels(self, k: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """log P(image) in nats per sample for integer levels ``k``."""
        logp = F.log_softmax(self.logits(k, y), dim=2)
        return logp.gather(2, k.unsqueeze(2)).squeeze(2).flatten(1).sum(1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        y = y if self.num_classes else None
        nll = -self.log_prob_levels(self.to_levels(x), y)
        return nll.mean() / (self.num_dims * math.log(2.0))

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, *, labels: torch.Tensor | None = None, **_: Any) -> tuple[torch.Tensor, str]:
        """Exact discrete log-likelihood in nats per image (class-conditional models need ``labels``)."""
        x = x.to(self.device)
        y = self._check_labels(labels, x.shape[0])
        k = self.to_levels(x)
        bs = int(self.config.get("eval_batch_size", 64))
        out = [self.log_prob_levels(k[s:s + bs], None if y is None else y[s:s + bs]) for s in range(0, len(k), bs)]
        return torch.cat(out), self.likelihood_kind

    @property
    def nfe_per_sample(self) -> float:
        """One network pass per sub-pixel."""
        return float(self.num_dims)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` images in [0, 1] (level / (levels - 1)), sub-pixel by sub-pixel by inverse-CDF
        sampling. All uniforms are drawn first, so the result does not depend on the batching.
        Each step runs the network on the rows that row i can see (:meth:`row_logits`)."""
        c, hh, ww = self.data_shape
        y = self._check_labels(labels, n)
        gdev = generator.device if generator is not None else self.device
        u = torch.rand((n, c, hh, ww), generator=generator, device=gdev).to(self.device).double()
        k = torch.zeros((n, c, hh, ww), dtype=torch.long, device=self.device)
        bs = int(self.config.get("sample_batch_size", 256))
        for s in range(0, n, bs):
            kb, ub, yb = k[s:s + bs], u[s:s + bs], None if y is None else y[s:s + bs]
            for i in range(hh):
                for j in range(ww):
                    for ch in range(c):
                        cdf = torch.softmax(self.row_logits(kb, i, yb)[:, ch, :, j].double(), dim=1).cumsum(1)
                        idx = torch.searchsorted(cdf, ub[:, ch, i, j, None].contiguous()).squeeze(1)
                        kb[:, ch, i, j] = idx.clamp(max=self.levels - 1)
        return k.float() / (self.levels - 1)
