"""Noise-conditional networks shared by the diffusion and score families.

Both take ``(x, t, y)``: ``x`` in model space, ``t`` a float tensor (N,) of "times" on the
[0, 1000) scale (DDPM step index, or the VE-SDE time x 1000 for the score family) and
``y`` int64 labels (N,) or None. Label ``num_classes`` is the null label of classifier-free
guidance. Output has the shape of ``x``.

- :class:`UNet`: a small DDPM-style U-Net (lucidrains' denoising-diffusion-pytorch layout):
  sinusoidal time embedding, residual blocks with GroupNorm, self-attention at the
  resolutions listed in ``attn_resolutions``, stride-2 conv down / nearest up.
- :class:`MLPNet`: a residual MLP for 2-D points, time and label embeddings added.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dgmbench.errors import UsageError


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Transformer sinusoidal embedding of float times ``t`` (N,) -> (N, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class CondEmbedding(nn.Module):
    """Time embedding MLP plus an optional label embedding (with a null label) added to it."""

    def __init__(self, base_dim: int, emb_dim: int, num_classes: int | None):
        super().__init__()
        self.base_dim = base_dim
        self.mlp = nn.Sequential(nn.Linear(base_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.num_classes = num_classes
        self.label = nn.Embedding(num_classes + 1, emb_dim) if num_classes else None

    def forward(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        emb = self.mlp(timestep_embedding(t, self.base_dim))
        if self.label is not None:
            if y is None:
                y = torch.full((t.shape[0],), self.num_classes, dtype=torch.long, device=t.device)
            emb = emb + self.label(y)
        return emb


def _groups(ch: int) -> int:
    for g in (32, 16, 8, 4, 2, 1):
        if ch % g == 0 and ch // g >= 2 or g == 1:
            return g
    return 1


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb_dim: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, cout)
        self.norm2 = nn.GroupNorm(_groups(cout), cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class Attention(nn.Module):
    """Single-head self-attention over spatial positions, residual."""

    def __init__(self, ch: int):
        super().__init__()
        self.norm = nn.GroupNorm(_groups(ch), ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.out = nn.Conv2d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).unbind(1)
        a = F.scaled_dot_product_attention(q.transpose(1, 2)[:, None], k.transpose(1, 2)[:, None], v.transpose(1, 2)[:, None])
        return x + self.out(a[:, 0].transpose(1, 2).reshape(b, c, h, w))


class Upsample(nn.Module):
    """Nearest-neighbour upsampling to the skip connection's size (handles 7 -> 14 -> 28), then a conv."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor, size) -> torch.Tensor:
        return self.conv(F.interpolate(x, size=tuple(size), mode="nearest"))


class UNet(nn.Module):
    """Small U-Net ``(x, t, y) -> output shaped like x``.

    ``ch`` base channels, ``ch_mult`` per level (each level after the first halves the
    resolution), ``num_res_blocks`` per level, attention at the listed resolutions
    (e.g. ``(4,)`` on 8x8 input, ``(16,)`` on CIFAR-10) and in the middle.
    """

    def __init__(self, in_ch: int, resolution: int, *, ch: int = 32, ch_mult: tuple[int, ...] = (1, 2),
                 num_res_blocks: int = 1, attn_resolutions: tuple[int, ...] = (4,), dropout: float = 0.0,
                 num_classes: int | None = None):
        super().__init__()
        emb_dim = 4 * ch
        self.embed = CondEmbedding(ch, emb_dim, num_classes)
        self.conv_in = nn.Conv2d(in_ch, ch, 3, padding=1)
        self.down = nn.ModuleList()
        chans = [ch]
        cur, res = ch, resolution
        for i, m in enumerate(ch_mult):
            for _ in range(num_res_blocks):
                blk = nn.ModuleList([ResBlock(cur, ch * m, emb_dim, dropout)])
                cur = ch * m
                if res in attn_resolutions:
                    blk.append(Attention(cur))
                self.down.append(blk)
                chans.append(cur)
            if i != len(ch_mult) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(cur, cur, 3, stride=2, padding=1)]))
                chans.append(cur)
                res = (res + 1) // 2
        self.mid1 = ResBlock(cur, cur, emb_dim, dropout)
        self.mid_attn = Attention(cur)
        self.mid2 = ResBlock(cur, cur, emb_dim, dropout)
        self.up = nn.ModuleList()
        for i, m in reversed(list(enumerate(ch_mult))):
            for _ in range(num_res_blocks + 1):
                blk = nn.ModuleList([ResBlock(cur + chans.pop(), ch * m, emb_dim, dropout)])
                cur = ch * m
                if res in attn_resolutions:
                    blk.append(Attention(cur))
                self.up.append(blk)
            if i != 0:
                self.up.append(nn.ModuleList([Upsample(cur)]))
                res *= 2
        self.norm_out = nn.GroupNorm(_groups(cur), cur)
        self.conv_out = nn.Conv2d(cur, in_ch, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.embed(t, y)
        h = self.conv_in(x)
        hs = [h]
        for blk in self.down:
            if isinstance(blk[0], ResBlock):
                h = blk[0](h, emb)
                for layer in blk[1:]:
                    h = layer(h)
            else:
                h = blk[0](h)
            hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for blk in self.up:
            if isinstance(blk[0], ResBlock):
                h = blk[0](torch.cat([h, hs.pop()], 1), emb)
                for layer in blk[1:]:
                    h = layer(h)
            else:
                h = blk[0](h, hs[-1].shape[-2:])
        return self.conv_out(F.silu(self.norm_out(h)))


class MLPNet(nn.Module):
    """Residual MLP ``(x, t, y) -> output shaped like x`` for low-dimensional points."""

    def __init__(self, dim: int, *, hidden: int = 128, depth: int = 3, num_classes: int | None = None):
        super().__init__()
        self.embed = CondEmbedding(hidden, hidden, num_classes)
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList([nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden)) for _ in range(depth)])
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.embed(t, y)
        h = self.inp(x)
        for blk in self.blocks:
            h = h + blk(h + emb)
        return self.out(h)


def build_net(config: dict, data_shape: tuple[int, ...], num_classes: int | None) -> nn.Module:
    """U-Net for images (C, H, W), MLP for points (D,); sizes from ``config["net"]``."""
    kw = dict(config.get("net", {}))
    if len(data_shape) == 3:
        for key in ("ch_mult", "attn_resolutions"):
            if key in kw:
                kw[key] = tuple(kw[key])
        return UNet(data_shape[0], data_shape[1], num_classes=num_classes, **kw)
    if len(data_shape) == 1:
        return MLPNet(data_shape[0], num_classes=num_classes, **kw)
    raise UsageError(f"data shape {data_shape} is neither an image (C, H, W) nor points (D,)")
