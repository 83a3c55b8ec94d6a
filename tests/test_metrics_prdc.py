"""Precision/recall equal torch-fidelity's PRC (k=3, <=); density/coverage equal Naeem et al.'s
reference ``prdc`` (k=5, <), re-implemented here and, when installed, the package itself."""

import numpy as np
import pytest
import torch
from torch_fidelity.metric_prc import prc_features_to_metric

from dgmbench.errors import DataError
from dgmbench.metrics.prdc import knn_radii, prdc


def _feats(n, d, seed, shift=0.0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) * scale + shift


def _dist(a, b):
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


def _numpy_prdc(real, fake, k_pr, k_dc):
    """Precision/recall as torch-fidelity (k_pr, '<='); density/coverage as Naeem et al.'s
    ``prdc.compute_prdc`` (k_dc, '<', radius = (k+1)-th smallest distance incl. self), in numpy."""
    real, fake = np.asarray(real), np.asarray(fake)
    d_rr, d_ff, d_fr = _dist(real, real), _dist(fake, fake), _dist(fake, real)
    r_real_pr, r_fake_pr = np.sort(d_rr, axis=1)[:, k_pr], np.sort(d_ff, axis=1)[:, k_pr]
    r_real_dc = np.sort(d_rr, axis=1)[:, k_dc]
    precision = (d_fr <= r_real_pr[None, :]).any(1).mean()
    recall = (d_fr.T <= r_fake_pr[None, :]).any(1).mean()
    density = (d_fr < r_real_dc[None, :]).sum() / (k_dc * len(fake))
    coverage = (d_fr.min(0) < r_real_dc).mean()
    return precision, recall, density, coverage


@pytest.mark.parametrize("k", [3, 5])
def test_precision_recall_equal_torch_fidelity(k):
    real, fake = _feats(500, 16, 0), _feats(400, 16, 1, shift=0.4, scale=0.8)
    ref = prc_features_to_metric(fake, real, prc_neighborhood=k, prc_batch_size=10000, save_cpu_ram=False, verbose=False)
    ours = prdc(real, fake, k_pr=k, interval=False)
    # torch-fidelity averages in float32: compare the counts of points inside the manifolds
    assert round(ours.precision * 400) == round(ref["precision"] * 400)
    assert round(ours.recall * 500) == round(ref["recall"] * 500)
    assert ours.precision == pytest.approx(ref["precision"], abs=1e-6)


def test_blocking_does_not_change_results():
    real, fake = _feats(300, 8, 2), _feats(250, 8, 3, shift=0.3)
    a = prdc(real, fake)
    b = prdc(real, fake, max_bytes=4096)  # a few rows per block
    assert (a.precision, a.recall, a.density, a.coverage) == (b.precision, b.recall, b.density, b.coverage)
    assert a.intervals == b.intervals
    ref = prc_features_to_metric(fake.float(), real.float(), prc_neighborhood=3, prc_batch_size=10000,
                                 save_cpu_ram=False, verbose=False)
    c = prdc(real.float(), fake.float(), interval=False)
    assert (round(c.precision * 250), round(c.recall * 300)) == (round(ref["precision"] * 250), round(ref["recall"] * 300))


@pytest.mark.parametrize("k_pr,k_dc", [(3, 5), (4, 4), (2, 7)])
def test_density_coverage_equal_direct_definition(k_pr, k_dc):
    real, fake = _feats(200, 6, 4), _feats(180, 6, 5, shift=0.5, scale=1.3)
    ours = prdc(real, fake, k_pr=k_pr, k_dc=k_dc)
    p, r, d, c = _numpy_prdc(real.numpy(), fake.numpy(), k_pr, k_dc)
    assert (ours.precision, ours.recall) == pytest.approx((p, r), abs=0)
    assert ours.density == pytest.approx(d, rel=1e-12)
    assert ours.coverage == pytest.approx(c, abs=0)


def test_defaults_are_the_papers_and_stated():
    real, fake = _feats(120, 5, 8), _feats(110, 5, 9, shift=0.2)
    res = prdc(real, fake)
    assert (res.k_pr, res.k_dc) == (3, 5)
    p, r, d, c = _numpy_prdc(real.numpy(), fake.numpy(), 3, 5)
    assert (res.precision, res.recall, res.coverage) == (p, r, c) and res.density == pytest.approx(d, rel=1e-12)
    mvs = {m.name: m for m in res.metric_values()}
    assert [mvs[n].extra["k"] for n in ("precision", "recall", "density", "coverage")] == [3, 3, 5, 5]
    assert mvs["density"].extra["ball"] == "<" and mvs["precision"].extra["ball"] == "<="
    assert "k=5" in mvs["coverage"].note and "k=3" in mvs["recall"].note
    # the old single k sets both
    assert (prdc(real, fake, k=4).k_pr, prdc(real, fake, k=4).k_dc) == (4, 4)


