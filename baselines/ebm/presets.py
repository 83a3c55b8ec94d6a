"""EBM presets (``python -m baselines train ebm --preset NAME``)."""

from __future__ import annotations

_MLP = {"arch": "mlp", "hidden": 128, "layers": 3, "act": "silu"}

PRESETS: dict[str, dict] = {
    "ring8": {
        "dataset": "ring8",
        "model": {**_MLP, "prior_std": 4.0, "init_range": 2.0, "sgld_steps": 20, "sgld_step_size": 0.01,
                  "sgld_noise": 0.005, "sample_steps": 100, "buffer_size": 5000, "reinit_prob": 0.05,
                  "reg_weight": 0.1},
        "train": {"steps": 1000, "batch_size": 256, "lr": 1e-3, "betas": (0.0, 0.999), "grad_clip": None,
                  "log_every": 10, "ckpt_every": 500, "device": "cpu"},
        "description": "MLP energy on the 8-Gaussian ring, SGLD from a replay buffer (seconds on CPU)",
    },
}
