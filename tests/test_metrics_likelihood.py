"""NLL / bits per dim: uniform model = 8 bpd exactly; factorised Gaussians match their closed forms; kinds."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from dgmbench.errors import ModelError
from dgmbench.metrics.likelihood import likelihood_metrics
from dgmbench.units import dequantize, unit_scale_to_8bit_nll


def _uint8_images(n=64, shape=(1, 6, 6), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *shape), generator=g).float() / 255.0


class Uniform:
    """P(x) = 256^-D; returns float32 like most models (``dtype`` float64 for a tight check)."""

    def __init__(self, dtype=torch.float32):
        self.dtype = dtype

    def log_likelihood(self, x):
        return torch.full((x.shape[0],), -x[0].numel() * math.log(256.0), dtype=self.dtype), "exact"


class DiscretisedGaussian:
    """Each 8-bit pixel k has probability Phi((k+1-m)/s) - Phi((k-m)/s) on the [0, 256) scale."""

    def __init__(self, m, s):
        self.m, self.s = m, s

    def log_likelihood(self, x):
        k = (x * 255).round().double()
        d = torch.distributions.Normal(torch.tensor(self.m, dtype=torch.float64), torch.tensor(self.s, dtype=torch.float64))
        p = d.cdf(k + 1) - d.cdf(k)
        return torch.log(p).flatten(1).sum(1), "exact"


class DequantisedGaussian:
    """A continuous N(mu, s^2) density per pixel on [0, 1), scored on uniformly dequantised data: a bound."""

    def __init__(self, mu, s):
        self.mu, self.s = mu, s

    def log_likelihood(self, x):
        y = dequantize(x).double()
        lp = torch.distributions.Normal(self.mu, self.s).log_prob(y).flatten(1).sum(1)
        return -unit_scale_to_8bit_nll(-lp, x[0].numel()), "bound"


def test_uniform_model_scores_exactly_8_bpd():
    for shape in [(1, 6, 6), (3, 4, 5)]:
        nll, bpd = likelihood_metrics(Uniform(torch.float64), _uint8_images(shape=shape), batch_size=10)
        assert bpd.value == pytest.approx(8.0, abs=1e-12)
        _, bpd32 = likelihood_metrics(Uniform(), _uint8_images(shape=shape), batch_size=10)
        assert f"{bpd32.value:.3f}" == "8.000" and bpd32.value == pytest.approx(8.0, abs=1e-6)
        assert nll.value == pytest.approx(np.prod(shape) * math.log(256.0))
        assert bpd.kind == nll.kind == "exact" and bpd.unit == "bits/dim" and nll.unit == "nats"


def test_discretised_gaussian_matches_scipy():
    x = _uint8_images(n=50)
    m, s = 120.0, 40.0
    nll, bpd = likelihood_metrics(DiscretisedGaussian(m, s), x, batch_size=16)
    k = np.round(x.numpy() * 255).reshape(50, -1)
    direct = -np.log(norm.cdf((k + 1 - m) / s) - norm.cdf((k - m) / s)).sum(1)
    # (torch's erf-based cdf differences lose ~1e-8 relative in the tails against scipy's ndtr)
    assert nll.value == pytest.approx(direct.mean(), rel=1e-7)
    assert bpd.value == pytest.approx(direct.mean() / (36 * math.log(2)), rel=1e-7)
    assert nll.std == pytest.approx(direct.std(ddof=1) / math.sqrt(50), rel=1e-6)


def test_dequantised_gaussian_matches_closed_form_expectation():
    # E_u[-log N((k+u)/256; mu, s^2)] = 0.5 log(2 pi s^2) + (((k+0.5)/256 - mu)^2 + 1/(12 256^2)) / (2 s^2);
    # the 8-bit NLL adds log 256 per dimension.
    x = _uint8_images(n=400, shape=(1, 8, 8), seed=3)
    mu, s = 0.45, 0.3
    nll, bpd = likelihood_metrics(DequantisedGaussian(mu, s), x, batch_size=100, seed=0)
    k = np.round(x.numpy() * 255).reshape(400, -1)
    per_dim = 0.5 * math.log(2 * math.pi * s**2) + (((k + 0.5) / 256 - mu) ** 2 + 1 / (12 * 256**2)) / (2 * s**2)
    expected = (per_dim + math.log(256)).sum(1).mean()
    # only u is random: its noise on the mean is about 0.0015 nats here (4 std = 0.006)
    assert abs(nll.value - expected) < 0.006
    assert bpd.kind == "bound"
    again = likelihood_metrics(DequantisedGaussian(mu, s), x, batch_size=100, seed=0)
    assert again[0].value == nll.value  # seeded dequantisation
    other = likelihood_metrics(DequantisedGaussian(mu, s), x, batch_size=100, seed=1)
    assert other[0].value != nll.value


def test_points_get_nll_only():
    class StdNormal2D:
        def log_likelihood(self, x):
            return torch.distributions.Normal(0.0, 1.0).log_prob(x).sum(1), "exact"

    x = torch.zeros(10, 2)
    out = likelihood_metrics(StdNormal2D(), x)
    assert [m.name for m in out] == ["nll"]
    assert out[0].value == pytest.approx(math.log(2 * math.pi))


def test_bad_models():
    x = _uint8_images(n=4)

    class BadKind:
        def log_likelihood(self, x):
            return torch.zeros(x.shape[0]), "approximately"

    class WrongLength:
        def log_likelihood(self, x):
            return torch.zeros(1), "exact"

    class NaNs:
        def log_likelihood(self, x):
            return torch.full((x.shape[0],), float("nan")), "exact"

    with pytest.raises(ModelError, match="kind 'approximately'"):
        likelihood_metrics(BadKind(), x)
    with pytest.raises(ModelError, match="one log-likelihood per sample"):
        likelihood_metrics(WrongLength(), x)
    with pytest.raises(ModelError, match="non-finite"):
        likelihood_metrics(NaNs(), x)
    with pytest.raises(ModelError, match="no log_likelihood"):
        likelihood_metrics(object(), x)


class UniformOnGrid:
    """P = L^-D over the L-level image (round(x (L - 1))): bits/dim of that grid are log2 L exactly."""

    def __init__(self, levels):
        self.likelihood_levels = levels

    def log_likelihood(self, x):
        return torch.full((x.shape[0],), -x[0].numel() * math.log(self.likelihood_levels), dtype=torch.float64), "exact"


def test_bits_per_dim_on_a_coarser_grid_state_the_grid():
    # a 17-level likelihood (digits' grey levels) is not 8-bit bits/dim: its value is log2 17 = 4.09 for the
    # uniform model (8 on the 8-bit grid); the Record's unit, note and extra say which grid
    x = torch.randint(0, 17, (40, 1, 8, 8), generator=torch.Generator().manual_seed(0)).float() / 16
    _, bpd = likelihood_metrics(UniformOnGrid(17), x, batch_size=16)
    assert bpd.value == pytest.approx(math.log2(17), abs=1e-12)
    assert bpd.unit == "bits/dim on a 17-level grid" and bpd.extra["grid_levels"] == 17
    assert "17-level image" in bpd.note and "not comparable with 8-bit" in bpd.note
    _, bpd8 = likelihood_metrics(UniformOnGrid(256), x, batch_size=16)
    assert bpd8.value == pytest.approx(8.0, abs=1e-12) and bpd8.unit == "bits/dim" and bpd8.note is None
    with pytest.raises(ModelError, match="likelihood_levels must be an integer >= 2"):
        likelihood_metrics(UniformOnGrid(1), x)


def test_pixelcnn_and_vae_with_fewer_levels_label_their_grid():
    from baselines.autoregressive.pixelcnn import PixelCNN
    from baselines.vae.model import ConvVAE

    x = torch.randint(0, 17, (4, 1, 8, 8), generator=torch.Generator().manual_seed(1)).float() / 16
    for cls, cfg in ((PixelCNN, {"hidden": 8, "layers": 1}), (ConvVAE, {"channels": [8], "hidden": 16, "latent_dim": 2})):
        for levels, unit in ((17, "bits/dim on a 17-level grid"), (256, "bits/dim")):
            m = cls({**cfg, "levels": levels}, (1, 8, 8)).eval()
            _, bpd = likelihood_metrics(m, x, batch_size=4)
            assert bpd.unit == unit and bpd.extra["grid_levels"] == levels, (cls.__name__, levels)


class Given:
    """Returns given per-item log-likelihoods (nats), in order."""

    def __init__(self, ll, kind="exact"):
        self.ll, self.kind, self.i = torch.as_tensor(ll, dtype=torch.float64), kind, 0

    def log_likelihood(self, x):
        out = self.ll[self.i:self.i + x.shape[0]]
        self.i += x.shape[0]
        return out, self.kind


@pytest.mark.parametrize("ll", [
    [-3.5, -3.7, -1e5, -3.6],  # even n: numpy's median is the mean of the two middle values (torch's is the lower)
    [2.0, -1.0, 0.5, -1e6, 7.25],
])
def test_nll_extra_median_is_numpys_median_over_items(ll):
    """A few items with near-zero density dominate the mean NLL, not the median per item."""
    nll_items = -np.asarray(ll)
    out = likelihood_metrics(Given(ll), torch.zeros(len(ll), 2), batch_size=3)
    assert out[0].value == pytest.approx(nll_items.mean(), rel=1e-12)
    assert out[0].extra["median"] == pytest.approx(np.median(nll_items), rel=1e-12)
    if len(ll) % 2 == 0:  # torch.median is the lower middle value: not the convention
        assert out[0].extra["median"] != pytest.approx(float(torch.tensor(nll_items).median()))


def test_bpd_extra_median_is_the_median_nll_in_bits_per_dim():
    x = _uint8_images(n=4, shape=(1, 2, 2))
    ll = [-10.0, -12.0, -11.0, -500.0]
    out = {m.name: m for m in likelihood_metrics(Given(ll), x)}
    assert out["bpd"].extra["median"] == pytest.approx(np.median(-np.asarray(ll)) / (4 * math.log(2)), rel=1e-12)
