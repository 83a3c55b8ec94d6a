"""Input checks for sample and data tensors, with messages that say what to do.

Conventions: images are float tensors in [0, 1] of shape (N, C, H, W); 2-D toy data
are (N, 2) floats. uint8 arrays are accepted by :func:`as_image_tensor` and scaled by 1/255.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import DataError


def as_tensor(x) -> torch.Tensor:
    """Convert a NumPy array or tensor to a CPU tensor, without copying when possible."""
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    raise DataError(f"expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}")


def as_image_tensor(x, *, name: str = "samples") -> torch.Tensor:
    """Return float32 (N, C, H, W) in [0, 1]; uint8 input is divided by 255.

    (N, H, W) grayscale is given a channel axis; (N, H, W, C) with C in {1, 3} is
    transposed. Anything else is rejected.
    """
    t = as_tensor(x)
    if t.dtype == torch.uint8:
        t = t.float() / 255.0
    elif not torch.is_floating_point(t):
        raise DataError(f"{name}: expected float in [0, 1] or uint8, got dtype {t.dtype}")
    if t.ndim == 3:
        t = t.unsqueeze(1)
    if t.ndim == 4 and t.shape[1] not in (1, 3) and t.shape[-1] in (1, 3):
        t = t.permute(0, 3, 1, 2)
    return check_images(t.float(), name=name)


def _nonfinite_message(t: torch.Tensor, name: str) -> str | None:
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        n_bad = int(bad.flatten(1).any(1).sum()) if t.ndim > 1 else int(bad.sum())
        return (
            f"{name}: {n_bad} of {t.shape[0]} samples contain NaN or Inf "
            f"({int(torch.isnan(t).sum())} NaN and {int(torch.isinf(t).sum())} Inf values); "
            "check the model's sampler or drop those samples"
        )
    return None


def check_images(
    t: torch.Tensor,
    *,
    name: str = "samples",
    expected_shape: tuple[int, ...] | None = None,
    min_n: int = 1,
) -> torch.Tensor:
    """Validate float images (N, C, H, W) in [0, 1]; return them unchanged.

    ``expected_shape`` is the per-sample (C, H, W) shape when the caller knows it.
    """
    if not isinstance(t, torch.Tensor):
        t = as_tensor(t)
    if t.ndim != 4:
        want = f"(N, {', '.join(map(str, expected_shape))})" if expected_shape else "(N, C, H, W)"
        raise DataError(f"{name}: expected images of shape {want}, got shape {tuple(t.shape)}")
    if expected_shape is not None and tuple(t.shape[1:]) != tuple(expected_shape):
        raise DataError(
            f"{name}: expected per-sample shape {tuple(expected_shape)}, got {tuple(t.shape[1:])} "
            f"(full shape {tuple(t.shape)})"
        )
    if t.shape[1] not in (1, 3):
        raise DataError(f"{name}: expected 1 or 3 channels in dim 1, got {t.shape[1]} (shape {tuple(t.shape)})")
    if t.shape[0] < min_n:
        raise DataError(f"{name}: need at least {min_n} samples, got {t.shape[0]}")
    msg = _nonfinite_message(t, name)
    if msg:
        raise DataError(msg)
    lo, hi = float(t.min()), float(t.max())
    if lo < 0.0 or hi > 1.0:
        n_out = int(((t < 0) | (t > 1)).flatten(1).any(1).sum())
        raise DataError(
            f"{name}: values must lie in [0, 1], found range [{lo:.4g}, {hi:.4g}] in {n_out} of "
            f"{t.shape[0]} samples; rescale (e.g. (x + 1) / 2 for [-1, 1] outputs, x / 255 for uint8)"
        )
    return t


def check_points(t, *, name: str = "samples", dim: int = 2, min_n: int = 1) -> torch.Tensor:
    """Validate (N, dim) float points (2-D toy data); return a float tensor."""
    t = as_tensor(t)
    if t.ndim != 2 or t.shape[1] != dim:
        raise DataError(f"{name}: expected points of shape (N, {dim}), got shape {tuple(t.shape)}")
    if t.shape[0] < min_n:
        raise DataError(f"{name}: need at least {min_n} samples, got {t.shape[0]}")
    t = t.float() if not torch.is_floating_point(t) else t
    msg = _nonfinite_message(t, name)
    if msg:
        raise DataError(msg)
    return t


def check_samples(t, *, data_shape: tuple[int, ...], name: str = "samples", min_n: int = 1) -> torch.Tensor:
    """Validate samples against a dataset's per-sample shape: images if 3-D, points if 1-D."""
    if len(data_shape) == 3:
        return check_images(as_tensor(t), name=name, expected_shape=data_shape, min_n=min_n)
    return check_points(t, name=name, dim=data_shape[0], min_n=min_n)


def as_feature_matrix(x, name: str = "features") -> torch.Tensor:
    """Validate (N, d) features (tensor or array) with no NaN/Inf; return them detached, in
    float32 or float64 (other dtypes, half precision included, become float32)."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        raise DataError(f"{name}: expected a (N, d) feature tensor, got {getattr(x, 'shape', type(x).__name__)}")
    if not bool(torch.isfinite(x).all()):
        raise DataError(f"{name}: features contain NaN or Inf")
    x = x.detach()
    return x if x.dtype in (torch.float32, torch.float64) else x.float()