def test_equals_naeem_prdc_package():
    prdc_pkg = pytest.importorskip("prdc")
    real, fake = _feats(300, 10, 21), _feats(250, 10, 22, shift=0.3, scale=1.1)
    ref = prdc_pkg.compute_prdc(real.numpy(), fake.numpy(), nearest_k=5)
    ours = prdc(real, fake, interval=False)
    assert ours.density == pytest.approx(ref["density"], rel=1e-12)
    assert ours.coverage == pytest.approx(ref["coverage"], abs=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_set_scored_against_itself_has_density_one(dtype):
    # strict '<' with k=5: each real ball holds its centre and its 4 nearest neighbours, so
    # density = 5 N / (5 N) = 1 exactly ('<=' would give 6/5; the old k=3 with '<=' gave 4/3)
    x = _feats(400, 32, 7).to(dtype)
    res = prdc(x, x.clone())
    assert res.density == 1.0
    assert res.precision == res.recall == res.coverage == 1.0
    _, _, d_ref, _ = _numpy_prdc(x.double().numpy(), x.double().numpy(), 3, 5)
    assert d_ref == 1.0


def test_large_common_offset_keeps_float32_precision():
    # distances are shift invariant: features offset by 1e4 in float32 must give the counts of the
    # float64 computation on the same values (float32 |x|^2 - 2 x.y + |y|^2 at 1e4 has no digits left)
    real, fake = _feats(300, 16, 30), _feats(280, 16, 31, shift=0.3, scale=1.2)
    r32, f32 = (real + 1e4).float(), (fake + 1e4).float()
    p, r, d, c = _numpy_prdc(r32.double().numpy(), f32.double().numpy(), 3, 5)
    ours = prdc(r32, f32, interval=False)
    assert (ours.precision, ours.recall, ours.coverage) == (p, r, c)
    assert ours.density == pytest.approx(d, rel=1e-12)


def test_hand_computed_one_dimensional_case():
    # real at 0,1,2,3 (k=1 radius 1 each); fake at 0.5 and 10
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    fake = torch.tensor([[0.5], [10.0]])
    res = prdc(real, fake, k=1)
    assert res.precision == 0.5  # 0.5 is inside the balls of 0 and 1; 10 is outside all
    assert res.density == pytest.approx(2 / (1 * 2))  # 2 ball memberships / (k M)
    assert res.coverage == 0.5  # balls of 0 and 1 hold a fake
    # fake radii (k=1): both 9.5; every real point is within 9.5 of the fake at 0.5
    assert res.recall == 1.0


def test_wilson_and_density_intervals():
    from scipy.stats import norm

    real, fake = _feats(250, 6, 40), _feats(200, 6, 41, shift=0.6)
    res = prdc(real, fake)
    z = norm.ppf(0.975)
    h, m = round(res.precision * 200), 200
    # Wilson score interval, written out: (p + z^2/2m +- z sqrt(p(1-p)/m + z^2/4m^2)) / (1 + z^2/m)
    p = h / m
    centre, half = (p + z * z / (2 * m)) / (1 + z * z / m), z * np.sqrt(p * (1 - p) / m + z * z / (4 * m * m)) / (1 + z * z / m)
    assert res.intervals["precision"][:2] == pytest.approx((centre - half, centre + half), rel=1e-12)
    # density: mean of per-sample ball counts / k, +- z sd / sqrt(M)
    d_fr = _dist(fake.numpy(), real.numpy())
    per = (d_fr < np.sort(_dist(real.numpy(), real.numpy()), axis=1)[:, 5][None, :]).sum(1) / 5
    sd = per.std(ddof=1) / np.sqrt(m)
    assert res.intervals["density"] == pytest.approx((per.mean() - z * sd, per.mean() + z * sd, sd), rel=1e-10)
    for name in ("recall", "coverage"):
        lo, hi, s = res.intervals[name]
        assert 0 <= lo <= getattr(res, name) <= hi <= 1 and s > 0
    mvs = {mv.name: mv for mv in res.metric_values()}
    assert "Wilson" in mvs["precision"].extra["interval"] and "subsampling" in mvs["coverage"].extra["interval"]


def test_interval_coverage_simulation():
    # reference fixed; 60 independent generated sets from a known distribution. Precision given the
    # reference is a known population fraction (estimated here from 20,000 draws); the Wilson
    # interval must contain it ~95% of the time. For recall and coverage the target is their mean
    # at this sample size; the subsampling intervals are conservative (measured ~0.99).
    g = torch.Generator().manual_seed(123)
    real = torch.randn(300, 4, generator=g, dtype=torch.float64)

    def draw(n):
        return torch.randn(n, 4, generator=g, dtype=torch.float64) * 1.2 + 0.2

    r_real = np.sort(_dist(real.numpy(), real.numpy()), axis=1)[:, 3]
    big = float(np.mean([(_dist(draw(2000).numpy(), real.numpy()) <= r_real[None, :]).any(1).mean() for _ in range(10)]))
    hits, res = {"precision": 0, "recall": [], "coverage": []}, []
    for s in range(60):
        r = prdc(real, draw(300), replicates=50, seed=s)
        res.append(r)
        lo, hi, _ = r.intervals["precision"]
        hits["precision"] += lo <= big <= hi
    assert hits["precision"] >= 52  # 95% of 60 = 57; P(Binomial(60, 0.95) < 52) < 0.2%
    for name in ("recall", "coverage"):
        target = np.mean([getattr(r, name) for r in res])
        inside = sum(r.intervals[name][0] <= target <= r.intervals[name][1] for r in res)
        assert inside >= 52, (name, inside)


def test_knn_radii_and_errors():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    assert knn_radii(x, 1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert knn_radii(x, 2).tolist() == [3.0, 2.0, 3.0, 6.0]
    with pytest.raises(DataError, match="needs more than 5 reference points"):
        prdc(torch.randn(5, 1), x)  # k_dc = 5 needs 6 reference points
    with pytest.raises(DataError, match="needs more than 3 generated points"):
        prdc(torch.randn(10, 1), x[:3])
    with pytest.raises(DataError, match="dimensions differ"):
        prdc(_feats(10, 3, 0), _feats(10, 4, 0))
