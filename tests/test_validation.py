"""Sample validation: NaN/Inf counts, out-of-range values, wrong shapes, dtype conversions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dgmbench.errors import EXIT_DATA, DataError
from dgmbench.validation import as_image_tensor, as_tensor, check_images, check_points, check_samples


def test_nan_and_inf_are_counted():
    x = torch.full((4, 1, 2, 2), 0.5)
    x[0, 0, 0, 0] = float("nan")
    x[2, 0, 1, 1] = float("inf")
    x[2, 0, 0, 1] = float("-inf")
    with pytest.raises(DataError) as exc:
        check_images(x)
    assert "samples: 2 of 4 samples contain NaN or Inf (1 NaN and 2 Inf values)" in str(exc.value)
    assert exc.value.exit_code == EXIT_DATA
    pts = torch.zeros(5, 2)
    pts[3, 1] = float("nan")
    with pytest.raises(DataError, match="gen: 1 of 5 samples contain NaN or Inf"):
        check_points(pts, name="gen")


def test_out_of_range_reports_range_count_and_fix():
    x = torch.full((3, 3, 2, 2), 0.5)
    x[0, 0, 0, 0] = -0.5
    x[2, 1, 1, 1] = 1.25
    with pytest.raises(DataError) as exc:
        check_images(x)
    msg = str(exc.value)
    assert "values must lie in [0, 1], found range [-0.5, 1.25] in 2 of 3 samples" in msg and "(x + 1) / 2" in msg
    check_images(torch.tensor([0.0, 1.0]).view(2, 1, 1, 1))  # the bounds themselves are valid


def test_wrong_shapes_name_the_expected_shape():
    with pytest.raises(DataError, match=r"expected images of shape \(N, 1, 28, 28\), got shape \(5, 28, 28\)"):
        check_images(torch.zeros(5, 28, 28), expected_shape=(1, 28, 28))
    with pytest.raises(DataError, match=r"expected per-sample shape \(3, 32, 32\), got \(1, 32, 32\)"):
        check_images(torch.zeros(5, 1, 32, 32), expected_shape=(3, 32, 32))
    with pytest.raises(DataError, match="expected 1 or 3 channels in dim 1, got 4"):
        check_images(torch.zeros(2, 4, 8, 8))
    with pytest.raises(DataError, match="need at least 10 samples, got 2"):
        check_images(torch.zeros(2, 1, 8, 8), min_n=10)
    with pytest.raises(DataError, match=r"expected points of shape \(N, 2\), got shape \(5, 3\)"):
        check_points(torch.zeros(5, 3))
    with pytest.raises(DataError, match=r"expected per-sample shape \(1, 8, 8\)"):
        check_samples(torch.zeros(2, 3, 8, 8), data_shape=(1, 8, 8))
    assert check_samples(np.zeros((4, 2)), data_shape=(2,)).shape == (4, 2)


def test_as_image_tensor_conversions():
    u8 = np.arange(2 * 4 * 5 * 3, dtype=np.uint8).reshape(2, 4, 5, 3)  # channels-last
    t = as_image_tensor(u8)
    assert t.shape == (2, 3, 4, 5) and t.dtype == torch.float32
    assert float(t[1, 2, 3, 4]) == pytest.approx(u8[1, 3, 4, 2] / 255.0, abs=1e-7)
    gray = as_image_tensor(torch.full((3, 6, 6), 255, dtype=torch.uint8))
    assert gray.shape == (3, 1, 6, 6) and float(gray.min()) == 1.0
    with pytest.raises(DataError, match="expected float in \\[0, 1\\] or uint8, got dtype torch.int64"):
        as_image_tensor(torch.zeros(2, 1, 4, 4, dtype=torch.int64))
    with pytest.raises(DataError, match="expected a torch.Tensor or numpy.ndarray, got list"):
        as_tensor([[0.0, 1.0]])
    assert check_points(np.array([[1, 2]])).dtype == torch.float32
