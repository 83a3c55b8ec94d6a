"""k-NN precision/recall (Kynkaanniemi et al. 2019) and density/coverage (Naeem et al. 2020).

Each point's k-NN radius r_k(x) is the distance to its k-th nearest neighbour in its own set
(the (k+1)-th smallest distance including itself, as torch-fidelity and Naeem et al.'s
``prdc`` package compute it). With real (reference) points X (N of them) and generated
points Y (M):

- precision = (1/M) sum_j 1[exists i: d(Y_j, X_i) <= r_kpr(X_i)]
- recall    = (1/N) sum_i 1[exists j: d(X_i, Y_j) <= r_kpr(Y_j)]
- density   = (1/(k_dc M)) sum_j sum_i 1[d(Y_j, X_i) < r_kdc(X_i)]
- coverage  = (1/N) sum_i 1[exists j: d(X_i, Y_j) < r_kdc(X_i)]

Defaults and conventions follow each metric's paper and reference code: precision/recall
use k_pr = 3 and a closed ball (``<=``) as torch-fidelity's ``prc`` (Kynkaanniemi et al.'s
k = 3); density/coverage use k_dc = 5 and an open ball (``<``) as Naeem et al.'s ``prdc``
package, so a set scored against itself has density exactly 1 (each real ball holds its
centre and its k-1 nearest neighbours) and a perfect model's expected coverage is
1 - 2^-k_dc = 0.969 at N = M. ``k`` (the old single-k argument) sets both.

Precision: distances are shift invariant, so both sets are centred on the reference mean
(computed in float64) before the distances; features with a large common offset then keep
their precision in float32. Squared Euclidean distances come from one matmul in the features'
dtype (float32 features stay float32 as in torch-fidelity); entries within round-off of a
radius, and the radii themselves, are recomputed exactly in float64 from the differences, so
near-ties are decided consistently (d(x, y) = d(y, x) bit for bit). Memory: distances are computed in row
blocks sized to ``max_bytes`` (default 256 MiB), one pass over the generated blocks for all
four metrics.

Uncertainty (variation over generated sets, the reference set held fixed), ``interval=True``:

- precision: Wilson score interval of hits/M (exact model: given the reference, the M
  generated points are i.i.d. and each is inside the manifold or not);
- density: normal interval mean +- z sd/sqrt(M) of the per-sample counts / k (a mean of
  i.i.d. terms given the reference), clipped at 0;
- recall, coverage: subsampling: ``replicates`` seeded random subsets of m = 0.8 M generated
  points (without replacement) are rescored (recall with the k-NN radii recomputed inside
  each subset); the subset variance times m (M - 1) / (M (M - m)) estimates the full-set
  variance (exact for a mean), interval = value +- z sd, clipped to [0, 1]. In a simulation
  (d = 8, N = M = 500, 150 generated sets) these intervals are conservative: 0.99 coverage at
  nominal 0.95 (Wilson precision 0.93-0.95, density 0.93-0.95); see docs/metrics.md.

The subsets reuse the distances of the main pass (the K = ``HALF_K`` nearest generated
neighbours of each generated point, and the real/generated pairs within reach), so the
intervals cost a fraction of the metric.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..errors import DataError
from ..results import MetricValue
from ..validation import as_feature_matrix
from .intervals import wilson_interval, z_value

DEFAULT_MAX_BYTES = 256 * 2**20
K_PR = 3  # Kynkaanniemi et al. 2019
K_DC = 5  # Naeem et al. 2020
SUB_FRACTION = 0.8  # subsample size / M for the recall and coverage intervals
HALF_K = 32  # generated neighbours kept for the subsample recall radii
SURE = 20  # generated points reaching a reference point that make it covered in every subset
MAX_PAIRS = 20_000_000  # cap on stored (generated, real) pairs for the subsamples


@dataclass
class PRDC:
    precision: float
    recall: float
    density: float
    coverage: float
    k_pr: int
    k_dc: int
    n_real: int
    n_fake: int
    intervals: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # name -> (low, high, std)
    interval_methods: dict[str, str] = field(default_factory=dict)
    level: float = 0.95
    note: str | None = None

    @property
    def k(self) -> int:
        """The precision/recall k (the single k of older versions)."""
        return self.k_pr

    def metric_values(self, **mv_kwargs) -> list[MetricValue]:
        """Four MetricValues (n = number of generated samples; n_ref, k, ball and interval in ``extra``)."""
        out = []
        for name in ("precision", "recall", "density", "coverage"):
            pr = name in ("precision", "recall")
            k = self.k_pr if pr else self.k_dc
            extra = {"k": k, "n_ref": self.n_real, "ball": "<=" if pr else "<",
                     "convention": "Kynkaanniemi et al. 2019 (torch-fidelity prc)" if pr
                     else "Naeem et al. 2020 (prdc package)"}
            low = high = std = None
            if name in self.intervals:
                low, high, std = self.intervals[name]
                extra.update({"interval": self.interval_methods[name], "ci_level": self.level})
            ball = "radius to the k-th neighbour, inclusive" if pr else "strict <"
            notes = [f"k={k} nearest neighbours ({ball}; {extra['convention']})"] + ([self.note] if self.note else [])
            out.append(MetricValue(name=name, value=getattr(self, name), n=self.n_fake, higher_is_better=True,
                                   ci_low=low, ci_high=high, std=std, note="; ".join(notes), extra=extra,
                                   **mv_kwargs))
        return out


def _block_rows(n_cols: int, itemsize: int, max_bytes: int) -> int:
    # the distance block plus boolean masks of the same shape and cdist's temporaries
    return max(1, int(max_bytes // (n_cols * (2 * itemsize + 2))))


def _check_k(n: int, k: int, which: str) -> None:
    if k < 1:
        raise DataError(f"PRDC: k must be a positive integer, got {k}")
    if n <= k:
        raise DataError(f"k-NN radius with k={k} needs more than {k} {which} points, got {n}; "
                        f"use at least {k + 1} samples (or a smaller k)")


def _sqdist(a: torch.Tensor, b: torch.Tensor, sq_a: torch.Tensor, sq_b: torch.Tensor) -> torch.Tensor:
    """Squared distances ||a_i||^2 + ||b_j||^2 - 2 a_i.b_j (one matmul), clamped at 0."""
    return ((sq_a[:, None] + sq_b[None, :]) - 2 * (a @ b.T)).clamp_min_(0)


def _exact_sq(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise squared distances sum((a - b)^2) in float64: symmetric in (a, b) bit for bit."""
    return ((a.double() - b.double()) ** 2).sum(1)


