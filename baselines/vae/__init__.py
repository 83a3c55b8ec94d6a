"""VAE baselines: conv VAE (categorical 8-bit decoder) and MLP VAE for 2-D points.

Likelihoods are lower bounds, labelled ``bound``: ``log_likelihood(x, k=...)`` is IWAE-k
(default 1000), ``elbo(x)`` the ELBO, both in nats per sample.
"""

from __future__ import annotations

from .bounds import iwae_from_log_weights, kl_std_normal, log_normal
from .model import ConvVAE, PointVAE, VAEBase, build

LIKELIHOOD_KIND = "bound"


def build_model(config: dict, data_shape: tuple, num_classes: int | None = None) -> VAEBase:
    return build(config, tuple(data_shape), num_classes)


_POINT_TRAIN = {"batch_size": 256, "lr": 5e-3, "warmup_steps": 50, "lr_decay": "cosine", "grad_clip": 5.0,
                "ckpt_every": 500, "log_every": 50}

PRESETS: dict[str, dict] = {
    "digits": {
        "dataset": "digits",
        "model": {"latent_dim": 16, "channels": [32, 64], "hidden": 256},
        "train": {"steps": 3000, "batch_size": 64, "lr": 2e-3, "warmup_steps": 50, "lr_decay": "cosine",
                  "ckpt_every": 500, "log_every": 50},
        "description": "conv VAE, 16-d latent, 256-way categorical decoder; < 3 min on 2 CPU cores",
    },
    "digits-cond": {
        "dataset": "digits",
        "model": {"latent_dim": 16, "channels": [32, 64], "hidden": 256, "conditional": True},
        "train": {"steps": 3000, "batch_size": 64, "lr": 2e-3, "warmup_steps": 50, "lr_decay": "cosine",
                  "ckpt_every": 500, "log_every": 50},
        "description": "class-conditional conv VAE on digits",
    },
    "digits-tiny": {
        "dataset": "digits",
        "model": {"latent_dim": 8, "channels": [16, 32], "hidden": 64, "eval_k": 100},
        "train": {"steps": 100, "batch_size": 64, "lr": 3e-3, "warmup_steps": 10, "ckpt_every": 50, "log_every": 10},
        "description": "a few seconds; for CI and the table tests (IWAE k=100 for evaluation)",
    },
    "mnist": {
        "dataset": "mnist",
        "model": {"latent_dim": 32, "channels": [32, 64], "hidden": 512, "out_kernel": 1},
        "train": {"steps": 3000, "batch_size": 64, "lr": 1e-3, "warmup_steps": 100, "lr_decay": "cosine",
                  "ckpt_every": 1000, "log_every": 50},
        "description": "conv VAE on MNIST for CPU (about 19 CPU-minutes on one thread: 1,119 CPU-s measured)",
    },
    "mnist-gpu": {
        "dataset": "mnist",
        "model": {"latent_dim": 64, "channels": [64, 128], "hidden": 1024},
        "train": {"steps": 40000, "batch_size": 128, "lr": 1e-3, "warmup_steps": 500, "lr_decay": "cosine",
                  "ckpt_every": 2000, "log_every": 100},
        "description": "larger conv VAE on MNIST (GPU)",
    },
    "cifar10": {
        "dataset": "cifar10",
        "model": {"latent_dim": 128, "channels": [64, 128, 256], "hidden": 1024},
        "train": {"steps": 100000, "batch_size": 64, "lr": 5e-4, "warmup_steps": 1000, "lr_decay": "cosine",
                  "ckpt_every": 2000, "log_every": 100},
        "description": "conv VAE on CIFAR-10 (GPU)",
    },
    "ring8": {
        "dataset": "ring8",
        "model": {"latent_dim": 2, "hidden": [128, 128], "eval_k": 1000, "init_log_std": -3.0},
        "train": {"steps": 3000, **_POINT_TRAIN},
        "description": "MLP VAE, 2-d latent, Gaussian decoder with learned std",
    },
    "ring8-tiny": {
        "dataset": "ring8",
        "model": {"latent_dim": 2, "hidden": [64, 64], "eval_k": 100, "init_log_std": -3.0},
        "train": {"steps": 500, **_POINT_TRAIN},
        "description": "a few seconds; for CI and the table tests",
    },
    "grid25": {
        "dataset": "grid25",
        "model": {"latent_dim": 2, "hidden": [128, 128], "eval_k": 1000, "init_log_std": -2.0},
        "train": {"steps": 4000, **_POINT_TRAIN},
        "description": "MLP VAE, 2-d latent, Gaussian decoder with learned std",
    },
}

__all__ = ["LIKELIHOOD_KIND", "PRESETS", "ConvVAE", "PointVAE", "VAEBase", "build_model",
           "iwae_from_log_weights", "kl_std_normal", "log_normal"]
