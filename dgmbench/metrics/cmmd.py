"""CMMD (Jayasumana et al. 2024, "Rethinking FID: Towards a Better Evaluation Metric for Image Generation").

MMD^2 between CLIP image embeddings of the generated and reference sets with the Gaussian
RBF kernel of the paper's reference code (google-research/cmmd, ``distance.py``):

    k(x, y) = exp(-gamma ||x - y||^2),  gamma = 1 / (2 sigma^2),  sigma = 10

reported multiplied by the paper's scale factor 1000 ("to make the metric more human
readable"). The embeddings are the L2-normalised CLIP image embeddings (the paper uses
ViT-L/14@336px; dgmbench's ``clip`` extractor gives whichever open_clip model is chosen,
and the Record names it).

Estimator: ``"unbiased"`` (default) is the U-statistic of Gretton et al. 2012, eq. 3
(off-diagonal means of K_xx and K_yy, full mean of K_xy), 0 in expectation for identical
distributions and possibly slightly negative; ``"biased"`` is the minimum-variance
V-statistic (all entries, diagonals included) that the reference code computes, so
``estimator="biased"`` reproduces its numbers. The two differ by
scale * [(1 - mean offdiag K_xx)/m + (1 - mean offdiag K_yy)/n], i.e. O(1/n).
Kernel sums are accumulated in float64 over row blocks (:mod:`dgmbench.metrics.mmd`).
"""

from __future__ import annotations

import math

import torch

from ..errors import DataError, UsageError
from ..results import MetricValue
from .mmd import _kernel_row_sums, _points, _variance

SIGMA = 10.0
SCALE = 1000.0
ESTIMATORS = ("unbiased", "biased")


def cmmd(
    gen_embeddings: torch.Tensor,
    ref_embeddings: torch.Tensor,
    *,
    sigma: float = SIGMA,
    scale: float = SCALE,
    estimator: str = "unbiased",
    name: str = "cmmd",
    **mv_kwargs,
) -> MetricValue:
    """CMMD = scale x MMD^2 (RBF, bandwidth ``sigma``) of generated (m, d) vs reference (n, d) embeddings.

    ``std`` is ``scale`` x the leading-order standard error of the unbiased estimate (as
    :func:`dgmbench.metrics.mmd.mmd_rbf` computes it). Lower is better.
    """
    if estimator not in ESTIMATORS:
        raise UsageError(f"unknown CMMD estimator {estimator!r}; use one of {', '.join(ESTIMATORS)}")
    if not (sigma > 0 and math.isfinite(sigma)) or not (scale > 0 and math.isfinite(scale)):
        raise UsageError(f"CMMD sigma and scale must be positive numbers, got sigma={sigma}, scale={scale}")
    x, y = _points(gen_embeddings, "generated embeddings"), _points(ref_embeddings, "reference embeddings")
    if x.shape[1] != y.shape[1]:
        raise DataError(f"CMMD: embedding dimensions differ ({x.shape[1]} vs {y.shape[1]}); "
                        "were both sets embedded with the same CLIP model?")
    m, n = x.shape[0], y.shape[0]
    rxx = _kernel_row_sums(x, x, sigma, same=True)  # off-diagonal row sums (k(x, x) = 1)
    ryy = _kernel_row_sums(y, y, sigma, same=True)
    rxy_x = _kernel_row_sums(x, y, sigma, same=False)
    rxy_y = _kernel_row_sums(y, x, sigma, same=False)
    sxx, syy, sxy = float(rxx.sum()), float(ryy.sum()), float(rxy_x.sum())
    if estimator == "unbiased":
        mmd2 = sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2 * sxy / (m * n)
    else:
        mmd2 = (sxx + m) / (m * m) + (syy + n) / (n * n) - 2 * sxy / (m * n)
    std = scale * math.sqrt(max(_variance(rxx, ryy, rxy_x, rxy_y, m, n), 0.0))
    extra = {"sigma": float(sigma), "scale": float(scale), "estimator": estimator, "n_ref": n,
             "kernel": "exp(-||x-y||^2 / (2 sigma^2))",
             "reference": "Jayasumana et al. 2024 (google-research/cmmd)"}
    return MetricValue(name=name, value=scale * mmd2, n=m, std=std, higher_is_better=False, extra=extra,
                       **mv_kwargs)


__all__ = ["ESTIMATORS", "SCALE", "SIGMA", "cmmd"]
