"""Flow baselines: log-determinant vs autograd Jacobian, invertibility, closed-form densities,
the dequantisation bound, a short digits run beating the uniform model, protocol round trip."""

from __future__ import annotations

import math

import pytest
import torch
from baseline_checks import check_seeded_8bit_samples, seeded_generator

from baselines.checkpoint import load_baseline
from baselines.flow import LIKELIHOOD_KIND, PRESETS, ImageFlow, PointFlow, build_model
from baselines.train import train_preset
from dgmbench.data import get_dataset
from dgmbench.errors import UsageError
from dgmbench.protocol import GenerativeModel, likelihood_kind, load_model

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def perturbed(model, x, scale=0.1, seed=0):
    """Initialise actnorm on ``x`` and move every parameter off its (identity) init."""
    g = torch.Generator().manual_seed(seed)
    model.train()
    model.log_density(x)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model.eval()


def jacobian_logdet(model, x):
    def f(v):
        return model.transform(v.view(1, *x.shape[1:]))[0][0]

    out = []
    for i in range(x.shape[0]):
        jac = torch.autograd.functional.jacobian(f, x[i].flatten())
        sign, logabs = torch.linalg.slogdet(jac)
        assert sign != 0
        out.append(logabs)
    return torch.stack(out)


@pytest.mark.parametrize("cfg", [
    {"levels": 2, "steps": 2, "hidden": 8},
    {"levels": 2, "steps": 2, "hidden": 8, "logit_alpha": 1e-3, "coupling_scale": "exp"},
])
def test_image_flow_logdet_matches_numerical_jacobian(cfg):
    torch.manual_seed(0)
    model = build_model(cfg, (2, 4, 4)).double()
    x = torch.rand(3, 2, 4, 4, dtype=torch.float64) * 0.9 + 0.05
    perturbed(model, x)
    z, logdet = model.transform(x)
    assert z.shape == (3, 32)
    torch.testing.assert_close(logdet, jacobian_logdet(model, x), rtol=1e-9, atol=1e-9)


