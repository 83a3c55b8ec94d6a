"""Autoregressive baselines: probabilities of every configuration of a tiny discrete space sum
to 1, causality of the masks, the sampler draws from the model's own distribution, MADE's
density integrates to 1, a short digits run beats the uniform model, protocol round trip."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from baseline_checks import check_seeded_8bit_samples, seeded_generator
from scipy import stats

from baselines.autoregressive import LIKELIHOOD_KIND, MADE, PRESETS, PixelCNN, build_model
from baselines.checkpoint import load_baseline
from baselines.train import train_preset
from dgmbench.data import get_dataset
from dgmbench.data.registry import dataset_info
from dgmbench.errors import UsageError
from dgmbench.protocol import GenerativeModel, likelihood_kind, load_model

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def perturbed(model, scale=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model.eval()


def all_images(channels, levels, size=2):
    ks = torch.tensor(list(itertools.product(range(levels), repeat=channels * size * size)))
    return ks.view(-1, channels, size, size).float() / (levels - 1)


@pytest.mark.parametrize("channels,levels", [(1, 4), (3, 2)])
def test_probabilities_of_all_configurations_sum_to_one(channels, levels):
    torch.manual_seed(0)
    model = perturbed(build_model({"levels": levels, "hidden": 6, "layers": 3, "kernel": 3}, (channels, 2, 2)))
    x = all_images(channels, levels)
    assert x.shape[0] == levels ** (channels * 4)
    ll, kind = model.log_likelihood(x)
    assert kind == "exact" == LIKELIHOOD_KIND
    assert abs(float(torch.logsumexp(ll.double(), 0))) < 1e-5
    assert ll.std() > 0.1  # not a uniform distribution: the check is not trivially met


def test_class_conditional_probabilities_sum_to_one_per_class():
    torch.manual_seed(0)
    model = perturbed(build_model({"levels": 3, "hidden": 8, "layers": 2, "kernel": 3, "conditional": True},
                                  (1, 2, 2), num_classes=3))
    x = all_images(1, 3)
    totals, lls = [], []
    for c in range(3):
        ll, _ = model.log_likelihood(x, labels=torch.full((x.shape[0],), c))
        totals.append(float(torch.logsumexp(ll.double(), 0)))
        lls.append(ll)
    assert max(abs(t) for t in totals) < 1e-5
    assert (lls[0] - lls[1]).abs().max() > 1e-3  # the label changes the distribution
    with pytest.raises(UsageError, match="pass labels"):
        model.log_likelihood(x)


def test_masks_are_causal():
    """d logits(c, i, j) / d input(c', i', j') is zero unless (i', j', c') comes before (i, j, c)
    in raster-then-channel order, and non-zero for the immediate neighbours before it."""
    torch.manual_seed(0)
    c, s = 3, 5
    model = perturbed(build_model({"levels": 4, "hidden": 12, "layers": 3, "kernel": 3}, (c, s, s)).double(), 0.1)
    order = lambda ch, i, j: (i * s + j) * c + ch  # noqa: E731
    for ch, i, j in [(0, 2, 2), (1, 2, 2), (2, 2, 2), (0, 0, 0), (2, 4, 4), (1, 3, 0)]:
        x = torch.rand(1, c, s, s, dtype=torch.float64, requires_grad=True)
        model.net(x)[0, ch, :, i, j].sum().backward()
        g = x.grad[0].abs()
        for cc, ii, jj in itertools.product(range(c), range(s), range(s)):
            if order(cc, ii, jj) >= order(ch, i, j):
                assert g[cc, ii, jj] == 0, ((ch, i, j), (cc, ii, jj))
        if j > 0:
            assert g[:, i, j - 1].min() > 0  # the pixel to the left
        if i > 0:
            assert g[:, i - 1, j].min() > 0  # the pixel above
        if ch > 0:
            assert g[:ch, i, j].min() > 0  # earlier channels of the same pixel


def test_sampler_draws_from_the_model_distribution():
    """Chi-square goodness of fit of 20,000 samples against the model's own probabilities."""
    torch.manual_seed(1)
    model = perturbed(build_model({"levels": 3, "hidden": 6, "layers": 2, "kernel": 3}, (1, 2, 2)), 0.5)
    x = all_images(1, 3)
    probs = model.log_likelihood(x)[0].double().exp()
    n = 20_000
    samples = model.sample(n, generator=torch.Generator().manual_seed(0))
    assert model.nfe_per_sample == 4
    code = ((samples * 2).round().long().view(n, 4) * torch.tensor([27, 9, 3, 1])).sum(1)
    counts = torch.bincount(code, minlength=81).double()
    keep = probs * n >= 5  # cells with a small expected count are pooled into one
    expected = torch.cat([probs[keep] * n, (probs[~keep] * n).sum().view(1)])
    observed = torch.cat([counts[keep], counts[~keep].sum().view(1)])
    if expected[-1] < 5:
        expected, observed = expected[:-1], observed[:-1]
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    dof = expected.shape[0] - 1
    assert dof > 20
    assert stats.chi2.sf(chi2, dof) > 1e-3, chi2


