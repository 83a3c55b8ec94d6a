"""What the Inception benchmarks read (the offline CIFAR-10 subset, the Inception weights file) and the device name they record.

- ``DGMBENCH_BENCH_DATA``: a folder with ``cifar10_test_first1000.npz`` and one
  ``cifar10_train_first<N>.npz`` (default: ``../shared/offline/cifar10-subset`` beside the
  checkout, which holds the first 4,000 training images; an offline bundle made by
  ``benchmarks/offline_bundle.py`` may hold fewer).
- ``DGMBENCH_BENCH_WEIGHTS``: an Inception weights file in torch-fidelity's layout (default:
  dgmbench's own resolution, see :mod:`dgmbench.features.inception`).

Arrays are CIFAR's layout, (N, 3072) uint8; these helpers return uint8 (N, 3, 32, 32).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

FOLDER = Path(os.environ.get("DGMBENCH_BENCH_DATA")
              or Path(__file__).resolve().parents[1].parent / "shared" / "offline" / "cifar10-subset")
TEST_FILE = "cifar10_test_first1000.npz"
WEIGHTS = os.environ.get("DGMBENCH_BENCH_WEIGHTS") or None


def _load(path: Path) -> torch.Tensor:
    if not path.exists():
        pytest.skip(f"offline CIFAR-10 file not found at {path} (set DGMBENCH_BENCH_DATA)")
    with np.load(path) as z:
        data = z["data"]
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())


def train_file() -> Path:
    """The ``cifar10_train_first<N>.npz`` in :data:`FOLDER` with the largest N."""
    counts = {p: re.fullmatch(r"cifar10_train_first(\d+)", p.stem) for p in FOLDER.glob("cifar10_train_first*.npz")}
    found = sorted((int(m.group(1)), p) for p, m in counts.items() if m)
    return found[-1][1] if found else FOLDER / "cifar10_train_first4000.npz"


def device_name(device: str) -> str:
    """The GPU's marketing name for a CUDA device (what :data:`dgmbench.flops.PEAK_TFLOPS` is keyed by), else 'cpu'."""
    return torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else "cpu"


def cifar_test_u8() -> torch.Tensor:
    """The first 1,000 CIFAR-10 test images, uint8 (1000, 3, 32, 32)."""
    return _load(FOLDER / TEST_FILE)


def cifar_train_u8() -> torch.Tensor:
    """The offline CIFAR-10 training images (the first 4,000, or fewer in a bundle), uint8 (N, 3, 32, 32)."""
    return _load(train_file())


def shift_right(u8: torch.Tensor, pixels: int = 2) -> torch.Tensor:
    """Images moved right by ``pixels``, the left edge column repeated (no new content, no wrap-around)."""
    return torch.cat([u8[..., :1].expand(*u8.shape[:-1], pixels), u8[..., :-pixels]], dim=-1)


def distinct_images(u8: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` images made from ``u8`` without repeats: the images, their horizontal flips, the images
    shifted right by 2 pixels, the flips shifted, then shifted down by 2, cut at ``n``.

    With the 4,000 offline training images and n = 10,000 this is the set the CPU figures in
    RESULTS.md were measured on (4,000 + 4,000 flips + the first 2,000 shifted).
    """
    flip = u8.flip(-1)
    variants = [u8, flip, shift_right(u8), shift_right(flip), shift_right(u8.transpose(-1, -2)).transpose(-1, -2)]
    out = torch.cat(variants)
    if n > len(out):
        raise ValueError(f"{n} distinct images requested from {len(u8)} (at most {len(out)})")
    return out[:n].contiguous()


def sync(device: str) -> None:
    """Wait for queued GPU work before reading a timer (no-op on CPU)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class U8Dataset(torch.utils.data.Dataset):
    """uint8 (3, H, W) images, the input torch-fidelity's pipelines take."""

    def __init__(self, u8: torch.Tensor):
        self.u8 = u8

    def __len__(self):
        return self.u8.shape[0]

    def __getitem__(self, i):
        return self.u8[i]
