"""Parzen-window (Gaussian KDE) log-likelihood of test data under generated samples.

The protocol of Goodfellow et al. (2014, following Breuleux et al. 2011): fit an isotropic
Gaussian mixture with one component per generated sample s_i (i = 1..N) and common std
sigma,

    log p(x) = logsumexp_i(-||x - s_i||^2 / (2 sigma^2)) - log N - (D/2) log(2 pi sigma^2),

choose sigma from a log-spaced grid by the mean log-likelihood of a *validation* split,
then report the mean log-likelihood of the *test* points and its standard error
(std / sqrt(n_test)). Values are in nats per sample, computed in float64.

Scale convention: the density is over the data as given. For images in [0, 1] that is the
[0, 1]^D scale; ``kde_bits_per_dim`` converts it to the 8-bit [0, 256)^D scale of
:mod:`dgmbench.units`: nll_8bit = -ll + D log 256, bpd = nll_8bit / (D ln 2).

Discrete data: a density evaluated at discrete points can be arbitrarily large, so bits/dim
of 8-bit data are only meaningful for *dequantised* points (the convention of
:mod:`dgmbench.units`). ``kde_log_likelihood(..., dequantize=None)`` therefore detects
validation/test points on the 8-bit grid (every value k/255) and dequantises them,
y = (255 x + u) / 256 with seeded u ~ U[0, 1) (:func:`dgmbench.units.dequantize`), and maps
the generated samples to the same scale, s -> (255 s + 0.5) / 256 (bin centres);
``dequantize=True``/``False`` forces it. The result records whether it was done.

The bandwidth is never chosen on the points it then scores: for continuous data, test points
that also occur among the validation points (identical rows) are dropped from the test set
and counted; discrete data repeat by nature, so there the caller must pass disjoint sets
(:func:`kde_val_test_split` cuts one set into disjoint halves). A KDE value is an *estimate* (kind ``estimate``) and is known to be a
poor likelihood estimate in high dimension; it is reported because papers report it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import DataError
from ..results import MetricValue
from ..units import LN2
from ..units import dequantize as units_dequantize

BLOCK_BYTES = 128 * 2**20


@dataclass
class KDEResult:
    mean_ll: float  # nats per sample on the data's own scale
    stderr: float
    sigma: float
    grid: list[float]
    val_ll: list[float]  # mean validation log-likelihood per grid point
    n_samples: int
    n_test: int
    dim: int
    per_point: torch.Tensor  # (n_test,) log-likelihoods, float64
    dequantized: bool = False
    n_dropped: int = 0  # test points dropped because they were validation points


def _flat(x, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise DataError(f"{name}: expected a tensor, got {type(x).__name__}")
    x = x.detach().reshape(x.shape[0], -1).to("cpu", torch.float64)
    if x.shape[0] < 1:
        raise DataError(f"{name}: empty")
    if not bool(torch.isfinite(x).all()):
        raise DataError(f"{name}: contains NaN or Inf")
    return x


def parzen_log_likelihood_grid(x: torch.Tensor, samples: torch.Tensor, sigmas) -> torch.Tensor:
    """Per-point log-densities (nats), shape (len(sigmas), n), of ``x`` (n, D) under the Parzen
    window on ``samples`` (N, D) for each sigma; squared distances are computed once per block."""
    x, s = _flat(x, "test points"), _flat(samples, "samples")
    sigmas = [float(v) for v in np.atleast_1d(np.asarray(sigmas, dtype=np.float64))]
    n_s, dim = s.shape
    s_sq = (s * s).sum(1)
    rows = max(1, BLOCK_BYTES // (8 * 2 * n_s))
    out = torch.empty(len(sigmas), x.shape[0], dtype=torch.float64)
    for start in range(0, x.shape[0], rows):
        blk = x[start:start + rows]
        d2 = ((blk * blk).sum(1)[:, None] + s_sq[None, :] - 2 * blk @ s.T).clamp_min_(0)
        for i, sigma in enumerate(sigmas):
            const = -math.log(n_s) - 0.5 * dim * math.log(2 * math.pi * sigma**2)
            out[i, start:start + blk.shape[0]] = torch.logsumexp(d2 * (-0.5 / sigma**2), dim=1) + const
    return out


def parzen_log_likelihood(x: torch.Tensor, samples: torch.Tensor, sigma: float) -> torch.Tensor:
    """Per-point log-density (nats) of ``x`` (n, D) under the Parzen window on ``samples`` (N, D)."""
    return parzen_log_likelihood_grid(x, samples, [sigma])[0]


def default_grid(samples: torch.Tensor, num: int = 25) -> np.ndarray:
    """Log-spaced sigmas from 0.001 to 2 times the samples' mean per-dimension std."""
    s = _flat(samples, "samples")
    scale = float(s.std(0).mean()) if s.shape[0] > 1 else 1.0
    scale = scale if scale > 0 else 1.0
    return scale * np.geomspace(0.001, 2.0, num)


def on_8bit_grid(x: torch.Tensor) -> bool:
    """True when every value of ``x`` is k/255 for an integer k in [0, 255]."""
    k = x * 255
    return bool(((k - k.round()).abs() <= 1e-4).all()) and float(x.min()) >= 0 and float(x.max()) <= 1