def _tol2(sq_a: torch.Tensor, sq_b: torch.Tensor) -> torch.Tensor:
    # round-off bound of the matmul formula: entries closer than this to a radius are recomputed exactly
    return (256 * torch.finfo(sq_a.dtype).eps) * (sq_a[:, None] + sq_b[None, :])


def _inside(d2: torch.Tensor, r2: torch.Tensor, tol2: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *,
            strict: bool, radius_of_row: bool) -> torch.Tensor:
    """Mask of d(a_j, b_i) < (or <=) radius, radius per column (of b) or per row (of a); near-ties are
    decided on exact float64 distances so that d(x, y) and d(y, x) agree."""
    rb = r2[:, None] if radius_of_row else r2[None, :]
    rb_t = rb.to(d2.dtype)
    mask = d2 < rb_t if strict else d2 <= rb_t
    near = (d2 - rb_t).abs_() <= tol2
    if bool(near.any()):
        j, i = near.nonzero(as_tuple=True)
        e = _exact_sq(a[j], b[i])
        r = r2[j] if radius_of_row else r2[i]
        mask[j, i] = e < r if strict else e <= r
    return mask


def _knn_sorted(x: torch.Tensor, sq: torch.Tensor, kmax: int, max_bytes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The kmax+1 smallest squared distances of each row to all rows (itself included), sorted, and indices."""
    rows = _block_rows(x.shape[0], x.element_size(), max_bytes)
    vals, idx = [], []
    for s in range(0, x.shape[0], rows):
        v, i = _sqdist(x[s:s + rows], x, sq[s:s + rows], sq).topk(kmax + 1, dim=1, largest=False, sorted=True)
        vals.append(v)
        idx.append(i)
    return torch.cat(vals), torch.cat(idx)


def knn_radii(x: torch.Tensor, k: int, *, max_bytes: int = DEFAULT_MAX_BYTES) -> torch.Tensor:
    """Distance of each row of ``x`` to its k-th nearest other row (float64, exact formula for the chosen pair)."""
    _check_k(x.shape[0], k, "")
    _, idx = _knn_sorted(x, (x * x).sum(1), k, max_bytes)
    return _exact_sq(x, x[idx[:, k]]).sqrt()


def prdc(
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    k: int | None = None,
    k_pr: int = K_PR,
    k_dc: int = K_DC,
    max_bytes: int = DEFAULT_MAX_BYTES,
    device: str | torch.device | None = None,
    interval: bool = True,
    replicates: int = 100,
    level: float = 0.95,
    seed: int = 0,
) -> PRDC:
    """Precision, recall (k_pr, ``<=``), density, coverage (k_dc, ``<``) of ``fake`` (M, d) against
    ``real`` (N, d), with intervals over generated sets when ``interval`` (see the module docstring).

    ``k`` (deprecated single k) sets both k_pr and k_dc. Sets with n <= k raise DataError.
    """
    if k is not None:
        k_pr = k_dc = int(k)
    xr, xf = as_feature_matrix(real, "reference features"), as_feature_matrix(fake, "generated features")
    if xr.shape[1] != xf.shape[1]:
        raise DataError(f"PRDC: feature dimensions differ ({xr.shape[1]} vs {xf.shape[1]}); use one extractor for both sets")
    n_real, n_fake = xr.shape[0], xf.shape[0]
    _check_k(n_real, max(k_pr, k_dc), "reference")
    _check_k(n_fake, k_pr, "generated")
    if xr.dtype != xf.dtype:
        dt = torch.promote_types(xr.dtype, xf.dtype)
        xr, xf = xr.to(dt), xf.to(dt)
    if device is not None:
        xr, xf = xr.to(device), xf.to(device)
    # centre on the reference mean: exact for distances, keeps float32 precise under a large offset
    c = xr.double().mean(0).to(xr.dtype)
    xr, xf = xr - c, xf - c
    use_sub = interval and n_fake >= 2 * (k_pr + 2) and replicates > 1
    kf = min(n_fake - 1, max(k_pr, HALF_K)) if use_sub else k_pr
    sq_r, sq_f = (xr * xr).sum(1), (xf * xf).sum(1)
    _, real_i = _knn_sorted(xr, sq_r, max(k_pr, k_dc), max_bytes)
    r2_real_pr, r2_real_dc = (_exact_sq(xr, xr[real_i[:, k]]) for k in (k_pr, k_dc))
    fake_d2, fake_i = _knn_sorted(xf, sq_f, kf, max_bytes)
    r2_fake_pr, r2_fake_max = _exact_sq(xf, xf[fake_i[:, k_pr]]), fake_d2[:, kf]

    prec_hit = torch.zeros(n_fake, dtype=torch.bool, device=xr.device)
    dens_count = torch.zeros(n_fake, dtype=torch.float64, device=xr.device)
    recall_hit = torch.zeros(n_real, dtype=torch.bool, device=xr.device)
    covered = torch.zeros(n_real, dtype=torch.bool, device=xr.device)
    cov_pairs, rec_pairs = [], []  # (fake j, real i) in a D/C ball; (fake j, real i, sq. distance) within reach
    cnt_cov = torch.zeros(n_real, dtype=torch.long, device=xr.device)
    cnt_rec = torch.zeros(n_real, dtype=torch.long, device=xr.device)
    n_pairs = 0
    rows = _block_rows(n_real, xr.element_size(), max_bytes)
    for start in range(0, n_fake, rows):
        blk, sq_b = xf[start:start + rows], sq_f[start:start + rows]
        d2 = _sqdist(blk, xr, sq_b, sq_r)  # (b, N)
        tol2 = _tol2(sq_b, sq_r)
        sl = slice(start, start + blk.shape[0])
        prec_hit[sl] = _inside(d2, r2_real_pr, tol2, blk, xr, strict=False, radius_of_row=False).any(1)
        inside_dc = _inside(d2, r2_real_dc, tol2, blk, xr, strict=True, radius_of_row=False)
        dens_count[sl] = inside_dc.sum(1).double()
        covered |= inside_dc.any(0)
        recall_hit |= _inside(d2, r2_fake_pr[sl], tol2, blk, xr, strict=False, radius_of_row=True).any(0)
        if use_sub:
            # pairs the subsets need; reference points already reached by SURE generated points
            # (at the full-set radii) are covered in every subset and need none
            cols = (cnt_cov < SURE).nonzero()[:, 0]  # only reference points not yet sure
            jc, ic = inside_dc[:, cols].nonzero(as_tuple=True)
            ic = cols[ic]
            cnt_cov += torch.bincount(ic, minlength=n_real)
            keep = cnt_cov[ic] < SURE
            jc, ic = jc[keep], ic[keep]
            cols = (cnt_rec < SURE).nonzero()[:, 0]
            sub = d2[:, cols]
            jr, ir = (sub <= r2_fake_max[sl, None].to(d2.dtype)).nonzero(as_tuple=True)
            dr = sub[jr, ir]
            ir = cols[ir]
            cnt_rec += torch.bincount(ir[dr <= r2_fake_pr[jr + start].to(dr.dtype)], minlength=n_real)
            keep = cnt_rec[ir] < SURE
            jr, ir, dr = jr[keep], ir[keep], dr[keep]
            n_pairs += jc.numel() + jr.numel()
            if n_pairs > MAX_PAIRS:
                use_sub, cov_pairs, rec_pairs = False, [], []
            else:
                cov_pairs.append(torch.stack([jc + start, ic]))
                rec_pairs.append((jr + start, ir, dr))
        del d2, tol2, inside_dc

    res = PRDC(
        precision=float(prec_hit.double().mean()),
        recall=float(recall_hit.double().mean()),
        density=float(dens_count.sum()) / (k_dc * n_fake),
        coverage=float(covered.double().mean()),
        k_pr=k_pr, k_dc=k_dc, n_real=n_real, n_fake=n_fake, level=level,
    )
    if not interval:
        return res
    z = z_value(level)
    hits = int(prec_hit.sum())
    lo, hi = wilson_interval(hits, n_fake, z)
    res.intervals["precision"] = (lo, hi, math.sqrt(res.precision * (1 - res.precision) / n_fake))
    res.interval_methods["precision"] = "Wilson score interval (generated samples i.i.d. given the reference)"
    per = dens_count / k_dc
    sd = float(per.std()) / math.sqrt(n_fake)
    res.intervals["density"] = (max(0.0, res.density - z * sd), res.density + z * sd, sd)
    res.interval_methods["density"] = "normal interval of the mean of per-sample counts / k (CLT)"
    if not use_sub:
        why = ("too many neighbour pairs to store" if n_pairs > MAX_PAIRS
               else f"too few generated samples ({n_fake}) for subsamples" if replicates > 1 else "replicates <= 1")
        res.note = f"no interval for recall/coverage: {why}"
        return res
    cov_j, cov_i = torch.cat(cov_pairs, 1)
    rec_j = torch.cat([p[0] for p in rec_pairs])
    rec_i = torch.cat([p[1] for p in rec_pairs])
    rec_d = torch.cat([p[2] for p in rec_pairs])
    # a reference point reached by >= SURE generated points at the full-set radii stays covered in
    # every subset (radii only grow in a subset; P(none selected) <= 0.2^SURE): drop its pairs
    sure_rec, sure_cov = cnt_rec >= SURE, cnt_cov >= SURE
    keep = ~sure_rec[rec_i]
    rec_j, rec_i, rec_d = rec_j[keep], rec_i[keep], rec_d[keep]
    keep = ~sure_cov[cov_i]
    cov_j, cov_i = cov_j[keep], cov_i[keep]
    sd_rec, sd_cov = _subsample_sds(fake_d2, fake_i, k_pr, sure_rec, sure_cov, cov_j, cov_i, rec_j, rec_i, rec_d,
                                    replicates=replicates, seed=seed)
    for name, s in (("recall", sd_rec), ("coverage", sd_cov)):
        v = getattr(res, name)
        res.intervals[name] = (max(0.0, v - z * s), min(1.0, v + z * s), s)
        res.interval_methods[name] = (f"subsampling ({replicates} seeded random {SUB_FRACTION:.0%} subsets of the generated set, "
                                      "reference fixed, variance rescaled to M): value +- z sd, clipped to [0, 1]")
    return res


def _subsample_sds(fake_d, fake_i, k_pr, sure_rec, sure_cov, cov_j, cov_i, rec_j, rec_i, rec_d, *,
                   replicates: int, seed: int) -> tuple[float, float]:
    """Std of recall and coverage over random subsets of the generated set (see the module docstring).

    ``fake_d``/``fake_i``: sorted squared distances and indices of each generated point's nearest
    generated points; ``rec_d``: squared distances of the stored (generated, real) pairs;
    ``sure_rec``/``sure_cov``: reference points covered in every subset (their pairs dropped)."""
    m = fake_d.shape[0]
    dev = fake_d.device
    g = torch.Generator().manual_seed(int(seed))
    # with duplicated points the sorted list may not start with the point itself: drop self wherever it is
    not_self = fake_i != torch.arange(m, device=dev)[:, None]
    all_d, all_i = fake_d, fake_i
    msub = max(2, min(m - 1, round(SUB_FRACTION * m)))
    recs, covs = [], []
    for _ in range(replicates):
        sel = torch.zeros(m, dtype=torch.bool)
        sel[torch.randperm(m, generator=g)[:msub]] = True
        sel = sel.to(dev)
        ok = sel[all_i] & not_self
        cum = ok.cumsum(1)
        reach = cum >= k_pr
        has = reach.any(1)
        pos = torch.where(has, reach.float().argmax(1), torch.full_like(has, all_d.shape[1] - 1, dtype=torch.long))
        radius = all_d.gather(1, pos[:, None])[:, 0]
        hit = sel[rec_j] & (rec_d <= radius[rec_j])
        r = sure_rec.clone()
        r[rec_i[hit]] = True
        recs.append(float(r.double().mean()))
        c = sure_cov.clone()
        c[cov_i[sel[cov_j]]] = True
        covs.append(float(c.double().mean()))
    rt, ct = torch.tensor(recs, dtype=torch.float64), torch.tensor(covs, dtype=torch.float64)
    scale = math.sqrt(msub * (m - 1) / (m * (m - msub)))  # var_sub = var_M * (M - m) M / (m (M - 1))
    return float(rt.std()) * scale, float(ct.std()) * scale
