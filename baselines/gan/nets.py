"""Generator and discriminator networks of the GAN family.

All networks work in the model's *internal* space: images in [-1, 1] (tanh output,
as in DCGAN), 2-D points unscaled. :class:`baselines.gan.model.GAN` converts to and
from the dataset convention ([0, 1] images).

- :class:`ConvGenerator` / :class:`ConvDiscriminator`: DCGAN (Radford et al. 2016):
  strided (transposed) convolutions, batch norm, ReLU in G and LeakyReLU(0.2) in D.
  Square images whose side is ``base * 2**k`` with ``base >= 4`` (8 -> 4*2, 28 -> 7*4,
  32 -> 4*8).
- :class:`MLPGenerator` / :class:`MLPDiscriminator`: the 2-D toy networks;
  :class:`MaxoutDiscriminator` with the optional batch-norm MLP generator is the
  PacGAN / VEEGAN 2-D architecture (Lin et al. 2018; Srivastava et al. 2017).
- Class conditioning: G concatenates a label embedding to z; D is a projection
  discriminator (Miyato & Koyama 2018): ``D(x, y) = psi(h) + <embed(y), h>``.
- ``spectral_norm=True`` wraps every D layer with ``torch.nn.utils.parametrizations.spectral_norm``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from dgmbench.errors import UsageError

NORMS = ("bn", "layer", "none")


def base_resolution(side: int) -> tuple[int, int]:
    """``(base, k)`` with ``side = base * 2**k``, ``base >= 4`` and k as large as possible."""
    base, k = side, 0
    while base % 2 == 0 and base // 2 >= 4:
        base //= 2
        k += 1
    if k == 0:
        raise UsageError(f"the DCGAN networks need a square image side of base*2^k with base >= 4 and k >= 1, got {side}")
    return base, k


def _norm2d(kind: str, c: int) -> nn.Module:
    if kind == "bn":
        return nn.BatchNorm2d(c)
    if kind == "layer":
        return nn.GroupNorm(1, c)  # layer norm over (C, H, W), per sample: valid with a gradient penalty
    if kind == "none":
        return nn.Identity()
    raise UsageError(f"unknown norm '{kind}' (known: {', '.join(NORMS)})")


def _maybe_sn(layer: nn.Module, use: bool) -> nn.Module:
    return _sn(layer) if use else layer


class _Projection(nn.Module):
    """``psi(h) + <embed(y), h>``; plain ``psi(h)`` when unconditional."""

    def __init__(self, feat: int, num_classes: int | None, sn: bool):
        super().__init__()
        self.psi = _maybe_sn(nn.Linear(feat, 1), sn)
        self.embed = _maybe_sn(nn.Embedding(num_classes, feat), sn) if num_classes else None

    def forward(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        out = self.psi(h).squeeze(1)
        if self.embed is not None:
            if y is None:
                raise UsageError("this discriminator is class-conditional; pass labels")
            out = out + (self.embed(y) * h).sum(1)
        return out


class _LabelInput(nn.Module):
    """Concatenate a label embedding to the latent vector (identity when unconditional)."""

    def __init__(self, num_classes: int | None, dim: int):
        super().__init__()
        self.embed = nn.Embedding(num_classes, dim) if num_classes else None
        self.dim = dim if num_classes else 0

    def forward(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if self.embed is None:
            return z
        if y is None:
            raise UsageError("this generator is class-conditional; pass labels")
        return torch.cat([z, self.embed(y)], 1)


class ConvGenerator(nn.Module):
    def __init__(self, z_dim: int, out_shape: tuple[int, int, int], ch: int = 64, norm: str = "bn",
                 num_classes: int | None = None, max_ch: int = 512):
        super().__init__()
        c_out, h, w = out_shape
        if h != w:
            raise UsageError(f"the DCGAN generator needs square images, got {h}x{w}")
        base, k = base_resolution(h)
        self.label = _LabelInput(num_classes, z_dim)
        c = min(ch * 2**k, max_ch)
        self.base, self.c0 = base, c
        self.fc = nn.Linear(z_dim + self.label.dim, c * base * base)
        layers: list[nn.Module] = [_norm2d(norm, c), nn.ReLU(True)]
        for _ in range(k):
            c_next = max(c // 2, ch)
            layers += [nn.ConvTranspose2d(c, c_next, 4, 2, 1), _norm2d(norm, c_next), nn.ReLU(True)]
            c = c_next
        layers += [nn.Conv2d(c, c_out, 3, 1, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.fc(self.label(z, y)).view(z.shape[0], self.c0, self.base, self.base)
        return self.net(h)


class ConvDiscriminator(nn.Module):
    def __init__(self, in_shape: tuple[int, int, int], ch: int = 64, norm: str = "bn", spectral_norm: bool = False,
                 num_classes: int | None = None, max_ch: int = 512):
        super().__init__()
        c_in, h, w = in_shape
        if h != w:
            raise UsageError(f"the DCGAN discriminator needs square images, got {h}x{w}")
        base, k = base_resolution(h)
        layers: list[nn.Module] = [_maybe_sn(nn.Conv2d(c_in, ch, 3, 1, 1), spectral_norm), nn.LeakyReLU(0.2, True)]
        c = ch
        for _ in range(k):
            c_next = min(c * 2, max_ch)
            layers += [_maybe_sn(nn.Conv2d(c, c_next, 4, 2, 1), spectral_norm), _norm2d(norm, c_next),
                       nn.LeakyReLU(0.2, True)]
            c = c_next
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.head = _Projection(c * base * base, num_classes, spectral_norm)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (N,)."""
        return self.head(self.net(x), y)


