"""VAE baselines: ELBO and IWAE-k against the closed-form marginal likelihood of a
linear-Gaussian VAE, monotonicity of IWAE in k, a short digits run beating the uniform model,
protocol round trip."""

from __future__ import annotations

import math

import pytest
import torch
from baseline_checks import check_seeded_8bit_samples, seeded_generator

from baselines.checkpoint import load_baseline
from baselines.train import train_preset
from baselines.vae import LIKELIHOOD_KIND, PRESETS, ConvVAE, PointVAE, build_model
from dgmbench.data import get_dataset
from dgmbench.data.registry import dataset_info
from dgmbench.errors import UsageError
from dgmbench.protocol import GenerativeModel, likelihood_kind, load_model

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


D = 3  # data dimension of the linear-Gaussian model


def linear_gaussian(latent_dim, *, seed=0, mean_noise=0.0, logvar_shift=0.0):
    """A PointVAE with no hidden layers: p(z) = N(0, I), p(x|z) = N(W z + b, diag(s^2)), so
    p(x) = N(b, W W^T + diag(s^2)). The encoder is the exact posterior's mean map (plus
    ``mean_noise`` times a random matrix) and diagonal log-variances (plus ``logvar_shift``);
    with a 1-d latent and no perturbation it is the exact posterior."""
    g = torch.Generator().manual_seed(seed)
    model = build_model({"hidden": [], "latent_dim": latent_dim}, (D,)).double().eval()
    w = torch.randn(D, latent_dim, generator=g, dtype=torch.float64)
    b = torch.randn(D, generator=g, dtype=torch.float64)
    s = 0.3 + torch.rand(D, generator=g, dtype=torch.float64)
    post_cov = torch.linalg.inv(torch.eye(latent_dim, dtype=torch.float64) + w.T @ torch.diag(s ** -2) @ w)
    a = post_cov @ w.T @ torch.diag(s ** -2)  # posterior mean = a (x - b)
    enc = model.encoder[0]
    with torch.no_grad():
        model.decoder[0].weight.copy_(w)
        model.decoder[0].bias.copy_(b)
        model.log_std.copy_(torch.log(s))
        enc.weight.zero_()
        enc.weight[:latent_dim] = a + mean_noise * torch.randn(a.shape, generator=g, dtype=torch.float64)
        enc.bias[:latent_dim] = -a @ b
        enc.bias[latent_dim:] = torch.log(torch.diagonal(post_cov)) + logvar_shift
    cov = w @ w.T + torch.diag(s ** 2)
    marginal = torch.distributions.MultivariateNormal(b, covariance_matrix=cov)
    return model, marginal


def test_exact_posterior_makes_every_bound_tight():
    """With q(z|x) = p(z|x) every importance weight equals p(x): IWAE-k = log p(x) for every
    draw, and E[ELBO] = log p(x)."""
    model, marginal = linear_gaussian(1)
    x = marginal.sample((20,))
    log_px = marginal.log_prob(x)
    g = torch.Generator().manual_seed(0)
    for k in (1, 7):
        torch.testing.assert_close(model.iwae(x, k, generator=g), log_px, rtol=0, atol=1e-10)
    # the ELBO estimator (Monte Carlo reconstruction, closed-form KL) is noisy, its expectation exact
    torch.testing.assert_close(model.elbo(x, samples=20_000, generator=g), log_px, rtol=0, atol=0.02)
    ll, kind = model.log_likelihood(x, k=5, generator=g)
    assert kind == "bound" == LIKELIHOOD_KIND
    torch.testing.assert_close(ll, log_px, rtol=0, atol=1e-10)


