"""Inception Score (Salimans et al. 2016) from classifier logits.

IS = exp(E_x KL(p(y|x) || p(y))), computed on ``splits`` (default 10) equal chunks of a
seeded permutation of the samples; the value is the mean over chunks and ``std`` the
(ddof=0) std across chunks - torch-fidelity's ``isc_features_to_metric`` convention
(its ``rng_seed`` is our ``seed``). Everything is computed in log space in float64 from
``log_softmax`` (KL = mean_x sum_c p log p - sum_c q log q, q the split's mean p(y|x)), with
0 log 0 = 0: a class whose probability underflows to 0 in a whole split gives 0, not NaN (torch-fidelity's ``p * (log p - log mean p)`` gives 0 * -inf = NaN).

For Inception, the logits need the full torch-fidelity Inception weights (the offline FID
weights have no classifier layer); :func:`inception_score_unavailable` gives the
MetricValue with no number and a note saying exactly that.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import DataError
from ..results import MetricValue

MISSING_WEIGHTS_NOTE = (
    "IS needs the full Inception weights with the classifier (logits) layer; the offline FID weights "
    "have none - pass --inception-weights PATH to torch-fidelity's weights-inception-2015-12-05 file"
)


def _xlogx(t: torch.Tensor) -> torch.Tensor:
    """t log t elementwise with 0 log 0 = 0."""
    return torch.where(t > 0, t * t.clamp_min(torch.finfo(t.dtype).tiny).log(), torch.zeros_like(t))


def _split_scores(p: torch.Tensor, plogp: torch.Tensor, splits: int) -> np.ndarray:
    """IS of each of ``splits`` consecutive chunks of (N, C) probabilities.

    mean_x KL(p(y|x) || p(y)) = mean_x sum_c p_c log p_c - sum_c q_c log q_c with q = mean_x p(y|x)
    and 0 log 0 = 0; ``plogp`` is the per-sample sum_c p_c log p_c (computed from log_softmax).
    """
    n = p.shape[0]
    out = np.empty(splits)
    for i in range(splits):
        sl = slice(i * n // splits, (i + 1) * n // splits)
        q = p[sl].mean(0)
        out[i] = math.exp(float(plogp[sl].mean() - _xlogx(q).sum()))
    return out


def inception_score(logits: torch.Tensor, *, splits: int = 10, seed: int = 0, shuffle: bool = True,
                    bootstrap: int = 100, level: float = 0.95, name: str = "is", **mv_kwargs) -> MetricValue:
    """IS mean and split std over ``splits`` chunks of (N, C) logits (see the module docstring).

    ``std`` is the field's split std (as torch-fidelity and papers quote it). The between-set
    uncertainty is a bootstrap over samples: ``bootstrap`` seeded resamples (with replacement)
    of the N logits are scored the same way (shuffle, splits); ``ci_low``/``ci_high`` are the
    percentile interval clipped to IS's range [1, C], and ``extra['bootstrap_std']`` is the
    between-set standard error that ``regress`` should use (``extra['regress_std']`` names it).
    ``bootstrap`` = 0 gives no interval.
    """
    if isinstance(logits, np.ndarray):
        logits = torch.from_numpy(logits)
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        raise DataError(f"IS: expected (N, C) logits, got {getattr(logits, 'shape', type(logits).__name__)}")
    n = logits.shape[0]
    if n < splits:
        raise DataError(f"IS: {n} samples cannot be cut into {splits} splits; use more samples or fewer splits")
    if not bool(torch.isfinite(logits).all()):
        raise DataError("IS: logits contain NaN or Inf")
    x = logits.detach().cpu()
    if shuffle:
        x = x[np.random.RandomState(seed).permutation(n), :]
    log_p = x.double().log_softmax(1)
    p = log_p.exp()
    plogp = torch.where(p > 0, p * log_p, torch.zeros_like(p)).sum(1)
    s = _split_scores(p, plogp, splits)
    c = int(x.shape[1])
    value = float(s.mean())
    extra = {"splits": splits, "seed": seed, "num_classes": c, "std": "split std (ddof=0), the field's convention"}
    ci_low = ci_high = None
    if bootstrap and bootstrap > 1:
        g = torch.Generator().manual_seed(int(seed) + 1)
        sizes = [(i + 1) * n // splits - i * n // splits for i in range(splits)]
        reps = np.empty(int(bootstrap))
        for b in range(int(bootstrap)):
            # split i of a resample = sizes[i] draws with replacement: its counts per sample, (splits, n)
            w = torch.stack([torch.bincount(torch.randint(0, n, (m,), generator=g), minlength=n) for m in sizes])
            w = w.double() / torch.tensor(sizes, dtype=torch.float64)[:, None]
            reps[b] = float(((w @ plogp) - _xlogx(w @ p).sum(1)).exp().mean())
        alpha = (1 - level) / 2
        ci_low = float(np.clip(np.quantile(reps, alpha), 1.0, c))
        ci_high = float(np.clip(np.quantile(reps, 1 - alpha), 1.0, c))
        extra.update({"bootstrap": int(bootstrap), "bootstrap_std": float(reps.std(ddof=1)), "ci_level": level,
                      "interval": "percentile bootstrap over generated samples, clipped to [1, C]",
                      "regress_std": "bootstrap_std"})
    return MetricValue(name=name, value=value, n=int(n), std=float(s.std()), ci_low=ci_low, ci_high=ci_high,
                       higher_is_better=True, extra=extra, **mv_kwargs)


def inception_score_unavailable(note: str = MISSING_WEIGHTS_NOTE, *, n: int | None = None, **mv_kwargs) -> MetricValue:
    """An IS MetricValue without a number, carrying why (e.g. the logits weights are missing)."""
    return MetricValue(name="is", value=None, n=n, higher_is_better=True, note=note, **mv_kwargs)
