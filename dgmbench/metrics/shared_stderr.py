"""Propagate an error shared by every sample's log-likelihood into the NLL / bpd values.

Some models report ``log p(x) = f(x) - log Z`` with ``log Z`` itself estimated once (an EBM's
AIS estimate of its log normaliser). The per-sample values then share one error: the mean NLL
over n items is off by the same ``delta log Z`` whatever n is, so its standard error is

    se_total = sqrt(se_data^2 + se_shared^2)

(independent errors: the data sampling and the normaliser's estimator), and the 95% interval
is ``value +- z se_total``. bits/dim scale both by ``1 / (D ln 2)``. A model states its shared
error (nats) in the attribute ``likelihood_stderr`` after ``log_likelihood`` has run; None or
0 leaves the values unchanged.
"""

from __future__ import annotations

import math
from dataclasses import replace

from ..errors import ModelError
from ..results import MetricValue
from ..units import bits_per_dim


def model_shared_stderr(model) -> float | None:
    """The model's shared log-likelihood error in nats (``likelihood_stderr``), checked; None when absent."""
    se = getattr(model, "likelihood_stderr", None)
    if se is None:
        return None
    se = float(se)
    if not math.isfinite(se) or se < 0:
        raise ModelError(f"{type(model).__name__}.likelihood_stderr must be a finite number >= 0, got {se}")
    return se


def add_shared_stderr(mvs: list[MetricValue], shared_stderr: float | None, *, z: float = 1.96) -> list[MetricValue]:
    """Copies of ``mvs`` ('nll' in nats, 'bpd' with ``extra['num_dims']``) with ``shared_stderr``
    (nats) added in quadrature to ``std`` and the interval widened to match; ``extra`` records
    both parts (``stderr_data``, ``stderr_shared``). Other metrics pass through unchanged."""
    if not shared_stderr:
        return list(mvs)
    out = []
    for mv in mvs:
        if mv.name not in ("nll", "bpd") or mv.value is None or mv.std is None:
            out.append(mv)
            continue
        shared = shared_stderr if mv.name == "nll" else bits_per_dim(shared_stderr, int(mv.extra["num_dims"]))
        total = math.sqrt(mv.std**2 + shared**2)
        extra = {**mv.extra, "stderr_data": mv.std, "stderr_shared": shared,
                 "std_is": "standard error: the data mean's and the model's shared log-normaliser estimate's, "
                           "in quadrature"}
        out.append(replace(mv, std=total, ci_low=mv.value - z * total, ci_high=mv.value + z * total, extra=extra))
    return out
