"""The GAN baseline: DCGAN / MLP networks, non-saturating, hinge or WGAN-GP loss,
optional spectral norm and class conditioning, trained by the shared trainer with two
optimisers (``{"g": ..., "d": ...}``) and ``n_critic`` discriminator steps per generator step,
or (``update="simultaneous"``) one simultaneous D and G step per batch as in PacGAN's code.
The 2-D PacGAN / VEEGAN architecture is ``arch="mlp"`` with ``mlp_g_norm="bn"``,
``maxout_pieces=5`` and ``init_std=0.02``; ``pack`` is PacGAN's packing degree m.

Data convention: ``sample`` returns [0, 1] images (N, C, H, W) or (N, 2) points; the
networks work on [-1, 1] images internally. There is no likelihood (``likelihood_kind``
is ``none``; the harness reports a KDE estimate for GANs).
"""

from __future__ import annotations

from typing import Any

import torch

from dgmbench.errors import UsageError

from ..base import BaselineModel, merge_config
from .losses import LOSSES, d_loss_fn, g_loss_fn, gradient_penalty
from .nets import (
    ConvDiscriminator,
    ConvGenerator,
    MaxoutDiscriminator,
    MLPDiscriminator,
    MLPGenerator,
    init_normal_,
)

DEFAULTS: dict[str, Any] = {
    "arch": "auto",          # "dcgan" for images, "mlp" for points
    "z_dim": 64,
    "loss": "ns",            # "ns" | "hinge" | "wgan-gp"
    "gp_weight": 10.0,       # lambda of WGAN-GP
    "n_critic": 1,           # D steps per G step; each uses 1/n_critic of the trainer's batch
    "spectral_norm": False,  # on every D layer
    "pack": 1,               # PacGAN: D judges packs of this many samples (against mode collapse)
    "g_channels": 64,
    "d_channels": 64,
    "g_norm": "bn",
    "d_norm": "auto",        # "bn" for ns/hinge without spectral norm, else "none"
    "hidden": 128,           # MLP width (G, and D unless d_hidden is set)
    "layers": 3,             # MLP hidden layers (G, and D unless d_layers is set)
    "d_hidden": None,        # MLP discriminator width (None: hidden)
    "d_layers": None,        # MLP discriminator hidden layers (None: layers)
    "maxout_pieces": 0,      # MLP discriminator: 0 -> LeakyReLU(0.2) layers, k >= 2 -> maxout with k pieces
    "mlp_g_norm": "none",    # MLP generator: "bn" (batch norm before each ReLU, as PacGAN) or "none"
    "bn_momentum": 0.1,      # running-statistics rate of the MLP generator's batch norm (PacGAN 0.05)
    "init_std": None,        # None: PyTorch's default init; s: weights ~ N(0, s^2), biases 0 (PacGAN 0.02)
    "update": "alternating",  # "alternating" (D step, then G step on fresh z) or "simultaneous" (ALI/PacGAN)
    "bn_refresh": 0,         # MLP G with batch norm: every 1,000 steps and at the last step, this many extra
                             # no-grad G passes update the running statistics at the final weights (PacGAN's
                             # end-of-epoch monitoring pass: 50 batches); 0: off
    "conditional": False,
}

UPDATES = ("alternating", "simultaneous")


