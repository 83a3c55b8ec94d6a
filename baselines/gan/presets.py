"""GAN presets (``python -m baselines train gan --preset NAME``)."""

from __future__ import annotations

_MLP = {"arch": "mlp", "z_dim": 16, "hidden": 128, "layers": 3}

PRESETS: dict[str, dict] = {
    "ring8": {
        "dataset": "ring8",
        "model": {**_MLP, "loss": "ns"},
        "train": {"steps": 1500, "batch_size": 256, "lr": 1e-3, "betas": (0.5, 0.999), "grad_clip": None,
                  "log_every": 10, "ckpt_every": 500, "device": "cpu"},
        "description": "MLP GAN, non-saturating loss, on the 8-Gaussian ring (seconds on CPU)",
    },
}
