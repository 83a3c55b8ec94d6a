"""Presets of the score family (see baselines_common conventions).

Noise levels follow NCSNv2's techniques: sigma_max about the largest pairwise distance of
the training data in model space (digits in [-1, 1]^64: 9.6), sigma_min = 0.01 (images), a
geometric sequence, Langevin step eps = step_lr with a_i = eps (sigma_i / sigma_min)^2.
NCSNv2's CIFAR-10 values are given for data in [0, 1]; in this family's [-1, 1] model space
distances double, so sigma_max 50 -> 100, sigma_min 0.01 -> 0.02 and step_lr x4.

step_lr of the image presets follows NCSNv2's technique 4 (``langevin.ncsnv2_step_lr``, which
gives the paper's CIFAR-10 6.2e-6): 1.76e-5 for ``digits`` and 1.32e-5 for ``mnist``. On the
three ``digits`` models, classifier FID against step_lr (50 levels x 4 steps): 6e-6 (the earlier
default) 284 +- 54; 1e-5 35; 2e-5 14.3 / 10.8 / 13.9 (seeds 0-2); 3e-5 19.8 / 14.2 / 16.0;
6e-5 16.1; 2e-4 49. ``digits`` uses the measured best, 2e-5; ``mnist`` the technique's value.
"""

from __future__ import annotations

_MLP = {"hidden": 128, "depth": 3}
_DIGITS_NET = {"ch": 32, "ch_mult": [1, 2], "num_res_blocks": 1, "attn_resolutions": [4]}

PRESETS: dict[str, dict] = {
    "ring8": {
        "dataset": "ring8",
        "model": {"net": _MLP, "data_scale": 3.0, "sigma_min": 0.01, "sigma_max": 6.0, "num_levels": 30,
                  "sampling": {"steps_per_level": 20, "step_lr": 2e-5}},
        "train": {"steps": 3000, "batch_size": 256, "lr": 1e-3, "ema_decay": 0.99, "ckpt_every": 1000},
        "description": "MLP score net on points x3, 30 levels 6 -> 0.01, annealed Langevin 30x20",
    },
    "ring8-tiny": {
        "dataset": "ring8",
        "model": {"net": {"hidden": 64, "depth": 2}, "data_scale": 3.0, "sigma_min": 0.01, "sigma_max": 6.0, "num_levels": 20,
                  "sampling": {"steps_per_level": 10, "step_lr": 2e-5}},
        "train": {"steps": 800, "batch_size": 256, "lr": 2e-3, "ema_decay": 0.98, "ckpt_every": 800},
        "description": "seconds: small MLP score net, 20 levels, annealed Langevin 20x10",
    },
    "grid25": {
        "dataset": "grid25",
        "model": {"net": _MLP, "data_scale": 0.75, "sigma_min": 0.01, "sigma_max": 9.0, "num_levels": 30,
                  "sampling": {"steps_per_level": 20, "step_lr": 2e-5}},
        "train": {"steps": 4000, "batch_size": 256, "lr": 1e-3, "ema_decay": 0.99, "ckpt_every": 1000},
        "description": "MLP score net on points x0.75, 30 levels 9 -> 0.01, annealed Langevin 30x20",
    },
    "digits": {
        "dataset": "digits",
        "model": {"net": _DIGITS_NET, "sigma_min": 0.01, "sigma_max": 10.0, "num_levels": 50,
                  "sampling": {"steps_per_level": 4, "step_lr": 2e-5}},
        "train": {"steps": 3000, "batch_size": 64, "lr": 1e-3, "ema_decay": 0.995, "ckpt_every": 500, "log_every": 50},
        "description": "U-Net 32ch, 50 levels 10 -> 0.01, annealed Langevin 50x4 + denoise",
    },
    "digits-tiny": {
        "dataset": "digits",
        "model": {"net": {"ch": 8, "ch_mult": [1, 2], "num_res_blocks": 1, "attn_resolutions": [4]}, "sigma_min": 0.01,
                  "sigma_max": 10.0, "num_levels": 10, "sampling": {"levels": 10, "steps_per_level": 2, "step_lr": 6e-6}},
        "train": {"steps": 30, "batch_size": 32, "lr": 2e-3, "ckpt_every": 30, "log_every": 10},
        "description": "seconds: tiny U-Net, 10 levels x 2 steps (CI and table tests)",
    },
    "mnist": {
        "dataset": "mnist",
        "model": {"net": {"ch": 32, "ch_mult": [1, 2, 2], "num_res_blocks": 1, "attn_resolutions": [7]},
                  "sigma_min": 0.01, "sigma_max": 40.0, "num_levels": 100,
                  "sampling": {"steps_per_level": 3, "step_lr": 1.3e-5}},
        "train": {"steps": 4000, "batch_size": 64, "lr": 1e-3, "ema_decay": 0.995, "ckpt_every": 500, "log_every": 50},
        "description": "CPU: U-Net 32ch (28->14->7), 100 levels 40 -> 0.01, Langevin 100x3; 43-92 CPU-minutes on one thread (2,562, 3,384 and 5,531 CPU-s measured over 3 seeds)",
    },
    "mnist-gpu": {
        "dataset": "mnist",
        "model": {"net": {"ch": 64, "ch_mult": [1, 2, 2], "num_res_blocks": 2, "attn_resolutions": [7]},
                  "sigma_min": 0.01, "sigma_max": 40.0, "num_levels": 200,
                  "sampling": {"steps_per_level": 5, "step_lr": 6e-6}},
        "train": {"steps": 50_000, "batch_size": 128, "lr": 1e-4, "ema_decay": 0.999, "ckpt_every": 2000, "log_every": 100},
        "description": "GPU: U-Net 64ch, 200 levels, Langevin 200x5",
    },
    "cifar10": {
        "dataset": "cifar10",
        "model": {"net": {"ch": 128, "ch_mult": [1, 2, 2, 2], "num_res_blocks": 2, "attn_resolutions": [16]},
                  "sigma_min": 0.02, "sigma_max": 100.0, "num_levels": 232,
                  "sampling": {"steps_per_level": 4, "step_lr": 2.48e-5}},
        "train": {"steps": 300_000, "batch_size": 128, "lr": 1e-4, "ema_decay": 0.999, "ckpt_every": 5000, "log_every": 100},
        "description": "GPU: NCSNv2 CIFAR-10 noise levels (232, 50 -> 0.01 on [0, 1]) with a DDPM-style U-Net",
    },
}