class GAN(BaselineModel):
    family = "gan"
    likelihood_kind = "none"

    def __init__(self, config: dict[str, Any], data_shape: tuple[int, ...], num_classes: int | None = None):
        cfg = merge_config(config, DEFAULTS, "gan")
        super().__init__(cfg, data_shape, num_classes)
        if cfg["loss"] not in LOSSES:
            raise UsageError(f"unknown GAN loss '{cfg['loss']}' (known: {', '.join(LOSSES)})")
        if cfg["conditional"] and not num_classes:
            raise UsageError("a conditional GAN needs a dataset with class labels (num_classes)")
        if int(cfg["n_critic"]) < 1:
            raise UsageError(f"n_critic must be >= 1, got {cfg['n_critic']}")
        self.pack = int(cfg["pack"])
        if self.pack < 1:
            raise UsageError(f"pack must be >= 1, got {cfg['pack']}")
        if self.pack > 1 and cfg["conditional"]:
            raise UsageError("packing (PacGAN) is for unconditional GANs; use pack 1 with conditional")
        if cfg["update"] not in UPDATES:
            raise UsageError(f"unknown GAN update '{cfg['update']}' (known: {', '.join(UPDATES)})")
        if cfg["update"] == "simultaneous" and (int(cfg["n_critic"]) != 1 or cfg["loss"] == "wgan-gp"):
            raise UsageError("the simultaneous update takes one D and one G step per batch: use n_critic 1 and "
                             "loss 'ns' or 'hinge'")
        pieces = int(cfg["maxout_pieces"])
        if pieces == 1 or pieces < 0:
            raise UsageError(f"maxout_pieces must be 0 (no maxout) or >= 2, got {pieces}")
        d_norm = cfg["d_norm"]
        if d_norm == "auto":
            d_norm = "bn" if cfg["loss"] != "wgan-gp" and not cfg["spectral_norm"] else "none"
        if d_norm == "bn" and cfg["loss"] == "wgan-gp":
            raise UsageError("WGAN-GP penalises per-sample gradients; batch norm in the critic breaks that: "
                             "use d_norm 'layer' or 'none'")
        arch = cfg["arch"]
        if arch == "auto":
            arch = "dcgan" if self.is_image else "mlp"
        nc = num_classes if cfg["conditional"] else None
        self.num_classes = nc
        self.z_dim = int(cfg["z_dim"])
        if arch == "dcgan":
            if not self.is_image:
                raise UsageError(f"arch 'dcgan' needs image data (C, H, W), got shape {self.data_shape}")
            self.generator = ConvGenerator(self.z_dim, self.data_shape, cfg["g_channels"], cfg["g_norm"], nc)
            c, h, w = self.data_shape
            self.discriminator = ConvDiscriminator((c * self.pack, h, w), cfg["d_channels"], d_norm,
                                                   cfg["spectral_norm"], nc)
        elif arch == "mlp":
            dim = int(torch.Size(self.data_shape).numel())
            self.generator = MLPGenerator(self.z_dim, dim, cfg["hidden"], cfg["layers"], nc, norm=cfg["mlp_g_norm"],
                                          bn_momentum=float(cfg["bn_momentum"]))
            d_hidden = int(cfg["d_hidden"] or cfg["hidden"])
            d_layers = int(cfg["d_layers"] or cfg["layers"])
            if pieces:
                self.discriminator = MaxoutDiscriminator(dim * self.pack, d_hidden, d_layers, pieces,
                                                         cfg["spectral_norm"], nc)
            else:
                self.discriminator = MLPDiscriminator(dim * self.pack, d_hidden, d_layers, cfg["spectral_norm"], nc)
        else:
            raise UsageError(f"unknown GAN arch '{arch}' (known: auto, dcgan, mlp)")
        if arch != "mlp" and (pieces or cfg["mlp_g_norm"] != "none"):
            raise UsageError("maxout_pieces and mlp_g_norm apply to arch 'mlp' only")
        if cfg["init_std"] is not None:
            if float(cfg["init_std"]) <= 0:
                raise UsageError(f"init_std must be positive, got {cfg['init_std']}")
            init_normal_(self.generator, float(cfg["init_std"]))
            init_normal_(self.discriminator, float(cfg["init_std"]))
        self.arch = arch
        self.name = (f"gan-{arch}-{cfg['loss']}" + ("-sn" if cfg["spectral_norm"] else "") + ("-cond" if nc else "")
                     + (f"-pack{self.pack}" if self.pack > 1 else ""))

    # --- data <-> internal space ------------------------------------------------------
    def to_internal(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_image:
            return x * 2 - 1
        return x.reshape(x.shape[0], -1) if self.arch == "mlp" else x

    def from_internal(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_image:
            x = ((x.reshape(x.shape[0], *self.data_shape) + 1) / 2).clamp(0, 1)
        return x

    def packed(self, x_internal: torch.Tensor) -> torch.Tensor:
        """(N, ...) -> (N / pack, pack * ...): consecutive samples side by side (channels or features)."""
        if self.pack == 1:
            return x_internal
        n = x_internal.shape[0]
        if n % self.pack:
            raise UsageError(f"a batch of {n} cannot be split into packs of {self.pack}")
        return x_internal.reshape(n // self.pack, x_internal.shape[1] * self.pack, *x_internal.shape[2:])

    def critic(self, x_internal: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Discriminator logits / critic values (N / pack,) on internal-space inputs."""
        return self.discriminator(self.packed(x_internal), y)

    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Internal-space outputs of the generator."""
        return self.generator(z, y)

    # --- training -----------------------------------------------------------------------
    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Discriminator loss on a batch (no parameter update); ``train_step`` is the real training."""
        xr = self.to_internal(x)
        z = torch.randn(xr.shape[0], self.z_dim, device=xr.device)
        d_loss, _ = self._d_loss(xr, self.generate(z, y).detach(), y)
        return d_loss

    def _d_loss(self, xr: torch.Tensor, xf: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, float]]:
        kind = self.config["loss"]
        d_real, d_fake = self.critic(xr, y), self.critic(xf, y)
        loss = d_loss_fn(kind, d_real, d_fake)
        logs = {"d_real": float(d_real.detach().mean()), "d_fake": float(d_fake.detach().mean())}
        if kind == "wgan-gp":
            gp, _ = gradient_penalty(self.discriminator, self.packed(xr), self.packed(xf), y)
            logs["wdist"] = logs["d_real"] - logs["d_fake"]
            logs["gp"] = float(gp.detach())
            loss = loss + self.config["gp_weight"] * gp
        return loss, logs

    def configure_optimizers(self, cfg) -> dict[str, torch.optim.Optimizer]:
        """Adam for G and D; ``train.extra`` may set ``lr_g`` / ``lr_d`` (default ``train.lr``) and
        ``adam_fused`` (PyTorch's fused Adam kernel: the same update, about twice as fast on CPU)."""
        extra = cfg.extra or {}
        kw = {"betas": tuple(cfg.betas), "weight_decay": cfg.weight_decay}
        if extra.get("adam_fused"):
            kw["fused"] = True
        return {
            "d": torch.optim.Adam(self.discriminator.parameters(), lr=extra.get("lr_d", cfg.lr), **kw),
            "g": torch.optim.Adam(self.generator.parameters(), lr=extra.get("lr_g", cfg.lr), **kw),
        }

    def _step(self, loss: torch.Tensor, opt: torch.optim.Optimizer, params, cfg) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None, optimizers, step: int, cfg) -> dict[str, float]:
        """``n_critic`` D steps (each on one chunk of the batch, fresh z) then one G step.

        Logged: ``loss`` (= ``d_loss``, the last D step's loss incl. penalty), ``d_loss``,
        ``g_loss``, mean ``d_real`` / ``d_fake`` and for WGAN-GP ``wdist`` and ``gp``.
        """
        if self.config["update"] == "simultaneous":
            logs = self._simultaneous_step(x, y, optimizers, cfg)
            if int(self.config["bn_refresh"]) and ((step + 1) % 1000 == 0 or step + 1 == cfg.steps):
                self.refresh_bn(int(self.config["bn_refresh"]), x.shape[0])
            return logs
        n_critic = int(self.config["n_critic"])
        if x.shape[0] % (n_critic * self.pack):
            raise UsageError(f"batch size {x.shape[0]} must be a multiple of n_critic x pack = {n_critic * self.pack}")
        kind = self.config["loss"]
        xs = self.to_internal(x).chunk(n_critic)
        ys = y.chunk(n_critic) if y is not None else [None] * len(xs)
        d_params = list(self.discriminator.parameters())
        g_params = list(self.generator.parameters())
        for xr, yr in zip(xs, ys):
            z = torch.randn(xr.shape[0], self.z_dim, device=xr.device)
            with torch.no_grad():
                xf = self.generate(z, yr)
            d_loss, logs = self._d_loss(xr, xf, yr)
            self._step(d_loss, optimizers["d"], d_params, cfg)
        self.discriminator.requires_grad_(False)
        try:
            z = torch.randn(xs[0].shape[0], self.z_dim, device=x.device)
            yg = ys[0]
            g_loss = g_loss_fn(kind, self.critic(self.generate(z, yg), yg))
            self._step(g_loss, optimizers["g"], g_params, cfg)
        finally:
            self.discriminator.requires_grad_(True)
        d = float(d_loss.detach())
        return {"loss": d, "d_loss": d, "g_loss": float(g_loss.detach()), **logs}

    @torch.no_grad()
    def refresh_bn(self, batches: int, batch_size: int) -> None:
        """``batches`` generator passes in training mode on fresh z (global RNG), no gradient:
        each moves the batch-norm running statistics by ``bn_momentum`` towards the current
        weights' batch statistics, so sampling (eval mode) matches the trained generator."""
        was = self.generator.training
        self.generator.train()
        for _ in range(batches):
            self.generator(torch.randn(batch_size, self.z_dim, device=self.device))
        self.generator.train(was)

    def _simultaneous_step(self, x: torch.Tensor, y: torch.Tensor | None, optimizers, cfg) -> dict[str, float]:
        """One batch of fakes G(z); D's loss differentiated in D's parameters and G's loss in
        G's, both from the same forward pass, then both optimisers step (the ALI / PacGAN
        training algorithm: simultaneous gradient descent)."""
        if x.shape[0] % self.pack:
            raise UsageError(f"batch size {x.shape[0]} must be a multiple of pack = {self.pack}")
        kind = self.config["loss"]
        xr = self.to_internal(x)
        z = torch.randn(xr.shape[0], self.z_dim, device=xr.device)
        xf = self.generate(z, y)
        d_real, d_fake = self.critic(xr, y), self.critic(xf, y)
        d_loss = d_loss_fn(kind, d_real, d_fake)
        g_loss = g_loss_fn(kind, d_fake)
        d_params = [p for p in self.discriminator.parameters() if p.requires_grad]
        g_params = [p for p in self.generator.parameters() if p.requires_grad]
        d_grads = torch.autograd.grad(d_loss, d_params, retain_graph=True)
        g_grads = torch.autograd.grad(g_loss, g_params)
        for params, grads, opt in ((d_params, d_grads, optimizers["d"]), (g_params, g_grads, optimizers["g"])):
            for p, g in zip(params, grads):
                p.grad = g
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
        d = float(d_loss.detach())
        return {"loss": d, "d_loss": d, "g_loss": float(g_loss.detach()),
                "d_real": float(d_real.detach().mean()), "d_fake": float(d_fake.detach().mean())}

    # --- sampling -------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, labels: torch.Tensor | None = None,
               batch_size: int = 1000) -> torch.Tensor:
        """``n`` samples in the data convention, on CPU. z (and labels, when conditional and
        not given) are drawn from ``generator`` on CPU, so equal seeds give equal samples."""
        if labels is not None:
            if self.num_classes is None:
                raise UsageError("this GAN is unconditional; sample without labels")
            labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
            if labels.shape[0] != n:
                raise UsageError(f"got {labels.shape[0]} labels for {n} samples")
            if int(labels.min()) < 0 or int(labels.max()) >= self.num_classes:
                raise UsageError(f"labels must lie in [0, {self.num_classes - 1}]")
        z = torch.randn(n, self.z_dim, generator=generator)
        if self.num_classes is not None and labels is None:
            labels = torch.randint(0, self.num_classes, (n,), generator=generator)
        was_training = self.training
        self.eval()
        out = []
        dev = self.device
        for s in range(0, n, batch_size):
            yb = None if labels is None else labels[s:s + batch_size].to(dev)
            out.append(self.from_internal(self.generate(z[s:s + batch_size].to(dev), yb)).float().cpu())
        self.train(was_training)
        return torch.cat(out) if out else torch.empty(0, *self.data_shape)
