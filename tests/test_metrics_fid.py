"""FID: agreement with torch-fidelity and scipy, closed forms, clamping, bootstrap, bad input."""

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

from dgmbench.errors import DataError
from dgmbench.metrics.fid import (
    fid_from_features,
    fid_from_stats,
    fid_infinity,
    frechet_distance,
    stats_from_features,
)


def _features(n, d, seed, shift=0.0, scale=1.0):
    # a fixed mixing matrix per d, so every seed draws from the same distribution
    mix = torch.randn(d, d, generator=torch.Generator().manual_seed(d), dtype=torch.float64) / d**0.5
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=g, dtype=torch.float64) @ mix) * scale + shift


def _rel(a, b):
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("d", [16, 128])
def test_equals_torch_fidelity_on_same_features(d):
    f1, f2 = _features(600, d, 0), _features(500, d, 1, shift=0.3, scale=1.2)
    ref = fid_statistics_to_metric(fid_features_to_statistics(f1), fid_features_to_statistics(f2), verbose=False)
    ours = fid_from_stats(stats_from_features(f1), stats_from_features(f2))
    assert _rel(ours.value, ref["frechet_inception_distance"]) < 1e-6
    # torch-fidelity's dict and float32 features are accepted as statistics / features too
    ours2 = fid_from_features(f1.float(), fid_features_to_statistics(f2))
    ref32 = fid_statistics_to_metric(fid_features_to_statistics(f1.float().double()), fid_features_to_statistics(f2),
                                     verbose=False)["frechet_inception_distance"]
    assert _rel(ours2.value, ref32) < 1e-6


def test_equals_scipy_sqrtm_formula():
    f1, f2 = _features(400, 32, 3), _features(400, 32, 4, shift=-0.2)
    s1, s2 = np.cov(f1.numpy(), rowvar=False), np.cov(f2.numpy(), rowvar=False)
    m1, m2 = f1.numpy().mean(0), f2.numpy().mean(0)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    ref = float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
    assert _rel(frechet_distance(m1, s1, m2, s2).value, ref) < 1e-6


def test_closed_form_diagonal_gaussians():
    rng = np.random.default_rng(0)
    d = 50
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    v1, v2 = rng.uniform(0.1, 3, size=d), rng.uniform(0.1, 3, size=d)
    # commuting covariances: FD = |mu1-mu2|^2 + sum (sqrt v1 - sqrt v2)^2
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    res = frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2))
    assert _rel(res.value, expected) < 1e-10
    assert res.clamped_mass == 0.0
    # rotate both by the same orthogonal matrix: covariances no longer diagonal, value unchanged
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    res_rot = frechet_distance(q @ mu1, q @ np.diag(v1) @ q.T, q @ mu2, q @ np.diag(v2) @ q.T)
    assert _rel(res_rot.value, expected) < 1e-9


def test_closed_form_scalar_multiple_covariances():
    # S2 = c^2 S1 commute: tr((S1 S2)^1/2) = c tr(S1); FD = (1 - c)^2 tr(S1)
    rng = np.random.default_rng(1)
    a = rng.normal(size=(20, 20))
    s1 = a @ a.T
    c = 1.7
    res = frechet_distance(np.zeros(20), s1, np.zeros(20), c**2 * s1)
    assert _rel(res.value, (1 - c) ** 2 * np.trace(s1)) < 1e-9
    assert abs(frechet_distance(np.ones(20), s1, np.ones(20), s1).value) < 1e-8 * np.trace(s1)


def test_cholesky_and_eigh_routes_agree():
    from dgmbench.metrics.fid import PsdFactor, factor_psd, sqrtm_psd

    f1, f2 = _features(300, 40, 11), _features(300, 40, 12, shift=0.1, scale=1.4)
    a, b = stats_from_features(f1), stats_from_features(f2)
    fac = factor_psd(a.cov)
    assert fac.method == "cholesky"
    via_eigh = frechet_distance(a.mean, a.cov, b.mean, b.cov, factor1=PsdFactor(sqrtm_psd(a.cov)[0], 0.0, "eigh"))
    via_chol = frechet_distance(a.mean, a.cov, b.mean, b.cov)
    assert via_chol.factorisation == "cholesky" and via_chol.value == pytest.approx(via_eigh.value, rel=1e-10)
    # a singular covariance (n < d) cannot be Cholesky-factored: the eigh square root is used
    small = stats_from_features(_features(20, 40, 13))
    assert factor_psd(small.cov).method == "eigh"


