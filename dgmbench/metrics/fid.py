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
of samples is at most the feature dimension (n <= d) the covariance is singular and FID is
strongly biased: a warning is emitted and the note says so.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import DataError
from ..results import MetricValue
from .intervals import z_value

SMALL_N_NOTE = "{which} n={n} is at or below the feature dimension {d}: the covariance is singular and FID is biased"


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


def _checked_features(features) -> torch.Tensor:
    """(N, d) features as float64 on the CPU; at least 2 rows, all finite."""
    f = _t64(features)
    if f.ndim != 2:
        raise DataError(f"features: expected shape (N, d), got {tuple(f.shape)}")
    if f.shape[0] < 2:
        raise DataError(f"features: need at least 2 samples for a covariance, got {f.shape[0]}")
    if not bool(torch.isfinite(f).all()):
        raise DataError("features contain NaN or Inf; check the samples and the feature extractor")
    return f


def stats_from_features(features: torch.Tensor) -> GaussianStats:
    """Mean and unbiased covariance (ddof=1) of (N, d) features, in float64."""
    f = _checked_features(features)
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


def _check_pair(mu1, s1, mu2, s2=None) -> None:
    """Shapes and finiteness of two Gaussians' statistics (``s2`` None: features checked elsewhere)."""
    d = mu1.shape[0]
    if mu1.ndim != 1 or mu2.shape != mu1.shape:
        raise DataError(f"means must be vectors of equal length, got {tuple(mu1.shape)} and {tuple(mu2.shape)}")
    s2_shape = (d, d) if s2 is None else s2.shape
    if s1.shape != (d, d) or s2_shape != (d, d):
        raise DataError(f"covariances must be ({d}, {d}), got {tuple(s1.shape)} and {tuple(s2_shape)}; "
                        "were the two sets extracted with different feature extractors?")
    for name, t in (("mean 1", mu1), ("cov 1", s1), ("mean 2", mu2), ("cov 2", s2)):
        if t is not None and not bool(torch.isfinite(t).all()):
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
    if 0 < n <= d:
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


def _on_device(f: torch.Tensor, r: GaussianStats, cov_gen: torch.Tensor | None,
               device: str | torch.device | None) -> tuple[torch.Tensor, GaussianStats, torch.Tensor | None]:
    """Features, reference statistics and generated covariance moved to ``device`` (None: unchanged, the CPU)."""
    if device is None or torch.device(device) == f.device:
        return f, r, cov_gen
    dev = torch.device(device)
    moved = GaussianStats(r.mean.to(dev), r.cov.to(dev), r.n, r.extra)
    return f.to(dev), moved, None if cov_gen is None else cov_gen.to(dev)


DELTA_MAX_SAMPLES = 4096  # primal route: the influence is evaluated on at most this many generated samples


@dataclass
class _FidParts:
    """FID of features X against fixed reference statistics, with the pieces the intervals reuse."""

    value: float
    mean_term: float
    trace_term: float
    clamped: float
    route: str  # "dual" (n x n Gram) or "primal" (d x d)
    influence: np.ndarray | None  # empirical influence of the FID at the evaluated samples (delta method), or None
    influence_samples: int = 0  # how many samples ``influence`` holds (all n, or a seeded subset on the primal route)


