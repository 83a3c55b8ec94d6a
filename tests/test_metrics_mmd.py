"""MMD^2 (RBF): explicit double sums, the Gaussian closed form, zero mean under H0, median heuristic, p-values."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist, pdist

from dgmbench.errors import DataError
from dgmbench.metrics.mmd import median_bandwidth, mmd_rbf


def _gauss(n, d, seed, shift=0.0, s=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) * s + shift


def test_equals_explicit_unbiased_sum():
    x, y = _gauss(9, 3, 0).numpy(), _gauss(7, 3, 1, 0.4).numpy()
    sigma = 1.3

    def k(a, b):
        return np.exp(-cdist(a, b, "sqeuclidean") / (2 * sigma**2))

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    m, n = 9, 7
    expected = (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean()
    assert mmd_rbf(torch.from_numpy(x), torch.from_numpy(y), bandwidth=sigma).value == pytest.approx(expected, rel=1e-10)


def test_shifted_gaussians_match_closed_form():
    # x ~ N(0, s^2 I), y ~ N(delta, s^2 I), kernel bandwidth sigma:
    # MMD^2 = 2 (sigma^2 / (sigma^2 + 2 s^2))^(d/2) (1 - exp(-|delta|^2 / (2 (sigma^2 + 2 s^2))))
    d, s, sigma = 2, 1.0, 1.5
    delta = torch.tensor([1.0, 0.5], dtype=torch.float64)
    c = sigma**2 + 2 * s**2
    expected = 2 * (sigma**2 / c) ** (d / 2) * (1 - math.exp(-float(delta @ delta) / (2 * c)))
    vals, stds = [], []
    for seed in range(5):
        mv = mmd_rbf(_gauss(500, d, 2 * seed), _gauss(500, d, 2 * seed + 1, delta), bandwidth=sigma)
        vals.append(mv.value)
        stds.append(mv.std)
    mean, se = np.mean(vals), np.std(vals, ddof=1) / math.sqrt(len(vals))
    assert abs(mean - expected) < 4 * se + 1e-3 * expected
    # the per-run std estimate describes the spread across runs (within a factor 2)
    assert 0.5 < np.mean(stds) / np.std(vals, ddof=1) < 2.0


def test_identical_distributions_zero_in_expectation():
    vals = [mmd_rbf(_gauss(150, 3, 100 + 2 * i), _gauss(150, 3, 101 + 2 * i), bandwidth=1.0).value for i in range(30)]
    # unbiased: the mean over seeds is within 3 standard errors of 0, and single values straddle 0
    assert abs(np.mean(vals)) < 3 * np.std(vals, ddof=1) / math.sqrt(len(vals))
    assert min(vals) < 0 < max(vals)


def test_median_heuristic():
    x, y = _gauss(40, 4, 0), _gauss(30, 4, 1, 1.0)
    z = np.concatenate([x.numpy(), y.numpy()])
    assert len(pdist(z)) % 2 == 1  # 70 * 69 / 2 pairs: the median is one of them
    assert median_bandwidth(x, y) == pytest.approx(np.median(pdist(z)), rel=1e-12)
    mv = mmd_rbf(x, y)
    assert mv.extra["bandwidth_rule"] == "median heuristic on the reference set"
    assert mv.value == pytest.approx(mmd_rbf(x, y, bandwidth=mv.extra["bandwidth"]).value, rel=1e-12)


def test_median_bandwidth_is_fixed_by_the_reference_set():
    # every model scored against one reference gets the same kernel: the median of the
    # reference's own pairwise distances, whatever the generated set
    y = _gauss(31, 4, 1, 1.0)
    ref_median = float(np.median(pdist(y.numpy())))  # 465 pairs: odd, the median is one of them
    a = mmd_rbf(_gauss(40, 4, 0), y)
    b = mmd_rbf(_gauss(25, 4, 5, 3.0, s=4.0), y)
    assert a.extra["bandwidth"] == pytest.approx(ref_median, rel=1e-12)
    assert b.extra["bandwidth"] == a.extra["bandwidth"]


def test_permutation_p_values():
    same = mmd_rbf(_gauss(60, 2, 0), _gauss(60, 2, 1), bandwidth=1.0, permutations=200, seed=0)
    diff = mmd_rbf(_gauss(60, 2, 0), _gauss(60, 2, 1, 1.5), bandwidth=1.0, permutations=200, seed=0)
    assert same.extra["p_value"] > 0.05
    assert diff.extra["p_value"] == pytest.approx(1 / 201)
    assert same.extra["perm_statistic"] == pytest.approx(same.value, rel=1e-10)  # the observed split
    again = mmd_rbf(_gauss(60, 2, 0), _gauss(60, 2, 1), bandwidth=1.0, permutations=200, seed=0)
    assert again.extra["p_value"] == same.extra["p_value"]


def test_images_are_flattened_and_errors():
    x = torch.rand(20, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    y = torch.rand(20, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    assert mmd_rbf(x, y, bandwidth=1.0).value == pytest.approx(mmd_rbf(x.flatten(1), y.flatten(1), bandwidth=1.0).value)
    with pytest.raises(DataError, match="dimensions differ"):
        mmd_rbf(_gauss(5, 2, 0), _gauss(5, 3, 0))
    with pytest.raises(DataError, match="at least 2"):
        mmd_rbf(_gauss(1, 2, 0), _gauss(5, 2, 0))
    with pytest.raises(DataError, match="positive"):
        mmd_rbf(_gauss(5, 2, 0), _gauss(5, 2, 1), bandwidth=0.0)
