"""Unbiased MMD^2 with a Gaussian (RBF) kernel, on features, raw pixels or 2-D points.

k(x, y) = exp(-||x - y||^2 / (2 sigma^2)). The bandwidth sigma is given, or set by the
median heuristic on the *reference* set only: sigma = median of the pairwise Euclidean
distances of the reference points (the lower median for an even count of pairs; on a seeded
random subset of at most ``median_max`` points). So every model scored against one reference
is measured with the same kernel (a pooled median would give each model its own). The estimate is

    MMD^2_u = 1/(m(m-1)) sum_{i!=j} k(x_i,x_j) + 1/(n(n-1)) sum_{i!=j} k(y_i,y_j) - 2/(mn) sum_{i,j} k(x_i,y_j)

(Gretton et al. 2012, eq. 3 generalised to m != n), unbiased, so it is 0 in expectation
for identical distributions and can be slightly negative. Kernel sums are accumulated in
float64 over row blocks, so memory is O(block x n).

The optional permutation test (seeded) returns the p-value (1 + #{MMD^2_perm >= MMD^2}) /
(1 + permutations) under H0: same distribution; it needs the pooled kernel matrix, so the
pooled sample is capped at ``perm_max`` points (a seeded random subset, stated in ``extra``).
``std`` is the square root of the U-statistic's leading-order variance estimate
(4/m Var_x[E_y h] style, computed from the kernel row means; see :func:`_variance`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import DataError
from ..results import MetricValue

BLOCK_BYTES = 128 * 2**20


def _points(x, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise DataError(f"{name}: expected a tensor, got {type(x).__name__}")
    x = x.detach().reshape(x.shape[0], -1).to("cpu", torch.float64)
    if x.shape[0] < 2:
        raise DataError(f"{name}: MMD needs at least 2 samples, got {x.shape[0]}")
    if not bool(torch.isfinite(x).all()):
        raise DataError(f"{name}: contains NaN or Inf")
    return x


def median_bandwidth(*sets: torch.Tensor, seed: int = 0, median_max: int = 2000) -> float:
    """Median pairwise Euclidean distance (distinct pairs, seeded subset) of the given sets pooled;
    :func:`mmd_rbf` passes the reference set alone."""
    z = torch.cat([_points(t, "points") for t in sets])
    if z.shape[0] > median_max:
        g = torch.Generator().manual_seed(int(seed))
        z = z[torch.randperm(z.shape[0], generator=g)[:median_max]]
    d = torch.cdist(z, z)
    iu = torch.triu_indices(z.shape[0], z.shape[0], offset=1)
    med = float(d[iu[0], iu[1]].median())
    if med <= 0:
        raise DataError("median heuristic bandwidth is 0 (more than half the pairs coincide); pass a bandwidth")
    return med


def _sqdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return d.clamp_min_(0)


def _kernel_row_sums(a: torch.Tensor, b: torch.Tensor, sigma: float, *, same: bool) -> torch.Tensor:
    """Row sums of the RBF kernel matrix K(a, b), excluding the diagonal when ``same``."""
    rows = max(1, BLOCK_BYTES // (8 * 3 * b.shape[0]))
    out = []
    for start in range(0, a.shape[0], rows):
        k = torch.exp(-_sqdist(a[start:start + rows], b) / (2 * sigma**2))
        s = k.sum(1)
        if same:
            s = s - 1.0  # k(x, x) = 1 exactly
        out.append(s)
    return torch.cat(out)


def _mmd_from_sums(rxx, ryy, rxy_x, m, n) -> float:
    return float(rxx.sum() / (m * (m - 1)) + ryy.sum() / (n * (n - 1)) - 2 * rxy_x.sum() / (m * n))


def _variance(rxx, ryy, rxy_x, rxy_y, m, n) -> float:
    """Leading-order variance of MMD^2_u: 4/m Var_i[h_x(i)] + 4/n Var_j[h_y(j)] with the
    per-point contributions h_x(i) = mean_j' k(x_i, x_j') - mean_j k(x_i, y_j) (and alike)."""
    hx = rxx / (m - 1) - rxy_x / n
    hy = ryy / (n - 1) - rxy_y / m
    return float(4 * hx.var() / m + 4 * hy.var() / n)


def mmd_rbf(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    bandwidth: float | None = None,
    permutations: int = 0,
    perm_max: int = 2000,
    seed: int = 0,
    name: str = "mmd",
    **mv_kwargs,
) -> MetricValue:
    """Unbiased MMD^2 between ``x`` (generated, (m, ...)) and ``y`` (reference, (n, ...)).

    Inputs of any trailing shape are flattened. ``bandwidth`` is sigma of the RBF kernel
    (median heuristic on the reference ``y`` when None). ``permutations`` > 0 adds a permutation-test p-value.
    """
    x, y = _points(x, "generated samples"), _points(y, "reference samples")
    if x.shape[1] != y.shape[1]:
        raise DataError(f"MMD: dimensions differ ({x.shape[1]} vs {y.shape[1]})")
    m, n = x.shape[0], y.shape[0]
    heuristic = bandwidth is None
    sigma = median_bandwidth(y, seed=seed) if heuristic else float(bandwidth)
    if not sigma > 0 or not math.isfinite(sigma):
        raise DataError(f"MMD bandwidth must be a positive number, got {bandwidth}")
    rxx = _kernel_row_sums(x, x, sigma, same=True)
    ryy = _kernel_row_sums(y, y, sigma, same=True)
    rxy_x = _kernel_row_sums(x, y, sigma, same=False)
    rxy_y = _kernel_row_sums(y, x, sigma, same=False)
    value = _mmd_from_sums(rxx, ryy, rxy_x, m, n)
    std = math.sqrt(max(_variance(rxx, ryy, rxy_x, rxy_y, m, n), 0.0))
    extra = {"bandwidth": sigma, "bandwidth_rule": "median heuristic on the reference set" if heuristic else "given", "n_ref": n,
             "kernel": "exp(-||x-y||^2 / (2 sigma^2))"}
    if permutations:
        extra.update(permutation_test(x, y, sigma, permutations=permutations, perm_max=perm_max, seed=seed))
    return MetricValue(name=name, value=value, n=m, std=std, higher_is_better=False, extra=extra, **mv_kwargs)


def permutation_test(x: torch.Tensor, y: torch.Tensor, sigma: float, *, permutations: int = 200,
                     perm_max: int = 2000, seed: int = 0) -> dict:
    """Permutation-test p-value of MMD^2_u for H0: x and y come from the same distribution."""
    g = torch.Generator().manual_seed(int(seed) + 1)
    m, n = x.shape[0], y.shape[0]
    note = None
    if m + n > perm_max:
        m2 = max(2, round(perm_max * m / (m + n)))
        n2 = max(2, perm_max - m2)
        x = x[torch.randperm(m, generator=g)[:m2]]
        y = y[torch.randperm(n, generator=g)[:n2]]
        note = f"permutation test on a seeded subset of {m2} + {n2} points"
        m, n = m2, n2
    z = torch.cat([x, y])
    k = torch.exp(-_sqdist(z, z) / (2 * sigma**2))
    k.fill_diagonal_(0.0)
    # all permutations at once: a row of `a` marks which pooled points play x (the first
    # row is the observed split); x-x, y-y and x-y kernel sums are quadratic forms in a
    perms = [torch.arange(m + n)] + [torch.randperm(m + n, generator=g) for _ in range(permutations)]
    a = torch.zeros(len(perms), m + n, dtype=k.dtype)
    for i, p in enumerate(perms):
        a[i, p[:m]] = 1.0
    b = 1.0 - a
    ka, kb = a @ k, b @ k  # (P, N); k is symmetric
    sxx, syy, sxy = (ka * a).sum(1), (kb * b).sum(1), (ka * b).sum(1)
    stats = sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2 * sxy / (m * n)
    observed = float(stats[0])
    count = int((stats[1:] >= observed).sum())
    out = {"p_value": (1 + count) / (1 + permutations), "permutations": permutations, "perm_statistic": observed}
    if note:
        out["perm_note"] = note
    return out
