"""Cost of FID's default interval on 2048-d features: value only vs delta method (vs bootstrap).

Run (CPU, one thread; n values as arguments, default 400 2000; ``--bootstrap`` adds the
10-replicate bootstrap row, ``--repeats R`` takes the minimum of R timings)::

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/bench_fid_interval.py 400 2000

Synthetic Gaussian features (d = 2048), reference statistics from 6,000 samples. Rows:

- ``fid_from_stats``: the d x d value from the generated set's statistics, which the harness
  accumulates while it extracts features. This is what a run without an interval
  (``--fid-interval none``) computes, so it is the baseline of the interval's extra cost.
- ``fid_from_features`` with ``interval=None`` (the value on the n x n or d x d route from
  the features) and with the default delta method, both given the accumulated statistics
  as the harness calls it (``stats_gen``: the d x d route takes the covariance from them).
- ``fid_from_features bootstrap=10`` with ``--bootstrap``.
- with ``--device cuda``: the default (delta) and the value alone with the linear algebra on
  that device (``fid_from_features(device=...)``, what ``--fid-device auto`` does on a GPU run),
  timed in wall seconds after a synchronise (process CPU time does not see the device), next to
  the CPU default's wall time.

Prints process CPU seconds (the minimum over ``--repeats``) and the value/std of each, then the
default's extra cost over the baseline.
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

from dgmbench.metrics.fid import fid_from_features, fid_from_stats, stats_from_features


def _best(fn, repeats: int):
    """Minimum process CPU seconds over ``repeats`` calls (one thread: steadier than wall time on a
    shared machine) and the last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t0)
    return best, out


def _best_wall(fn, repeats: int, device: str):
    """Minimum wall seconds over ``repeats`` calls, the device synchronised before and after."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    best, out = float("inf"), None
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(sizes: list[int], bootstrap: bool, repeats: int, device: str | None = None) -> None:
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    d = 2048
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(d, d, generator=g, dtype=torch.float64) / d**0.5
    ref = stats_from_features(torch.randn(6000, d, generator=g, dtype=torch.float64) @ mix)
    for n in sizes:
        f = (torch.randn(n, d, generator=g, dtype=torch.float64) @ mix) * 1.1 + 0.05
        gen_stats = stats_from_features(f)  # accumulated during feature extraction in a run
        rows = {
            "fid_from_stats (d x d, value only: a run without interval)":
                lambda s=gen_stats: fid_from_stats(s, ref),
            "fid_from_features interval=None":
                lambda f=f, s=gen_stats: fid_from_features(f, ref, interval=None, stats_gen=s),
            "fid_from_features default (delta)": lambda f=f, s=gen_stats: fid_from_features(f, ref, stats_gen=s),
        }
        if bootstrap:
            rows["fid_from_features bootstrap=10"] = lambda f=f: fid_from_features(f, ref, bootstrap=10)
        times = {}
        for name, fn in rows.items():
            times[name], mv = _best(fn, repeats)
            print(f"n={n} {name}: {times[name]:.2f} CPU s  value={mv.value:.6f} std={mv.std}", flush=True)
        base, default = list(times.values())[0], times["fid_from_features default (delta)"]
        print(f"n={n} default interval: {default - base:+.2f} CPU s over the value alone ({default / base - 1:+.0%})",
              flush=True)
        if device:
            cpu_wall, _ = _best_wall(lambda f=f, s=gen_stats: fid_from_features(f, ref, stats_gen=s), repeats, "cpu")
            fid_from_features(f[:64], ref, device=device)  # warm-up: CUDA context, cusolver handles
            for name, kw in (("value only", {"interval": None}), ("default (delta)", {})):
                wall, mv = _best_wall(lambda f=f, s=gen_stats, kw=kw: fid_from_features(f, ref, stats_gen=s,
                                                                                         device=device, **kw),
                                      repeats, device)
                print(f"n={n} fid_from_features {name} on {device}: {wall:.3f} wall s (CPU default {cpu_wall:.2f} "
                      f"wall s, {cpu_wall / wall:.1f}x)  value={mv.value:.6f} std={mv.std}", flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sizes", nargs="*", type=int, default=[400, 2000])
    p.add_argument("--bootstrap", action="store_true", help="also time the 10-replicate bootstrap")
    p.add_argument("--repeats", type=int, default=2, help="timings per row (the minimum is printed)")
    p.add_argument("--device", default=None, help="also time the linear algebra on this device (e.g. cuda)")
    a = p.parse_args()
    main(a.sizes, a.bootstrap, a.repeats, a.device)
