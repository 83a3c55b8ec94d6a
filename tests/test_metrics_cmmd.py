"""CMMD against direct implementations written here: the unbiased U-statistic from full kernel
matrices (explicit off-diagonal masks, numpy float64), and the reference code's formula
(google-research/cmmd distance.py: exp(-gamma (-2 x.y + |x|^2 + |y|^2)), gamma = 1/(2 sigma^2),
means over all entries, times 1000) for ``estimator="biased"``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dgmbench.errors import DataError, UsageError
from dgmbench.metrics.cmmd import cmmd


def _embeddings(n, d, seed, shift=0.0):
    """Unit-norm vectors, as CLIP image embeddings are."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) + shift
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _unbiased_direct(x, y, sigma=10.0, scale=1000.0):
    def k(a, b):
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return np.exp(-d2 / (2 * sigma**2))

    m, n = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    off_x, off_y = ~np.eye(m, dtype=bool), ~np.eye(n, dtype=bool)
    return scale * (kxx[off_x].mean() + kyy[off_y].mean() - 2 * kxy.mean())


def _google_research_formula(x, y, sigma=10.0, scale=1000.0):
    x_sq, y_sq = np.diag(x @ x.T), np.diag(y @ y.T)
    gamma = 1 / (2 * sigma**2)
    k_xx = np.mean(np.exp(-gamma * (-2 * x @ x.T + x_sq[:, None] + x_sq[None, :])))
    k_xy = np.mean(np.exp(-gamma * (-2 * x @ y.T + x_sq[:, None] + y_sq[None, :])))
    k_yy = np.mean(np.exp(-gamma * (-2 * y @ y.T + y_sq[:, None] + y_sq[None, :])))
    return scale * (k_xx + k_yy - 2 * k_xy)


@pytest.mark.parametrize("m,n", [(40, 40), (37, 53)])
def test_unbiased_and_biased_equal_direct_implementations(m, n):
    x, y = _embeddings(m, 16, 0, shift=0.3), _embeddings(n, 16, 1)
    got = cmmd(torch.from_numpy(x).float(), torch.from_numpy(y).float())
    want = _unbiased_direct(x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64))
    assert got.name == "cmmd" and got.higher_is_better is False and got.n == m and got.extra["n_ref"] == n
    assert got.value == pytest.approx(want, rel=1e-9, abs=1e-9)
    assert got.value > 0.01  # a real difference: the test can fail
    biased = cmmd(torch.from_numpy(x), torch.from_numpy(y), estimator="biased")
    assert biased.value == pytest.approx(_google_research_formula(x, y), rel=1e-9, abs=1e-9)
    assert biased.value != pytest.approx(cmmd(torch.from_numpy(x), torch.from_numpy(y)).value, rel=1e-6)
    assert got.extra["sigma"] == 10.0 and got.extra["scale"] == 1000.0 and got.extra["estimator"] == "unbiased"


def test_identical_distributions_near_zero_and_scale_is_linear():
    x, y = _embeddings(200, 8, 2), _embeddings(200, 8, 3)
    same = cmmd(torch.from_numpy(x), torch.from_numpy(y))
    far = cmmd(torch.from_numpy(x), torch.from_numpy(_embeddings(200, 8, 4, shift=1.0)))
    assert abs(same.value) < 3 * same.std and far.value > 10 * far.std
    raw = cmmd(torch.from_numpy(x), torch.from_numpy(y), scale=1.0)
    assert same.value == pytest.approx(1000 * raw.value, rel=1e-12)
    other_sigma = cmmd(torch.from_numpy(x), torch.from_numpy(_embeddings(200, 8, 4, shift=1.0)), sigma=1.0)
    assert other_sigma.value == pytest.approx(
        _unbiased_direct(x, _embeddings(200, 8, 4, shift=1.0), sigma=1.0), rel=1e-9)


def test_fail_closed():
    x = torch.from_numpy(_embeddings(10, 4, 0))
    with pytest.raises(DataError, match="dimensions differ"):
        cmmd(x, torch.from_numpy(_embeddings(10, 5, 1)))
    bad = x.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(DataError, match="NaN"):
        cmmd(bad, x)
    with pytest.raises(DataError, match="at least 2"):
        cmmd(x[:1], x)
    with pytest.raises(UsageError, match="estimator"):
        cmmd(x, x, estimator="v")
    with pytest.raises(UsageError, match="positive"):
        cmmd(x, x, sigma=0.0)
