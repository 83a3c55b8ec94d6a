"""Autoregressive baselines: gated PixelCNN on images, MADE on 2-D points. Exact likelihoods."""

from __future__ import annotations

from dgmbench.errors import UsageError

from ..base import BaselineModel
from .made import MADE
from .pixelcnn import PixelCNN

LIKELIHOOD_KIND = "exact"


def build_model(config: dict, data_shape: tuple, num_classes: int | None = None) -> BaselineModel:
    data_shape = tuple(data_shape)
    if len(data_shape) == 3:
        return PixelCNN(config, data_shape, num_classes)
    if len(data_shape) == 1:
        return MADE(config, data_shape, num_classes)
    raise UsageError(f"the autoregressive baseline takes images (C, H, W) or points (D,), not shape {data_shape}")


_POINT_TRAIN = {"batch_size": 256, "lr": 2e-3, "warmup_steps": 50, "lr_decay": "cosine", "grad_clip": 5.0,
                "ckpt_every": 500, "log_every": 50}

PRESETS: dict[str, dict] = {
    "digits": {
        "dataset": "digits",
        "model": {"hidden": 48, "layers": 4, "kernel": 3},
        "train": {"steps": 1200, "batch_size": 64, "lr": 2e-3, "warmup_steps": 50, "lr_decay": "cosine",
                  "ckpt_every": 400, "log_every": 50},
        "description": "gated PixelCNN, 4 layers x 48 channels, 256-way softmax; < 3 min on 2 CPU cores",
    },
    "digits-cond": {
        "dataset": "digits",
        "model": {"hidden": 48, "layers": 4, "kernel": 3, "conditional": True},
        "train": {"steps": 1200, "batch_size": 64, "lr": 2e-3, "warmup_steps": 50, "lr_decay": "cosine",
                  "ckpt_every": 500, "log_every": 50},
        "description": "class-conditional gated PixelCNN on digits",
    },
    "digits-tiny": {
        "dataset": "digits",
        "model": {"hidden": 32, "layers": 3, "kernel": 3},
        "train": {"steps": 80, "batch_size": 64, "lr": 5e-3, "warmup_steps": 10, "ckpt_every": 40, "log_every": 10},
        "description": "a few seconds; for CI and the table tests",
    },
    "mnist": {
        "dataset": "mnist",
        "model": {"hidden": 32, "layers": 6, "kernel": 3},
        "train": {"steps": 2500, "batch_size": 32, "lr": 2e-3, "warmup_steps": 100, "lr_decay": "cosine",
                  "ckpt_every": 500, "log_every": 50},
        "description": "gated PixelCNN on MNIST for CPU (about 19 CPU-minutes on one thread: 1,156 and 1,028 CPU-s measured)",
    },
    "mnist-gpu": {
        "dataset": "mnist",
        "model": {"hidden": 128, "layers": 12, "kernel": 5},
        "train": {"steps": 30000, "batch_size": 64, "lr": 5e-4, "warmup_steps": 1000, "lr_decay": "cosine",
                  "ckpt_every": 2000, "log_every": 100},
        "description": "larger gated PixelCNN on MNIST (GPU)",
    },
    "cifar10": {
        "dataset": "cifar10",
        "model": {"hidden": 192, "layers": 15, "kernel": 5},
        "train": {"steps": 150000, "batch_size": 64, "lr": 3e-4, "warmup_steps": 2000, "lr_decay": "cosine",
                  "ckpt_every": 2000, "log_every": 100},
        "description": "gated PixelCNN, 15 layers x 192 channels (GPU; PixelCNN++ is far larger)",
    },
    "ring8": {
        "dataset": "ring8",
        "model": {"hidden": [128, 128], "components": 10, "init_log_std": -3.0},
        "train": {"steps": 3000, **_POINT_TRAIN, "lr": 5e-3},
        "description": "MADE with 10-component Gaussian-mixture conditionals",
    },
    "ring8-tiny": {
        "dataset": "ring8",
        "model": {"hidden": [64, 64], "components": 8, "init_log_std": -3.0},
        "train": {"steps": 1000, **_POINT_TRAIN, "lr": 1e-2},
        "description": "a few seconds; for CI and the table tests",
    },
    "grid25": {
        "dataset": "grid25",
        "model": {"hidden": [128, 128], "components": 10, "init_log_std": -2.0},
        "train": {"steps": 4000, **_POINT_TRAIN, "lr": 5e-3},
        "description": "MADE with 10-component Gaussian-mixture conditionals",
    },
}

__all__ = ["LIKELIHOOD_KIND", "MADE", "PRESETS", "PixelCNN", "build_model"]
