"""Mode coverage on 2-D Gaussian mixtures (VEEGAN / PacGAN protocol), with intervals.

A sample is *high quality* when it lies within ``threshold`` standard deviations (default
3) of its nearest mode centre (Euclidean distance <= threshold * std). A mode is *captured*
when it is the nearest mode of at least ``min_count`` high-quality samples (default 1).
The reverse KL divergence of the histogram of high-quality samples over modes to the
uniform distribution is ``sum_i p_i log(p_i * K)`` in nats (0 when every mode receives the
same share; modes with no samples contribute 0, as in PacGAN).

Intervals (generated samples i.i.d. from the model, the modes fixed): each sample falls in
one of K + 1 cells (its mode when high quality, else "low quality"), so the counts are
multinomial and resampling the samples with replacement is drawing Multinomial(n, counts / n).
The target of each interval is the metric's expected value at this n (the mean over
independent generated sets of the same size), what a rerun with another seed estimates.

- ``hq_fraction``: Wilson score interval (the count is binomial).
- ``mode_rkl``: normal interval value +- z s.d. of ``replicates`` multinomial bootstrap
  replicates, clipped to [0, log K]. (Percentile intervals undercover here: the plug-in KL is
  biased upwards by about (K - 1) / (2 n_hq), and the bootstrap adds that bias once more.)
- ``modes_captured``: lower end value - z s.d. of the bootstrap replicates (modes seen rarely
  may be missed by another set); upper end value + the bootstrap's upward excursion (modes
  with 0 < count < min_count) + an allowance for modes no sample reached: their total
  probability is bounded by the Jeffreys upper limit lambda_U / n for a zero count
  (lambda_U = Gamma(1/2) quantile at (1 + level) / 2: 2.51 at 95%), spread over those modes
  as the expected number they would add to another set of n. Clipped to [0, K]. The
  bootstrap alone never puts an unseen mode back and covers ~60% when a mode has
  n p ~ 1 (tests/test_metrics_mode_coverage.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..validation import check_points
from .intervals import wilson_interval, z_value

BOOTSTRAP_REPLICATES = 2000  # multinomial replicates: K + 1 cells, so cheap at any n


@dataclass
class ModeCoverage:
    modes_captured: int
    num_modes: int
    high_quality_fraction: float  # in [0, 1]
    reverse_kl: float  # nats; inf when no sample is high quality
    counts: list[int]  # high-quality samples per mode
    n: int
    # name -> (low, high, std) for modes_captured, hq_fraction, mode_rkl; methods name each
    intervals: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    interval_methods: dict[str, str] = field(default_factory=dict)
    level: float = 0.95
    replicates: int = 0


def _reverse_kl(counts: np.ndarray) -> np.ndarray:
    """sum_k p_k log(p_k K) over the last axis of mode counts, vectorised over bootstrap replicates
    (0 log 0 = 0; inf when all counts are 0)."""
    k = counts.shape[-1]
    n_hq = counts.sum(-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = counts / n_hq
        terms = np.where(counts > 0, p * np.log(p * k), 0.0)
    return np.where(n_hq[..., 0] > 0, terms.sum(-1), np.inf)


def _poisson_sf(m: int, lam: float) -> float:
    """P(Poisson(lam) >= m)."""
    return 1.0 - sum(math.exp(-lam) * lam**j / math.factorial(j) for j in range(m))


def unseen_mode_allowance(zero_modes: int, min_count: int, level: float) -> float:
    """Largest expected number of captured modes, in another set of the same n, among ``zero_modes``
    modes that received no sample: their total expected count is at most lambda_U (the Jeffreys
    upper limit for a Poisson count of 0, Gamma(1/2) quantile at (1 + level) / 2), split evenly
    over the j of them that maximise it."""
    if zero_modes <= 0:
        return 0.0
    lam_u = z_value(level + (1 - level) / 2) ** 2 / 2  # Gamma(1/2, 1) = chi2_1 / 2
    return max(j * _poisson_sf(min_count, lam_u / j) for j in range(1, zero_modes + 1))


def _intervals(res: ModeCoverage, min_count: int, n_hq: int, level: float, replicates: int, seed: int) -> None:
    z = z_value(level)
    counts = np.asarray(res.counts)
    k, n = res.num_modes, res.n
    lo, hi = wilson_interval(n_hq, n, z)
    res.intervals["hq_fraction"] = (lo, hi, math.sqrt(res.high_quality_fraction * (1 - res.high_quality_fraction) / n))
    res.interval_methods["hq_fraction"] = "Wilson score interval (generated samples i.i.d.)"
    res.level = level
    if replicates < 2:
        return
    cells = np.append(counts, n - n_hq) / n
    boot = np.random.default_rng(seed).multinomial(n, cells, size=int(replicates))[:, :k]
    res.replicates = int(replicates)
    captured = (boot >= min_count).sum(1)
    sd = float(captured.std(ddof=1))
    up = max(float(np.quantile(captured, 0.5 + level / 2)) - res.modes_captured, 0.0)
    allowance = unseen_mode_allowance(int((counts == 0).sum()), min_count, level)
    res.intervals["modes_captured"] = (max(0.0, res.modes_captured - z * sd),
                                       min(float(k), res.modes_captured + up + allowance), sd)
    res.interval_methods["modes_captured"] = (
        "value - z s.d. of multinomial bootstrap replicates, up to value + the bootstrap's upward excursion + the "
        "expected captures of unseen modes at their Jeffreys upper probability; clipped to [0, K]")
    rkl = _reverse_kl(boot)
    if math.isfinite(res.reverse_kl) and bool(np.isfinite(rkl).all()):
        sd = float(rkl.std(ddof=1))
        res.intervals["mode_rkl"] = (max(0.0, res.reverse_kl - z * sd), min(math.log(k), res.reverse_kl + z * sd), sd)
        res.interval_methods["mode_rkl"] = "normal interval value +- z s.d. of multinomial bootstrap replicates, " \
                                           "clipped to [0, log K]"
    else:
        res.interval_methods["mode_rkl"] = "no interval: some bootstrap replicates have no high-quality sample"


def mode_coverage(samples: torch.Tensor, modes: torch.Tensor, std: float, *, threshold: float = 3.0,
                  min_count: int = 1, level: float = 0.95, replicates: int = BOOTSTRAP_REPLICATES,
                  seed: int = 0) -> ModeCoverage:
    """Count captured modes and high-quality samples of ``samples`` (N, 2) around ``modes`` (K, 2),
    with ``level`` intervals (see the module docstring; ``replicates`` < 2: hq_fraction's only)."""
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
    res = ModeCoverage(
        modes_captured=int((counts >= min_count).sum()),
        num_modes=int(m.shape[0]),
        high_quality_fraction=n_hq / x.shape[0],
        reverse_kl=rkl,
        counts=[int(c) for c in counts],
        n=int(x.shape[0]),
    )
    _intervals(res, min_count, n_hq, level, replicates, seed)
    return res
