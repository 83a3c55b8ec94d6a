"""Parzen-window log-likelihood against a direct scipy computation; bandwidth choice; bits/dim."""

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from dgmbench.errors import DataError
from dgmbench.metrics.kde import (
    kde_bits_per_dim,
    kde_log_likelihood,
    kde_metric_values,
    kde_val_test_split,
    parzen_log_likelihood,
)


def _scipy_parzen(x, samples, sigma):
    comps = np.stack([multivariate_normal(mean=s, cov=sigma**2 * np.eye(len(s))).logpdf(x) for s in samples], axis=1)
    return logsumexp(comps, axis=1) - math.log(len(samples))


def test_matches_scipy_mixture():
    rng = np.random.default_rng(0)
    samples, x = rng.normal(size=(50, 3)), rng.normal(size=(20, 3)) * 1.5
    for sigma in (0.1, 0.7, 3.0):
        ours = parzen_log_likelihood(torch.from_numpy(x), torch.from_numpy(samples), sigma).numpy()
        np.testing.assert_allclose(ours, _scipy_parzen(x, samples, sigma), rtol=1e-10, atol=1e-10)


def test_bandwidth_chosen_on_validation_and_test_scored():
    rng = np.random.default_rng(1)
    samples, val, test = rng.normal(size=(200, 2)), rng.normal(size=(100, 2)), rng.normal(size=(150, 2))
    grid = np.geomspace(0.05, 2.0, 12)
    res = kde_log_likelihood(torch.from_numpy(samples), torch.from_numpy(val), torch.from_numpy(test), grid=grid)
    val_scores = [_scipy_parzen(val, samples, g).mean() for g in grid]
    best = grid[int(np.argmax(val_scores))]
    assert res.sigma == pytest.approx(best)
    direct = _scipy_parzen(test, samples, best)
    assert res.mean_ll == pytest.approx(direct.mean(), rel=1e-10)
    assert res.stderr == pytest.approx(direct.std(ddof=1) / math.sqrt(150), rel=1e-8)
    # a standard normal's entropy bounds the achievable mean log-likelihood from above (in expectation)
    assert res.mean_ll < -math.log(2 * math.pi * math.e) + 0.2
    assert best not in (grid[0], grid[-1])


def test_bits_per_dim_convention_and_metric_values():
    # a log-density on [0,1]^D of 0 (uniform) is 8 bits/dim on the 8-bit scale
    assert kde_bits_per_dim(0.0, 64) == pytest.approx(8.0)
    g = torch.Generator().manual_seed(0)
    imgs = torch.rand(60, 1, 4, 4, generator=g)
    res = kde_log_likelihood(imgs[:30], imgs[30:45], imgs[45:])
    ll, bpd = kde_metric_values(res, eight_bit=True)
    assert ll.kind == bpd.kind == "estimate" and ll.unit == "nats" and bpd.unit == "bits/dim"
    assert bpd.value == pytest.approx((-res.mean_ll + 16 * math.log(256)) / (16 * math.log(2)))
    assert bpd.ci_low < bpd.value < bpd.ci_high
    assert len(kde_metric_values(res, eight_bit=False)) == 1


def test_edge_of_grid_is_noted_and_errors():
    rng = np.random.default_rng(2)
    s, v = torch.from_numpy(rng.normal(size=(30, 2))), torch.from_numpy(rng.normal(size=(10, 2)))
    t = torch.from_numpy(rng.normal(size=(10, 2)))
    res = kde_log_likelihood(s, v, t, grid=[1e-3, 2e-3])
    assert "edge of the grid" in kde_metric_values(res, eight_bit=False)[0].note
    with pytest.raises(DataError, match="dimensions differ"):
        kde_log_likelihood(s, v[:, :1], v)
    with pytest.raises(DataError, match="positive"):
        kde_log_likelihood(s, v, t, grid=[0.0, 1.0])
    with pytest.raises(DataError, match="NaN"):
        kde_log_likelihood(s, v, torch.full((3, 2), float("nan")))
    with pytest.raises(DataError, match="also a validation point"):
        kde_log_likelihood(s, v, v)


def test_bandwidth_never_chosen_on_scored_points():
    # test points that are validation points are dropped before scoring (and counted):
    # the mean equals a direct computation on the remaining test points alone
    rng = np.random.default_rng(3)
    samples, val, extra = rng.normal(size=(80, 2)), rng.normal(size=(40, 2)), rng.normal(size=(25, 2))
    test = np.concatenate([val[:15], extra])
    grid = np.geomspace(0.05, 2.0, 10)
    res = kde_log_likelihood(torch.from_numpy(samples), torch.from_numpy(val), torch.from_numpy(test), grid=grid)
    assert res.n_dropped == 15 and res.n_test == 25
    assert res.mean_ll == pytest.approx(_scipy_parzen(extra, samples, res.sigma).mean(), rel=1e-10)
    assert "not scored" in kde_metric_values(res, eight_bit=False)[0].note
    # one set cut into disjoint halves by index
    pts = torch.from_numpy(rng.normal(size=(31, 2)))
    va, te = kde_val_test_split(pts, seed=1)
    assert va.shape[0] + te.shape[0] == 31
    assert not set(map(tuple, va.tolist())) & set(map(tuple, te.tolist()))


def test_discrete_test_points_are_dequantised():
    # 8-bit data with K equally likely distinct images in D dims: any density q on the dequantised
    # scale has E[-log2 q(y)] / D + 8 >= H(X) / D = log2(K) / D bits/dim (>= 0). Without
    # dequantisation a narrow kernel on the exact images gives a negative bits/dim.
    rng = np.random.default_rng(4)
    k, d = 4, 6
    atoms = rng.integers(0, 256, size=(k, d)) / 255.0
    draw = lambda n: torch.from_numpy(atoms[rng.integers(0, k, size=n)])  # noqa: E731
    samples, val, test = draw(400), draw(200), draw(300)
    grid = np.geomspace(1e-4, 0.5, 30)
    raw = kde_log_likelihood(samples, val, test, grid=grid, dequantize=False)
    assert kde_bits_per_dim(raw.mean_ll, d) < 0  # the bug: a "likelihood" better than the entropy bound
    res = kde_log_likelihood(samples, val, test, grid=grid)  # auto-detects the 8-bit grid
    assert res.dequantized
    bound = math.log2(k) / d
    assert kde_bits_per_dim(res.mean_ll, d) >= bound - 0.05
    # and it is close to the bound: the best density is uniform on each occupied 8-bit bin
    assert kde_bits_per_dim(res.mean_ll, d) < bound + 1.5
