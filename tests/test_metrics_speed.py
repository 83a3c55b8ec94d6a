"""Sampling speed: warm-up excluded, median of repeats, batch size / device / NFE recorded."""

import time

import pytest
import torch

from dgmbench.errors import UsageError
from dgmbench.metrics.speed import measure_speed
from dgmbench.protocol import SamplesModel


class SleepyModel:
    """Takes 1 s on its first call (warm-up) and 0.02 s per call after; 4 evaluations per sample."""

    data_shape = (2,)
    num_classes = None
    nfe_per_sample = 4.0

    def __init__(self):
        self.calls = []

    def sample(self, n, *, generator=None, labels=None):
        self.calls.append(n)
        time.sleep(1.0 if len(self.calls) == 1 else 0.02)
        return torch.randn(n, 2, generator=generator)


def test_warmup_excluded_and_median():
    m = SleepyModel()
    sp, nfe = measure_speed(m, batch_size=10, warmup=1, repeats=3)
    assert m.calls == [10, 10, 10, 10]
    assert sp.extra["repeats"] == 3 and len(sp.extra["seconds"]) == 3
    assert max(sp.extra["seconds"]) < 0.5  # the 1 s warm-up call is not timed
    assert sp.value == pytest.approx(sorted(10 / t for t in sp.extra["seconds"])[1])
    assert sp.value <= 10 / 0.02 and sp.unit == "samples/s"
    assert sp.extra["batch_size"] == 10 and sp.extra["device"] == "cpu"
    assert nfe.value == 4.0


def test_samples_model_has_no_speed_and_bad_args():
    (sp,) = measure_speed(SamplesModel(torch.zeros(5, 2)), batch_size=5)
    assert sp.value is None and "fixed sample set" in sp.note
    with pytest.raises(UsageError):
        measure_speed(SleepyModel(), batch_size=0)


def test_speed_carries_a_same_process_reference_that_regress_gates():
    """samples/s from measure_speed is compared by `regress` as a ratio to the reference
    workload timed in the same process (not left 'unchecked'); a model 10x slower fails."""
    from dgmbench.regress import baseline_from_records, compare
    from dgmbench.results import Record

    class Fixed:
        data_shape = (2,)
        num_classes = None
        nfe_per_sample = 1.0

        def __init__(self, delay):
            self.delay = delay

        def sample(self, n, *, generator=None, labels=None):
            time.sleep(self.delay)
            return torch.zeros(n, 2)

    def record(delay):
        rec = Record(model="m", dataset="ring8", split="test")
        for mv in measure_speed(Fixed(delay), batch_size=50, warmup=0, repeats=3):
            rec.add(mv)
        return rec

    fast = record(0.01)
    assert fast.metrics["samples_per_s"].extra["speed_reference"] > 0
    base = baseline_from_records([fast])
    slow_rows = {r.metric: r for r in compare(base, [record(0.1)]).rows}
    assert slow_rows["samples_per_s"].per_reference
    assert slow_rows["samples_per_s"].failed