def test_point_flow_logdet_matches_numerical_jacobian():
    torch.manual_seed(0)
    model = build_model({"steps": 4, "hidden": 16}, (2,)).double()
    x = torch.randn(5, 2, dtype=torch.float64)
    perturbed(model, x, scale=0.3)
    _, logdet = model.transform(x)
    torch.testing.assert_close(logdet, jacobian_logdet(model, x), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_inverse_of_forward_is_identity(dtype, tol):
    torch.manual_seed(1)
    img = build_model({"levels": 2, "steps": 3, "hidden": 16, "logit_alpha": 0.05}, (1, 8, 8)).to(dtype)
    x = torch.rand(16, 1, 8, 8, dtype=dtype)
    perturbed(img, x)
    z, _ = img.transform(x)
    assert (img.inverse_transform(z) - x).abs().max() < tol
    pts = build_model({"steps": 6, "hidden": 16}, (2,)).to(dtype)
    p = torch.randn(64, 2, dtype=dtype)
    perturbed(pts, p, scale=0.1)
    z, _ = pts.transform(p)
    assert (pts.inverse_transform(z) - p).abs().max() < tol
    # and the other way round: forward(inverse(z)) = z
    w = torch.randn(16, 64, dtype=dtype) * 0.5
    assert (img.transform(img.inverse_transform(w))[0] - w).abs().max() < 10 * tol


def test_sampling_guard_turns_an_overflowing_inverse_into_saturated_pixels():
    """A sigmoid coupling whose scale underflows makes the exact inverse overflow to NaN (seen on
    0.7% of MNIST samples at temperature 1); the guard holds such rows at the limit, warns with
    the count, and leaves every other row bit-identical."""
    torch.manual_seed(2)
    flow = build_model({"levels": 2, "steps": 2, "hidden": 8, "logit_alpha": 1e-6}, (1, 8, 8)).eval()
    perturbed(flow, torch.rand(8, 1, 8, 8))
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    normal = flow.sample(32, generator=g())
    flow.INVERSE_LIMIT = float("inf")  # guard off: the same samples
    assert torch.equal(normal, flow.sample(32, generator=g()))
    # break one coupling: its scale sigmoid(h + 2) underflows (h = -1000), so 1 / scale = inf
    coupling = flow.flows[0][0].layers[2]
    last = coupling.net[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
        last.bias[coupling.cb:] = -1e3
    z = torch.randn(32, 64, generator=g())
    assert not bool(torch.isfinite(flow.inverse_transform(z)).all())  # unguarded: NaN/inf
    del flow.INVERSE_LIMIT  # back to the class's guard
    with pytest.warns(UserWarning, match=r"flow sampler: \d+ of 32 samples overflowed"):
        s = flow.sample(32, generator=g())
    assert bool(torch.isfinite(s).all()) and float(s.min()) >= 0 and float(s.max()) <= 1
    assert flow.last_sample_guarded == 32


def test_untrained_flow_is_the_closed_form_gaussian():
    """Zero-initialised exp-scale couplings, identity actnorm and an orthogonal 1x1 conv: the
    flow is a rotation of y - 1/2, so its density is prod N(y_i - 1/2; 0, 1) (with the logit
    preprocessing: N(logit v) times the logit's Jacobian)."""
    torch.manual_seed(0)
    y = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    cfg = {"levels": 2, "steps": 2, "hidden": 8, "coupling_scale": "exp"}
    flow = build_model(cfg, (1, 8, 8)).double().eval()
    ref = torch.distributions.Normal(0.0, 1.0).log_prob(y - 0.5).flatten(1).sum(1)
    # the 1x1 convolutions are initialised in float32, so they are rotations to ~1e-7
    torch.testing.assert_close(flow.log_density(y), ref, rtol=0, atol=1e-5)
    a = 0.05
    flow = build_model({**cfg, "logit_alpha": a}, (1, 8, 8)).double().eval()
    v = a + (1 - 2 * a) * y
    s = torch.log(v / (1 - v))
    ref = (torch.distributions.Normal(0.0, 1.0).log_prob(s) + math.log(1 - 2 * a) - torch.log(v * (1 - v))).flatten(1).sum(1)
    torch.testing.assert_close(flow.log_density(y), ref, rtol=0, atol=1e-5)


def test_dequantised_likelihood_is_a_bound_tightening_with_k():
    """A flow that is exactly z = R * 100 (y - 1/2) (R a rotation) has a closed-form discrete
    8-bit likelihood, prod [Phi(100 (b_i + 1/256 - 1/2)) - Phi(100 (b_i - 1/2))] over the bins
    b_i. The 1-draw dequantised value is below it in expectation by a clear margin (Jensen;
    hence the label ``bound``), and the k-draw log-mean-exp approaches it."""
    torch.manual_seed(0)
    flow = build_model({"levels": 1, "steps": 1, "hidden": 4, "coupling_scale": "exp"}, (1, 2, 2)).double().eval()
    actnorm = flow.flows[0][0].layers[0]
    with torch.no_grad():
        actnorm.logs.fill_(math.log(100.0))
        actnorm.initialized.fill_(1)
    x = torch.tensor([[120, 126, 128, 131], [125, 127, 129, 133]], dtype=torch.float64).view(2, 1, 2, 2) / 255
    lo = (x * 255).round() / 256
    normal = torch.distributions.Normal(0.0, 1.0)
    exact = torch.log(normal.cdf(100 * (lo + 1 / 256 - 0.5)) - normal.cdf(100 * (lo - 0.5))).flatten(1).sum(1)
    g = torch.Generator().manual_seed(0)
    reps = 4000
    one, kind = flow.log_likelihood(x.repeat(reps, 1, 1, 1), k=1, generator=g)
    one = one.view(reps, 2)
    gap, se = exact - one.mean(0), one.std(0) / math.sqrt(reps)
    assert kind == "bound" == LIKELIHOOD_KIND
    assert (gap > 0.02).all() and (gap > 5 * se).all(), (gap, se)
    many, _ = flow.log_likelihood(x, k=1000, generator=g)
    assert ((many - exact).abs() < 0.02).all(), (many, exact)


def test_bad_configs_are_usage_errors():
    with pytest.raises(UsageError, match="divisible by 8"):
        build_model({"levels": 3}, (1, 28, 28))
    with pytest.raises(UsageError, match="class-conditional"):
        build_model({}, (1, 8, 8), num_classes=10)
    with pytest.raises(UsageError, match="images .* or points"):
        build_model({}, (3, 4))
    flow = build_model({"levels": 1, "steps": 1, "hidden": 4}, (1, 2, 2))
    with pytest.raises(UsageError, match="not class-conditional"):
        flow.sample(2, labels=torch.zeros(2, dtype=torch.long))


def test_presets_are_well_formed():
    from dgmbench.data.registry import dataset_info

    for name in ("digits", "digits-tiny", "mnist", "mnist-gpu", "cifar10", "ring8", "ring8-tiny", "grid25"):
        spec = PRESETS[name]
        model = build_model(spec["model"], dataset_info(spec["dataset"]).shape)
        assert model.likelihood_kind == ("bound" if model.is_image else "exact")


# --- training: a short digits run beats the uniform model; the protocol round trip ----------

MARGIN_BITS = 2.0  # test-set bpd <= 8 - 2 after the 100 steps of digits-tiny (full preset: RESULTS.md)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    ckpt = str(tmp_path_factory.mktemp("flow") / "flow-digits-tiny.pt")
    res = train_preset("flow", "digits-tiny", checkpoint=ckpt, progress=False)
    return res, ckpt


@pytest.mark.slow
def test_short_digits_run_beats_uniform_by_margin(digits_run):
    res, _ = digits_run
    test = get_dataset("digits", "test")
    torch.manual_seed(0)
    ll, kind = res.model.log_likelihood(test.data)
    bpd = float(-ll.mean() / (64 * math.log(2)))
    assert kind == "bound"
    assert bpd < 8.0 - MARGIN_BITS, bpd


@pytest.mark.slow
def test_sampling_checkpoint_round_trip_and_protocol(digits_run):
    res, ckpt = digits_run
    s1 = check_seeded_8bit_samples(res.model, 6, (1, 8, 8))
    g = seeded_generator
    loaded = load_baseline(ckpt)
    loaded.config["sample_batch_size"] = 4  # all noise is drawn up front: batching does not change samples
    assert isinstance(loaded, ImageFlow) and loaded.nfe_per_sample == 1.0
    assert torch.equal(loaded.sample(6, generator=g()), s1)
    model = load_model(ckpt)
    assert isinstance(model, GenerativeModel)
    assert likelihood_kind(model) == "bound" and model.data_shape == (1, 8, 8)
    x = get_dataset("digits", "test").data[:4]
    g0 = torch.Generator().manual_seed(0)
    torch.testing.assert_close(model.log_likelihood(x, generator=g0)[0],
                               res.model.log_likelihood(x, generator=torch.Generator().manual_seed(0))[0])


def test_point_flow_trains_and_reports_exact_density(tmp_path):
    ckpt = str(tmp_path / "flow-ring8.pt")
    res = train_preset("flow", "ring8-tiny", checkpoint=ckpt, progress=False, overrides={"train": {"steps": 60}})
    model = load_model(ckpt)
    assert isinstance(model, PointFlow)
    pts = get_dataset("ring8", "test").data[:200]
    ll, kind = model.log_likelihood(pts)
    assert kind == "exact" and ll.shape == (200,)
    torch.testing.assert_close(ll, res.model.log_likelihood(pts)[0])
    s = model.sample(10, generator=torch.Generator().manual_seed(0))
    assert s.shape == (10, 2) and torch.isfinite(s).all()


# --- 2-D: the Student's t base ----------------------------------------------------------------

@pytest.mark.parametrize("df,d", [(1, 2), (5, 2), (30, 3)])
def test_student_t_logprob_matches_scipy(df, d):
    from scipy.stats import multivariate_t

    from baselines.flow.layers import student_t_logprob

    z = torch.randn(50, d, dtype=torch.float64, generator=torch.Generator().manual_seed(df)) * 4.0
    z[0] = 1e3  # far in the tail: about -(df + d) log|z|, not -|z|^2 / 2
    ref = multivariate_t(loc=torch.zeros(d).numpy(), shape=torch.eye(d).numpy(), df=df).logpdf(z.numpy())
    torch.testing.assert_close(student_t_logprob(z, float(df)), torch.as_tensor(ref), rtol=1e-10, atol=1e-10)


def test_untrained_point_flow_with_a_t_base_is_the_t_density_and_samples_it():
    """Zero-initialised couplings, identity actnorm and an orthogonal linear map: the flow is a
    rotation, so its density is the (rotation-invariant) t's. Its samples' |z|^2 / D follow the
    F(D, df) law of a t (KS test), which an N(0, I) base (chi^2_D / D) fails."""
    from scipy.stats import chi2, f, kstest, multivariate_t

    torch.manual_seed(0)
    flow = build_model({"steps": 3, "hidden": 8, "base": "student_t", "base_df": 3}, (2,)).double().eval()
    x = torch.randn(20, 2, dtype=torch.float64) * 3
    ref = multivariate_t(loc=[0.0, 0.0], shape=[[1.0, 0.0], [0.0, 1.0]], df=3).logpdf(x.numpy())
    # the linear maps are initialised in float32, so they are rotations to ~1e-7
    torch.testing.assert_close(flow.log_density(x), torch.as_tensor(ref), rtol=0, atol=1e-5)
    flow = flow.float()
    s = flow.sample(4000, generator=torch.Generator().manual_seed(0)).double()
    r = (s**2).sum(1).numpy() / 2
    assert kstest(r, f(2, 3).cdf).pvalue > 0.01
    assert kstest(r, chi2(2, scale=0.5).cdf).pvalue < 1e-6
    assert torch.equal(flow.sample(5, generator=torch.Generator().manual_seed(1)),
                       flow.sample(5, generator=torch.Generator().manual_seed(1)))


def test_point_flow_base_configs_are_usage_errors():
    with pytest.raises(UsageError, match="base must be"):
        build_model({"base": "cauchy"}, (2,))
    for df in (0, 2.5, True):
        with pytest.raises(UsageError, match="positive integer"):
            build_model({"base": "student_t", "base_df": df}, (2,))
    for name in ("ring8", "grid25"):
        assert PRESETS[name]["model"]["base"] == "student_t"
