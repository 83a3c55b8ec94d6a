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
    res = kde_log_likelihood(s, v, v, grid=[1e-3, 2e-3])
    assert "edge of the grid" in kde_metric_values(res, eight_bit=False)[0].note
    with pytest.raises(DataError, match="dimensions differ"):
        kde_log_likelihood(s, v[:, :1], v)
    with pytest.raises(DataError, match="positive"):
        kde_log_likelihood(s, v, v, grid=[0.0, 1.0])
    with pytest.raises(DataError, match="NaN"):
        kde_log_likelihood(s, v, torch.full((3, 2), float("nan")))
