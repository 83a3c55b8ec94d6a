"""Diffusion family: DDPM (epsilon prediction) with DDPM / DDIM samplers, classifier-free
guidance and the variational bound (likelihood kind "bound")."""

from __future__ import annotations

from .model import DiffusionModel
from .presets import PRESETS

LIKELIHOOD_KIND = "bound"


def build_model(config: dict, data_shape: tuple, num_classes: int | None = None) -> DiffusionModel:
    return DiffusionModel(config, tuple(data_shape), num_classes)


__all__ = ["DiffusionModel", "PRESETS", "LIKELIHOOD_KIND", "build_model"]
