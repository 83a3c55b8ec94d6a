"""Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 with a cubic polynomial kernel.

k(x, y) = (gamma x.y + coef0)^degree with gamma = 1/d, coef0 = 1, degree = 3 by default.
KID is the mean of the unbiased MMD^2 estimate over ``subsets`` random subsets of
``subset_size`` samples drawn without replacement from each set; ``std`` is the (ddof=0)
standard deviation across subsets, as torch-fidelity reports it.

Subset indices are drawn exactly as torch-fidelity draws them, from
``numpy.random.RandomState(seed)`` alternating ``choice(n_gen, size)`` and
``choice(n_ref, size)`` - so with the same seed both give the same subsets (torch-fidelity's
``rng_seed``). Here the seed is the run's seed.

Precision: the Gram matrices x.y are computed in the features' dtype (float32 features from
the extractors, as in torch-fidelity; float64 features stay float64), the kernel values and
every sum in float64. KID is a small difference of large kernel sums, so torch-fidelity's
all-float32 computation carries ~1e-3 relative error on realistic features; the float64
accumulation here brings that to ~1e-6 at the same matmul cost (pass ``gram_dtype=
torch.float64`` for an all-float64 computation, which equals torch-fidelity run on float64
features to 1e-6 relative). The Gram matmuls run on features centred on the reference
subset's float64 mean c, and x.y is rebuilt in float64 as (x-c).(y-c) + (x-c).c + (y-c).c +
c.c, so features with a large common offset (1e4) keep their float32 precision. K_xx and K_yy are summed from the upper block triangle only
(``blocks`` row blocks: 5/8 of the matmul work for 4 blocks).

Policy when a set is smaller than ``subset_size``: a DataError, unless ``shrink=True``,
which uses ``min(n_gen, n_ref)`` and says so in the note.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import DataError
from ..results import MetricValue
from ..validation import as_feature_matrix


def kid_subset_indices(n_gen: int, n_ref: int, subsets: int, subset_size: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (generated, reference) index pairs torch-fidelity would draw with ``rng_seed=seed``."""
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(subsets):
        i1 = rng.choice(n_gen, subset_size, replace=False)
        i2 = rng.choice(n_ref, subset_size, replace=False)
        out.append((i1, i2))
    return out


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor, *, degree: int = 3, gamma: float | None = None,
                      coef0: float = 1.0) -> torch.Tensor:
    """(gamma x y^T + coef0)^degree; gamma defaults to 1 / d."""
    if gamma is None:
        gamma = 1.0 / x.shape[1]
    return (x @ y.T * gamma + coef0) ** degree


def mmd2_unbiased(k_xx: torch.Tensor, k_xy: torch.Tensor, k_yy: torch.Tensor) -> float:
    """Unbiased MMD^2: off-diagonal means of K_xx and K_yy minus twice the full mean of K_xy."""
    m, n = k_xx.shape[0], k_yy.shape[0]
    if m < 2 or n < 2:
        raise DataError(f"unbiased MMD^2 needs at least 2 samples per set, got {m} and {n}")
    sxx = k_xx.sum() - torch.diagonal(k_xx).sum()
    syy = k_yy.sum() - torch.diagonal(k_yy).sum()
    return float(sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2 * k_xy.sum() / (m * n))




def _kernel64(x: torch.Tensor, y: torch.Tensor, degree: int, gamma: float, coef0: float,
              ux: torch.Tensor | None = None, uy: torch.Tensor | None = None, cc: float = 0.0) -> torch.Tensor:
    """(gamma x y^T + coef0)^degree with the Gram in the inputs' dtype, the rest in float64.

    With centred inputs x = x0 - c, y = y0 - c and ux = x.c, uy = y.c, cc = c.c (float64), the
    Gram of the original points x0 y0^T = x y^T + ux + uy^T + cc is rebuilt in float64.
    """
    gram = (x @ y.T).double()
    if ux is not None:
        gram.add_(ux[:, None]).add_(uy[None, :]).add_(cc)
    return gram.mul_(gamma).add_(coef0).pow_(degree)


