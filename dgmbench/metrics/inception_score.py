"""Inception Score (Salimans et al. 2016) from classifier logits.

IS = exp(E_x KL(p(y|x) || p(y))), computed on ``splits`` (default 10) equal chunks of a
seeded permutation of the samples; the value is the mean over chunks and ``std`` the
(ddof=0) std across chunks - torch-fidelity's ``isc_features_to_metric`` convention
(its ``rng_seed`` is our ``seed``). Logits are softmaxed in float64.

For Inception, the logits need the full torch-fidelity Inception weights (the offline FID
weights have no classifier layer); :func:`inception_score_unavailable` gives the
MetricValue with no number and a note saying exactly that.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import DataError
from ..results import MetricValue

MISSING_WEIGHTS_NOTE = (
    "IS needs the full Inception weights with the classifier (logits) layer; the offline FID weights "
    "have none - pass --inception-weights PATH to torch-fidelity's weights-inception-2015-12-05 file"
)


def inception_score(logits: torch.Tensor, *, splits: int = 10, seed: int = 0, shuffle: bool = True,
                    name: str = "is", **mv_kwargs) -> MetricValue:
    """IS mean and std over ``splits`` chunks of (N, C) logits (see the module docstring)."""
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
    x = x.double()
    p, log_p = x.softmax(1), x.log_softmax(1)
    scores = []
    for i in range(splits):
        sl = slice(i * n // splits, (i + 1) * n // splits)
        pc, lpc = p[sl], log_p[sl]
        log_q = pc.mean(0, keepdim=True).log()
        scores.append(float((pc * (lpc - log_q)).sum(1).mean().exp()))
    s = np.asarray(scores)
    return MetricValue(name=name, value=float(s.mean()), n=int(n), std=float(s.std()), higher_is_better=True,
                       extra={"splits": splits, "seed": seed, "num_classes": int(x.shape[1])}, **mv_kwargs)


def inception_score_unavailable(note: str = MISSING_WEIGHTS_NOTE, *, n: int | None = None, **mv_kwargs) -> MetricValue:
    """An IS MetricValue without a number, carrying why (e.g. the logits weights are missing)."""
    return MetricValue(name="is", value=None, n=n, higher_is_better=True, note=note, **mv_kwargs)
