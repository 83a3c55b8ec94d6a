"""k-NN precision/recall (Kynkaanniemi et al. 2019) and density/coverage (Naeem et al. 2020).

Each point's k-NN radius r(x) is the distance to its k-th nearest neighbour in its own set
(the (k+1)-th smallest distance including itself, as torch-fidelity computes it). With
real (reference) points X (N of them) and generated points Y (M):

- precision = (1/M) sum_j 1[exists i: d(Y_j, X_i) <= r(X_i)]
- recall    = (1/N) sum_i 1[exists j: d(X_i, Y_j) <= r(Y_j)]
- density   = (1/(k M)) sum_j sum_i 1[d(Y_j, X_i) <= r(X_i)]
- coverage  = (1/N) sum_i 1[exists j: d(X_i, Y_j) <= r(X_i)]

Convention: a point ON the boundary of a ball counts as inside (``<=``), as in
torch-fidelity's PRC; Naeem et al.'s reference ``prdc`` package uses ``<`` - the two differ
only on exact distance ties (duplicated points), which have probability 0 for continuous
features. Distances are Euclidean (``torch.cdist``) in the features' dtype (float32 features
stay float32 as in torch-fidelity; pass float64 for exact agreement on near ties).

Memory: distances are computed in row blocks sized to ``max_bytes`` (default 256 MiB), one
pass over the generated blocks for all four metrics, so memory is O(block x N) instead of
O(M x N).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import DataError
from ..results import MetricValue
from ..validation import as_feature_matrix

DEFAULT_MAX_BYTES = 256 * 2**20


@dataclass
class PRDC:
    precision: float
    recall: float
    density: float
    coverage: float
    k: int
    n_real: int
    n_fake: int

    def metric_values(self, **mv_kwargs) -> list[MetricValue]:
        """Four MetricValues (n = number of generated samples; n_ref and k in ``extra``)."""
        out = []
        for name in ("precision", "recall", "density", "coverage"):
            out.append(MetricValue(name=name, value=getattr(self, name), n=self.n_fake, higher_is_better=True,
                                   extra={"k": self.k, "n_ref": self.n_real, "ball": "<="}, **mv_kwargs))
        return out




def _block_rows(n_cols: int, itemsize: int, max_bytes: int) -> int:
    # the distance block plus a boolean mask of the same shape and cdist's temporaries
    return max(1, int(max_bytes // (n_cols * (2 * itemsize + 1))))


def knn_radii(x: torch.Tensor, k: int, *, max_bytes: int = DEFAULT_MAX_BYTES) -> torch.Tensor:
    """Distance of each row of ``x`` to its k-th nearest other row (batched over row blocks)."""
    n = x.shape[0]
    if n <= k:
        raise DataError(f"k-NN radius with k={k} needs more than {k} points, got {n}")
    rows = _block_rows(n, x.element_size(), max_bytes)
    out = [torch.cdist(blk, x).kthvalue(k + 1, dim=1).values for blk in x.split(rows)]
    return torch.cat(out)


def prdc(
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    k: int = 3,
    max_bytes: int = DEFAULT_MAX_BYTES,
    device: str | torch.device | None = None,
) -> PRDC:
    """Precision, recall, density and coverage of ``fake`` (M, d) against ``real`` (N, d)."""
    xr, xf = as_feature_matrix(real, "reference features"), as_feature_matrix(fake, "generated features")
    if xr.shape[1] != xf.shape[1]:
        raise DataError(f"PRDC: feature dimensions differ ({xr.shape[1]} vs {xf.shape[1]}); use one extractor for both sets")
    if xr.dtype != xf.dtype:
        dt = torch.promote_types(xr.dtype, xf.dtype)
        xr, xf = xr.to(dt), xf.to(dt)
    if device is not None:
        xr, xf = xr.to(device), xf.to(device)
    r_real = knn_radii(xr, k, max_bytes=max_bytes)
    r_fake = knn_radii(xf, k, max_bytes=max_bytes)
    n_real, n_fake = xr.shape[0], xf.shape[0]
    prec_hits = 0
    density_count = 0
    recall_hit = torch.zeros(n_real, dtype=torch.bool, device=xr.device)
    covered = torch.zeros(n_real, dtype=torch.bool, device=xr.device)
    rows = _block_rows(n_real, xr.element_size(), max_bytes)
    for start in range(0, n_fake, rows):
        blk = xf[start:start + rows]
        d = torch.cdist(blk, xr)  # (b, N)
        inside_real = d <= r_real[None, :]
        prec_hits += int(inside_real.any(1).sum())
        density_count += int(inside_real.sum())
        covered |= inside_real.any(0)
        del inside_real
        recall_hit |= (d <= r_fake[start:start + rows, None]).any(0)
    return PRDC(
        precision=prec_hits / n_fake,
        recall=float(recall_hit.double().mean()),
        density=density_count / (k * n_fake),
        coverage=float(covered.double().mean()),
        k=k, n_real=n_real, n_fake=n_fake,
    )