def test_elbo_matches_its_closed_form():
    """For the linear-Gaussian VAE, E_q[log p(x|z)] has a closed form:
    log N(x; W mu + b, S) - 1/2 sum_i (W diag(v) W^T)_ii / s_i^2."""
    model, marginal = linear_gaussian(2, mean_noise=0.3, logvar_shift=-0.5)
    torch.manual_seed(0)
    x = marginal.sample((5,))
    mu, logvar = model.encode(x, None)
    w, b, s = model.decoder[0].weight, model.decoder[0].bias, model.log_std.exp()
    rec = (torch.distributions.Normal(mu @ w.T + b, s).log_prob(x).sum(1)
           - 0.5 * ((w ** 2) @ logvar.exp().T).T.div(s ** 2).sum(1))
    kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)
    closed = (rec - kl).detach()
    est = model.elbo(x, samples=20_000, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(est, closed, rtol=0, atol=0.03)
    assert (closed < marginal.log_prob(x) - 0.05).all()  # the suboptimal encoder leaves a visible gap


def test_iwae_is_monotone_in_k_above_the_elbo_and_converges_to_log_px():
    model, marginal = linear_gaussian(2, seed=3, mean_noise=0.05, logvar_shift=0.5)
    torch.manual_seed(0)
    x = marginal.sample((8,))
    log_px = marginal.log_prob(x)
    g = torch.Generator().manual_seed(0)
    reps = 400
    xr = x.repeat(reps, 1)
    elbo_draws = model.elbo(xr, generator=g).view(reps, -1)
    elbo, elbo_se = elbo_draws.mean(0), elbo_draws.std(0) / math.sqrt(reps)
    means, ses = [], []
    for k in (1, 4, 16, 64):
        v = model.iwae(xr, k, generator=g).view(reps, -1)
        means.append(v.mean(0))
        ses.append(v.std(0) / math.sqrt(reps))
    # IWAE-1 has the ELBO's expectation
    assert ((means[0] - elbo).abs() < 4 * torch.sqrt(ses[0] ** 2 + elbo_se ** 2)).all()
    for lo, hi, se_lo, se_hi in zip(means, means[1:], ses, ses[1:]):
        assert (hi - lo > -3 * torch.sqrt(se_lo ** 2 + se_hi ** 2)).all()  # non-decreasing within noise
    gain = float((means[-1] - means[0]).mean())
    gain_se = float(torch.sqrt((ses[0] ** 2 + ses[-1] ** 2).sum()) / len(x))
    assert gain > 0.1 and gain > 5 * gain_se, (gain, gain_se)  # strictly better than the ELBO on average
    assert (means[-1] <= log_px + 4 * ses[-1]).all()  # still a lower bound
    big = model.iwae(x.repeat(4, 1), 20_000, generator=g).view(4, -1).mean(0)
    torch.testing.assert_close(big, log_px, rtol=0, atol=0.02)
    assert ((log_px - elbo) > 0.05).all()  # while the ELBO is visibly below


def test_bad_configs_and_labels_are_usage_errors():
    with pytest.raises(UsageError, match="divisible by 8"):
        build_model({"channels": [8, 8, 8]}, (1, 28, 28))
    with pytest.raises(UsageError, match="sample_mode"):
        build_model({"sample_mode": "mode"}, (1, 8, 8))
    with pytest.raises(UsageError, match="images .* or points"):
        build_model({}, (1, 2))
    cond = build_model({"channels": [8, 8], "hidden": 16, "latent_dim": 2}, (1, 8, 8), num_classes=10)
    with pytest.raises(UsageError, match="pass labels"):
        cond.sample(3)
    with pytest.raises(UsageError, match=r"shape \(3,\)"):
        cond.sample(3, labels=torch.zeros(4, dtype=torch.long))
    s = cond.sample(3, labels=torch.tensor([1, 2, 3]), generator=torch.Generator().manual_seed(0))
    assert s.shape == (3, 1, 8, 8)
    with pytest.raises(UsageError, match="k >= 1"):
        cond.log_likelihood(s, k=-1, labels=torch.tensor([1, 2, 3]))
    with pytest.raises(UsageError, match="not class-conditional"):
        build_model({}, (2,)).sample(2, labels=torch.zeros(2, dtype=torch.long))


def test_presets_are_well_formed():
    for spec in PRESETS.values():
        nc = 10 if spec["model"].get("conditional") else None
        model = build_model(spec["model"], dataset_info(spec["dataset"]).shape, nc)
        assert isinstance(model, ConvVAE if model.is_image else PointVAE)
        assert model.likelihood_kind == "bound"
    assert {"digits", "digits-tiny", "mnist", "mnist-gpu", "cifar10", "ring8", "ring8-tiny", "grid25"} <= set(PRESETS)
    assert build_model(PRESETS["digits"]["model"], (1, 8, 8)).eval_k == 1000  # the evaluation default


# --- training: a short digits run beats the uniform model; the protocol round trip ----------

MARGIN_BITS = 4.0  # test-set IWAE-16 bpd <= 8 - 4 after 80 steps of digits-tiny (full preset: RESULTS.md)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    ckpt = str(tmp_path_factory.mktemp("vae") / "vae-digits-tiny.pt")
    res = train_preset("vae", "digits-tiny", checkpoint=ckpt, progress=False, overrides={"train": {"steps": 80}})
    return res, ckpt


@pytest.mark.slow
def test_short_digits_run_beats_uniform_by_margin_and_iwae_beats_elbo(digits_run):
    res, _ = digits_run
    x = get_dataset("digits", "test").data
    g = torch.Generator().manual_seed(0)
    iwae, kind = res.model.log_likelihood(x, k=16, generator=g)
    elbo = res.model.elbo(x, generator=g)
    bpd = float(-iwae.mean() / (64 * math.log(2)))
    assert kind == "bound"
    assert bpd < 8.0 - MARGIN_BITS, bpd
    assert float(iwae.mean()) > float(elbo.mean())


@pytest.mark.slow
def test_sampling_checkpoint_round_trip_and_protocol(digits_run):
    res, ckpt = digits_run
    s1 = check_seeded_8bit_samples(res.model, 6, (1, 8, 8))
    g = seeded_generator
    loaded = load_baseline(ckpt)
    loaded.config["sample_batch_size"] = 4  # all noise is drawn up front: batching does not change samples
    assert isinstance(loaded, ConvVAE) and loaded.nfe_per_sample == 1.0
    assert torch.equal(loaded.sample(6, generator=g()), s1)
    model = load_model(ckpt)
    assert isinstance(model, GenerativeModel) and likelihood_kind(model) == "bound"
    x = get_dataset("digits", "test").data[:4]
    torch.manual_seed(0)
    a = model.log_likelihood(x, k=10)[0]
    torch.manual_seed(0)
    b = res.model.log_likelihood(x, k=10)[0]
    torch.testing.assert_close(a, b)
    mean_mode = build_model({**res.model.config, "sample_mode": "mean"}, (1, 8, 8))
    mean_mode.load_state_dict(res.model.state_dict())
    m = mean_mode.eval().sample(6, generator=g())
    assert m.shape == s1.shape and torch.equal((m * 255).round() / 255, m)


def test_point_vae_trains_on_ring8(tmp_path):
    ckpt = str(tmp_path / "vae-ring8.pt")
    res = train_preset("vae", "ring8-tiny", checkpoint=ckpt, progress=False, overrides={"train": {"steps": 150}})
    pts = get_dataset("ring8", "test").data[:300]
    torch.manual_seed(0)
    ll, kind = load_model(ckpt).log_likelihood(pts, k=20)
    assert kind == "bound" and ll.shape == (300,) and torch.isfinite(ll).all()
    assert float(ll.mean()) > -2.0  # a 2-D standard normal scores about -2.8 nats on ring8
    s = res.model.sample(10, generator=torch.Generator().manual_seed(0))
    assert s.shape == (10, 2)
