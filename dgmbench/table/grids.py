"""Sample grids of the table's models, drawn when a model is scored and written as PNG files next
to the leaderboard (``<out>/<name>.samples/<family>-s<seed>.png``), so that ``dgmbench report``
embeds files and never loads a model.

- images: ``GRID_IMAGES`` (64) samples as an 8 x 8 grid at the data's own resolution, one white
  pixel between tiles, grey (one channel) or RGB, pixel = round(255 * clamp(x, 0, 1)): a few kB;
- 2-D points: ``GRID_POINTS`` samples as a scatter over the dataset's modes (light grey crosses,
  drawn beneath the samples).

A model is sampled once, ``model.sample(n, generator=torch.Generator().manual_seed(seed))`` with
the scored run's seed, after the table has applied the family's ``--sampling`` options: the grid
shows the sampler the metrics were computed with.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from ..errors import ModelError
from ..report.plots import COLORS, figure_png, new_figure
from ..results import atomic_write_bytes, sha256_file

GRID_IMAGES = 64  # an 8 x 8 grid
GRID_NROW = 8
GRID_POINTS = 1000


def grid_folder(name: str) -> str:
    """The folder of leaderboard ``name``'s grids, relative to the leaderboard's folder."""
    return f"{name}.samples"


def grid_relpath(name: str, family: str, seed: int) -> str:
    """Where a (family, seed) grid of leaderboard ``name`` lives, relative to the leaderboard's folder
    (spaces in the family name become '-': the real-data row's grid is ``real-data-s0.png``)."""
    return f"{grid_folder(name)}/{family.replace(' ', '-')}-s{int(seed)}.png"


def draw_samples(model: Any, kind: str, seed: int) -> torch.Tensor:
    """``GRID_IMAGES`` images or ``GRID_POINTS`` points from ``model`` with a CPU generator seeded
    by ``seed``, as a float CPU tensor."""
    n = GRID_IMAGES if kind == "image" else GRID_POINTS
    with torch.no_grad():
        x = model.sample(n, generator=torch.Generator().manual_seed(int(seed)))
    if not isinstance(x, torch.Tensor | np.ndarray):
        raise ModelError(f"{type(model).__name__}.sample returned a {type(x).__name__}, not a tensor")
    return torch.as_tensor(x).detach().float().cpu()


def image_grid_png(samples: torch.Tensor, nrow: int = GRID_NROW) -> bytes:
    """Images (N, C, H, W) in [0, 1] as an ``nrow``-wide grid PNG (grey when C is not 3)."""
    x = torch.nan_to_num(samples.float(), nan=0.0).clamp(0, 1)
    grid = make_grid(x, nrow=nrow, padding=1, pad_value=1.0)  # (3, H', W'): one channel is repeated
    pixels = (grid * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    img = Image.fromarray(pixels, "RGB") if x.shape[1] == 3 else Image.fromarray(np.ascontiguousarray(pixels[..., 0]), "L")
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def points_png(samples: torch.Tensor, modes: torch.Tensor | None = None) -> bytes:
    """2-D points (N, >= 2; the first two coordinates) as a scatter PNG, ``modes`` as crosses."""
    pts = samples.reshape(samples.shape[0], -1)[:, :2].float().numpy()
    fig = new_figure(3.2, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(pts[:, 0], pts[:, 1], s=3, alpha=0.6, color=COLORS[0], rasterized=True, zorder=2)
    if modes is not None:  # light grey and under the samples, so that samples sitting on a mode stay visible
        m = torch.as_tensor(modes).float().numpy()
        ax.scatter(m[:, 0], m[:, 1], marker="+", s=60, color="#bbbbbb", linewidths=0.8, zorder=1)
        span = float(abs(m).max()) * 1.5 + 0.5
        ax.set_xlim(-span, span)
        ax.set_ylim(-span, span)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=7)
    return figure_png(fig)


def write_sample_grid(model_or_samples: Any, path: str, *, kind: str, seed: int = 0,
                      modes: torch.Tensor | None = None) -> str:
    """Write the sample grid PNG of a model (sampled with ``seed``, see :func:`draw_samples`) or of
    a samples tensor to ``path`` atomically; ``kind`` is the dataset's ("image" or "points").
    Returns the file's sha256."""
    if isinstance(model_or_samples, torch.Tensor | np.ndarray):  # the first GRID_IMAGES / GRID_POINTS
        x = torch.as_tensor(model_or_samples).detach().float().cpu()[:GRID_IMAGES if kind == "image" else GRID_POINTS]
    else:
        x = draw_samples(model_or_samples, kind, seed)
    if kind == "image":
        if x.ndim != 4:
            raise ModelError(f"an image grid needs samples of shape (N, C, H, W), got {tuple(x.shape)}")
        png = image_grid_png(x)
    else:
        png = points_png(x, modes)
    atomic_write_bytes(path, png)
    return sha256_file(path)