@pytest.mark.parametrize("kernel,layers", [(3, 3), (5, 2)])
def test_row_logits_equal_the_full_network_and_need_every_receptive_row(kernel, layers, monkeypatch):
    """The sampler's cropped pass (rows i - receptive_rows .. i, head on row i) gives the
    full network's logits of row i; cropping one row more than the receptive field does not."""
    torch.manual_seed(0)
    c, h, w = 3, 11, 6
    model = perturbed(build_model({"levels": 5, "hidden": 6, "layers": layers, "kernel": kernel, "conditional": True},
                                  (c, h, w), num_classes=4).double(), 0.2)
    assert model.receptive_rows == layers * (kernel // 2)
    k = torch.randint(0, 5, (3, c, h, w))
    y = torch.tensor([0, 3, 1])
    full = model.logits(k, y)
    for i in range(h):
        torch.testing.assert_close(model.row_logits(k, i, y), full[..., i, :], rtol=0, atol=1e-12)
    monkeypatch.setattr(PixelCNN, "receptive_rows", property(lambda self: layers * (kernel // 2) - 1))
    i = h - 1
    assert (model.row_logits(k, i, y) - full[..., i, :]).abs().max() > 1e-6


def test_cropped_sampler_equals_sampling_with_the_full_network():
    """Same uniforms, same images as the plain sampler that runs the whole network at every step."""
    torch.manual_seed(2)
    c, h, w, levels = 1, 9, 5, 4
    model = perturbed(build_model({"levels": levels, "hidden": 4, "layers": 2, "kernel": 3}, (c, h, w)).double(), 0.5)
    got = model.sample(6, generator=torch.Generator().manual_seed(3))
    u = torch.rand((6, c, h, w), generator=torch.Generator().manual_seed(3)).double()
    k = torch.zeros((6, c, h, w), dtype=torch.long)
    with torch.no_grad():
        for i, j in itertools.product(range(h), range(w)):
            cdf = torch.softmax(model.logits(k)[:, 0, :, i, j], dim=1).cumsum(1)
            k[:, 0, i, j] = torch.searchsorted(cdf, u[:, 0, i, j, None].contiguous()).squeeze(1).clamp(max=levels - 1)
    assert torch.equal(got, k.float() / (levels - 1))
    assert got.std() > 0.1  # not a constant image


def test_made_density_integrates_to_one_and_is_autoregressive():
    torch.manual_seed(0)
    model = perturbed(build_model({"hidden": [16, 16], "components": 3}, (2,)).double(), 0.3)
    h = 0.04
    ax = torch.arange(-10, 10, h, dtype=torch.float64) + h / 2
    grid = torch.stack(torch.meshgrid(ax, ax, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        dens = torch.cat([model.log_density(c).exp() for c in grid.split(100_000)])
    assert abs(float(dens.sum() * h * h) - 1) < 1e-3
    # p(x1) does not depend on x2: the first output's parameters ignore the second input
    x = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    logw, mu, logs = model.params(x)
    (logw[..., 0].sum() + mu[..., 0].sum() + logs[..., 0].sum()).backward()
    assert torch.all(x.grad == 0)
    # the sampler matches the density's moments (numerical integration on the grid)
    w = dens * h * h
    mean = (w[:, None] * grid).sum(0)
    s = model.sample(40_000, generator=torch.Generator().manual_seed(0)).double()
    assert model.nfe_per_sample == 2
    std = ((w[:, None] * (grid - mean) ** 2).sum(0)).sqrt()
    assert ((s.mean(0) - mean).abs() < 4 * std / math.sqrt(40_000)).all()
    torch.testing.assert_close(s.std(0), std, rtol=0.03, atol=0)


def test_bad_configs_are_usage_errors():
    with pytest.raises(UsageError, match="odd"):
        build_model({"kernel": 4}, (1, 8, 8))
    with pytest.raises(UsageError, match="divisible by the number of channels"):
        build_model({"hidden": 32}, (3, 8, 8))
    with pytest.raises(UsageError, match="images .* or points"):
        build_model({}, (2, 3))
    model = build_model({"hidden": 8, "layers": 1, "kernel": 3}, (1, 2, 2))
    with pytest.raises(UsageError, match="not class-conditional"):
        model.sample(2, labels=torch.zeros(2, dtype=torch.long))


def test_presets_are_well_formed():
    for spec in PRESETS.values():
        nc = 10 if spec["model"].get("conditional") else None
        model = build_model(spec["model"], dataset_info(spec["dataset"]).shape, nc)
        assert isinstance(model, PixelCNN if model.is_image else MADE)
    assert {"digits", "digits-tiny", "mnist", "mnist-gpu", "cifar10", "ring8", "ring8-tiny", "grid25"} <= set(PRESETS)


# --- training: a short digits run beats the uniform model; the protocol round trip ----------

MARGIN_BITS = 4.5  # test-set bpd <= 8 - 4.5 after 60 steps of digits-tiny (full preset: RESULTS.md)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    ckpt = str(tmp_path_factory.mktemp("ar") / "ar-digits-tiny.pt")
    res = train_preset("autoregressive", "digits-tiny", checkpoint=ckpt, progress=False,
                       overrides={"train": {"steps": 60}})
    return res, ckpt


@pytest.mark.slow
def test_short_digits_run_beats_uniform_by_margin(digits_run):
    res, _ = digits_run
    test = get_dataset("digits", "test")
    ll, kind = res.model.log_likelihood(test.data)
    bpd = float(-ll.mean() / (64 * math.log(2)))
    assert kind == "exact"
    assert bpd < 8.0 - MARGIN_BITS, bpd


@pytest.mark.slow
def test_sampling_checkpoint_round_trip_and_protocol(digits_run):
    res, ckpt = digits_run
    s1 = check_seeded_8bit_samples(res.model, 5, (1, 8, 8))
    g = seeded_generator
    loaded = load_baseline(ckpt)
    loaded.config["sample_batch_size"] = 4  # all noise is drawn up front: batching does not change samples
    assert isinstance(loaded, PixelCNN) and loaded.nfe_per_sample == 64
    assert torch.equal(loaded.sample(5, generator=g()), s1)
    model = load_model(ckpt)
    assert isinstance(model, GenerativeModel) and likelihood_kind(model) == "exact"
    x = get_dataset("digits", "test").data[:8]
    torch.testing.assert_close(model.log_likelihood(x)[0], res.model.log_likelihood(x)[0])


def test_made_trains_on_ring8_and_round_trips(tmp_path):
    ckpt = str(tmp_path / "made.pt")
    res = train_preset("autoregressive", "ring8-tiny", checkpoint=ckpt, progress=False,
                       overrides={"train": {"steps": 200}})
    pts = get_dataset("ring8", "test").data[:500]
    ll, kind = res.model.log_likelihood(pts)
    assert kind == "exact"
    # a 2-D standard normal has mean log-density about -2.8 nats on ring8; MADE must do far better
    assert float(ll.mean()) > 0.0, float(ll.mean())
    model = load_model(ckpt)
    assert isinstance(model, MADE)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(model.sample(50, generator=g()), res.model.sample(50, generator=g()))
    torch.testing.assert_close(model.log_likelihood(pts)[0], ll)
