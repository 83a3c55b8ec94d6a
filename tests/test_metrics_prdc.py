"""Precision/recall equal torch-fidelity's PRC; density/coverage equal a direct numpy computation."""

import numpy as np
import pytest
import torch
from torch_fidelity.metric_prc import prc_features_to_metric

from dgmbench.errors import DataError
from dgmbench.metrics.prdc import knn_radii, prdc


def _feats(n, d, seed, shift=0.0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) * scale + shift


def _numpy_prdc(real, fake, k):
    """Definitions of Naeem et al. 2020 with '<=' balls, written independently with numpy."""
    real, fake = np.asarray(real), np.asarray(fake)

    def dist(a, b):
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

    d_rr, d_ff, d_fr = dist(real, real), dist(fake, fake), dist(fake, real)
    r_real = np.sort(d_rr, axis=1)[:, k]
    r_fake = np.sort(d_ff, axis=1)[:, k]
    precision = (d_fr <= r_real[None, :]).any(1).mean()
    recall = (d_fr.T <= r_fake[None, :]).any(1).mean()
    density = (d_fr <= r_real[None, :]).sum() / (k * len(fake))
    coverage = (d_fr.min(0) <= r_real).mean()
    return precision, recall, density, coverage


@pytest.mark.parametrize("k", [3, 5])
def test_precision_recall_equal_torch_fidelity(k):
    real, fake = _feats(500, 16, 0), _feats(400, 16, 1, shift=0.4, scale=0.8)
    ref = prc_features_to_metric(fake, real, prc_neighborhood=k, prc_batch_size=10000, save_cpu_ram=False, verbose=False)
    ours = prdc(real, fake, k=k)
    # torch-fidelity averages in float32: compare the counts of points inside the manifolds
    assert round(ours.precision * 400) == round(ref["precision"] * 400)
    assert round(ours.recall * 500) == round(ref["recall"] * 500)
    assert ours.precision == pytest.approx(ref["precision"], abs=1e-6)


def test_blocking_does_not_change_results():
    real, fake = _feats(300, 8, 2), _feats(250, 8, 3, shift=0.3)
    a = prdc(real, fake, k=3)
    b = prdc(real, fake, k=3, max_bytes=4096)  # a few rows per block
    assert (a.precision, a.recall, a.density, a.coverage) == (b.precision, b.recall, b.density, b.coverage)
    ref = prc_features_to_metric(fake.float(), real.float(), prc_neighborhood=3, prc_batch_size=10000,
                                 save_cpu_ram=False, verbose=False)
    c = prdc(real.float(), fake.float(), k=3)
    assert (round(c.precision * 250), round(c.recall * 300)) == (round(ref["precision"] * 250), round(ref["recall"] * 300))


def test_density_coverage_equal_direct_definition():
    real, fake = _feats(200, 6, 4), _feats(180, 6, 5, shift=0.5, scale=1.3)
    ours = prdc(real, fake, k=4)
    p, r, d, c = _numpy_prdc(real.numpy(), fake.numpy(), 4)
    assert (ours.precision, ours.recall) == pytest.approx((p, r), abs=0)
    assert ours.density == pytest.approx(d, rel=1e-12)
    assert ours.coverage == pytest.approx(c, abs=0)


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


def test_identical_sets():
    x = _feats(100, 4, 7)
    res = prdc(x, x.clone(), k=3)
    assert res.precision == res.recall == res.coverage == 1.0


def test_knn_radii_and_errors():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    assert knn_radii(x, 1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert knn_radii(x, 2).tolist() == [3.0, 2.0, 3.0, 6.0]
    with pytest.raises(DataError, match="needs more than 3 points"):
        prdc(x[:3], x, k=3)
    with pytest.raises(DataError, match="dimensions differ"):
        prdc(_feats(10, 3, 0), _feats(10, 4, 0))