def _sym_kernel_sums(x: torch.Tensor, degree: int, gamma: float, coef0: float, blocks: int,
                     u: torch.Tensor | None = None, cc: float = 0.0) -> tuple[float, float]:
    """(sum of all entries, sum of the diagonal) of K(x, x), from the upper block triangle."""
    n_parts = max(1, min(blocks, x.shape[0]))
    parts = x.tensor_split(n_parts)
    us = u.tensor_split(n_parts) if u is not None else [None] * n_parts
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    diag = torch.zeros((), dtype=torch.float64, device=x.device)
    for i, (a, ua) in enumerate(zip(parts, us, strict=True)):
        k = _kernel64(a, a, degree, gamma, coef0, ua, ua, cc)
        total += k.sum()
        diag += k.diagonal().sum()
        for b, ub in zip(parts[i + 1:], us[i + 1:], strict=True):
            total += 2 * _kernel64(a, b, degree, gamma, coef0, ua, ub, cc).sum()
    return float(total), float(diag)


def kid_subset_value(x: torch.Tensor, y: torch.Tensor, *, degree: int = 3, gamma: float | None = None,
                     coef0: float = 1.0, blocks: int = 4) -> float:
    """Unbiased MMD^2 of one subset pair with the polynomial kernel (see the module docstring).

    Both sets are centred on y's float64 mean before the Gram matmuls and the Gram is rebuilt
    exactly in float64, so a large common offset does not cost float32 precision.
    """
    m, n = x.shape[0], y.shape[0]
    if m < 2 or n < 2:
        raise DataError(f"unbiased MMD^2 needs at least 2 samples per set, got {m} and {n}")
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    c = y.double().mean(0)
    xc, yc = (x.double() - c), (y.double() - c)
    ux, uy, cc = xc @ c, yc @ c, float(c @ c)
    xc, yc = xc.to(x.dtype), yc.to(y.dtype)
    sxx, dxx = _sym_kernel_sums(xc, degree, gamma, coef0, blocks, ux, cc)
    syy, dyy = _sym_kernel_sums(yc, degree, gamma, coef0, blocks, uy, cc)
    sxy = float(_kernel64(xc, yc, degree, gamma, coef0, ux, uy, cc).sum())
    return (sxx - dxx) / (m * (m - 1)) + (syy - dyy) / (n * (n - 1)) - 2 * sxy / (m * n)


def kid(
    features_gen: torch.Tensor,
    features_ref: torch.Tensor,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    shrink: bool = False,
    gram_dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    name: str = "kid",
    **mv_kwargs,
) -> MetricValue:
    """KID (mean over subsets) with the std across subsets; see the module docstring."""
    fg, fr = as_feature_matrix(features_gen, "generated features"), as_feature_matrix(features_ref, "reference features")
    if gram_dtype is None:
        gram_dtype = torch.promote_types(fg.dtype, fr.dtype)
    fg, fr = fg.to(device=device or fg.device, dtype=gram_dtype), fr.to(device=device or fr.device, dtype=gram_dtype)
    if fg.shape[1] != fr.shape[1]:
        raise DataError(f"KID: feature dimensions differ ({fg.shape[1]} vs {fr.shape[1]}); use one extractor for both sets")
    n1, n2 = fg.shape[0], fr.shape[0]
    note = None
    if min(n1, n2) < subset_size:
        if not shrink:
            raise DataError(
                f"KID subset size {subset_size} is larger than the sets (generated {n1}, reference {n2}); "
                f"pass a subset size <= {min(n1, n2)} (--kid-subset-size) or more samples"
            )
        note = f"subset size shrunk from {subset_size} to {min(n1, n2)} (fewer samples than the subset size)"
        subset_size = min(n1, n2)
    if subset_size < 2:
        raise DataError(f"KID needs a subset size of at least 2, got {subset_size}")
    vals = np.empty(subsets)
    for i, (i1, i2) in enumerate(kid_subset_indices(n1, n2, subsets, subset_size, seed)):
        x, y = fg[torch.from_numpy(i1).to(fg.device)], fr[torch.from_numpy(i2).to(fr.device)]
        vals[i] = kid_subset_value(x, y, degree=degree, gamma=gamma, coef0=coef0)
    return MetricValue(
        name=name, value=float(vals.mean()), n=int(n1), std=float(vals.std()), higher_is_better=False, note=note,
        extra={"n_ref": int(n2), "subsets": int(subsets), "subset_size": int(subset_size), "seed": int(seed),
               "kernel": f"poly(degree={degree}, gamma={'1/d' if gamma is None else gamma}, coef0={coef0})",
               "gram_dtype": str(gram_dtype).replace("torch.", ""), "accumulation": "float64",
               "centring": "reference-subset mean, Gram rebuilt in float64",
               "interval": "std = spread over subsets (torch-fidelity's convention)"},
        **mv_kwargs,
    )
