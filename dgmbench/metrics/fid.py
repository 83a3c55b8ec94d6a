"""Frechet distance between Gaussians fitted to features (FID on Inception features).

    FD = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2})

computed in float64 with the *symmetric* formulation

    tr((S1 S2)^{1/2}) = sum_i sqrt(lambda_i(sqrt(S1) S2 sqrt(S1))) = sum_i sqrt(lambda_i(F^T S2 F))

for any factor S1 = F F^T (F^T S2 F is orthogonally similar to sqrt(S1) S2 sqrt(S1)). F is
the Cholesky factor when S1 is numerically positive definite (the usual case, n > d), else
sqrt(S1) from ``eigh`` with negative eigenvalues clamped to 0. The eigenvalues lambda_i of
the symmetric PSD matrix come from ``eigvalsh``; negative lambda_i (round-off) are clamped to
0 and the clamped mass (sum of |negative eigenvalues| of both steps) is reported. This
equals torch-fidelity's / pytorch-fid's value (``eigvals(S1 S2)`` / ``sqrtm``) for PSD
covariances, is real by construction, and needs one Cholesky and one symmetric eigenvalue
computation instead of a non-symmetric eigen- or Schur decomposition.

Covariances are unbiased (ddof = 1), as in torch-fidelity and pytorch-fid. When the number
of samples is below the feature dimension the covariance is singular and FID is strongly
biased: a warning is emitted and the note says so.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import DataError
from ..results import MetricValue

SMALL_N_NOTE = "{which} n={n} is below the feature dimension {d}: the covariance is singular and FID is biased"


@dataclass
class FrechetResult:
    """A Frechet distance with its parts (all float64 values in squared feature units)."""

    value: float
    mean_term: float  # ||mu1 - mu2||^2
    trace_term: float  # tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2})
    clamped_mass: float  # sum of |negative eigenvalues| clamped to 0 (S1 and F^T S2 F)
    dim: int
    factorisation: str = "cholesky"  # how S1 = F F^T was factored ("cholesky" or "eigh")


@dataclass
class GaussianStats:
    """Mean (d,) and unbiased covariance (d, d) of n feature vectors, float64."""

    mean: torch.Tensor
    cov: torch.Tensor
    n: int
    extra: dict = field(default_factory=dict)


def _t64(x) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise DataError(f"expected a tensor or array, got {type(x).__name__}")
    return x.detach().to(device="cpu", dtype=torch.float64)


def stats_from_features(features: torch.Tensor) -> GaussianStats:
    """Mean and unbiased covariance (ddof=1) of (N, d) features, in float64."""
    f = _t64(features)
    if f.ndim != 2:
        raise DataError(f"features: expected shape (N, d), got {tuple(f.shape)}")
    if f.shape[0] < 2:
        raise DataError(f"features: need at least 2 samples for a covariance, got {f.shape[0]}")
    if not bool(torch.isfinite(f).all()):
        raise DataError("features contain NaN or Inf; check the samples and the feature extractor")
    mu = f.mean(0)
    c = f - mu
    cov = c.T @ c / (f.shape[0] - 1)
    return GaussianStats(mu, cov, int(f.shape[0]))


def as_stats(obj) -> GaussianStats:
    """Accept GaussianStats, a StreamingStats-like object (``mean``, ``cov``, ``n``), a dict
    with mu/sigma (torch-fidelity) or a (mu, sigma[, n]) tuple."""
    if isinstance(obj, GaussianStats):
        return obj
    if isinstance(obj, dict):
        mu, cov = obj.get("mu", obj.get("mean")), obj.get("sigma", obj.get("cov"))
        return GaussianStats(_t64(mu), _t64(cov), int(obj.get("n", 0) or 0))
    if isinstance(obj, tuple | list):
        n = int(obj[2]) if len(obj) > 2 else 0
        return GaussianStats(_t64(obj[0]), _t64(obj[1]), n)
    if hasattr(obj, "mean") and hasattr(obj, "cov"):
        mean, cov = obj.mean, obj.cov
        mean = mean() if callable(mean) else mean
        cov = cov() if callable(cov) else cov
        n = obj.n() if callable(getattr(obj, "n", None)) else getattr(obj, "n", 0)
        return GaussianStats(_t64(mean), _t64(cov), int(n or 0))
    raise DataError(f"cannot read mean/covariance statistics from a {type(obj).__name__}")


def _check_pair(mu1, s1, mu2, s2) -> None:
    d = mu1.shape[0]
    if mu1.ndim != 1 or mu2.shape != mu1.shape:
        raise DataError(f"means must be vectors of equal length, got {tuple(mu1.shape)} and {tuple(mu2.shape)}")
    if s1.shape != (d, d) or s2.shape != (d, d):
        raise DataError(f"covariances must be ({d}, {d}), got {tuple(s1.shape)} and {tuple(s2.shape)}; "
                        "were the two sets extracted with different feature extractors?")
    for name, t in (("mean 1", mu1), ("cov 1", s1), ("mean 2", mu2), ("cov 2", s2)):
        if not bool(torch.isfinite(t).all()):
            raise DataError(f"Frechet distance: {name} contains NaN or Inf")


def sqrtm_psd(s: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Symmetric PSD square root via ``eigh`` (float64); returns it and the clamped negative mass."""
    s = (s + s.T) / 2
    w, v = torch.linalg.eigh(s)
    neg = float(-w[w < 0].sum())
    return (v * w.clamp_min(0).sqrt()) @ v.T, neg