class MLPGenerator(nn.Module):
    """``layers`` hidden ReLU layers of ``hidden`` units and a linear output.

    ``norm="bn"`` puts batch norm before each ReLU and drops the (redundant) bias of the
    hidden linear layers, as in the PacGAN/VEEGAN 2-D generator; its running statistics
    move by ``bn_momentum`` per training forward pass (PacGAN: 0.05).
    """

    def __init__(self, z_dim: int, out_dim: int, hidden: int = 128, layers: int = 3, num_classes: int | None = None,
                 norm: str = "none", bn_momentum: float = 0.1):
        super().__init__()
        if norm not in ("bn", "none"):
            raise UsageError(f"unknown MLP generator norm '{norm}' (known: bn, none)")
        self.label = _LabelInput(num_classes, z_dim)
        dims = [z_dim + self.label.dim] + [hidden] * layers
        mods: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            if norm == "bn":
                mods += [nn.Linear(a, b, bias=False), nn.BatchNorm1d(b, momentum=bn_momentum), nn.ReLU(True)]
            else:
                mods += [nn.Linear(a, b), nn.ReLU(True)]
        self.net = nn.Sequential(*mods, nn.Linear(dims[-1], out_dim))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self.label(z, y))


class MLPDiscriminator(nn.Module):
    def __init__(self, in_dim: int, hidden: int = 128, layers: int = 3, spectral_norm: bool = False,
                 num_classes: int | None = None):
        super().__init__()
        dims = [in_dim] + [hidden] * layers
        mods: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            mods += [_maybe_sn(nn.Linear(a, b), spectral_norm), nn.LeakyReLU(0.2, True)]
        self.net = nn.Sequential(*mods)
        self.head = _Projection(dims[-1], num_classes, spectral_norm)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.net(x), y)


class Maxout(nn.Module):
    """Linear maxout unit (Goodfellow et al. 2013): ``h_j = max_k (W x + b)_{j,k}``.

    One linear map to ``out_dim * pieces`` features; output ``j`` is the maximum over its
    ``pieces`` consecutive features ``j * pieces ... j * pieces + pieces - 1``.
    """

    def __init__(self, in_dim: int, out_dim: int, pieces: int, spectral_norm: bool = False):
        super().__init__()
        if pieces < 2:
            raise UsageError(f"maxout needs at least 2 pieces, got {pieces}")
        self.out_dim, self.pieces = out_dim, pieces
        self.linear = _maybe_sn(nn.Linear(in_dim, out_dim * pieces), spectral_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(x.shape[0], self.out_dim, self.pieces).amax(2)


class MaxoutDiscriminator(nn.Module):
    """``layers`` maxout layers of ``hidden`` units (``pieces`` each) and a linear logit:
    the PacGAN/VEEGAN 2-D discriminator (3 x 200 units, 5 pieces)."""

    def __init__(self, in_dim: int, hidden: int = 200, layers: int = 3, pieces: int = 5, spectral_norm: bool = False,
                 num_classes: int | None = None):
        super().__init__()
        dims = [in_dim] + [hidden] * layers
        self.net = nn.Sequential(*[Maxout(a, b, pieces, spectral_norm) for a, b in zip(dims[:-1], dims[1:])])
        self.head = _Projection(dims[-1], num_classes, spectral_norm)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.net(x), y)


def init_normal_(module: nn.Module, std: float) -> None:
    """Every linear / embedding weight ~ N(0, std^2) and every bias 0 (batch-norm scales stay 1);
    the PacGAN/VEEGAN initialisation with std 0.02."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, std)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