def _drop_overlap(test: torch.Tensor, val: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Test rows that are not also validation rows (exact match), and how many were dropped."""
    seen = {row.tobytes() for row in val.numpy()}
    keep = torch.tensor([row.tobytes() not in seen for row in test.numpy()], dtype=torch.bool)
    return test[keep], int((~keep).sum())


def kde_val_test_split(points: torch.Tensor, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint (validation, test) halves of ``points`` by a seeded permutation, for data without a
    separate validation split: the bandwidth is chosen on one half and only the other is scored."""
    n = points.shape[0]
    if n < 2:
        raise DataError(f"KDE: need at least 2 points to split into validation and test, got {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    return points[perm[: n // 2]], points[perm[n // 2:]]


def kde_log_likelihood(
    samples: torch.Tensor,
    val: torch.Tensor,
    test: torch.Tensor,
    *,
    grid: np.ndarray | list[float] | None = None,
    dequantize: bool | None = None,
    seed: int = 0,
) -> KDEResult:
    """Choose sigma on ``val`` from ``grid``, then score ``test``; see the module docstring.

    ``dequantize``: None = when validation and test points are on the 8-bit grid; ``seed``
    seeds the dequantisation noise.
    """
    s, v, t = _flat(samples, "samples"), _flat(val, "validation points"), _flat(test, "test points")
    if not (s.shape[1] == v.shape[1] == t.shape[1]):
        raise DataError(f"KDE: dimensions differ (samples {s.shape[1]}, validation {v.shape[1]}, test {t.shape[1]})")
    grid8 = on_8bit_grid(v) and on_8bit_grid(t)
    dropped = 0
    if not grid8:  # continuous points: an identical row is the same point (discrete data repeat by nature)
        t, dropped = _drop_overlap(t, v)
        if t.shape[0] == 0:
            raise DataError("KDE: every test point is also a validation point; the bandwidth must be chosen on "
                            "other points (see kde_val_test_split)")
    if dequantize is None:
        dequantize = grid8
    if dequantize:
        g = torch.Generator().manual_seed(int(seed))
        v, t = units_dequantize(v, generator=g), units_dequantize(t, generator=g)
        s = (255 * s + 0.5) / 256
    grid = default_grid(s) if grid is None else np.asarray(grid, dtype=np.float64)
    if grid.size == 0 or not np.all(grid > 0):
        raise DataError("KDE bandwidth grid must hold positive numbers")
    val_ll = parzen_log_likelihood_grid(v, s, grid).mean(1).tolist()
    best = int(np.argmax(val_ll))
    sigma = float(grid[best])
    ll = parzen_log_likelihood(t, s, sigma)
    stderr = float(ll.std() / math.sqrt(ll.shape[0])) if ll.shape[0] > 1 else float("nan")
    return KDEResult(float(ll.mean()), stderr, sigma, grid.tolist(), val_ll, s.shape[0], t.shape[0], s.shape[1], ll,
                     bool(dequantize), dropped)


def kde_metric_values(res: KDEResult, *, eight_bit: bool, z: float = 1.96, **mv_kwargs) -> list[MetricValue]:
    """``kde_ll`` (nats, data scale) and, for 8-bit images, ``kde_bpd`` (bits/dim, [0, 256) scale)."""
    extra = {"sigma": res.sigma, "n_samples": res.n_samples, "sigma_grid": res.grid, "val_ll": res.val_ll,
             "dequantized": res.dequantized, "n_test_dropped": res.n_dropped}
    notes = []
    if res.n_dropped:
        notes.append(f"{res.n_dropped} test points that were also validation points were not scored")
    if eight_bit and not res.dequantized:
        notes.append("test points not dequantised: on 8-bit data the bits/dim are not a likelihood (can be < 0)")
    if res.sigma in (res.grid[0], res.grid[-1]):
        notes.append(f"the chosen bandwidth {res.sigma:.3g} is at the edge of the grid; widen the grid")
    note = "; ".join(notes) or None
    ll = MetricValue(name="kde_ll", value=res.mean_ll, n=res.n_test, std=res.stderr, kind="estimate", unit="nats",
                     ci_low=res.mean_ll - z * res.stderr, ci_high=res.mean_ll + z * res.stderr,
                     higher_is_better=True, note=note, extra=dict(extra, scale="data scale ([0,1] for images)"),
                     **mv_kwargs)
    out = [ll]
    if eight_bit:
        d = res.dim
        bpd = kde_bits_per_dim(res.mean_ll, d)
        se = res.stderr / (d * LN2)
        out.append(MetricValue(name="kde_bpd", value=bpd, n=res.n_test, std=se, kind="estimate", unit="bits/dim",
                               ci_low=bpd - z * se, ci_high=bpd + z * se, higher_is_better=False, note=note,
                               extra=dict(extra, scale="[0,256)^D"), **mv_kwargs))
    return out


def kde_bits_per_dim(mean_ll_unit_scale: float, dim: int) -> float:
    """Bits/dim on the 8-bit [0, 256)^D scale from a mean log-density on [0, 1]^D (nats)."""
    return (-mean_ll_unit_scale + dim * math.log(256.0)) / (dim * LN2)
