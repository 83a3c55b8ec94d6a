"""Mode coverage on 2-D Gaussian mixtures (VEEGAN / PacGAN protocol).

A sample is *high quality* when it lies within ``threshold`` standard deviations (default
3) of its nearest mode centre (Euclidean distance <= threshold * std). A mode is *captured*
when it is the nearest mode of at least ``min_count`` high-quality samples (default 1).
The reverse KL divergence of the histogram of high-quality samples over modes to the
uniform distribution is ``sum_i p_i log(p_i * K)`` in nats (0 when every mode receives the
same share; modes with no samples contribute 0, as in PacGAN).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..validation import check_points


@dataclass
class ModeCoverage:
    modes_captured: int
    num_modes: int
    high_quality_fraction: float  # in [0, 1]
    reverse_kl: float  # nats; inf when no sample is high quality
    counts: list[int]  # high-quality samples per mode
    n: int


def mode_coverage(samples: torch.Tensor, modes: torch.Tensor, std: float, *, threshold: float = 3.0,
                  min_count: int = 1) -> ModeCoverage:
    """Count captured modes and high-quality samples of ``samples`` (N, 2) around ``modes`` (K, 2)."""
    x = check_points(samples, name="samples", dim=modes.shape[1]).double()
    m = modes.double()
    d = torch.cdist(x, m)
    dist, nearest = d.min(1)
    hq = dist <= threshold * std
    counts = torch.bincount(nearest[hq], minlength=m.shape[0])
    n_hq = int(hq.sum())
    if n_hq == 0:
        rkl = math.inf
    else:
        p = counts.double() / n_hq
        nz = p > 0
        rkl = float((p[nz] * torch.log(p[nz] * m.shape[0])).sum())
    return ModeCoverage(
        modes_captured=int((counts >= min_count).sum()),
        num_modes=int(m.shape[0]),
        high_quality_fraction=n_hq / x.shape[0],
        reverse_kl=rkl,
        counts=[int(c) for c in counts],
        n=int(x.shape[0]),
    )
