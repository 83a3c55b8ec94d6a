"""GAN baselines: DCGAN (non-saturating), WGAN-GP, spectral norm, class-conditional
(projection discriminator), MLP for 2-D toys. No likelihood: ``LIKELIHOOD_KIND = "none"``."""

from __future__ import annotations

from .losses import gradient_penalty
from .model import DEFAULTS, GAN
from .presets import PRESETS

LIKELIHOOD_KIND = "none"


def build_model(config: dict, data_shape: tuple, num_classes: int | None = None) -> GAN:
    return GAN(config, tuple(data_shape), num_classes)


__all__ = ["DEFAULTS", "GAN", "LIKELIHOOD_KIND", "PRESETS", "build_model", "gradient_penalty"]