@dataclass
class PsdFactor:
    """F with F F^T = S: a Cholesky factor when S is positive definite, else the eigh square root."""

    f: torch.Tensor
    clamped: float  # |negative eigenvalues| clamped to 0 (eigh route only)
    method: str  # "cholesky" or "eigh"


def factor_psd(s: torch.Tensor) -> PsdFactor:
    """Factor a covariance S = F F^T (float64).

    Cholesky (d^3/3 flops) is tried first; when S is not numerically positive definite
    (n <= d, duplicated features) the square root from ``eigh`` with negative eigenvalues
    clamped to 0 is used. Both give the same eigenvalues of F^T S2 F (= those of
    sqrt(S1) S2 sqrt(S1), orthogonally similar), so the choice changes speed, not the value.
    """
    s = (s + s.T) / 2
    chol, info = torch.linalg.cholesky_ex(s)
    if int(info) == 0 and bool(torch.isfinite(chol).all()):
        return PsdFactor(chol, 0.0, "cholesky")
    root, neg = sqrtm_psd(s)
    return PsdFactor(root, neg, "eigh")


def trace_sqrt_product(s1: torch.Tensor, s2: torch.Tensor, factor1: PsdFactor | None = None) -> tuple[float, float]:
    """tr((S1 S2)^{1/2}) = sum sqrt(eigvals(F^T S2 F)) with S1 = F F^T, and the clamped mass."""
    if factor1 is None:
        factor1 = factor_psd(s1)
    f = factor1.f
    m = f.T @ s2 @ f
    m = (m + m.T) / 2
    lam = torch.linalg.eigvalsh(m)
    clamped = factor1.clamped + float(-lam[lam < 0].sum())
    return float(lam.clamp_min(0).sqrt().sum()), clamped


def frechet_distance(mu1, sigma1, mu2, sigma2, *, factor1: PsdFactor | None = None) -> FrechetResult:
    """Frechet distance of N(mu1, sigma1) and N(mu2, sigma2), float64, symmetric formulation.

    ``factor1`` may pass a precomputed :func:`factor_psd` of sigma1 (e.g. of fixed reference
    statistics, reused across bootstrap replicates).
    """
    mu1, s1, mu2, s2 = _t64(mu1), _t64(sigma1), _t64(mu2), _t64(sigma2)
    _check_pair(mu1, s1, mu2, s2)
    if factor1 is None:
        factor1 = factor_psd(s1)
    diff = mu1 - mu2
    mean_term = float(diff @ diff)
    tr_sqrt, clamped = trace_sqrt_product(s1, s2, factor1=factor1)
    trace_term = float(torch.trace(s1) + torch.trace(s2)) - 2.0 * tr_sqrt
    return FrechetResult(mean_term + trace_term, mean_term, trace_term, clamped, int(mu1.shape[0]), factor1.method)


def _small_n_note(n: int, d: int, which: str) -> str | None:
    if 0 < n < d:
        msg = SMALL_N_NOTE.format(which=which, n=n, d=d)
        warnings.warn(msg, stacklevel=3)
        return msg
    return None


def fid_from_stats(stats_gen, stats_ref, *, name: str = "fid", **mv_kwargs) -> MetricValue:
    """FID (no interval) from two statistics objects; n is the generated set's size."""
    g, r = as_stats(stats_gen), as_stats(stats_ref)
    # reference first: sqrt of the reference covariance is the one a caller can cache
    res = frechet_distance(r.mean, r.cov, g.mean, g.cov)
    d = res.dim
    notes = [m for m in (_small_n_note(g.n, d, "generated"), _small_n_note(r.n, d, "reference")) if m]
    return MetricValue(
        name=name, value=res.value, n=g.n or None, higher_is_better=False,
        note="; ".join(notes) or None,
        extra={"n_ref": r.n or None, "dim": d, "mean_term": res.mean_term, "trace_term": res.trace_term,
               "clamped_eigenvalue_mass": res.clamped_mass, "factorisation": res.factorisation},
        **mv_kwargs,
    )


