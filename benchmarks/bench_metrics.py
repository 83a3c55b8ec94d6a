"""Metric computation on features: dgmbench vs the field's implementations, side by side in one run.

Three groups, each on the same seeded synthetic Inception-like features (non-negative,
correlated, d = 2048):

- ``frechet``: Frechet distance from two 2048-d statistics: dgmbench (symmetric eigh
  formulation, float64) vs scipy ``sqrtm`` (the pytorch-fid / clean-fid formula) vs
  torch-fidelity's ``fid_statistics_to_metric`` (``eigvals(S1 S2)``); values' relative
  differences are recorded.
- ``kid``: KID with 100 subsets of 1,000 (10,000 + 10,000 features): dgmbench (float32
  Gram, float64 sums) vs torch-fidelity ``kid_features_to_metric`` (all float32) with the
  same subsets; both values' relative error against an all-float64 computation.
- ``prc``: precision/recall with k = 3 on N + N features (N = 10,000 by default):
  dgmbench ``prdc`` (also computes density/coverage, row-blocked) vs torch-fidelity
  ``prc_features_to_metric`` (full distance matrices).

Two ways to run:

    .venv/bin/pytest benchmarks/bench_metrics.py --benchmark-only --benchmark-group-by=group
    .venv/bin/python benchmarks/bench_metrics.py [--out table.md]   # time + peak memory table

The second runs every case in its own ``spawn`` subprocess with ``--threads`` BLAS/OpenMP
threads (default 1: on a shared CPU an oversubscribed multi-threaded LAPACK call can be 100x
slower than its single-threaded time, which would measure the neighbours, not the code) and
reports the median wall time and process CPU time over ``DGMBENCH_BENCH_ROUNDS`` rounds
(default 1) and the peak resident memory the case added on top of its inputs (VmRSS polled
every 2 ms during the call, minus VmRSS before it). Ratios use CPU time, which contention from other processes barely changes
when single-threaded. Environment: ``DGMBENCH_BENCH_PRC_N``
(default 10000), ``DGMBENCH_BENCH_KID_SUBSETS`` (default 100), ``DGMBENCH_BENCH_CASES``
(comma-separated case names to run).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch

D = 2048
PRC_N = int(os.environ.get("DGMBENCH_BENCH_PRC_N", "10000"))
KID_SUBSETS = int(os.environ.get("DGMBENCH_BENCH_KID_SUBSETS", "100"))
ROUNDS = int(os.environ.get("DGMBENCH_BENCH_ROUNDS", "1"))


# --- seeded inputs ------------------------------------------------------------------------------
def inception_like(n: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    """(n, 2048) float32 ReLU features of a correlated Gaussian (a stand-in for Inception pool3)."""
    mix = torch.randn(D, D, generator=torch.Generator().manual_seed(12345)) / math.sqrt(D)
    scale = torch.linspace(0.2, 1.5, D)
    g = torch.Generator().manual_seed(seed)
    out = []
    for s in range(0, n, 2000):
        z = torch.randn(min(2000, n - s), D, generator=g) * scale
        out.append(torch.relu(z @ mix + 0.3 + shift))
    return torch.cat(out)


def frechet_inputs():
    from dgmbench.metrics.fid import stats_from_features

    a, b = stats_from_features(inception_like(10_000, 1)), stats_from_features(inception_like(10_000, 2, 0.05))
    return a.mean.numpy(), a.cov.numpy(), b.mean.numpy(), b.cov.numpy()


def kid_inputs():
    return inception_like(10_000, 3), inception_like(10_000, 4, 0.02)


def prc_inputs():
    return inception_like(PRC_N, 5, 0.05), inception_like(PRC_N, 6)  # (generated, real)


# --- cases ------------------------------------------------------------------------------------------
def fd_dgmbench(mu1, s1, mu2, s2) -> float:
    from dgmbench.metrics.fid import frechet_distance

    return frechet_distance(mu1, s1, mu2, s2).value


def fd_scipy_sqrtm(mu1, s1, mu2, s2) -> float:
    """The pytorch-fid / clean-fid formula: sqrtm(S1 S2) with scipy, eps offset when singular."""
    import scipy.linalg

    covmean, _ = scipy.linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        off = np.eye(s1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((s1 + off).dot(s2 + off))
    covmean = covmean.real
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def fd_torch_fidelity(mu1, s1, mu2, s2) -> float:
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    return fid_statistics_to_metric({"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2}, verbose=False)[
        "frechet_inception_distance"]


def kid_dgmbench(x, y) -> float:
    from dgmbench.metrics.kid import kid

    return kid(x, y, subsets=KID_SUBSETS, subset_size=1000, seed=0).value


def kid_torch_fidelity(x, y) -> float:
    from torch_fidelity.metric_kid import kid_features_to_metric

    return kid_features_to_metric(x, y, kid_subsets=KID_SUBSETS, kid_subset_size=1000, rng_seed=0, verbose=False)[
        "kernel_inception_distance_mean"]


def kid_float64_reference(x, y) -> float:
    from dgmbench.metrics.kid import kid

    return kid(x, y, subsets=KID_SUBSETS, subset_size=1000, seed=0, gram_dtype=torch.float64).value


def prc_dgmbench(fake, real) -> tuple[float, float]:
    from dgmbench.metrics.prdc import prdc

    r = prdc(real, fake, k_pr=3, interval=False)  # the metrics only, as torch-fidelity computes them
    return r.precision, r.recall


def prc_torch_fidelity(fake, real) -> tuple[float, float]:
    from torch_fidelity.metric_prc import prc_features_to_metric

    r = prc_features_to_metric(fake, real, prc_neighborhood=3, prc_batch_size=10000, save_cpu_ram=False, verbose=False)
    return r["precision"], r["recall"]


CASES = {
    "fd_dgmbench": ("frechet", frechet_inputs, fd_dgmbench),
    "fd_scipy_sqrtm": ("frechet", frechet_inputs, fd_scipy_sqrtm),
    "fd_torch_fidelity": ("frechet", frechet_inputs, fd_torch_fidelity),
    "kid_dgmbench": ("kid", kid_inputs, kid_dgmbench),
    "kid_torch_fidelity": ("kid", kid_inputs, kid_torch_fidelity),
    "kid_float64_reference": ("kid", kid_inputs, kid_float64_reference),
    "prc_dgmbench": ("prc", prc_inputs, prc_dgmbench),
    "prc_torch_fidelity": ("prc", prc_inputs, prc_torch_fidelity),
}


# --- pytest-benchmark ---------------------------------------------------------------------------
try:
    import pytest
except ImportError:  # pragma: no cover - the script mode needs no pytest
    pytest = None

if pytest is not None:
    _inputs_cache: dict = {}

    def _inputs(make):
        if make not in _inputs_cache:
            _inputs_cache[make] = make()
        return _inputs_cache[make]

    @pytest.mark.parametrize("case", list(CASES))
    def test_metric_speed(benchmark, case):
        group, make, fn = CASES[case]
        benchmark.group = group
        args = _inputs(make)
        value = benchmark.pedantic(fn, args=args, rounds=ROUNDS, iterations=1)
        benchmark.extra_info["value"] = value
        benchmark.extra_info["d"] = D


# --- script mode: time + peak memory per case in fresh processes -----------------------------------
def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class _PeakRss:
    """Polls the resident set size every 2 ms in a thread; ``peak`` is the maximum seen (KiB)."""

    def __enter__(self):
        import threading

        self.peak, self._stop = _rss_kib(), False

        def poll():
            while not self._stop:
                self.peak = max(self.peak, _rss_kib())
                time.sleep(0.002)

        self._t = threading.Thread(target=poll, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop = True
        self._t.join()
        self.peak = max(self.peak, _rss_kib())


def _run_case(name: str, rounds: int) -> dict:
    import gc

    group, make, fn = CASES[name]
    args = make()
    gc.collect()
    times, cpu, value, extra = [], [], None, 0
    for _ in range(rounds):
        before = _rss_kib()
        with _PeakRss() as peak:
            t0, c0 = time.perf_counter(), time.process_time()
            value = fn(*args)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        extra = max(extra, peak.peak - before)
    return {"case": name, "group": group, "seconds": statistics.median(times), "cpu_seconds": statistics.median(cpu),
            "times": times, "value": value, "threads": torch.get_num_threads(), "peak_extra_mib": extra / 1024}


def _worker(name: str, rounds: int, threads: int, queue) -> None:
    torch.set_num_threads(threads)
    queue.put(_run_case(name, rounds))


def run_all(names: list[str], rounds: int, threads: int = 1) -> list[dict]:
    import multiprocessing as mp

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)  # inherited by the spawned children before numpy/torch load
    ctx = mp.get_context("spawn")
    out = []
    for name in names:
        q = ctx.Queue()
        p = ctx.Process(target=_worker, args=(name, rounds, threads, q))
        p.start()
        res = q.get()
        p.join()
        print(json.dumps(res), file=sys.stderr, flush=True)
        out.append(res)
    return out


def _rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def markdown(results: list[dict]) -> str:
    by = {r["case"]: r for r in results}
    lines = ["| group | implementation | CPU time (s) | wall (s) | peak extra memory (MiB) | value | CPU time / dgmbench's |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        ref = by.get({"frechet": "fd_dgmbench", "kid": "kid_dgmbench", "prc": "prc_dgmbench"}[r["group"]])
        ratio = f"{r['cpu_seconds'] / ref['cpu_seconds']:.2f}" if ref and r is not ref else ""
        v = r["value"]
        vs = ", ".join(f"{x:.6g}" for x in v) if isinstance(v, list | tuple) else f"{v:.10g}"
        lines.append(f"| {r['group']} | {r['case']} | {r['cpu_seconds']:.2f} | {r['seconds']:.2f} | "
                     f"{r['peak_extra_mib']:.0f} | {vs} | {ratio} |")
    notes = []
    if "fd_dgmbench" in by:
        for other in ("fd_scipy_sqrtm", "fd_torch_fidelity"):
            if other in by:
                notes.append(f"- Frechet distance: |dgmbench - {other}| / {other} = "
                             f"{_rel(by['fd_dgmbench']['value'], by[other]['value']):.2e}; dgmbench is "
                             f"{by[other]['cpu_seconds'] / by['fd_dgmbench']['cpu_seconds']:.1f}x faster (CPU time)")
    if "kid_float64_reference" in by:
        ref = by["kid_float64_reference"]["value"]
        for other in ("kid_dgmbench", "kid_torch_fidelity"):
            if other in by:
                notes.append(f"- KID relative error of {other} against the all-float64 computation: "
                             f"{_rel(by[other]['value'], ref):.2e}")
    if "prc_dgmbench" in by and "prc_torch_fidelity" in by:
        a, b = by["prc_dgmbench"]["value"], by["prc_torch_fidelity"]["value"]
        notes.append(f"- precision/recall: dgmbench {tuple(round(x, 6) for x in a)} vs torch-fidelity "
                     f"{tuple(round(x, 6) for x in b)} (N = {PRC_N} + {PRC_N})")
    return "\n".join(lines + [""] + notes)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="also write the Markdown table here")
    ap.add_argument("--rounds", type=int, default=ROUNDS)
    ap.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads per case (default 1)")
    ns = ap.parse_args()
    sel = [c for c in os.environ.get("DGMBENCH_BENCH_CASES", ",".join(CASES)).split(",") if c]
    res = run_all(sel, ns.rounds, ns.threads)
    table = markdown(res)
    print(table)
    if ns.out:
        with open(ns.out, "w") as f:
            f.write(table + "\n")
