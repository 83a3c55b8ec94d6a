"""Sampling speed: samples per second after warm-up, with device synchronisation.

``measure_speed`` calls ``model.sample(batch_size)`` ``warmup`` times untimed (kernel
selection, caches, lazy initialisation), then ``repeats`` timed calls, each bracketed by
``torch.cuda.synchronize`` when the model runs on a GPU; the value is the median of
``batch_size / seconds`` over the repeats (``extra`` has every repeat). The batch size,
device and network evaluations per sample (``model.nfe_per_sample``) are recorded; a
model that replays a fixed sample set has no meaningful speed. ``extra["speed_reference"]``
is the throughput of a fixed reference workload measured in the same process
(:func:`measure_speed_reference`), so CI (``dgmbench regress``) can gate samples/s as a ratio
that does not depend on the machine.
"""

from __future__ import annotations

import math
import statistics
import time

import torch

from ..devices import model_device, synchronize
from ..errors import UsageError, model_boundary
from ..results import MetricValue


def measure_speed(model, *, batch_size: int = 64, warmup: int = 1, repeats: int = 3, seed: int = 0,
                  device: str | torch.device | None = None, labels: torch.Tensor | None = None) -> list[MetricValue]:
    """``samples_per_s`` (median over repeats) and ``nfe`` MetricValues for ``model``."""
    if batch_size < 1 or repeats < 1 or warmup < 0:
        raise UsageError("speed: batch_size and repeats must be >= 1 and warmup >= 0")
    nfe = getattr(model, "nfe_per_sample", None)
    if nfe is not None and isinstance(nfe, float) and math.isnan(nfe):
        return [MetricValue(name="samples_per_s", value=None, note="not applicable: the model replays a fixed sample set",
                            higher_is_better=True, unit="samples/s")]
    dev = torch.device(device) if device not in (None, "auto") else model_device(model)
    gen = torch.Generator().manual_seed(seed)
    times = []
    with torch.no_grad():
        for i in range(warmup + repeats):
            synchronize(dev)
            t0 = time.perf_counter()
            with model_boundary(f"model '{getattr(model, 'name', None) or type(model).__name__}': sample({batch_size}) "
                                "(speed)"):
                out = model.sample(batch_size, generator=gen, labels=labels)
            synchronize(dev)
            dt = time.perf_counter() - t0
            if i >= warmup:
                times.append(dt)
            del out
    rates = [batch_size / t for t in times]
    extra = {"batch_size": batch_size, "device": str(dev), "warmup": warmup, "repeats": repeats,
             "rates": rates, "seconds": times, "ci_method": "min and max over the timed repeats"}
    if dev.type == "cuda":
        extra["device_name"] = torch.cuda.get_device_name(dev)
    # a fixed workload timed in the same process: regress compares samples/s as a ratio to it
    extra["speed_reference"] = measure_speed_reference(device=str(dev))
    out = [MetricValue(name="samples_per_s", value=statistics.median(rates), n=batch_size * repeats, unit="samples/s",
                       higher_is_better=True, ci_low=min(rates), ci_high=max(rates), extra=extra)]
    if nfe is not None:
        out.append(MetricValue(name="nfe", value=float(nfe), unit="evaluations/sample", higher_is_better=False,
                               extra={"source": "model.nfe_per_sample"}))
    return out


def measure_speed_reference(*, device: str = "cpu", min_time_s: float = 0.2, repeats: int = 3) -> float:
    """Throughput (workloads/s) of a fixed reference workload on ``device``.

    The workload is a 3-layer MLP (256 -> 512 -> 512 -> 256, batch 256, float32) forward
    pass with fixed weights. Dividing a model's samples/s by this number gives a ratio
    that is roughly machine-independent, so speed can be gated across CI machines. The
    best of ``repeats`` timings (each at least ``min_time_s``) is returned, after warm-up.
    """
    g = torch.Generator().manual_seed(0)
    dev = torch.device(device)
    ws = [torch.randn(a, b, generator=g).div_(a ** 0.5).to(dev) for a, b in ((256, 512), (512, 512), (512, 256))]
    x = torch.randn(256, 256, generator=g).to(dev)

    def work() -> torch.Tensor:
        h = x
        for w in ws[:-1]:
            h = torch.relu(h @ w)
        return h @ ws[-1]

    with torch.no_grad():
        for _ in range(3):
            work()
        synchronize(dev)
        best = 0.0
        for _ in range(repeats):
            count, t0 = 0, time.perf_counter()
            while True:
                work()
                count += 1
                if count % 4 == 0:
                    synchronize(dev)
                    dt = time.perf_counter() - t0
                    if dt >= min_time_s:
                        break
            best = max(best, count / dt)
    return best
