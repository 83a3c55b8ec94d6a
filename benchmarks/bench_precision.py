"""What a faster Inception arithmetic costs in FID: ``--precision`` options on real CIFAR-10 images.

For each precision the device offers (CPU: fp32, bf16; CUDA also fp32-strict, tf32, fp16),
``dgmbench.evaluate`` scores the offline CIFAR-10 training images against the offline test
images (FID, no reference cache, no bootstrap) and the case records FID, its relative change
from fp32's, the wall time and images/s. Two ways to run::

    .venv/bin/pytest benchmarks/bench_precision.py --benchmark-only --benchmark-group-by=group
    .venv/bin/python benchmarks/bench_precision.py [--out table.md]     # a Markdown table

Environment: ``DGMBENCH_BENCH_N`` generated-side images (default 4000, all the offline
training images), ``DGMBENCH_BENCH_NREF`` reference images (default 1000), ``DGMBENCH_BENCH_BS``
(default 64), ``DGMBENCH_BENCH_DEVICE`` (default: cuda when available, else cpu).
The test asserts the change stays under 1% of FID: a precision that moves FID more than
that is not a speed option but a different metric.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("DGMBENCH_OFFLINE", "1")

N = int(os.environ.get("DGMBENCH_BENCH_N", "4000"))
NREF = int(os.environ.get("DGMBENCH_BENCH_NREF", "1000"))
BS = int(os.environ.get("DGMBENCH_BENCH_BS", "64"))
DEVICE = os.environ.get("DGMBENCH_BENCH_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
OFFLINE = Path(__file__).resolve().parents[1].parent / "shared" / "offline" / "cifar10-subset"
PRECISIONS = ("fp32", "bf16") if not DEVICE.startswith("cuda") else ("fp32", "fp32-strict", "tf32", "bf16", "fp16")
MAX_REL_CHANGE = 0.01


def _cifar(name: str, n: int) -> torch.Tensor:
    path = OFFLINE / name
    if not path.exists():
        pytest.skip(f"offline CIFAR-10 subset not found at {path}")
    with np.load(path) as z:
        data = z["data"][:n]
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()).float() / 255.0


def fid_at(precision: str) -> dict:
    """FID of the training images against the test images with one precision, and its timing."""
    from dgmbench.data.base import DataSplit
    from dgmbench.evaluate import evaluate

    gen = _cifar("cifar10_train_first4000.npz", N)
    ref = DataSplit("cifar10-offline", "test", _cifar("cifar10_test_first1000.npz", NREF))
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    rec = evaluate(gen, ref, metrics="fid", n=len(gen), n_ref=len(ref), extractor="inception", precision=precision,
                   device=DEVICE, batch_size=BS, cache=False, progress=False, fid_bootstrap=0)
    wall = time.perf_counter() - t0
    return {"precision": precision, "fid": rec.value("fid"), "wall_s": wall, "images_per_s": (len(gen) + len(ref)) / wall,
            "device": DEVICE, "threads": torch.get_num_threads(), "extractor": rec.config["extractor"]["config"]}


_FP32: dict = {}


@pytest.mark.parametrize("precision", PRECISIONS)
def test_precision_fid_change(benchmark, precision):
    benchmark.group = f"Inception precision, FID of {N} CIFAR-10 train vs {NREF} test images, {DEVICE}"
    out = benchmark.pedantic(lambda: fid_at(precision), rounds=1, iterations=1)
    if precision == "fp32":
        _FP32.update(out)
    base = _FP32.get("fid") or fid_at("fp32")["fid"]
    out["rel_change"] = abs(out["fid"] - base) / base
    benchmark.extra_info.update(out)
    assert out["rel_change"] < MAX_REL_CHANGE, f"{precision} moves FID by {out['rel_change']:.2%} (fp32 {base:.4f})"


def _rows():
    base = None
    for p in PRECISIONS:
        r = fid_at(p)
        base = base or r
        yield [p, r["extractor"], f"{r['device']} ({r['threads']})", f"{r['fid']:.6f}",
               f"{abs(r['fid'] - base['fid']) / base['fid']:.2e}", f"{r['wall_s']:.1f}", f"{r['images_per_s']:.2f}",
               f"{base['wall_s'] / r['wall_s']:.2f}x"]


def main(argv: list[str] | None = None) -> int:
    from markdown_table import markdown_table_main

    header = ["precision", "extractor config", "device (threads)", "FID", "relative change vs fp32", "wall (s)",
              "images/s", "speed vs fp32"]
    return markdown_table_main(__doc__.split("\n", 1)[0], header, _rows, argv)


if __name__ == "__main__":
    raise SystemExit(main())
