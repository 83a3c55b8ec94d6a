"""StreamingStats: float64 streaming mean/cov agree with numpy and do not depend on batch size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_fidelity.metric_fid import fid_statistics_to_metric

from dgmbench.errors import DataError
from dgmbench.features.stats import StreamingStats


def _features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64) / d**0.5
    z = torch.randn(n, d, generator=g, dtype=torch.float64)
    # non-negative, correlated, skewed: like post-ReLU pooled features
    return torch.relu(z @ a + 0.3) + shift


def _tf_stats(st: StreamingStats) -> dict:
    return {"mu": st.mean.numpy(), "sigma": st.cov.numpy()}


def _fid(a: StreamingStats, b: StreamingStats) -> float:
    return fid_statistics_to_metric(_tf_stats(a), _tf_stats(b), verbose=False)["frechet_inception_distance"]


def test_mean_cov_equal_numpy():
    x = _features(777, 32, 0)
    st = StreamingStats.from_features(x, batch_size=50)
    assert st.n == 777
    np.testing.assert_allclose(st.mean.numpy(), x.numpy().mean(0), rtol=0, atol=1e-13)
    np.testing.assert_allclose(st.cov.numpy(), np.cov(x.numpy(), rowvar=False), rtol=0, atol=1e-13)
    assert st.mean.dtype == torch.float64 and st.cov.dtype == torch.float64
    assert torch.equal(st.cov, st.cov.T)


def test_fid_independent_of_batch_size():
    x = _features(1000, 64, 1)
    y = _features(1000, 64, 2, shift=0.05)
    ref = StreamingStats.from_features(y)
    fids = [_fid(StreamingStats.from_features(x.float(), batch_size=bs), ref) for bs in (1, 7, 500)]
    # the numpy path on the same float32 features, as torch-fidelity computes it
    x32 = x.float().numpy().astype(np.float64)
    direct = fid_statistics_to_metric(
        {"mu": x32.mean(0), "sigma": np.cov(x32, rowvar=False)}, _tf_stats(ref), verbose=False
    )["frechet_inception_distance"]
    assert direct > 0.1  # a non-trivial distance, so relative agreement means something
    for f in fids:
        assert f == pytest.approx(fids[0], rel=1e-9)
        assert f == pytest.approx(direct, rel=1e-9)


def test_large_offset_is_numerically_stable():
    # mean 1e6, variance ~0.1: a naive sum-of-squares accumulation loses ~all digits here
    x = _features(500, 8, 3, shift=1e6)
    st = StreamingStats.from_features(x, batch_size=7)
    centred = x.numpy() - x.numpy().mean(0)
    want = centred.T @ centred / (len(x) - 1)
    np.testing.assert_allclose(st.cov.numpy(), want, rtol=1e-8, atol=1e-10)


def test_merge_equals_single_pass_and_state_roundtrip():
    x = _features(301, 16, 4)
    whole = StreamingStats.from_features(x)
    parts = [StreamingStats.from_features(x[i : i + 100], batch_size=13) for i in range(0, 301, 100)]
    merged = StreamingStats(16)
    for p in parts:
        merged.merge(p)
    assert merged.n == 301
    torch.testing.assert_close(merged.mean, whole.mean, rtol=0, atol=1e-14)
    torch.testing.assert_close(merged.cov, whole.cov, rtol=0, atol=1e-14)
    restored = StreamingStats.from_state(merged.state_dict())
    assert restored.n == merged.n
    assert torch.equal(restored.mean, merged.mean) and torch.equal(restored.cov, merged.cov)
    # merging an empty accumulator changes nothing
    assert torch.equal(merged.merge(StreamingStats(16)).cov, restored.cov)


def test_bad_input_errors():
    st = StreamingStats(4)
    with pytest.raises(DataError, match="no features"):
        st.mean  # noqa: B018
    with pytest.raises(DataError, match=r"shape \(N, 4\)"):
        st.update(torch.zeros(3, 5))
    st.update(torch.zeros(1, 4))
    with pytest.raises(DataError, match="at least 2 samples"):
        st.cov  # noqa: B018
    with pytest.raises(DataError, match="NaN or Inf"):
        st.update(torch.tensor([[0.0, float("nan"), 0.0, 0.0]]))
    with pytest.raises(DataError, match="dimensions differ"):
        st.merge(StreamingStats(3))
    with pytest.raises(DataError, match="malformed"):
        StreamingStats.from_state({"dim": 4})
