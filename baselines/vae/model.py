"""VAE baselines: a convolutional VAE with a categorical decoder for 8-bit images, and an MLP
VAE with a Gaussian decoder for points (with no hidden layers it is linear-Gaussian).

Likelihood: ``log_likelihood(x, k=...)`` is the IWAE-k lower bound on log p(x) (default
``k = config['eval_k']`` = 1000) and ``elbo(x)`` the ELBO, both in nats per sample and labelled
``bound``. For images the decoder is a ``levels``-way softmax per sub-pixel (256 by default),
so the bounds are on the discrete 8-bit log-likelihood of :mod:`dgmbench.units` (bpd =
-bound / (D ln 2)). For points they are on the continuous log-density.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from dgmbench.errors import UsageError

from ..base import BaselineModel
from .bounds import iwae_from_log_weights, kl_std_normal, log_normal, log_std_normal

#: decoder outputs held in memory at once while computing IWAE (floats)
IWAE_BUDGET = 2 ** 23


def _noise(kind: str, shape, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    gdev = generator.device if generator is not None else device
    fn = torch.randn if kind == "normal" else torch.rand
    return fn(shape, generator=generator, device=gdev).to(device)


class VAEBase(BaselineModel):
    """Shared bounds and sampling; subclasses define ``encode``, ``decoder_out``,
    ``decoder_log_prob`` and ``decoder_sample``."""

    family = "vae"
    likelihood_kind = "bound"

    def __init__(self, config: dict[str, Any], data_shape: tuple[int, ...], num_classes: int | None = None):
        super().__init__(config, data_shape, num_classes)
        self.latent_dim = int(config.get("latent_dim", 16))
        self.eval_k = int(config.get("eval_k", 1000))
        self.num_dims = math.prod(data_shape)
        self.label_embed = nn.Embedding(num_classes, int(config.get("label_dim", 16))) if num_classes else None

    # --- to implement --------------------------------------------------------------------
    def encode(self, x: torch.Tensor, e: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        """(mean, log-variance) of q(z|x), each (N, latent_dim)."""
        raise NotImplementedError

    def decoder_out(self, z: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def decoder_log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """log p(x|z) (N,) from the decoder output for z."""
        raise NotImplementedError

    def decoder_noise(self, n: int, generator: torch.Generator | None) -> torch.Tensor:  # pragma: no cover
        """All the noise ``decoder_sample`` needs for ``n`` samples (drawn up front, so batching does not matter)."""
        raise NotImplementedError

    def decoder_sample(self, out: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    # --- labels ----------------------------------------------------------------------------
    def _embed(self, labels: torch.Tensor | None, n: int) -> torch.Tensor | None:
        if self.label_embed is None:
            if labels is not None:
                raise UsageError("this VAE is not class-conditional; use it without labels")
            return None
        if labels is None:
            raise UsageError(f"this VAE is class-conditional ({self.num_classes} classes): pass labels")
        if tuple(labels.shape) != (n,):
            raise UsageError(f"labels must have shape ({n},), got {tuple(labels.shape)}")
        return self.label_embed(labels.to(self.device).long())

    # --- bounds ---------------------------------------------------------------------------
    def loss_scale(self) -> float:
        """Images: the loss is in bits/dim; points: nats per sample."""
        return self.num_dims * math.log(2.0) if self.is_image else 1.0

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Training loss: negative ELBO (one reparametrised sample, closed-form KL)."""
        e = self._embed(y, x.shape[0]) if self.label_embed is not None else None
        mu, logvar = self.encode(x, e)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        rec = self.decoder_log_prob(x, self.decoder_out(z, e))
        elbo = rec - kl_std_normal(mu, logvar)
        return -elbo.mean() / self.loss_scale()

    def _draws(self, x: torch.Tensor, e: torch.Tensor | None, mu: torch.Tensor, logvar: torch.Tensor, k: int,
               generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``k`` reparametrised draws z ~ q(z|x), (k, N, latent), and log p(x|z), (k, N), in memory-bounded chunks."""
        n = x.shape[0]
        per_sample = self.num_dims * int(getattr(self, "levels", 1))
        chunk = max(1, min(k, IWAE_BUDGET // max(1, n * per_sample)))
        zs, recs = [], []
        for start in range(0, k, chunk):
            kc = min(chunk, k - start)
            eps = _noise("normal", (kc, n, self.latent_dim), generator, self.device).to(mu.dtype)
            z = mu + torch.exp(0.5 * logvar) * eps
            xs = x.unsqueeze(0).expand(kc, *x.shape).reshape(kc * n, *x.shape[1:])
            es = None if e is None else e.unsqueeze(0).expand(kc, *e.shape).reshape(kc * n, -1)
            recs.append(self.decoder_log_prob(xs, self.decoder_out(z.reshape(kc * n, -1), es)).view(kc, n))
            zs.append(z)
        return torch.cat(zs, 0), torch.cat(recs, 0)

    @torch.no_grad()
    def elbo(self, x: torch.Tensor, *, samples: int = 1, generator: torch.Generator | None = None,
             labels: torch.Tensor | None = None) -> torch.Tensor:
        """ELBO in nats per sample: reconstruction averaged over ``samples`` draws, KL in closed form."""
        x = x.to(self.device)
        e = self._embed(labels, x.shape[0])
        mu, logvar = self.encode(x, e)
        _, rec = self._draws(x, e, mu, logvar, samples, generator)
        return rec.mean(0) - kl_std_normal(mu, logvar)

    @torch.no_grad()
    def log_weights(self, x: torch.Tensor, k: int, *, generator: torch.Generator | None = None,
                    labels: torch.Tensor | None = None) -> torch.Tensor:
        """(k, N) importance log-weights log p(x|z) + log p(z) - log q(z|x), z ~ q(z|x)."""
        x = x.to(self.device)
        e = self._embed(labels, x.shape[0])
        mu, logvar = self.encode(x, e)
        z, rec = self._draws(x, e, mu, logvar, k, generator)
        return rec + log_std_normal(z) - log_normal(z, mu, logvar)

    @torch.no_grad()
    def iwae(self, x: torch.Tensor, k: int, *, generator: torch.Generator | None = None,
             labels: torch.Tensor | None = None) -> torch.Tensor:
        """IWAE-k bound in nats per sample."""
        return iwae_from_log_weights(self.log_weights(x, k, generator=generator, labels=labels))

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, *, k: int | None = None, generator: torch.Generator | None = None,
                       labels: torch.Tensor | None = None, batch_size: int = 64) -> tuple[torch.Tensor, str]:
        """IWAE-k lower bound on log p(x), nats per sample, kind ``bound`` (k default ``eval_k``).

        The importance samples come from ``generator``, or from the global torch RNG (which
        dgmbench's harness seeds) when it is None.
        """
        k = int(k or self.eval_k)
        if k < 1:
            raise UsageError(f"IWAE needs k >= 1, got {k}")
        parts = []
        for s in range(0, x.shape[0], batch_size):
            lab = None if labels is None else labels[s:s + batch_size]
            parts.append(self.iwae(x[s:s + batch_size], k, generator=generator, labels=lab))
        return torch.cat(parts), self.likelihood_kind

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None) -> torch.Tensor:
        """z ~ N(0, I), then x ~ p(x|z) (see the subclass for what ``sample_mode`` does)."""
        e = self._embed(labels, n)
        z = _noise("normal", (n, self.latent_dim), generator, self.device)
        u = self.decoder_noise(n, generator)
        bs = int(self.config.get("sample_batch_size", 256))
        out = [self.decoder_sample(self.decoder_out(z[s:s + bs], None if e is None else e[s:s + bs]), u[s:s + bs])
               for s in range(0, n, bs)]
        return torch.cat(out).float()


def _stage_sizes(h: int, w: int, stages: int) -> None:
    if h % 2 ** stages or w % 2 ** stages:
        raise UsageError(f"conv VAE with {stages} downsampling stages needs H and W divisible by {2 ** stages}, "
                         f"got {h}x{w}; change model.channels")


class ConvVAE(VAEBase):
    """Conv encoder (stride-2 stages ``channels``) -> Gaussian q(z|x); decoder mirrors it and
    outputs a ``levels``-way softmax per sub-pixel (exact discrete log p(x|z)).

    ``sample_mode``: ``"sample"`` draws every sub-pixel from p(x|z) (a true model sample,
    default); ``"mean"`` returns the decoder mean E[x|z], rounded to the level grid.
    """

    def __init__(self, config: dict[str, Any], data_shape: tuple[int, ...], num_classes: int | None = None):
        super().__init__(config, data_shape, num_classes)
        c, h, w = data_shape
        chans = [int(v) for v in config.get("channels", [32, 64])]
        _stage_sizes(h, w, len(chans))
        self.levels = int(config.get("levels", 256))
        self.sample_mode = config.get("sample_mode", "sample")
        if self.sample_mode not in ("sample", "mean"):
            raise UsageError(f"sample_mode must be 'sample' or 'mean', not {self.sample_mode!r}")
        hidden = int(config.get("hidden", 256))
        ed = self.label_embed.embedding_dim if self.label_embed is not None else 0
        enc: list[nn.Module] = [nn.Conv2d(c, chans[0], 3, padding=1), nn.SiLU()]
        for a, b in zip([chans[0]] + chans[:-1], chans):
            enc += [nn.Conv2d(a, b, 4, stride=2, padding=1), nn.SiLU()]
        self.encoder = nn.Sequential(*enc, nn.Flatten())
        self.bottom = (chans[-1], h // 2 ** len(chans), w // 2 ** len(chans))
        flat = math.prod(self.bottom)
        self.enc_head = nn.Sequential(nn.Linear(flat + ed, hidden), nn.SiLU(), nn.Linear(hidden, 2 * self.latent_dim))
        self.dec_in = nn.Sequential(nn.Linear(self.latent_dim + ed, hidden), nn.SiLU(), nn.Linear(hidden, flat), nn.SiLU())
        dec: list[nn.Module] = []
        rev = chans[::-1]
        for a, b in zip(rev, rev[1:] + [rev[-1]]):
            dec += [nn.ConvTranspose2d(a, b, 4, stride=2, padding=1), nn.SiLU()]
        ok = int(config.get("out_kernel", 3))  # 1 makes the 256-way output layer ~9x cheaper (MNIST on CPU)
        self.decoder = nn.Sequential(*dec, nn.Conv2d(rev[-1], c * self.levels, ok, padding=ok // 2))

    @property
    def likelihood_levels(self) -> int:
        """The grid ``log_likelihood`` scores (256: 8-bit bits/dim; fewer: bits/dim of that grid)."""
        return self.levels

    def _cat(self, h: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:
        return h if e is None else torch.cat([h, e], 1)

    def encode(self, x, e):
        h = self.encoder(x * 2 - 1)
        mu, logvar = self.enc_head(self._cat(h, e)).chunk(2, 1)
        return mu, logvar.clamp(-12, 8)

    def decoder_out(self, z, e):
        h = self.dec_in(self._cat(z, e)).view(-1, *self.bottom)
        out = self.decoder(h)
        n, _, hh, ww = out.shape
        return out.view(n, self.data_shape[0], self.levels, hh, ww)

    def decoder_log_prob(self, x, out):
        k = (x.clamp(0, 1) * (self.levels - 1)).round().long()
        return F.log_softmax(out, 2).gather(2, k.unsqueeze(2)).squeeze(2).flatten(1).sum(1)

    def decoder_noise(self, n, generator):
        c, h, w = self.data_shape
        return _noise("uniform", (n, c, 1, h, w), generator, self.device)

    def decoder_sample(self, out, noise):
        probs = torch.softmax(out.double(), 2)  # (N, C, L, H, W)
        if self.sample_mode == "mean":
            grid = torch.arange(self.levels, device=out.device, dtype=probs.dtype).view(1, 1, -1, 1, 1)
            k = (probs * grid).sum(2).round()
        else:
            k = (probs.cumsum(2) < noise.to(probs.dtype)).sum(2).clamp(max=self.levels - 1).to(probs.dtype)
        return k / (self.levels - 1)


class PointVAE(VAEBase):
    """MLP encoder -> Gaussian q(z|x); MLP decoder mean with a learned per-dimension std
    (``hidden: []`` makes both linear: the linear-Gaussian model p(x) = N(b, W W^T + diag(s^2)))."""

    def __init__(self, config: dict[str, Any], data_shape: tuple[int, ...], num_classes: int | None = None):
        super().__init__(config, data_shape, num_classes)
        d = data_shape[0]
        hidden = [int(h) for h in config.get("hidden", [128, 128])]
        ed = self.label_embed.embedding_dim if self.label_embed is not None else 0
        self.encoder = self._mlp(d + ed, hidden, 2 * self.latent_dim)
        self.decoder = self._mlp(self.latent_dim + ed, hidden, d)
        self.log_std = nn.Parameter(torch.full((d,), float(config.get("init_log_std", -1.0))))
        self.min_log_std = float(config.get("min_log_std", -7.0))

    @staticmethod
    def _mlp(cin: int, hidden: list[int], cout: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(cin, h), nn.SiLU()]
            cin = h
        return nn.Sequential(*layers, nn.Linear(cin, cout))

    def _cat(self, h, e):
        return h if e is None else torch.cat([h, e], 1)

    def encode(self, x, e):
        mu, logvar = self.encoder(self._cat(x, e)).chunk(2, 1)
        return mu, logvar

    def decoder_out(self, z, e):
        return self.decoder(self._cat(z, e))

    def decoder_log_prob(self, x, out):
        log_std = self.log_std.clamp(min=self.min_log_std)
        return log_normal(x, out, 2 * log_std.expand_as(out))

    def decoder_noise(self, n, generator):
        return _noise("normal", (n, *self.data_shape), generator, self.device)

    def decoder_sample(self, out, noise):
        return out + self.log_std.clamp(min=self.min_log_std).exp() * noise.to(out.dtype)


def build(config: dict[str, Any], data_shape: tuple[int, ...], num_classes: int | None = None) -> VAEBase:
    if len(data_shape) == 3:
        return ConvVAE(config, data_shape, num_classes)
    if len(data_shape) == 1:
        return PointVAE(config, data_shape, num_classes)
    raise UsageError(f"the VAE baseline takes images (C, H, W) or points (D,), not data of shape {data_shape}")