def _fid_parts(f: torch.Tensor, r: GaussianStats, fac: PsdFactor, *, influence: bool, cov_gen: torch.Tensor | None = None,
               max_samples: int = DELTA_MAX_SAMPLES, seed: int = 0) -> _FidParts:
    """FID of features ``f`` (n, d) against ``r`` through the whitened Y = (X - mu) F, F F^T = S_ref.

    M = F^T S_gen F = Y^T Y / (n - 1) shares its non-zero eigenvalues with the n x n Gram
    K = Y Y^T / (n - 1): when n <= d the n x n problem is solved ("dual", Y formed), else the
    d x d one ("primal"), with M from the generated covariance (``cov_gen``, the statistics
    the harness accumulated, or C^T C / (n - 1)) and no n x d product for the value.
    With ``influence``, the eigenvectors give each sample's empirical influence on FID,

        IF_i = 2 (mu - mu_ref).c_i + n/(n-1) (|c_i|^2 - q_i) - (tr S_gen - tr M^{1/2}),
        q_i = y_i^T M^{+1/2} y_i  (= (n - 1) sum_j U_ij^2 sqrt(lambda_j) in the dual;
                                   = |c_i F V Lambda^{-1/4}|^2 in the primal),

    (the derivative of FID when sample i's weight grows; sum_i IF_i = 0), whose spread gives
    the delta-method (infinitesimal jackknife) standard error sqrt(mean IF_i^2 / n) of FID
    over generated sets (reference fixed). On the primal route IF is evaluated on all n
    samples up to ``max_samples``, else on a seeded random subset of that many (an unbiased
    estimate of mean IF^2: ~1% relative error in the std at 4,096 samples).
    """
    n, d = f.shape
    mu = f.mean(0)
    c = f - mu
    diff = mu - r.mean
    mean_term = float(diff @ diff)
    sq = (c * c).sum(1)
    tr_gen = float(sq.sum()) / (n - 1)
    route = "dual" if n <= d else "primal"
    if route == "dual":
        y = c @ fac.f
        m = y @ y.T
        m = (m + m.T) / (2 * (n - 1))
    else:
        s_gen = cov_gen if cov_gen is not None else (c.T @ c) / (n - 1)
        m = fac.f.T @ s_gen @ fac.f
        m = (m + m.T) / 2
    if influence:
        lam, vec = torch.linalg.eigh(m)
    else:
        lam, vec = torch.linalg.eigvalsh(m), None
    clamped = fac.clamped + float(-lam[lam < 0].sum())
    root = lam.clamp_min(0).sqrt()
    tr_sqrt = float(root.sum())
    trace_term = float(torch.trace(r.cov)) + tr_gen - 2.0 * tr_sqrt
    inf, evaluated = None, 0
    if influence:
        idx = None
        if route == "dual":
            q = (n - 1) * (vec * vec) @ root
        else:
            if n > max_samples:
                idx = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))[:max_samples]
                c, sq = c[idx], sq[idx]
            inv_qroot = torch.where(lam > 0, lam.clamp_min(1e-300) ** -0.25, torch.zeros_like(lam))
            q = ((c @ (fac.f @ (vec * inv_qroot))) ** 2).sum(1)
        # d/de of FID at weights 1 + e (n e_i - 1): d mu = c_i, d S = n/(n-1) c_i c_i^T - S
        inf = (2 * (c @ diff) + n / (n - 1) * (sq - q) - (tr_gen - tr_sqrt)).cpu().numpy()
        evaluated = int(inf.shape[0])
    return _FidParts(mean_term + trace_term, mean_term, trace_term, clamped, route, inf, evaluated)


def _bootstrap_values(f: torch.Tensor, r: GaussianStats, fac: PsdFactor, replicates: int, seed: int) -> np.ndarray:
    """FID of ``replicates`` resamples (with replacement) of the generated features; per replicate an
    n x n (n <= d) or d x d eigenvalue problem, the reference factor and the Gram computed once."""
    n, d = f.shape
    gen = torch.Generator().manual_seed(int(seed))
    mu = f.mean(0)
    c = f - mu
    y = c @ fac.f
    sq = (c * c).sum(1)
    tr_ref = float(torch.trace(r.cov))
    gram = y @ y.T if n <= d else None
    vals = []
    for _ in range(int(replicates)):
        idx = torch.randint(0, n, (n,), generator=gen)
        w = torch.bincount(idx, minlength=n).to(device=f.device, dtype=torch.float64)
        a = (w @ c) / n  # mu* - mu
        diff = mu + a - r.mean
        tr_gen = (float(w @ sq) - n * float(a @ a)) / (n - 1)
        b = (w @ y) / n
        if gram is not None:
            gb = gram @ w / n  # Y b
            k = gram - gb[:, None] - gb[None, :] + float(b @ b)
            sw = w.sqrt()
            k = sw[:, None] * k * sw[None, :]
        else:
            yc = y - b
            k = (yc.T * w) @ yc
        k = (k + k.T) / (2 * (n - 1))
        lam = torch.linalg.eigvalsh(k)
        vals.append(float(diff @ diff) + tr_ref + tr_gen - 2.0 * float(lam.clamp_min(0).sqrt().sum()))
    return np.asarray(vals)