def fid_from_features(
    features_gen: torch.Tensor,
    stats_ref,
    *,
    bootstrap: int = 0,
    seed: int = 0,
    level: float = 0.95,
    name: str = "fid",
    stats_gen=None,
    **mv_kwargs,
) -> MetricValue:
    """FID of generated features (N, d) against reference statistics, with an optional bootstrap CI.

    ``stats_gen`` may pass the generated set's statistics (e.g. streaming float64 ones)
    for the point estimate, so the value equals :func:`fid_from_stats` exactly.

    The bootstrap resamples the *generated* features with replacement ``bootstrap`` times
    (torch.Generator seeded with ``seed``) and keeps the reference statistics fixed; ``std``
    is the bootstrap standard error and the interval the normal bootstrap interval
    value +- z * std at ``level``. (Resampling with replacement duplicates points and biases
    FID upwards, so percentile intervals can miss the estimate entirely at small n; the
    bootstrap bias, mean(replicates) - value, is reported in ``extra``.) Each replicate costs
    one covariance and one ``eigvalsh`` (sqrt of the reference covariance is computed once).
    The interval describes sampling variability of the generated set, not FID's own bias
    at finite n (see :func:`fid_infinity`).
    """
    if isinstance(stats_ref, torch.Tensor | np.ndarray):
        stats_ref = stats_from_features(stats_ref)
    r = as_stats(stats_ref)
    f = _t64(features_gen)
    g = stats_from_features(f) if stats_gen is None else as_stats(stats_gen)
    if g.n and g.n != f.shape[0]:
        raise DataError(f"stats_gen holds {g.n} samples but {f.shape[0]} features were given")
    _check_pair(r.mean, r.cov, g.mean, g.cov)
    fac_r = factor_psd(r.cov)
    res = frechet_distance(r.mean, r.cov, g.mean, g.cov, factor1=fac_r)
    d = res.dim
    notes = [m for m in (_small_n_note(g.n, d, "generated"), _small_n_note(r.n, d, "reference")) if m]
    extra = {"n_ref": r.n or None, "dim": d, "mean_term": res.mean_term, "trace_term": res.trace_term,
             "clamped_eigenvalue_mass": res.clamped_mass, "factorisation": res.factorisation}
    ci_low = ci_high = std = None
    if bootstrap and bootstrap > 1:
        gen = torch.Generator().manual_seed(int(seed))
        n = f.shape[0]
        vals = []
        for _ in range(int(bootstrap)):
            idx = torch.randint(0, n, (n,), generator=gen)
            # multiplicity weights: cov of the resample without materialising it twice
            w = torch.bincount(idx, minlength=n).to(torch.float64)
            mu = (w @ f) / n
            c = f - mu
            cov = (c.T * w) @ c / (n - 1)
            vals.append(frechet_distance(r.mean, r.cov, mu, cov, factor1=fac_r).value)
        v = np.asarray(vals)
        from scipy.stats import norm

        std = float(v.std(ddof=1))
        z = float(norm.ppf(0.5 + level / 2))
        ci_low, ci_high = res.value - z * std, res.value + z * std
        extra.update({"bootstrap": int(bootstrap), "ci_level": level, "bootstrap_bias": float(v.mean() - res.value),
                      "ci_method": "normal bootstrap interval (resampling generated samples, reference fixed)"})
    return MetricValue(name=name, value=res.value, n=g.n, ci_low=ci_low, ci_high=ci_high, std=std,
                       higher_is_better=False, note="; ".join(notes) or None, extra=extra, **mv_kwargs)


def fid_infinity(
    features_gen: torch.Tensor,
    stats_ref,
    *,
    num_points: int = 15,
    min_fraction: float = 0.2,
    seed: int = 0,
    name: str = "fid_inf",
    **mv_kwargs,
) -> MetricValue:
    """FID-infinity (Chong & Forsyth 2020): extrapolate FID(N) linearly in 1/N to N -> infinity.

    FID is computed on ``num_points`` seeded random subsets of the generated features of
    sizes evenly spaced in [min_fraction * n, n]; a least-squares line in 1/N gives the
    intercept (the value) and the slope (in ``extra``).
    """
    f = _t64(features_gen)
    r = as_stats(stats_ref) if not isinstance(stats_ref, torch.Tensor | np.ndarray) else stats_from_features(stats_ref)
    n = f.shape[0]
    sizes = np.linspace(max(int(min_fraction * n), 2), n, num_points).astype(int)
    fac_r = factor_psd(r.cov)
    gen = torch.Generator().manual_seed(int(seed))
    vals = []
    for m in sizes:
        idx = torch.randperm(n, generator=gen)[: int(m)]
        s = stats_from_features(f[idx])
        vals.append(frechet_distance(r.mean, r.cov, s.mean, s.cov, factor1=fac_r).value)
    x = 1.0 / sizes.astype(np.float64)
    slope, intercept = np.polyfit(x, np.asarray(vals), 1)
    return MetricValue(name=name, value=float(intercept), n=int(n), higher_is_better=False,
                       extra={"slope": float(slope), "sizes": sizes.tolist(), "fids": vals,
                              "method": "linear fit of FID(N) in 1/N (Chong & Forsyth 2020)"},
                       **mv_kwargs)


__all__ = ["FrechetResult", "GaussianStats", "as_stats", "fid_from_features", "fid_from_stats", "fid_infinity",
           "PsdFactor", "factor_psd", "frechet_distance", "sqrtm_psd", "stats_from_features"]