def test_clamped_mass_reported_for_indefinite_input():
    s = np.diag([1.0, 2.0, -0.5])  # not PSD: a corrupted covariance
    res = frechet_distance(np.zeros(3), s, np.zeros(3), np.eye(3))
    assert res.clamped_mass == pytest.approx(0.5) and res.factorisation == "eigh"


def test_small_n_warns():
    f1, f2 = _features(20, 64, 0), _features(200, 64, 1)
    with pytest.warns(UserWarning, match="below the feature dimension"):
        mv = fid_from_features(f1, f2)
    assert "biased" in mv.note
    # n = d: the covariance has rank d - 1 (centring), so it is singular too
    with pytest.warns(UserWarning, match="n=64 is at or below the feature dimension 64"):
        mv = fid_from_features(_features(64, 64, 2), f2)
    assert "biased" in mv.note
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fid_from_features(_features(65, 64, 2), f2).note is None


def test_bootstrap_ci_seeded_and_brackets_value():
    f1, f2 = _features(400, 8, 0), _features(400, 8, 1, shift=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = fid_from_features(f1, f2, bootstrap=50, seed=3)
        b = fid_from_features(f1, f2, bootstrap=50, seed=3)
    assert (a.ci_low, a.ci_high, a.std) == (b.ci_low, b.ci_high, b.std)
    assert a.ci_low < a.value < a.ci_high and a.ci_high - a.value == pytest.approx(a.value - a.ci_low)
    c = fid_from_features(f1, f2, bootstrap=50, seed=4)
    assert c.ci_low != a.ci_low


def test_bootstrap_std_matches_sampling_std():
    # the bootstrap std should estimate the spread of FID over fresh draws (within a factor)
    ref = stats_from_features(_features(5000, 4, 99))
    fresh = [fid_from_features(_features(300, 4, 100 + s, shift=0.2), ref).value for s in range(30)]
    boot = fid_from_features(_features(300, 4, 7, shift=0.2), ref, bootstrap=100, seed=0)
    assert 0.5 < boot.std / np.std(fresh, ddof=1) < 2.0


def _np_fid(mu_r, s_r, x, w=None):
    """FID of (weighted) samples x against N(mu_r, s_r): numpy, primal, eigenvalues of sqrt(S_r) S sqrt(S_r)."""
    n = x.shape[0]
    w = np.ones(n) if w is None else w
    mu = w @ x / w.sum()
    c = x - mu
    s = (c.T * w) @ c / (w.sum() - 1)
    lam, v = np.linalg.eigh(s_r)
    root = (v * np.sqrt(np.clip(lam, 0, None))) @ v.T
    ev = np.linalg.eigvalsh(root @ s @ root)
    ev[ev < 1e-11 * ev.max()] = 0.0  # n <= d: the d - n + 1 zero eigenvalues come out as +-round-off
    return float(((mu - mu_r) ** 2).sum() + np.trace(s_r) + np.trace(s) - 2 * np.sqrt(np.clip(ev, 0, None)).sum())


@pytest.mark.parametrize("n,d", [(60, 128), (128, 128), (300, 64)])
def test_dual_and_primal_routes_equal_numpy(n, d):
    ref = stats_from_features(_features(2000, d, 50))
    f = _features(n, d, 51, shift=0.2, scale=1.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mv = fid_from_features(f, ref)
    assert mv.extra["route"] == ("dual" if n <= d else "primal")
    expected = _np_fid(ref.mean.numpy(), ref.cov.numpy(), f.numpy())
    assert _rel(mv.value, expected) < 1e-8


@pytest.mark.parametrize("n,d", [(30, 64), (200, 12)])
def test_delta_std_is_the_infinitesimal_jackknife(n, d):
    # independent check of the analytic influence: central differences of a numpy FID with
    # sample weights 1 + e (n e_i - 1), std = sqrt(sum U_i^2) / n
    ref = stats_from_features(_features(1000, d, 60))
    f = _features(n, d, 61, shift=0.1, scale=1.2).numpy()
    mu_r, s_r = ref.mean.numpy(), ref.cov.numpy()
    eps = 1e-5
    u = []
    for i in range(n):
        e = np.full(n, -1.0)
        e[i] += n
        u.append((_np_fid(mu_r, s_r, f, 1 + eps * e) - _np_fid(mu_r, s_r, f, 1 - eps * e)) / (2 * eps))
    expected = np.sqrt((np.asarray(u) ** 2).sum()) / n
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mv = fid_from_features(torch.from_numpy(f), ref)
    assert mv.std == pytest.approx(expected, rel=1e-5)
    assert "delta method" in mv.extra["interval"]


def test_delta_std_matches_many_replicate_bootstrap():
    # n >> d: the delta-method std approximates the bootstrap std (numpy bootstrap, 2,000 replicates)
    d, n = 6, 500
    ref = stats_from_features(_features(3000, d, 70))
    f = _features(n, d, 71, shift=0.15, scale=1.3)
    mv = fid_from_features(f, ref)
    rng = np.random.default_rng(0)
    x, mu_r, s_r = f.numpy(), ref.mean.numpy(), ref.cov.numpy()
    boot = [_np_fid(mu_r, s_r, x[rng.integers(0, n, n)]) for _ in range(2000)]
    assert mv.std == pytest.approx(np.std(boot, ddof=1), rel=0.1)
    assert mv.ci_low == pytest.approx(max(0.0, mv.value - 1.959964 * mv.std), rel=1e-5)


def test_primal_delta_on_a_subset_is_unbiased_for_the_full_delta(monkeypatch):
    # n > d: the influence is evaluated on a seeded subset of DELTA_MAX_SAMPLES samples when n is
    # larger; mean IF^2 over a simple random subset is unbiased for the mean over all n, so the
    # subset variances average to the full one
    import dgmbench.metrics.fid as fid_module

    d, n = 8, 3000
    ref = stats_from_features(_features(4000, d, 90))
    f = _features(n, d, 91, shift=0.1, scale=1.2)
    full = fid_from_features(f, ref)
    assert full.extra["influence_samples"] == n and full.extra["route"] == "primal"
    monkeypatch.setattr(fid_module, "DELTA_MAX_SAMPLES", 300)
    subs = [fid_from_features(f, ref, seed=s) for s in range(200)]
    assert all(m.extra["influence_samples"] == 300 and m.value == full.value for m in subs)
    # each subset variance is within ~17% (1 sd) here; their mean over 200 seeds within ~1.2%
    assert np.mean([m.std ** 2 for m in subs]) == pytest.approx(full.std ** 2, rel=0.05)
    # and against a 1,000-replicate numpy bootstrap of the same set (tolerance 12%)
    rng = np.random.default_rng(1)
    x, mu_r, s_r = f.numpy(), ref.mean.numpy(), ref.cov.numpy()
    boot = [_np_fid(mu_r, s_r, x[rng.integers(0, n, n)]) for _ in range(1000)]
    assert subs[0].std == pytest.approx(np.std(boot, ddof=1), rel=0.12)


def test_accumulated_statistics_give_the_same_value_and_must_match():
    # the harness passes the streamed statistics; the primal route takes the covariance from them
    d = 8
    ref = stats_from_features(_features(1000, d, 92))
    f = _features(500, d, 93, shift=0.2)
    plain = fid_from_features(f, ref)
    with_stats = fid_from_features(f, ref, stats_gen=stats_from_features(f))
    assert _rel(with_stats.value, plain.value) < 1e-10 and _rel(with_stats.std, plain.std) < 1e-10
    with pytest.raises(DataError, match="does not match the generated features"):
        fid_from_features(f, ref, stats_gen=stats_from_features(f + 1.0))


def test_dual_bootstrap_equals_direct_resampling():
    # n <= d: each replicate is solved on the n x n Gram; the direct d x d computation on the
    # same resampled indices (drawn from the same seeded torch generator) gives the same values
    n, d, reps = 40, 64, 20
    ref = stats_from_features(_features(1000, d, 80))
    f = _features(n, d, 81, shift=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mv = fid_from_features(f, ref, bootstrap=reps, seed=5)
    gen = torch.Generator().manual_seed(5)
    vals = [_np_fid(ref.mean.numpy(), ref.cov.numpy(), f.numpy()[torch.randint(0, n, (n,), generator=gen).numpy()])
            for _ in range(reps)]
    assert mv.std == pytest.approx(np.std(vals, ddof=1), rel=1e-6)
    assert mv.extra["bootstrap_bias"] == pytest.approx(np.mean(vals) - mv.value, rel=1e-6)


def test_fid_interval_coverage_simulation():
    # reference statistics exact; 150 independent generated sets of n = 150 from N(0.1, (1.2 A)(1.2 A)^T)
    # in d = 6. The 95% delta interval should contain E[FID_n] (the value at this sample size,
    # estimated by the mean over sets) about 95% of the time; measured 0.97-0.99 (conservative:
    # the plug-in influence is noisier than the population one).
    d, n, sets = 6, 150, 150
    mix = torch.randn(d, d, generator=torch.Generator().manual_seed(d), dtype=torch.float64) / d**0.5
    ref = (torch.zeros(d, dtype=torch.float64), mix.T @ mix)
    mvs = [fid_from_features(_features(n, d, 1000 + s, shift=0.1, scale=1.2), ref) for s in range(sets)]
    target = np.mean([m.value for m in mvs])
    inside = np.mean([m.ci_low <= target <= m.ci_high for m in mvs])
    assert 0.9 <= inside <= 1.0
    assert all(m.ci_low >= 0 for m in mvs)


def test_fid_infinity_removes_finite_n_bias():
    # exact reference statistics of N(0, A A^T); samples from N(delta, A A^T): true FD = |delta|^2.
    # FID(N) is biased upwards by O(d/N); the 1/N extrapolation removes most of that bias.
    d = 32
    mix = torch.randn(d, d, generator=torch.Generator().manual_seed(d), dtype=torch.float64) / d**0.5
    delta = torch.full((d,), 0.05, dtype=torch.float64)
    true_fd = float(delta @ delta)
    ref = (torch.zeros(d, dtype=torch.float64), mix.T @ mix)
    f = _features(400, d, 6) + delta
    plain = fid_from_features(f, ref).value
    inf = fid_infinity(f, ref, seed=0)
    assert plain - true_fd > 0.3  # the bias is large at this n
    assert abs(inf.value - true_fd) < 0.3 * (plain - true_fd)
    assert abs(inf.value - true_fd) < 3 * inf.std


def test_fid_infinity_two_gaussians_closed_form():
    # N(delta, diag(a)) against exact N(0, diag(b)): FD = |delta|^2 + sum (sqrt a - sqrt b)^2
    d, n = 16, 3000
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0.5, 2, d), rng.uniform(0.5, 2, d)
    delta = np.full(d, 0.1)
    true_fd = float((delta**2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
    ref = (torch.zeros(d, dtype=torch.float64), torch.diag(torch.from_numpy(b)))
    g = torch.Generator().manual_seed(4)
    f = torch.randn(n, d, generator=g, dtype=torch.float64) * torch.from_numpy(np.sqrt(a)) + torch.from_numpy(delta)
    mv = fid_infinity(f, ref, seed=0)
    plain = fid_from_features(f, ref, interval=None).value
    assert mv.extra["min_size"] == int(np.ceil(2.4 * d)) and min(mv.extra["sizes"]) >= 2.4 * d
    assert abs(mv.value - true_fd) < 3 * mv.std + 0.01
    assert abs(mv.value - true_fd) < 0.5 * abs(plain - true_fd)
    assert mv.ci_low < mv.value < mv.ci_high and mv.std > 0


def _two_gaussian_sets(d: int, n: int, sets: int):
    """Generated sets from N(0.1, diag(a)) against exact N(0, diag(b)), and their population FD."""
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0.5, 2, d), rng.uniform(0.5, 2, d)
    true_fd = float(d * 0.1**2 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
    ref = (torch.zeros(d, dtype=torch.float64), torch.diag(torch.from_numpy(b)))
    scale = torch.from_numpy(np.sqrt(a))
    feats = [torch.randn(n, d, generator=torch.Generator().manual_seed(1000 + s), dtype=torch.float64) * scale + 0.1
             for s in range(sets)]
    return feats, ref, true_fd


def test_fid_infinity_sampling_std_is_the_between_set_spread():
    # the delta-method std of the intercept (influence propagated through the subset weights)
    # against the standard deviation of FID-inf over 200 independent generated sets
    feats, ref, _ = _two_gaussian_sets(16, 1200, 200)
    mvs = [fid_infinity(f, ref, seed=s) for s, f in enumerate(feats)]
    between = np.std([m.value for m in mvs], ddof=1)
    sampling = np.mean([m.extra["sampling_std"] for m in mvs])
    assert sampling == pytest.approx(between, rel=0.15)
    # it exceeds the plain FID's delta std at the full n: the extrapolation amplifies the noise
    assert sampling > np.mean([fid_from_features(f, ref).std for f in feats[:20]])


def test_fid_infinity_reuses_fids_delta_std():
    # the harness passes FID's delta std (mean IF^2 = n std^2) instead of a second eigendecomposition
    feats, ref, _ = _two_gaussian_sets(16, 1200, 1)
    own = fid_infinity(feats[0], ref, seed=3)
    given = fid_infinity(feats[0], ref, seed=3, fid_delta_std=fid_from_features(feats[0], ref, seed=3).std)
    assert given.extra["sampling_std"] == pytest.approx(own.extra["sampling_std"], rel=1e-9)
    assert (given.value, given.ci_low, given.ci_high) == pytest.approx((own.value, own.ci_low, own.ci_high), rel=1e-9)


@pytest.mark.parametrize("d,n", [(8, 1000), (32, 1000)])
def test_fid_infinity_interval_coverage_simulation(d, n):
    # the 95% interval should contain the population Frechet distance (closed form) in about
    # 95% of 200 sets; measured 0.985 and 0.970 (the old OLS-based interval: 0.875 and 0.835)
    feats, ref, true_fd = _two_gaussian_sets(d, n, 200)
    mvs = [fid_infinity(f, ref, seed=s) for s, f in enumerate(feats)]
    inside = np.mean([m.ci_low <= true_fd <= m.ci_high for m in mvs])
    assert 0.93 <= inside <= 1.0


def test_fid_infinity_refuses_too_few_samples_and_notes_negative_values():
    d = 64
    ref = (torch.zeros(d, dtype=torch.float64), torch.eye(d, dtype=torch.float64))
    with pytest.raises(DataError, match=r"at least 218 generated samples, got 200"):
        fid_infinity(_features(200, d, 0), ref)  # subsets >= ceil(2.4 * 64) = 154, plus d above it
    # the setting scaled down: a small true FD, n a few times d; a negative intercept is noted
    f = torch.randn(400, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.02
    for seed in range(4):
        mv = fid_infinity(f, ref, seed=seed)
        assert mv.value >= 0 or "negative FID-infinity" in mv.note


def test_bad_input():
    with pytest.raises(DataError, match="different feature extractors"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4)[:3, :3].repeat(2, 0)[:4, :3])
    with pytest.raises(DataError, match="NaN"):
        frechet_distance(np.array([np.nan, 0.0]), np.eye(2), np.zeros(2), np.eye(2))
    with pytest.raises(DataError, match="NaN or Inf"):
        stats_from_features(torch.tensor([[0.0, np.inf], [1.0, 2.0]]))
    with pytest.raises(DataError, match="at least 2"):
        stats_from_features(torch.zeros(1, 3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (on the CPU the device path is the default)")
def test_linear_algebra_on_a_device_gives_the_same_values():
    # n < d (the n x n route), n > d (the d x d route) and FID-inf: the device path against the CPU default
    device = "cuda"
    d = 24
    mix = torch.randn(d, d, generator=torch.Generator().manual_seed(2), dtype=torch.float64) / d**0.5
    ref = (torch.zeros(d, dtype=torch.float64), mix.T @ mix + 0.1 * torch.eye(d, dtype=torch.float64))
    for n in (20, 300):
        f = _features(n, d, 11, shift=0.2)
        for kw in ({}, {"interval": None}, {"bootstrap": 5}):
            a, b = fid_from_features(f, ref, **kw), fid_from_features(f, ref, device=device, **kw)
            assert b.value == pytest.approx(a.value, rel=1e-9)
            assert (a.std is None and b.std is None) or b.std == pytest.approx(a.std, rel=1e-7)
    f = _features(300, d, 12, shift=0.2)
    a, b = fid_infinity(f, ref, seed=1), fid_infinity(f, ref, seed=1, device=device)
    assert b.value == pytest.approx(a.value, rel=1e-9) and b.std == pytest.approx(a.std, rel=1e-7)
