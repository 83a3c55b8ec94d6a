"""Shared interval arithmetic for the metric kernels: the normal quantile and the Wilson interval."""

from __future__ import annotations

import math
from statistics import NormalDist

from ..errors import DataError


def z_value(level: float) -> float:
    """Two-sided standard normal quantile for a ``level`` interval (0.95 -> 1.959964)."""
    if not 0 < level < 1:
        raise DataError(f"interval level must be in (0, 1), got {level}")
    return NormalDist().inv_cdf(0.5 + level / 2)


def wilson_interval(hits: int, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion hits/n."""
    p = hits / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)
