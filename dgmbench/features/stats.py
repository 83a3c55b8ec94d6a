"""Streaming mean and covariance of feature vectors in float64.

:class:`StreamingStats` keeps ``n``, the running mean and ``m2`` (the sum of outer
products of the deviations from the running mean), merging each batch with Chan et
al.'s pairwise update (the batch's own mean and centred scatter are combined with the
running ones). Memory is O(d^2) whatever ``n`` is, and the results do not depend on the
batch size beyond float64 rounding (tested: batches of 1, 7 and 500 give the same FID to
1e-9). ``cov`` is the unbiased covariance (ddof = 1), as torch-fidelity, pytorch-fid and
clean-fid compute it with ``np.cov(features, rowvar=False)``.

``merge`` combines two accumulators exactly as if their features had been fed to one
(Chan's formula); it is what a distributed all-reduce uses (see :meth:`all_reduce`).
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import DataError


class StreamingStats:
    """Float64 streaming mean/covariance of (N, dim) features; O(dim^2) memory."""

    def __init__(self, dim: int, device: str | torch.device = "cpu"):
        if int(dim) < 1:
            raise DataError(f"StreamingStats: feature dimension must be >= 1, got {dim}")
        self.dim = int(dim)
        self.n = 0
        self._mean = torch.zeros(self.dim, dtype=torch.float64, device=device)
        self._m2 = torch.zeros(self.dim, self.dim, dtype=torch.float64, device=device)

    # -- accumulation -------------------------------------------------------------------
    def update(self, feats: torch.Tensor) -> StreamingStats:
        """Add a batch of features (N, dim) (any float dtype; promoted to float64). Returns self."""
        if not isinstance(feats, torch.Tensor):
            feats = torch.as_tensor(feats)
        if feats.ndim != 2 or feats.shape[1] != self.dim:
            raise DataError(
                f"StreamingStats: expected features of shape (N, {self.dim}), got {tuple(feats.shape)}"
            )
        nb = int(feats.shape[0])
        if nb == 0:
            return self
        x = feats.detach().to(device=self._mean.device, dtype=torch.float64)
        if not bool(torch.isfinite(x).all()):
            raise DataError("StreamingStats: features contain NaN or Inf; check the extractor's input")
        mean_b = x.mean(0)
        xc = x - mean_b
        m2_b = xc.T @ xc
        self._combine(nb, mean_b, m2_b)
        return self

    def _combine(self, nb: int, mean_b: torch.Tensor, m2_b: torch.Tensor) -> None:
        na = self.n
        n = na + nb
        if na == 0:
            self._mean = mean_b.clone()
            self._m2 = m2_b.clone()
        else:
            delta = mean_b - self._mean
            self._mean.add_(delta, alpha=nb / n)
            self._m2.add_(m2_b).addr_(delta, delta, alpha=na * nb / n)  # in place: no d x d temporaries
        self.n = n

    def merge(self, other: StreamingStats) -> StreamingStats:
        """Fold ``other`` into self, as if its features had been fed here. Returns self."""
        if other.dim != self.dim:
            raise DataError(f"StreamingStats.merge: dimensions differ ({self.dim} vs {other.dim})")
        if other.n:
            self._combine(
                other.n,
                other._mean.to(self._mean.device),
                other._m2.to(self._m2.device),
            )
        return self

    @classmethod
    def from_features(cls, feats: torch.Tensor, batch_size: int | None = None) -> StreamingStats:
        """Statistics of a whole (N, dim) feature matrix (optionally fed in batches)."""
        st = cls(int(feats.shape[1]))
        step = batch_size or max(int(feats.shape[0]), 1)
        for i in range(0, int(feats.shape[0]), step):
            st.update(feats[i : i + step])
        return st

    # -- results ------------------------------------------------------------------------
    @property
    def mean(self) -> torch.Tensor:
        """Mean feature vector (dim,), float64."""
        if self.n == 0:
            raise DataError("StreamingStats: no features were added; the mean is undefined")
        return self._mean.clone()

    @property
    def cov(self) -> torch.Tensor:
        """Unbiased covariance (dim, dim), float64, ddof = 1 (needs n >= 2)."""
        if self.n < 2:
            raise DataError(f"StreamingStats: the covariance needs at least 2 samples, got {self.n}")
        c = self._m2 / (self.n - 1)
        return (c + c.T) / 2  # exact symmetry (the update keeps it up to rounding)

    def mean_np(self):
        return self.mean.cpu().numpy()

    def cov_np(self):
        return self.cov.cpu().numpy()

    # -- persistence / distribution -----------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain dict (tensors on CPU) that :meth:`from_state` restores exactly."""
        return {"dim": self.dim, "n": self.n, "mean": self._mean.cpu().clone(), "m2": self._m2.cpu().clone()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> StreamingStats:
        try:
            dim, n, mean, m2 = int(state["dim"]), int(state["n"]), state["mean"], state["m2"]
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"StreamingStats.from_state: malformed state ({e!r})") from None
        if tuple(mean.shape) != (dim,) or tuple(m2.shape) != (dim, dim) or n < 0:
            raise DataError(
                f"StreamingStats.from_state: inconsistent state (dim {dim}, n {n}, mean {tuple(mean.shape)}, "
                f"m2 {tuple(m2.shape)})"
            )
        st = cls(dim)
        st.n = n
        st._mean = mean.to(torch.float64).clone()
        st._m2 = m2.to(torch.float64).clone()
        return st

    def all_reduce(self, group=None) -> StreamingStats:
        """Replace self by the merge of every rank's statistics (torch.distributed).

        The states are all-gathered and merged in rank order, so every rank ends with
        bit-identical statistics, equal to a single process's up to float64 rounding.
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self
        world = dist.get_world_size(group)
        # the gloo backend gathers CPU tensors; NCCL needs them on the current device
        dev = self._mean.device
        if dist.get_backend(group) == "nccl":
            dev = torch.device("cuda", torch.cuda.current_device())
        packed = torch.cat(
            [torch.tensor([float(self.n)], dtype=torch.float64), self._mean.cpu(), self._m2.cpu().flatten()]
        ).to(dev)
        parts = [torch.empty_like(packed) for _ in range(world)]
        dist.all_gather(parts, packed, group=group)
        merged = StreamingStats(self.dim, device=self._mean.device)
        d = self.dim
        for p in parts:
            p = p.to(self._mean.device)
            other = StreamingStats(d, device=self._mean.device)
            other.n = int(round(float(p[0])))
            other._mean = p[1 : 1 + d].clone()
            other._m2 = p[1 + d :].reshape(d, d).clone()
            merged.merge(other)
        self.n, self._mean, self._m2 = merged.n, merged._mean, merged._m2
        return self

    def __repr__(self) -> str:
        return f"StreamingStats(dim={self.dim}, n={self.n})"
