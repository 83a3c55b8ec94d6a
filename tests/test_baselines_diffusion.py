"""Diffusion family (issue 6): forward process, posterior, samplers, VLB, guidance, protocol.

References are independent of the code under test: Gaussian conjugacy for the posterior,
products of (1 - beta) for the marginals, scipy's normal CDF for the discretised decoder,
the analytic optimal denoiser of Gaussian data for the VLB and the samplers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from baselines.checkpoint import load_baseline
from baselines.diffusion import PRESETS, DiffusionModel, build_model
from baselines.diffusion.gaussian import GaussianDiffusion, discretized_gaussian_log_likelihood
from baselines.diffusion.samplers import ddim_sample, ddpm_sample
from baselines.diffusion.schedules import cosine_betas, linear_betas
from baselines.train import TrainConfig, Trainer, train_preset
from dgmbench.data import DataSplit, get_dataset
from dgmbench.errors import DataError, UsageError
from dgmbench.metrics.mode_coverage import mode_coverage
from dgmbench.protocol import GenerativeModel, likelihood_kind, load_model


def gaussian_eps_fn(diffusion: GaussianDiffusion, mu: torch.Tensor, var: torch.Tensor):
    """Optimal eps-predictor E[eps | x_t] for data x0 ~ N(mu, diag(var)) (broadcast over data dims)."""
    def fn(x, t):
        ab = diffusion.alpha_bar[t].float().reshape(-1, *([1] * (x.ndim - 1)))
        return (1 - ab).sqrt() * (x - ab.sqrt() * mu) / (ab * var + 1 - ab)
    return fn


# --- forward process ---------------------------------------------------------------------
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_one_step_marginal_matches_iterated_steps(schedule):
    torch.manual_seed(0)
    T = 200
    d = GaussianDiffusion(T, schedule)
    n = 20000
    x0 = torch.tensor([1.5, -0.7]).expand(n, 2)
    for t_end in (0, 10, 60, T - 1):
        x = x0.clone()
        for s in range(t_end + 1):  # t_end + 1 single steps: x_0 -> x_{t_end}
            x = d.q_step(x, torch.full((n,), s), torch.randn(n, 2))
        t = torch.full((n,), t_end)
        y = d.q_sample(x0, t, torch.randn(n, 2))
        ab = float(torch.prod(1 - d.betas[: t_end + 1]))  # independent of alpha_bar buffers
        for a in (x, y):  # both match the closed form ...
            se_mean = math.sqrt((1 - ab) / n)
            assert torch.allclose(a.mean(0).double(), math.sqrt(ab) * x0[0].double(), atol=5 * se_mean)
            assert torch.allclose(a.var(0).double(), torch.full((2,), 1 - ab, dtype=torch.float64),
                                  rtol=5 * math.sqrt(2 / n))
        # ... and each other (two-sample test)
        assert torch.allclose(x.mean(0), y.mean(0), atol=5 * math.sqrt(2 * (1 - ab) / n))
        assert torch.allclose(x.var(0), y.var(0), rtol=5 * math.sqrt(4 / n))


def test_schedules_match_their_definitions():
    lin = linear_betas(1000)
    assert lin[0] == pytest.approx(1e-4) and lin[-1] == pytest.approx(0.02)
    T, s = 100, 0.008
    ab = torch.cumprod(1 - cosine_betas(T), 0)
    f = [math.cos(((i + 1) / T + s) / (1 + s) * math.pi / 2) ** 2 / math.cos(s / (1 + s) * math.pi / 2) ** 2 for i in range(T - 1)]
    assert torch.allclose(ab[:-1], torch.tensor(f, dtype=torch.float64), rtol=1e-9)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_posterior_matches_gaussian_conjugacy(schedule):
    d = GaussianDiffusion(50, schedule)
    g = torch.Generator().manual_seed(0)
    x0, xt = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    betas = d.betas
    for step in (1, 7, 49):
        ab_prev = float(torch.prod(1 - betas[:step]))
        a, b = 1 - float(betas[step]), float(betas[step])
        # q(x_{t-1}|x0) = N(sqrt(ab_prev) x0, 1 - ab_prev), q(x_t|x_{t-1}) = N(sqrt(a) x_{t-1}, b): Bayes
        prec = 1 / (1 - ab_prev) + a / b
        var = 1 / prec
        mean = var * (math.sqrt(ab_prev) * x0.double() / (1 - ab_prev) + math.sqrt(a) * xt.double() / b)
        m, v, logv = d.q_posterior(x0, xt, torch.full((6,), step))
        assert torch.allclose(m.double(), mean, rtol=1e-5, atol=1e-6)
        assert torch.allclose(v.double(), torch.full_like(v.double(), var), rtol=1e-5)
        assert torch.allclose(logv.exp().double(), torch.full_like(v.double(), var), rtol=1e-5)
    # t = 0: the "posterior" is the data itself
    m, v, _ = d.q_posterior(x0, xt, torch.zeros(6, dtype=torch.long))
    assert torch.allclose(m, x0, atol=1e-6) and float(v.abs().max()) == 0.0


# --- decoder -----------------------------------------------------------------------------
def test_discretized_decoder_matches_scipy_and_normalises():
    k = torch.arange(256, dtype=torch.float64)
    x = (2 * k / 255 - 1).float()
    for mean, std in ((0.1, 0.05), (-0.97, 0.01), (0.999, 0.3), (0.3, 1e-3)):
        lp = discretized_gaussian_log_likelihood(x, torch.full_like(x, mean), torch.full_like(x, 2 * math.log(std)))
        edges = np.concatenate([[-np.inf], (2 * np.arange(1, 256) - 1) / 255 - 1, [np.inf]])
        ref = np.diff(norm.cdf(edges, loc=mean, scale=std))
        nz = ref > 1e-10
        assert np.allclose(lp.double().exp().numpy()[nz], ref[nz], rtol=1e-4, atol=1e-7)
        assert float(torch.logsumexp(lp.double(), 0)) == pytest.approx(0.0, abs=1e-5)


def test_discretized_decoder_scores_off_grid_data_as_its_8bit_value():
    # the raw sklearn digits values v / 16 (17 levels) are off the 8-bit grid: the decoder must give the
    # probability of the bin of k = round(255 v / 16), i.e. of [2k/255 - 1 -+ 1/255], computed here by hand
    v = torch.arange(17, dtype=torch.float64)
    x = (2 * v / 16 - 1).float()
    k = np.round(255 * v.numpy() / 16)
    centre = 2 * k / 255 - 1
    for mean, std in ((0.13, 0.004), (-0.5, 0.02)):
        m = np.full(17, mean)
        lo = np.where(k == 0, -np.inf, centre - 1 / 255)
        hi = np.where(k == 255, np.inf, centre + 1 / 255)
        with np.errstate(divide="ignore"):
            ref = np.log(norm.cdf(hi, m, std) - norm.cdf(lo, m, std))
        lp = discretized_gaussian_log_likelihood(x, torch.full_like(x, mean), torch.full_like(x, 2 * math.log(std)))
        ok = ref > -60
        assert np.allclose(lp.double().numpy()[ok], ref[ok], rtol=1e-5), (mean, std)
    # just outside [-1, 1] is the edge value's bin, which extends to infinity
    out = discretized_gaussian_log_likelihood(torch.tensor([-1.0004, 1.0004]), torch.zeros(2), torch.zeros(2))
    assert out.double().numpy() == pytest.approx(np.log([norm.cdf(-1 + 1 / 255), norm.cdf(-1 + 1 / 255)]), rel=1e-6)


def test_vlb_reads_images_on_the_8bit_grid():
    # the whole bound (every KL term, not only the decoder) scores the 8-bit image the data round to
    m = build_model(dict(PRESETS["digits-tiny"]["model"]), (1, 8, 8), 10).eval()  # scored with the null label
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    v = torch.randint(0, 17, (3, 1, 8, 8), generator=torch.Generator().manual_seed(0)).float()
    raw, grid = v / 16, torch.round(v * 255 / 16) / 255
    assert not torch.equal(raw, grid)
    ll_raw, _ = m.log_likelihood(raw, generator=g())
    ll_grid, _ = m.log_likelihood(grid, generator=g())
    assert torch.equal(ll_raw, ll_grid)


# --- samplers ------------------------------------------------------------------------------
def _tiny_model(conditional: bool = False, T: int = 50) -> DiffusionModel:
    torch.manual_seed(0)
    m = build_model({"T": T, "net": {"hidden": 16, "depth": 1}, "sampling": {"sampler": "ddim", "steps": T, "eta": 0.0}},
                    (2,), 3 if conditional else None)
    for p in m.parameters():  # the zero output init would make eps = 0; give the net a real function
        torch.nn.init.normal_(p, std=0.3)
    return m.eval()


def test_ddim_eta0_full_steps_is_deterministic_given_x_T():
    m = _tiny_model()
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    a = m.sample_from(x_T, generator=torch.Generator().manual_seed(2))
    b = m.sample_from(x_T, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    s1 = m.sample(64, generator=torch.Generator().manual_seed(5))
    s2 = m.sample(64, generator=torch.Generator().manual_seed(5))
    assert torch.equal(s1, s2)
    # the stochastic samplers do depend on the noise after x_T
    for opts in ({"sampler": "ddpm"}, {"sampler": "ddim", "eta": 1.0}):
        m.configure_sampling(**opts)
        c = m.sample_from(x_T, generator=torch.Generator().manual_seed(2))
        d = m.sample_from(x_T, generator=torch.Generator().manual_seed(3))
        assert not torch.allclose(c, d)
        assert torch.equal(c, m.sample_from(x_T, generator=torch.Generator().manual_seed(2)))


def test_ddim_eta1_full_steps_equals_ddpm():
    m = _tiny_model()
    fn = m.eps_fn(None)
    d = GaussianDiffusion(m.diffusion.T, "linear", "fixed_small")  # DDIM(eta=1) has the posterior variance
    x_T = torch.randn(32, 2, generator=torch.Generator().manual_seed(1))
    a = ddpm_sample(d, fn, x_T, generator=torch.Generator().manual_seed(7))
    b = ddim_sample(d, fn, x_T, steps=d.T, eta=1.0, generator=torch.Generator().manual_seed(7))
    assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_samplers_with_optimal_denoiser_reproduce_gaussian_data(sampler):
    d = GaussianDiffusion(1000, "linear")
    mu, var = torch.tensor([0.5, -1.0]), torch.tensor([0.25, 2.0])
    fn = gaussian_eps_fn(d, mu, var)
    n = 6000
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(n, 2, generator=g)
    # DDIM at k = T (its ODE limit; at k = 100 its discretisation bias on this variance is about 5%)
    x = ddpm_sample(d, fn, x_T, generator=g) if sampler == "ddpm" else ddim_sample(d, fn, x_T, steps=1000, eta=0.0, generator=g)
    assert torch.allclose(x.mean(0), mu, atol=4 * float(var.max().sqrt()) / math.sqrt(n))
    assert torch.allclose(x.var(0), var, rtol=0.06)  # 4 standard errors of a variance at n = 6000 is 7%


# --- variational bound -------------------------------------------------------------------
def expected_vlb_gap(d: GaussianDiffusion, mu: np.ndarray, var: np.ndarray) -> float:
    """E[VLB] - E[NLL] (nats, summed over dims) for data N(mu, diag var) and the optimal mean,
    from the reverse factorisation of the joint: KL(q(x_{T-1}) || N(0, I)) plus, at every step,
    E KL(q(x_{t-1} | x_t) || p(x_{t-1} | x_t)); with the optimal mean only the variances differ."""
    betas = d.betas.numpy()
    ab = np.cumprod(1 - betas)
    ab_prev = np.concatenate([[1.0], ab[:-1]])
    post_var = betas * (1 - ab_prev) / (1 - ab)
    model_var = betas if d.variance == "fixed_large" else np.concatenate([[post_var[1]], post_var[1:]])
    gap = 0.0
    for v_data in var:
        v1 = ab_prev * v_data + 1 - ab_prev  # Var(x_{t-1})
        v2 = (1 - betas) * v1 + betas  # Var(x_t)
        r = (v1 - (1 - betas) * v1 ** 2 / v2) / model_var  # exact reverse variance / model variance
        gap += float(np.sum(0.5 * (r - 1 - np.log(r))))
    m_T, v_T = np.sqrt(ab[-1]) * mu, ab[-1] * var + 1 - ab[-1]
    gap += float(np.sum(0.5 * (v_T + m_T ** 2 - 1 - np.log(v_T))))
    return gap


@pytest.mark.slow
@pytest.mark.parametrize("variance", ["fixed_large", "fixed_small"])
def test_vlb_of_optimal_denoiser_on_gaussian_points_matches_true_nll_plus_analytic_gap(variance):
    d = GaussianDiffusion(1000, "linear", variance)
    mu, var = torch.tensor([0.5, -1.0]), torch.tensor([0.25, 2.0])
    g = torch.Generator().manual_seed(0)
    n = 8000  # the single-draw bound is noisy (std ~1.5 nats per sample): 4 standard errors ~ 0.065
    x0 = mu + var.sqrt() * torch.randn(n, 2, generator=g)
    vlb, terms = d.vlb_terms(gaussian_eps_fn(d, mu, var), x0, discrete=False, generator=g)
    nll = -torch.distributions.Normal(mu, var.sqrt()).log_prob(x0).sum(1)
    diff = (vlb - nll).double()
    expected = expected_vlb_gap(d, mu.double().numpy(), var.double().numpy())
    assert float(diff.mean()) == pytest.approx(expected, abs=4 * float(diff.std()) / math.sqrt(n))
    assert terms.shape == (n, 1000)
    if variance == "fixed_large":
        # DDPM's variance choice: the bound is within 0.05 nats of the true NLL (2 dims, T = 1000)
        assert 0 < expected < 0.05 and abs(float(diff.mean())) < 0.05


def test_vlb_of_optimal_denoiser_on_8bit_gaussian_images_is_close_to_true_bpd():
    """8-bit convention: log P of the discrete image, bpd = nll / (D ln 2)."""
    d = GaussianDiffusion(1000, "linear")
    mu, std = 0.1, 0.3
    g = torch.Generator().manual_seed(0)
    n, D = 200, 16
    k = ((mu + std * torch.randn(n, 1, 4, 4, generator=g) + 1) * 127.5).round().clamp(0, 255)
    x0 = 2 * k / 255 - 1
    vlb, _ = d.vlb_terms(gaussian_eps_fn(d, torch.tensor(mu), torch.tensor(std ** 2)), x0, discrete=True, generator=g)
    edges_lo = np.where(k.numpy() == 0, -np.inf, (2 * k.numpy() - 1) / 255 - 1)
    edges_hi = np.where(k.numpy() == 255, np.inf, (2 * k.numpy() + 1) / 255 - 1)
    true_nll = -np.log(norm.cdf(edges_hi, mu, std) - norm.cdf(edges_lo, mu, std)).reshape(n, -1).sum(1)
    bpd_vlb = float(vlb.mean()) / (D * math.log(2))
    bpd_true = float(true_nll.mean()) / (D * math.log(2))
    # the reference itself: about the Gaussian's differential entropy minus log(bin width), in bits
    assert bpd_true == pytest.approx(0.5 * math.log2(2 * math.pi * math.e * std ** 2) + math.log2(255 / 2), abs=0.05)
    assert abs(bpd_vlb - bpd_true) < 0.02, (bpd_vlb, bpd_true)


# --- guidance and NFE ----------------------------------------------------------------------
class RowCounter(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.inner, self.rows = net, 0

    def forward(self, x, t, y=None):
        self.rows += x.shape[0]
        return self.inner(x, t, y)


@pytest.mark.parametrize("opts", [{"sampler": "ddpm"}, {"sampler": "ddim", "steps": 7}, {"sampler": "ddim", "steps": 5, "guidance": 3.0},
                                  {"sampler": "ddpm", "guidance": 0.0}])
def test_nfe_per_sample_counts_real_network_rows(opts):
    m = _tiny_model(conditional=True)
    m.configure_sampling(guidance=1.0)
    m.configure_sampling(**opts)
    m.net = RowCounter(m.net)
    m.sample(10, generator=torch.Generator().manual_seed(0))
    assert m.net.rows / 10 == m.nfe_per_sample


@pytest.mark.parametrize("w, factor", [(0.0, 1), (1.0, 1), (0.5, 2), (3.0, 2)])
def test_nfe_is_steps_and_doubles_only_for_a_real_mix_of_cond_and_uncond(w, factor):
    """w = 1 is the conditional net and w = 0 the unconditional one: one evaluation per step; any other w two."""
    m = _tiny_model(conditional=True).configure_sampling(sampler="ddim", steps=6, guidance=w)
    assert m.nfe_per_sample == 6 * factor


def test_guidance_is_the_cfg_combination():
    m = _tiny_model(conditional=True)
    x, t = torch.randn(5, 2), torch.full((5,), 4)
    y = torch.tensor([0, 1, 2, 0, 1])
    cond = m.eps_fn(y)(x, t)
    uncond = m.eps_fn(None)(x, t)
    assert torch.allclose(m.eps_fn(y, 2.5)(x, t), uncond + 2.5 * (cond - uncond), atol=1e-5)
    assert torch.allclose(m.eps_fn(y, 0.0)(x, t), uncond, atol=1e-5)
    assert not torch.allclose(cond, uncond)


def test_bad_options_raise_clear_errors():
    m = _tiny_model()
    with pytest.raises(UsageError, match="unknown diffusion sampler"):
        m.configure_sampling(sampler="euler")
    with pytest.raises(UsageError, match="class-conditional"):
        m.configure_sampling(guidance=2.0)
    with pytest.raises(UsageError, match="between 1 and T"):
        m.configure_sampling(sampler="ddim", steps=1000)
    with pytest.raises(UsageError, match="unconditional"):
        m.sample(3, labels=torch.tensor([0, 1, 2]))
    with pytest.raises(DataError, match="shape"):
        m.log_likelihood(torch.zeros(3, 5))
    with pytest.raises(UsageError, match="schedule"):
        build_model({"schedule": "quadratic"}, (2,), None)


@pytest.mark.slow
# --- the family through the trainer, checkpoints and the protocol ----------------------------
def test_digits_tiny_train_sample_checkpoint_protocol(tmp_path):
    ckpt = str(tmp_path / "d.pt")
    res = train_preset("diffusion", "digits-tiny", checkpoint=ckpt, progress=False)
    m = res.model
    assert not res.diverged and res.step == PRESETS["digits-tiny"]["train"]["steps"]
    assert m.num_classes == 10  # digits-tiny is class-conditional
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    s = m.sample(6, generator=g(), labels=torch.arange(6), sampler="ddim", steps=4, guidance=2.0)
    assert s.shape == (6, 1, 8, 8) and float(s.min()) >= 0 and float(s.max()) <= 1
    assert torch.equal(s, m.sample(6, generator=g(), labels=torch.arange(6), sampler="ddim", steps=4, guidance=2.0))
    loaded = load_baseline(ckpt)
    assert torch.equal(s, loaded.sample(6, generator=g(), labels=torch.arange(6), sampler="ddim", steps=4, guidance=2.0))
    pm = load_model(ckpt)
    assert isinstance(pm, GenerativeModel) and likelihood_kind(pm) == "bound"
    assert pm.guided and pm.nfe_per_sample == 2 * PRESETS["digits-tiny"]["model"]["sampling"]["steps"]
    x = get_dataset("digits", "test").data[:4]
    ll, kind = pm.log_likelihood(x, generator=g())
    assert kind == "bound" and ll.shape == (4,) and bool(torch.isfinite(ll).all())
    bpd = -ll / (64 * math.log(2))
    assert bool((bpd > 0).all())  # a probability of a discrete image is <= 1


@pytest.mark.slow
def test_dgmbench_score_accepts_the_checkpoint(tmp_path, monkeypatch):
    from dgmbench.cli import main
    from dgmbench.results import RecordStore

    monkeypatch.setenv("DGMBENCH_HOME", str(tmp_path / "home"))
    ckpt = str(tmp_path / "m.pt")
    train_preset("diffusion", "digits-tiny", checkpoint=ckpt, progress=False, overrides={"train": {"steps": 2}})
    store = str(tmp_path / "r.jsonl")
    rc = main(["score", "--model", ckpt, "--dataset", "digits", "-n", "70", "--metrics", "fid", "--device", "cpu",
               "--fid-bootstrap", "0", "--store", store])
    assert rc == 0
    (rec,) = RecordStore(store).load()
    assert rec.value("fid") is not None and rec.value("fid") > 0
    from dgmbench.metrics.likelihood import likelihood_metrics

    mvs = {mv.name: mv for mv in likelihood_metrics(load_model(ckpt), get_dataset("digits", "test").data[:8])}
    assert mvs["bpd"].kind == "bound" and mvs["bpd"].value > 0


def test_resume_follows_the_uninterrupted_run(tmp_path):
    data = DataSplit("g", "train", torch.randn(256, 2))
    cfg = TrainConfig(steps=6, batch_size=32, ckpt_every=3, log_every=1, seed=0, device="cpu")
    spec = {"T": 10, "net": {"hidden": 16, "depth": 1}}

    def run(ckpt, max_steps=None):
        torch.manual_seed(0)
        return Trainer(build_model(spec, (2,), None), data, cfg, checkpoint=ckpt, progress=False).fit(max_steps=max_steps)

    full = run(str(tmp_path / "a.pt"))
    run(str(tmp_path / "b.pt"), max_steps=3)
    resumed = run(str(tmp_path / "b.pt"))
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]


@pytest.mark.slow
def test_ring8_preset_captures_all_modes():
    res = train_preset("diffusion", "ring8-tiny", progress=False)
    te = get_dataset("ring8", "test")
    s = res.model.sample(2000, generator=torch.Generator().manual_seed(0))
    mc = mode_coverage(s, te.modes, te.mode_std)
    assert mc.modes_captured == 8, mc
    assert mc.high_quality_fraction > 0.1, mc  # within 3 std (0.03) of a mode; the full preset reaches ~0.6


def test_mnist_cond_preset_is_the_mnist_preset_made_conditional():
    base, cond = PRESETS["mnist"], PRESETS["mnist-cond"]
    assert cond["dataset"] == "mnist" and cond["train"] == base["train"]
    assert cond["model"] == {**base["model"], "conditional": True, "p_uncond": 0.1,
                             "sampling": {"sampler": "ddim", "steps": 100, "eta": 0.0, "guidance": 2.0}}
    assert PRESETS["digits-cond"]["model"]["sampling"] == cond["model"]["sampling"]
