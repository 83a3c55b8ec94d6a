"""Energy-based baselines: a convolutional energy (images) and an MLP energy (2-D points),
trained by contrastive divergence with SGLD from a replay buffer (IGEBM / JEM recipe).
Likelihood: an AIS estimate of log Z, labelled ``estimate``, with its standard error."""

from __future__ import annotations

from .ais import LogZEstimate, ais_log_z, log_z_from_log_weights
from .model import DEFAULTS, EBM
from .presets import PRESETS
from .sgld import sgld

LIKELIHOOD_KIND = "estimate"


def build_model(config: dict, data_shape: tuple, num_classes: int | None = None) -> EBM:
    return EBM(config, tuple(data_shape), num_classes)


__all__ = ["DEFAULTS", "EBM", "LIKELIHOOD_KIND", "LogZEstimate", "PRESETS", "ais_log_z", "build_model", "log_z_from_log_weights", "sgld"]
