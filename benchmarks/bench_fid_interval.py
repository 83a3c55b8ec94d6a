"""Cost of FID's default interval on 2048-d features: value only vs delta method vs bootstrap.

Run (CPU, one thread; n values as arguments, default 400 2000)::

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/bench_fid_interval.py 400 2000

Synthetic Gaussian features (d = 2048), reference statistics from 6,000 samples. Rows:
``fid_from_stats`` (the d x d value-only path, what ``--fid-bootstrap 0`` used), and
``fid_from_features`` with ``interval=None`` / the default delta method / ``bootstrap=10``.
Prints seconds and the value/std of each; on a shared machine repeat and take the minimum.
"""

from __future__ import annotations

import sys
import time
import warnings

import torch

from dgmbench.metrics.fid import fid_from_features, fid_from_stats, stats_from_features


def main(sizes: list[int]) -> None:
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    d = 2048
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(d, d, generator=g, dtype=torch.float64) / d**0.5
    ref = stats_from_features(torch.randn(6000, d, generator=g, dtype=torch.float64) @ mix)
    for n in sizes:
        f = (torch.randn(n, d, generator=g, dtype=torch.float64) @ mix) * 1.1 + 0.05
        rows = {
            "fid_from_stats (d x d, value only)": (fid_from_stats, {}),
            "fid_from_features interval=None": (fid_from_features, {"interval": None}),
            "fid_from_features default (delta)": (fid_from_features, {}),
            "fid_from_features bootstrap=10": (fid_from_features, {"bootstrap": 10}),
        }
        for name, (fn, kw) in rows.items():
            t0 = time.perf_counter()
            mv = fn(stats_from_features(f) if fn is fid_from_stats else f, ref, **kw)
            print(f"n={n} {name}: {time.perf_counter() - t0:.2f} s  value={mv.value:.6f} std={mv.std}", flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [400, 2000])
