"""What a faster Inception arithmetic costs in FID: ``--precision`` options on real CIFAR-10 images.

For each precision the device offers (CPU: fp32, bf16; CUDA also fp32-strict, tf32, fp16),
``dgmbench.evaluate`` scores the offline CIFAR-10 training images against the offline test
images (FID, no reference cache, no bootstrap) and the case records FID, its relative change
from fp32's, the wall time and images/s. Two ways to run::

    .venv/bin/pytest benchmarks/bench_precision.py --benchmark-only --benchmark-group-by=group
    .venv/bin/python benchmarks/bench_precision.py [--out table.md]     # a Markdown table

Environment: ``DGMBENCH_BENCH_N`` generated-side images (default 4000, all the offline
training images), ``DGMBENCH_BENCH_NREF`` reference images (default 1000), ``DGMBENCH_BENCH_BS``
(default 64), ``DGMBENCH_BENCH_DEVICE`` (default: cuda when available, else cpu), ``DGMBENCH_BENCH_DATA`` and
``DGMBENCH_BENCH_WEIGHTS`` (see ``bench_inputs.py``).
The test asserts the change stays under 1% of FID: a precision that moves FID more than
that is not a speed option but a different metric.
"""

from __future__ import annotations

import os
import time

import pytest
import torch
from bench_inputs import WEIGHTS, cifar_test_u8, cifar_train_u8, device_name

os.environ.setdefault("DGMBENCH_OFFLINE", "1")

N = int(os.environ.get("DGMBENCH_BENCH_N", "4000"))
NREF = int(os.environ.get("DGMBENCH_BENCH_NREF", "1000"))
BS = int(os.environ.get("DGMBENCH_BENCH_BS", "64"))
DEVICE = os.environ.get("DGMBENCH_BENCH_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
PRECISIONS = ("fp32", "bf16") if not DEVICE.startswith("cuda") else ("fp32", "fp32-strict", "tf32", "bf16", "fp16")
MAX_REL_CHANGE = 0.01


def fid_at(precision: str) -> dict:
    """FID of the training images against the test images with one precision, and its timing."""
    from dgmbench.data.base import DataSplit
    from dgmbench.harness import evaluate

    gen = cifar_train_u8()[:N].float() / 255.0
    ref = DataSplit("cifar10-offline", "test", cifar_test_u8()[:NREF].float() / 255.0)
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    rec = evaluate(gen, ref, metrics="fid", n=len(gen), n_ref=len(ref), extractor="inception", precision=precision,
                   inception_weights=WEIGHTS, device=DEVICE, batch_size=BS, cache=False, progress=False, fid_bootstrap=0)
    wall = time.perf_counter() - t0
    return {"precision": precision, "fid": rec.value("fid"), "wall_s": wall, "images_per_s": (len(gen) + len(ref)) / wall,
            "device": DEVICE, "threads": torch.get_num_threads(), "extractor": rec.config["extractor"]["config"],
            "weights_sha256": rec.config["extractor"].get("extractor_sha256"),
            "device_name": device_name(DEVICE)}


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
