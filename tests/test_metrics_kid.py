"""KID equals torch-fidelity's kid_features_to_metric with the same subsets; the subset policy."""

import numpy as np
import pytest
import torch
from torch_fidelity.metric_kid import kid_features_to_metric

from dgmbench.errors import DataError
from dgmbench.metrics.kid import kid, kid_subset_indices, mmd2_unbiased, polynomial_kernel


def _feats(n, d, seed, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) + shift


@pytest.mark.parametrize("seed", [0, 2020])
def test_equals_torch_fidelity(seed):
    f1, f2 = _feats(300, 40, 1, 0.1), _feats(250, 40, 2)
    ref = kid_features_to_metric(f1, f2, kid_subsets=20, kid_subset_size=100, rng_seed=seed, verbose=False)
    ours = kid(f1, f2, subsets=20, subset_size=100, seed=seed)
    assert abs(ours.value - ref["kernel_inception_distance_mean"]) <= 1e-6 * abs(ref["kernel_inception_distance_mean"])
    assert abs(ours.std - ref["kernel_inception_distance_std"]) <= 1e-6 * ref["kernel_inception_distance_std"]
    assert ours.extra["subset_size"] == 100 and ours.n == 300


def test_subset_indices_match_numpy_stream():
    # torch-fidelity draws generated then reference indices from one RandomState per subset
    rng = np.random.RandomState(5)
    expected = [(rng.choice(30, 10, replace=False), rng.choice(20, 10, replace=False)) for _ in range(3)]
    got = kid_subset_indices(30, 20, 3, 10, 5)
    for (a, b), (c, d) in zip(expected, got):
        assert (a == c).all() and (b == d).all()


def test_unbiased_mmd_against_explicit_double_sum():
    x, y = _feats(7, 3, 3).numpy(), _feats(9, 3, 4, 0.5).numpy()

    def k(a, b):
        return (a @ b / 3 + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    yy = sum(k(y[i], y[j]) for i in range(9) for j in range(9) if i != j) / (9 * 8)
    xy = sum(k(x[i], y[j]) for i in range(7) for j in range(9)) / (7 * 9)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    got = mmd2_unbiased(polynomial_kernel(tx, tx), polynomial_kernel(tx, ty), polynomial_kernel(ty, ty))
    assert got == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_same_distribution_near_zero_shift_positive():
    same = kid(_feats(400, 10, 5), _feats(400, 10, 6), subsets=10, subset_size=200, seed=0)
    shifted = kid(_feats(400, 10, 5, 1.0), _feats(400, 10, 6), subsets=10, subset_size=200, seed=0)
    assert abs(same.value) < 3 * same.std
    assert shifted.value > 10 * abs(same.value) and shifted.value > 3 * shifted.std


def test_seeded_and_seed_changes_subsets():
    f1, f2 = _feats(200, 5, 1), _feats(200, 5, 2, 0.3)
    a, b, c = (kid(f1, f2, subsets=5, subset_size=50, seed=s) for s in (1, 1, 2))
    assert a.value == b.value and a.value != c.value


def test_subset_size_policy():
    f1, f2 = _feats(80, 5, 1), _feats(120, 5, 2)
    with pytest.raises(DataError, match="subset size 100 is larger"):
        kid(f1, f2, subsets=3, subset_size=100)
    mv = kid(f1, f2, subsets=3, subset_size=100, shrink=True)
    assert mv.extra["subset_size"] == 80 and "shrunk" in mv.note
    with pytest.raises(DataError, match="dimensions differ"):
        kid(f1, _feats(120, 6, 2), subsets=3, subset_size=50)
    with pytest.raises(DataError, match="NaN"):
        kid(torch.full((80, 5), float("nan")), f2, subsets=3, subset_size=50)


def test_float32_features_mixed_precision_beats_all_float32():
    # realistic (non-negative, correlated) float32 features from one distribution: KID ~ 0, heavy cancellation
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(256, 256, generator=torch.Generator().manual_seed(1)) / 16

    def feats(n):
        return torch.relu(torch.randn(n, 256, generator=g) @ mix + 0.3).float()

    x, y = feats(400), feats(400)
    kw = dict(kid_subsets=3, kid_subset_size=300, rng_seed=0, verbose=False)
    exact = kid_features_to_metric(x.double(), y.double(), **kw)["kernel_inception_distance_mean"]
    tf32 = kid_features_to_metric(x, y, **kw)["kernel_inception_distance_mean"]
    ours = kid(x, y, subsets=3, subset_size=300, seed=0)
    assert ours.extra["gram_dtype"] == "float32"
    err_ours, err_tf32 = abs(ours.value - exact) / abs(exact), abs(tf32 - exact) / abs(exact)
    assert err_ours < 1e-4 and err_ours < err_tf32 / 10
    ours64 = kid(x, y, subsets=3, subset_size=300, seed=0, gram_dtype=torch.float64)
    assert ours64.value == pytest.approx(exact, rel=1e-9)


def test_block_triangle_sums_equal_full_kernel():
    from dgmbench.metrics.kid import kid_subset_value

    x, y = _feats(37, 6, 8), _feats(41, 6, 9, 0.2)
    full = mmd2_unbiased(polynomial_kernel(x, x), polynomial_kernel(x, y), polynomial_kernel(y, y))
    for blocks in (1, 2, 4, 7):
        assert kid_subset_value(x, y, blocks=blocks) == pytest.approx(full, rel=1e-12)


def test_large_common_offset_keeps_float32_precision():
    # float32 features with a common offset of 1e4: x.y ~ d 1e8 has no float32 digits left for the
    # differences KID measures. The value must equal a float64 numpy computation on the same
    # (float32-representable) values, with the same subsets.
    d, size, subsets, seed = 16, 100, 5, 3
    f1 = (_feats(200, d, 11, 0.3) + 1e4).float()
    f2 = (_feats(180, d, 12) + 1e4).float()
    x64, y64 = f1.double().numpy(), f2.double().numpy()
    vals = []
    for i1, i2 in kid_subset_indices(200, 180, subsets, size, seed):
        a, b = x64[i1], y64[i2]
        k = lambda u, v: (u @ v.T / d + 1) ** 3  # noqa: E731
        kxx, kyy, kxy = k(a, a), k(b, b), k(a, b)
        m = size
        vals.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                    - 2 * kxy.mean())
    ours = kid(f1, f2, subsets=subsets, subset_size=size, seed=seed)
    assert ours.value == pytest.approx(np.mean(vals), rel=1e-4)
    assert ours.std == pytest.approx(np.std(vals), rel=1e-3)
