"""``BaselineModel``: the base class every family's model derives from.

Conventions (lucidrains-style): ``forward(x, y)`` returns the scalar training loss;
``sample(n, generator=, labels=)`` returns data in the dataset's convention ([0, 1]
images (N, C, H, W) or (N, 2) points). Families with a likelihood define
``log_likelihood(x) -> (nats per sample, kind)`` following :mod:`dgmbench.units`.
Families with several optimisers (GAN) override ``configure_optimizers`` and ``train_step``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dgmbench.errors import UsageError


def merge_config(config: dict[str, Any], defaults: dict[str, Any], family: str) -> dict[str, Any]:
    """Defaults updated by ``config``; unknown keys are a UsageError naming the known ones."""
    unknown = set(config) - set(defaults)
    if unknown:
        raise UsageError(f"unknown {family} model settings {sorted(unknown)}; known: {sorted(defaults)}")
    return {**defaults, **config}


class BaselineModel(nn.Module):
    family: str = ""
    likelihood_kind: str = "none"

    def __init__(self, config: dict[str, Any], data_shape: tuple[int, ...], num_classes: int | None = None):
        super().__init__()
        self.config = dict(config)
        self.data_shape = tuple(data_shape)
        self.num_classes = num_classes
        self.name = f"{self.family}"

    @property
    def is_image(self) -> bool:
        return len(self.data_shape) == 3

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def nfe_per_sample(self) -> float:
        """Network evaluations per sample (override in iterative samplers)."""
        return 1.0

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss and extra log values; default: ``forward``."""
        loss = self(x, y)
        return loss, {}

    def sample(self, n: int, *, generator: torch.Generator | None = None, labels: torch.Tensor | None = None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    # --- training hooks used by baselines.train.Trainer ---------------------------------
    def configure_optimizers(self, cfg) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.parameters(), lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)}

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None, optimizers: dict[str, torch.optim.Optimizer], step: int, cfg) -> dict[str, float]:
        """One optimisation step; returns floats to log (must include 'loss')."""
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        loss, logs = self.loss(x, y)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.parameters(), cfg.grad_clip)
        opt.step()
        return {"loss": float(loss.detach()), **logs}
