"""Presets of the diffusion family (see baselines_common conventions).

CPU presets sample with DDIM (100 steps, eta 0) by default; the GPU presets with DDPM
(T = 1000 ancestral steps) as in Ho et al. Any preset's model can switch sampler at run time
(``model.configure_sampling(sampler="ddpm")`` or ``sample(n, sampler=..., steps=...)``).
"""

from __future__ import annotations

_MLP = {"net": {"hidden": 128, "depth": 3}, "T": 1000, "schedule": "linear"}
_DIGITS_NET = {"ch": 32, "ch_mult": [1, 2], "num_res_blocks": 1, "attn_resolutions": [4]}
_MNIST_NET = {"ch": 32, "ch_mult": [1, 2, 2], "num_res_blocks": 1, "attn_resolutions": [7]}
_DDIM100 = {"sampler": "ddim", "steps": 100, "eta": 0.0}
# Ho et al. 2020, CIFAR-10: 35.7M-parameter U-Net, T = 1000 linear, lr 2e-4, batch 128, EMA 0.9999, 800k steps
_CIFAR_NET = {"ch": 128, "ch_mult": [1, 2, 2, 2], "num_res_blocks": 2, "attn_resolutions": [16], "dropout": 0.1}
_CIFAR_TRAIN = {"steps": 800_000, "batch_size": 128, "lr": 2e-4, "ema_decay": 0.9999, "grad_clip": 1.0, "ckpt_every": 5000,
                "log_every": 100}

PRESETS: dict[str, dict] = {
    "ring8": {
        "dataset": "ring8",
        "model": {**_MLP, "data_scale": 3.0},
        "train": {"steps": 2000, "batch_size": 256, "lr": 1e-3, "ema_decay": 0.99, "ckpt_every": 1000},
        "description": "MLP eps-net on points x3, T=1000 linear, DDPM sampler",
    },
    "ring8-tiny": {
        "dataset": "ring8",
        "model": {"net": {"hidden": 64, "depth": 2}, "T": 200, "schedule": "linear", "data_scale": 3.0},
        "train": {"steps": 800, "batch_size": 256, "lr": 2e-3, "ema_decay": 0.98, "ckpt_every": 800},
        "description": "seconds: small MLP eps-net on points x3, T=200, DDPM sampler",
    },
    "grid25": {
        "dataset": "grid25",
        "model": {**_MLP, "data_scale": 2.0},
        "train": {"steps": 3000, "batch_size": 256, "lr": 1e-3, "ema_decay": 0.99, "ckpt_every": 1000},
        "description": "MLP eps-net on points x2, T=1000 linear, DDPM sampler",
    },
    "digits": {
        "dataset": "digits",
        "model": {"net": _DIGITS_NET, "T": 1000, "schedule": "linear", "sampling": _DDIM100},
        "train": {"steps": 3000, "batch_size": 64, "lr": 1e-3, "ema_decay": 0.995, "ckpt_every": 500, "log_every": 50},
        "description": "U-Net 32ch (8->4, attention at 4x4), T=1000 linear; DDIM-100 sampler",
    },
    "digits-cond": {
        "dataset": "digits",
        "model": {"net": _DIGITS_NET, "T": 1000, "schedule": "linear", "conditional": True, "p_uncond": 0.1,
                  "sampling": {**_DDIM100, "guidance": 2.0}},
        "train": {"steps": 3000, "batch_size": 64, "lr": 1e-3, "ema_decay": 0.995, "ckpt_every": 500, "log_every": 50},
        "description": "class-conditional digits (label dropout 0.1), classifier-free guidance w=2, DDIM-100",
    },
    "digits-tiny": {
        "dataset": "digits",
        "model": {"net": {"ch": 8, "ch_mult": [1, 2], "num_res_blocks": 1, "attn_resolutions": [4]}, "T": 100,
                  "conditional": True, "sampling": {"sampler": "ddim", "steps": 10, "guidance": 2.0}},
        "train": {"steps": 30, "batch_size": 32, "lr": 2e-3, "ckpt_every": 30, "log_every": 10},
        "description": "seconds: tiny conditional U-Net, T=100, DDIM-10 with guidance 2 (CI and table tests)",
    },
    "mnist": {
        "dataset": "mnist",
        "model": {"net": _MNIST_NET, "T": 1000, "schedule": "linear", "sampling": _DDIM100},
        "train": {"steps": 4000, "batch_size": 64, "lr": 1e-3, "ema_decay": 0.995, "ckpt_every": 500, "log_every": 50},
        "description": "CPU: U-Net 32ch (28->14->7, attention at 7x7), T=1000; DDIM-100 sampler; 51-62 CPU-minutes on one thread (3,063 and 3,697 CPU-s measured)",
    },
    "mnist-cond": {
        "dataset": "mnist",
        "model": {"net": _MNIST_NET, "T": 1000, "schedule": "linear", "conditional": True, "p_uncond": 0.1,
                  "sampling": {**_DDIM100, "guidance": 2.0}},
        "train": {"steps": 4000, "batch_size": 64, "lr": 1e-3, "ema_decay": 0.995, "ckpt_every": 500, "log_every": 50},
        "description": "CPU: class-conditional `mnist` (same U-Net and training, label dropout 0.1), classifier-free "
                       "guidance w=2, DDIM-100; 40 CPU-minutes on one thread (2,376 CPU-s measured)",
    },
    "mnist-gpu": {
        "dataset": "mnist",
        "model": {"net": {"ch": 64, "ch_mult": [1, 2, 2], "num_res_blocks": 2, "attn_resolutions": [7], "dropout": 0.1},
                  "T": 1000, "schedule": "linear", "conditional": True, "p_uncond": 0.1,
                  "sampling": {"sampler": "ddpm", "guidance": 1.0}},
        "train": {"steps": 50_000, "batch_size": 128, "lr": 2e-4, "ema_decay": 0.9999, "ckpt_every": 2000, "log_every": 100},
        "description": "GPU: conditional U-Net 64ch, T=1000, DDPM sampler (guidance settable)",
    },
    "cifar10": {
        "dataset": "cifar10",
        "model": {"net": _CIFAR_NET, "T": 1000, "schedule": "linear", "variance": "fixed_large", "sampling": {"sampler": "ddpm"}},
        "train": dict(_CIFAR_TRAIN),
        "description": "GPU: DDPM CIFAR-10 recipe (Ho et al. 2020), DDPM-1000 sampler",
    },
    "cifar10-cond": {
        "dataset": "cifar10",
        "model": {"net": _CIFAR_NET, "T": 1000, "schedule": "cosine", "conditional": True, "p_uncond": 0.1,
                  "sampling": {"sampler": "ddim", "steps": 100, "eta": 0.0, "guidance": 1.5}},
        "train": dict(_CIFAR_TRAIN),
        "description": "GPU: class-conditional DDPM, cosine schedule, classifier-free guidance w=1.5, DDIM-100",
    },
}
