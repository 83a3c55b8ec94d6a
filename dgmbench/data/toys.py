"""2-D toy distributions, deterministic for a seed.

Mixtures expose their mode centres and std for the mode-coverage metric
(VEEGAN/PacGAN protocol). Split sizes: train 20,000 and test 5,000 points by default;
train uses ``seed``, test ``seed + 1``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .base import DataSplit

TOY_SIZES = {"train": 20_000, "test": 5_000, "val": 5_000}
_SPLIT_OFFSET = {"train": 0, "test": 1, "val": 2}


def ring8_modes(radius: float = 1.0) -> np.ndarray:
    """Means (r cos 2 pi i / 8, r sin 2 pi i / 8), i = 0..7."""
    ang = 2 * math.pi * np.arange(8) / 8
    return np.stack([radius * np.cos(ang), radius * np.sin(ang)], 1)


def grid25_modes() -> np.ndarray:
    """Means {-4, -2, 0, 2, 4}^2."""
    v = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
    return np.stack(np.meshgrid(v, v, indexing="ij"), -1).reshape(-1, 2)


def _mixture(rng: np.random.Generator, n: int, modes: np.ndarray, std: float) -> tuple[np.ndarray, np.ndarray]:
    comp = rng.integers(0, len(modes), n)
    return modes[comp] + std * rng.standard_normal((n, 2)), comp


def _moons(rng, n):
    from sklearn.datasets import make_moons

    x, y = make_moons(n, noise=0.05, random_state=int(rng.integers(2**31)))
    return x, y


def _swissroll(rng, n):
    from sklearn.datasets import make_swiss_roll

    x, _ = make_swiss_roll(n, noise=0.5, random_state=int(rng.integers(2**31)))
    return x[:, [0, 2]] / 5.0, None


def _checkerboard(rng, n):
    x1 = rng.random(n) * 4 - 2
    x2 = rng.random(n) - rng.integers(0, 2, n) * 2.0
    x2 = x2 + (np.floor(x1) % 2)
    return np.stack([x1, x2], 1) * 2, None


def _pinwheel(rng, n, num_classes=5, radial_std=0.3, tangential_std=0.1, rate=0.25):
    rads = np.linspace(0, 2 * np.pi, num_classes, endpoint=False)
    feats = rng.standard_normal((n, 2)) * np.array([radial_std, tangential_std])
    feats[:, 0] += 1.0
    labels = rng.integers(0, num_classes, n)
    angles = rads[labels] + rate * np.exp(feats[:, 0])
    rot = np.stack([np.cos(angles), -np.sin(angles), np.sin(angles), np.cos(angles)], 1).reshape(-1, 2, 2)
    return 2 * np.einsum("ti,tij->tj", feats, rot), labels


def load_toy(name: str, split: str = "train", *, seed: int = 0, n: int | None = None, std: float | None = None) -> DataSplit:
    """Sample a 2-D toy split. ``std`` overrides the mixture std (ring8 0.01, grid25 0.05)."""
    n = n or TOY_SIZES.get(split, 5_000)
    rng = np.random.default_rng([seed, _SPLIT_OFFSET.get(split, 3), sum(map(ord, name))])
    modes = mode_std = None
    if name == "ring8":
        mode_std = 0.01 if std is None else std
        modes = ring8_modes()
        x, y = _mixture(rng, n, modes, mode_std)
    elif name == "grid25":
        mode_std = 0.05 if std is None else std
        modes = grid25_modes()
        x, y = _mixture(rng, n, modes, mode_std)
    else:
        x, y = {"moons": _moons, "swissroll": _swissroll, "checkerboard": _checkerboard, "pinwheel": _pinwheel}[name](rng, n)
    return DataSplit(
        name=name,
        split=split,
        data=torch.as_tensor(np.asarray(x), dtype=torch.float32),
        labels=None if y is None else torch.as_tensor(np.asarray(y), dtype=torch.int64),
        modes=None if modes is None else torch.as_tensor(modes, dtype=torch.float32),
        mode_std=mode_std,
        meta={"seed": seed},
    )


TOY_NAMES = ("ring8", "grid25", "moons", "checkerboard", "swissroll", "pinwheel")