def fid_from_features(
    features_gen: torch.Tensor,
    stats_ref,
    *,
    bootstrap: int = 0,
    seed: int = 0,
    level: float = 0.95,
    name: str = "fid",
    stats_gen=None,
    interval: str | None = "delta",
    device: str | torch.device | None = None,
    **mv_kwargs,
) -> MetricValue:
    """FID of generated features (N, d) against reference statistics, with an interval over generated sets.

    ``device`` (default the CPU): where the float64 linear algebra runs (factorisation,
    eigendecomposition, products); the value is the same to round-off.

    ``interval`` (the reference statistics are held fixed in all of them):

    - ``"delta"`` (default): delta method / infinitesimal jackknife from each sample's
      empirical influence on FID (see :func:`_fid_parts`); ``std`` = sqrt(mean IF_i^2 / n) and
      the interval value +- z std clipped at 0. It costs the eigenvectors of the n x n
      (n <= d) or d x d eigenproblem the value needs anyway (``eigh`` instead of
      ``eigvalsh``), no extra factorisation, plus on the primal route one product of at most
      ``DELTA_MAX_SAMPLES`` centred features with a d x d matrix (the influence is evaluated on
      a seeded subset of that many samples when n is larger; ``extra['influence_samples']``).
      It approximates the bootstrap standard error
      without the bootstrap's resampling bias (validated against 2,000 bootstrap replicates
      in tests/test_metrics_fid.py).
    - ``"bootstrap"`` (or ``bootstrap`` > 1 replicates): resample the generated features with
      replacement (torch.Generator seeded with ``seed``); ``std`` is the bootstrap standard
      error and the interval the normal bootstrap interval value +- z std clipped at 0
      (resampling duplicates points and biases FID upwards, so percentile intervals can miss
      the estimate at small n; the bias mean(replicates) - value is in ``extra``).
    - ``None`` / ``"none"``: no interval.

    When n <= d the value and both intervals are computed on the n x n Gram of the
    whitened-by-reference features Y = (X - mu) F (F F^T = S_ref), which has the non-zero
    eigenvalues of F^T S_gen F: no d x d eigenproblem at all. The value equals
    :func:`fid_from_stats` (and torch-fidelity) to ~1e-10 relative. ``stats_gen`` (the
    generated set's accumulated statistics) must match the features (n and mean); when
    n > d its covariance gives M without forming the generated covariance again. The
    interval describes sampling variability of the generated set, not FID's own bias at
    finite n (see :func:`fid_infinity`). ``extra['interval']`` names the method.
    """
    if isinstance(stats_ref, torch.Tensor | np.ndarray):
        stats_ref = stats_from_features(stats_ref)
    r = as_stats(stats_ref)
    f = _checked_features(features_gen)  # the generated covariance itself is never formed (n d^2 flops saved)
    cov_gen = None
    if stats_gen is not None:
        sg = as_stats(stats_gen)
        if sg.n and sg.n != f.shape[0]:
            raise DataError(f"stats_gen holds {sg.n} samples but {f.shape[0]} features were given")
        mu = f.mean(0)
        if sg.mean.shape != mu.shape or not torch.allclose(sg.mean, mu, rtol=1e-6, atol=1e-9 * float(mu.abs().max()) + 1e-12):
            raise DataError("stats_gen does not match the generated features (different means)")
        if f.shape[0] > f.shape[1] and sg.cov.shape == (f.shape[1], f.shape[1]):
            cov_gen = sg.cov  # the primal route takes M = F^T S F from it: no n x d^2 product for the value
    _check_pair(r.mean, r.cov, f.mean(0))
    f, r, cov_gen = _on_device(f, r, cov_gen, device)
    method = "bootstrap" if bootstrap and bootstrap > 1 else (interval or "none")
    if method not in ("delta", "bootstrap", "none"):
        raise DataError(f"FID interval must be 'delta', 'bootstrap' or None, got {interval!r}")
    if method == "bootstrap" and not (bootstrap and bootstrap > 1):
        raise DataError("FID bootstrap interval needs bootstrap > 1 replicates")
    fac_r = factor_psd(r.cov)
    parts = _fid_parts(f, r, fac_r, influence=method == "delta", cov_gen=cov_gen, max_samples=DELTA_MAX_SAMPLES,
                       seed=seed)
    n, d = f.shape
    notes = [m for m in (_small_n_note(n, d, "generated"), _small_n_note(r.n, d, "reference")) if m]
    extra = {"n_ref": r.n or None, "dim": d, "mean_term": parts.mean_term, "trace_term": parts.trace_term,
             "clamped_eigenvalue_mass": parts.clamped, "factorisation": fac_r.method, "route": parts.route}
    ci_low = ci_high = std = None
    z = z_value(level)
    if method == "delta":
        std = float(np.sqrt(np.mean(parts.influence**2) / n))
        extra.update({"interval": "delta method (empirical influence of each generated sample; reference fixed): "
                                  "value +- z std, clipped at 0", "ci_level": level,
                      "influence_samples": parts.influence_samples})
    elif method == "bootstrap":
        v = _bootstrap_values(f, r, fac_r, bootstrap, seed)
        std = float(v.std(ddof=1))
        extra.update({"bootstrap": int(bootstrap), "ci_level": level, "bootstrap_bias": float(v.mean() - parts.value),
                      "interval": "normal bootstrap interval (resampling generated samples, reference fixed): "
                                  "value +- z std, clipped at 0"})
    if std is not None:
        ci_low, ci_high = max(0.0, parts.value - z * std), parts.value + z * std
    return MetricValue(name=name, value=parts.value, n=int(n), ci_low=ci_low, ci_high=ci_high, std=std,
                       higher_is_better=False, note="; ".join(notes) or None, extra=extra, **mv_kwargs)


