"""Score family: NCSN / NCSNv2 (denoising score matching over geometric noise levels, annealed
Langevin sampling) with a probability-flow ODE log-likelihood (likelihood kind "estimate")."""

from __future__ import annotations

from .model import ScoreModel
from .presets import PRESETS

LIKELIHOOD_KIND = "estimate"


def build_model(config: dict, data_shape: tuple, num_classes: int | None = None) -> ScoreModel:
    return ScoreModel(config, tuple(data_shape), num_classes)


__all__ = ["ScoreModel", "PRESETS", "LIKELIHOOD_KIND", "build_model"]