FID_INF_MIN_RATIO = 2.4  # smallest subset size / feature dimension (Chong & Forsyth: 5,000 for 2048-d)


def fid_infinity(
    features_gen: torch.Tensor,
    stats_ref,
    *,
    num_points: int = 15,
    min_size: int | None = None,
    min_fraction: float | None = None,
    seed: int = 0,
    level: float = 0.95,
    name: str = "fid_inf",
    device: str | torch.device | None = None,
    fid_delta_std: float | None = None,
    **mv_kwargs,
) -> MetricValue:
    """FID-infinity (Chong & Forsyth 2020): extrapolate FID(N) linearly in 1/N to N -> infinity.

    FID is computed on ``num_points`` seeded random subsets of the generated features with
    sizes evenly spaced in [min_size, n]; a least-squares line in 1/N gives the intercept (the
    value) and the slope (in ``extra``). The fit is only linear once N is well above the
    feature dimension d, so ``min_size`` defaults to ceil(2.4 d) (Chong & Forsyth use 5,000 to
    50,000 samples for 2048-d Inception features); with fewer than ``min_size`` + d generated
    samples (so the sizes span a range) a DataError says how many are needed.
    (``min_fraction`` is accepted for compatibility: min_size = max(that fraction of n, the floor).)

    Uncertainty (reference fixed): the intercept is a fixed linear combination sum_k a_k FID(S_k)
    of the subset FIDs, so to first order it moves with each generated sample i as
    c_i IF_i, c_i = sum_{k: i in S_k} a_k / |S_k|, where IF_i is the sample's empirical
    influence on FID (as in :func:`fid_from_features`'s delta method, evaluated on the full set).
    ``sampling_std`` = sqrt(mean IF^2 * sum_i c_i^2) (it reduces to the delta std of FID when
    every subset is the full set); in simulations it equals the between-set standard deviation
    of FID-inf to within 5%. The extrapolation is also biased low when n is only a few times d
    (FID(N) is not linear in 1/N there), so ``std`` adds the model error
    |quadratic-fit intercept - linear-fit intercept| in quadrature, and the interval is
    value +- z std. ``fid_delta_std``: the delta std of FID on the same features and ``seed``
    (:func:`fid_from_features`' default interval; mean IF^2 = n std^2), when the caller already
    has it, saves the one eigendecomposition with eigenvectors. Measured coverage of the population Frechet distance (95% intervals,
    tests/test_metrics_fid.py and docs/metrics.md): 0.96-0.985 for d = 8..64, n = 400..3,000.
    A negative value is kept (the quantity is an extrapolation) with a note.
    """
    f = _t64(features_gen)
    r = as_stats(stats_ref) if not isinstance(stats_ref, torch.Tensor | np.ndarray) else stats_from_features(stats_ref)
    n, d = f.shape
    floor = int(np.ceil(FID_INF_MIN_RATIO * d))
    lo = floor if min_size is None else int(min_size)
    if min_fraction is not None:
        lo = max(lo, int(min_fraction * n))
    need = lo + d
    if n < need or num_points < 3:
        raise DataError(
            f"FID-infinity needs subsets of at least {lo} samples (about 2.4 x the feature dimension {d}) "
            f"and a range of sizes above that: at least {need} generated samples, got {n}"
            + ("" if num_points >= 3 else f"; and num_points >= 3, got {num_points}")
        )
    sizes = np.linspace(lo, n, num_points).astype(int)
    f, r, _ = _on_device(f, r, None, device)
    fac_r = factor_psd(r.cov)
    x = 1.0 / sizes.astype(np.float64)
    design = np.stack([np.ones_like(x), x], 1)
    solve = np.linalg.pinv(design)  # least squares: (intercept, slope) = solve @ FIDs
    weights = solve[0]
    gen = torch.Generator().manual_seed(int(seed))
    vals, c = [], np.zeros(n)
    for m, w in zip(sizes, weights):
        idx = torch.randperm(n, generator=gen)[: int(m)]
        vals.append(_fid_parts(f[idx], r, fac_r, influence=False).value)
        c[idx.numpy()] += w / m
    y = np.asarray(vals)
    coef = solve @ y
    intercept, slope = float(coef[0]), float(coef[1])
    resid = y - design @ coef
    se = float(np.sqrt(float(resid @ resid) / (len(x) - 2) * np.linalg.inv(design.T @ design)[0, 0]))
    quad = float(np.polyfit(x, y, 2)[-1])  # intercept of a quadratic in 1/N: curvature the line ignores
    if fid_delta_std is None:
        full = _fid_parts(f, r, fac_r, influence=True, seed=seed)
        mean_sq_influence, evaluated = float(np.mean(full.influence**2)), full.influence_samples
    else:
        mean_sq_influence, evaluated = n * float(fid_delta_std) ** 2, None
    sampling_std = float(np.sqrt(mean_sq_influence * np.sum(c**2)))
    model_error = abs(quad - intercept)
    std = float(np.hypot(sampling_std, model_error))
    z = z_value(level)
    note = None
    if intercept < 0:
        note = (f"negative FID-infinity {intercept:.4g}: the 1/N extrapolation overshot (std {std:.3g}); "
                "the population FID is >= 0, use more samples")
    return MetricValue(name=name, value=intercept, n=int(n), higher_is_better=False, std=std,
                       ci_low=intercept - z * std, ci_high=intercept + z * std, note=note,
                       extra={"slope": slope, "sizes": sizes.tolist(), "fids": vals, "min_size": lo, "ci_level": level,
                              "method": "linear fit of FID(N) in 1/N (Chong & Forsyth 2020)",
                              "sampling_std": sampling_std, "model_error": model_error, "ols_se": se,
                              "quadratic_intercept": quad, "influence_samples": evaluated,
                              "interval": "value +- z std, std = hypot(delta-method sampling std of the intercept, "
                                          "|quadratic - linear intercept|); reference fixed"},
                       **mv_kwargs)


__all__ = ["FrechetResult", "GaussianStats", "as_stats", "fid_from_features", "fid_from_stats", "fid_infinity",
           "PsdFactor", "factor_psd", "frechet_distance", "sqrtm_psd", "stats_from_features"]
