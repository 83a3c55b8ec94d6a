"""Feature extraction and FID+KID end to end: dgmbench vs torch-fidelity, side by side in one run.

Run (CPU; sizes via env, defaults small enough for a shared CPU)::

    DGMBENCH_BENCH_N=64 .venv/bin/pytest benchmarks/bench_features.py --benchmark-only \
        --benchmark-group-by=group --benchmark-columns=min,median,max,rounds

Both sides use the same Inception weights file (dgmbench's converted offline copy, passed
to torch-fidelity as ``feature_extractor_weights_path``) on the same uint8 images
(CIFAR-10 test images from the offline folder; the 299x299 set is their bilinear upscale,
quantised to uint8). Each test records images/s, and the median wall and process-CPU
seconds, in ``extra_info`` (``--benchmark-json``); the features of both sides are checked to
agree. On a shared, oversubscribed CPU compare CPU time (``--benchmark-timer
time.process_time`` with ``OMP_NUM_THREADS=1``): wall time then measures the neighbours.
torch-fidelity's DataLoader workers (up to 4 processes, its default) are not in the parent's
process time; their work here is only indexing in-memory uint8 tensors. Environment:

- ``DGMBENCH_BENCH_N`` images per set (default 64), ``DGMBENCH_BENCH_BS`` batch size
  (default 64; a comma-separated list gives one feature case per size, the end-to-end cases use the first), ``DGMBENCH_BENCH_ROUNDS`` rounds per test (default 2),
  ``DGMBENCH_BENCH_DEVICE`` (default: cuda when available, else cpu),
  ``DGMBENCH_BENCH_OPTS`` dgmbench options: ``nchw`` (turn off the default channels_last),
  ``bf16`` (autocast), ``tf32``.
- ``DGMBENCH_BENCH_DATA`` / ``DGMBENCH_BENCH_WEIGHTS``: the CIFAR-10 folder and the Inception
  weights file (see ``bench_inputs.py``), for a machine without ``../shared`` such as a GPU
  box fed by ``benchmarks/offline_bundle.py``.
- ``DGMBENCH_BENCH_PEAK_TFLOPS``: the device's peak for the arithmetic in use, when
  :data:`dgmbench.flops.PEAK_TFLOPS` does not know it (a CPU); each feature case records the
  achieved TFLOP/s (5.71 GMAC = 11.4 GFLOP per image) and its fraction of that peak.
- ``DGMBENCH_OFFLINE=1`` is set here: nothing is downloaded.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from bench_inputs import WEIGHTS, U8Dataset, cifar_test_u8, cifar_train_u8, device_name, distinct_images, sync

os.environ.setdefault("DGMBENCH_OFFLINE", "1")

N = int(os.environ.get("DGMBENCH_BENCH_N", "64"))
BATCH_SIZES = [int(b) for b in os.environ.get("DGMBENCH_BENCH_BS", "64").split(",") if b]
BS = BATCH_SIZES[0]  # the end-to-end cases use the first
ROUNDS = int(os.environ.get("DGMBENCH_BENCH_ROUNDS", "2"))
DEVICE = os.environ.get("DGMBENCH_BENCH_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
OPTS = {o for o in os.environ.get("DGMBENCH_BENCH_OPTS", "").split(",") if o}


def _timed(fn, log: list):
    """Wrap ``fn`` to record (wall s, process CPU s) of each call into ``log``."""

    def run():
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        log.append((time.perf_counter() - w0, time.process_time() - c0))
        return out

    return run


def _medians(log: list) -> dict:
    return {"wall_s": float(np.median([w for w, _ in log])), "cpu_s": float(np.median([c for _, c in log]))}




def _cifar_u8(start: int, n: int) -> torch.Tensor:
    """n offline CIFAR-10 test images from ``start`` (wrapping around the 1,000), uint8 (n, 3, 32, 32)."""
    data = cifar_test_u8()
    return data[torch.arange(start, start + n) % len(data)].clone()


@pytest.fixture(scope="module")
def dgm_extractor():
    from dgmbench.features.inception import InceptionExtractor

    kw = {"channels_last": "nchw" not in OPTS, "amp": "bf16" if "bf16" in OPTS else None}
    if "tf32" in OPTS:
        kw["tf32"] = True
    return InceptionExtractor(WEIGHTS, device=DEVICE, **kw)


@pytest.fixture(scope="module")
def tf_extractor(dgm_extractor):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    ext = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(dgm_extractor.weights_path)
    )
    return ext.to(DEVICE)


@pytest.fixture(scope="module", params=[32, 299], ids=["32px", "299px"])
def images_u8(request):
    u8 = _cifar_u8(0, N)
    if request.param == 299:
        up = torch.nn.functional.interpolate(u8.float(), size=(299, 299), mode="bilinear", align_corners=False)
        u8 = up.round().clamp(0, 255).to(torch.uint8)
    return request.param, u8


def _dgm_extract(ext, u8, bs: int = BS):
    from dgmbench.features.registry import feature_pass

    x = u8.float() / 255.0  # dgmbench's input convention; round(255 x) gives back u8 exactly
    fp = feature_pass({ext: ["pool"]}, x, batch_size=bs, device=DEVICE)
    sync(DEVICE)
    return fp.features[("inception", "pool")]


def _tf_extract(ext, u8, bs: int = BS):
    from torch_fidelity.utils import get_featuresdict_from_dataset

    out = get_featuresdict_from_dataset(
        U8Dataset(u8), ext, batch_size=bs, cuda=DEVICE.startswith("cuda"), save_cpu_ram=False, verbose=False
    )
    sync(DEVICE)
    return out["2048"]


@pytest.mark.parametrize("bs", BATCH_SIZES, ids=[f"bs{b}" for b in BATCH_SIZES])
@pytest.mark.parametrize("impl", ["dgmbench", "torch-fidelity"])
def test_extract(benchmark, impl, bs, images_u8, dgm_extractor, tf_extractor):
    size, u8 = images_u8
    benchmark.group = f"inception features, {N} images {size}x{size}, batch {bs}, {DEVICE}"
    if impl == "dgmbench":
        fn = lambda: _dgm_extract(dgm_extractor, u8, bs)  # noqa: E731
    else:
        fn = lambda: _tf_extract(tf_extractor, u8, bs)  # noqa: E731
    log: list = []
    feats = benchmark.pedantic(_timed(fn, log), rounds=ROUNDS, iterations=1, warmup_rounds=0)
    assert feats.shape == (N, 2048)
    if not OPTS & {"bf16", "tf32"}:  # same float32 network, same inputs: same features
        other = _tf_extract(tf_extractor, u8[:4]) if impl == "dgmbench" else _dgm_extract(dgm_extractor, u8[:4])
        torch.testing.assert_close(feats[:4].cpu(), other.cpu(), rtol=0, atol=1e-4)
    images_per_s = N / _medians(log)["wall_s"]
    benchmark.extra_info.update(
        impl=impl, images=N, size=size, batch_size=bs, device=DEVICE, device_name=device_name(DEVICE), opts=sorted(OPTS),
        images_per_s=images_per_s, threads=torch.get_num_threads(), **_medians(log),
        arithmetic=_arithmetic(), **_utilisation(images_per_s),
    )


def _arithmetic() -> str:
    """The arithmetic the convolutions ran in: bf16 autocast, TF32 tensor cores (PyTorch's default for cuDNN
    convolutions on CUDA, or forced by ``tf32``) or plain fp32."""
    if "bf16" in OPTS:
        return "bf16"
    if DEVICE.startswith("cuda") and ("tf32" in OPTS or torch.backends.cudnn.allow_tf32):
        return "tf32"
    return "fp32"


def _utilisation(images_per_s: float) -> dict:
    """Achieved TFLOP/s of the Inception pass (5.71 GMAC per image) and its fraction of the data-sheet peak for
    the arithmetic in use (``DGMBENCH_BENCH_PEAK_TFLOPS`` overrides the peak, e.g. for a CPU)."""
    from dgmbench.flops import inception_forward_work, utilisation

    out = utilisation(images_per_s, inception_forward_work(), device_name(DEVICE), _arithmetic())
    if os.environ.get("DGMBENCH_BENCH_PEAK_TFLOPS"):
        out["peak_tflops"] = float(os.environ["DGMBENCH_BENCH_PEAK_TFLOPS"])
        out["fraction_of_peak"] = out["achieved_tflops"] / out["peak_tflops"]
    return out


def _fid_kid_side_by_side(benchmark, impl: str, dgm_extractor, gen_u8: torch.Tensor, ref_u8: torch.Tensor,
                          subset: int) -> None:
    """Time FID + KID (100 subsets of ``subset``) of uint8 ``gen_u8`` against ``ref_u8`` with one
    implementation; both extract both sets with the same weights file (no reference cache)."""
    from dgmbench.data.base import DataSplit
    from dgmbench.harness import evaluate

    weights = str(dgm_extractor.weights_path)

    def run_dgm():
        ref = DataSplit("cifar10-offline", "test", ref_u8.float() / 255.0)
        rec = evaluate(
            gen_u8.float() / 255.0, ref, metrics=("fid", "kid"), n=len(gen_u8), n_ref=len(ref_u8),
            extractor=dgm_extractor, device=DEVICE, batch_size=BS, cache=False, progress=False, kid_subsets=100,
            kid_subset_size=subset, fid_bootstrap=0,
        )
        return rec.value("fid"), rec.value("kid")

    def run_tf():
        import torch_fidelity

        m = torch_fidelity.calculate_metrics(
            input1=U8Dataset(gen_u8), input2=U8Dataset(ref_u8), cuda=DEVICE.startswith("cuda"), fid=True, kid=True,
            kid_subsets=100, kid_subset_size=subset, batch_size=BS, feature_extractor_weights_path=weights,
            verbose=False, cache=False,
        )
        return m["frechet_inception_distance"], m["kernel_inception_distance_mean"]

    log: list = []
    fid, kid = benchmark.pedantic(_timed(run_dgm if impl == "dgmbench" else run_tf, log), rounds=1, iterations=1)
    images = len(gen_u8) + len(ref_u8)
    benchmark.extra_info.update(impl=impl, images=images, device=DEVICE, fid=fid, kid=kid,
                                images_per_s=images / _medians(log)["wall_s"], threads=torch.get_num_threads(),
                                **_medians(log))
    assert np.isfinite(fid) and fid > 0


@pytest.mark.parametrize("impl", ["dgmbench", "torch-fidelity"])
def test_fid_kid_end_to_end(benchmark, impl, dgm_extractor):
    """FID + KID of N generated-like images (CIFAR test images N..2N) against N reference images (0..N).

    Both sides extract both sets (dgmbench's reference cache is disabled) and compute FID and
    KID with 100 subsets of N // 2. IS is left out: the offline weights have no logits layer.
    """
    benchmark.group = f"FID+KID end to end, {N}+{N} images 32x32, {DEVICE}"
    _fid_kid_side_by_side(benchmark, impl, dgm_extractor, _cifar_u8(N, N), _cifar_u8(0, N), max(N // 2, 2))


@pytest.mark.skipif(os.environ.get("DGMBENCH_BENCH_LARGE") != "1", reason="set DGMBENCH_BENCH_LARGE=1 (about 25 min on 2 CPU cores)")
@pytest.mark.parametrize("impl", ["dgmbench", "torch-fidelity"])
def test_fid_kid_5000_cifar(benchmark, impl, dgm_extractor):
    """Issue 3's size: FID + KID of 5,000 CIFAR-sized images against the 1,000 offline CIFAR-10 test images.

    The 5,000: the 4,000 offline training images plus horizontal flips of the first 1,000 of them
    (the full CIFAR-10 is not available offline). Both sides extract both sets (6,000 images; no
    reference cache) and compute FID and KID (100 subsets of 1,000, torch-fidelity's default);
    IS is left out because the offline weights have no logits layer. Each side's FID and KID are
    recorded in ``extra_info`` (``--benchmark-json``) for the comparison in RESULTS.md.
    """
    gen_u8 = distinct_images(cifar_train_u8(), 5000)
    ref_u8 = cifar_test_u8()
    benchmark.group = f"FID+KID end to end, {len(gen_u8)} + {len(ref_u8)} CIFAR images, {DEVICE}"
    _fid_kid_side_by_side(benchmark, impl, dgm_extractor, gen_u8, ref_u8, 1000)


def _write_pngs(u8: torch.Tensor, folder: Path) -> Path:
    """uint8 (N, 3, H, W) -> folder/00000.png ... (lossless, what both command lines read)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(u8.permute(0, 2, 3, 1).numpy()):
        Image.fromarray(img).save(folder / f"{i:05d}.png")
    return folder


@pytest.fixture(scope="module")
def png_sets_10k(tmp_path_factory):
    """10,000 CIFAR-sized PNGs (the 4,000 offline training images, their horizontal flips, and 2,000 of them
    shifted right by 2 pixels with edge padding) and the 1,000 offline test images as the reference folder."""
    gen = distinct_images(cifar_train_u8(), 10_000)
    root = tmp_path_factory.mktemp("cli10k")
    return _write_pngs(gen, root / "gen"), _write_pngs(cifar_test_u8(), root / "ref")


def _run_cli(cmd: list[str], log: list) -> str:
    """Run one command line; record (wall s, CPU s of the child and its workers)."""
    import resource
    import subprocess

    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - w0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    log.append((wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)))
    return proc.stdout


@pytest.mark.skipif(os.environ.get("DGMBENCH_BENCH_CLI10K") != "1",
                    reason="set DGMBENCH_BENCH_CLI10K=1 (about 30 min per side on one CPU core)")
@pytest.mark.parametrize("impl", ["dgmbench", "torch-fidelity"])
def test_score_cli_10k_vs_fidelity(benchmark, impl, dgm_extractor, png_sets_10k):
    """Issue 9's end-to-end case: ``dgmbench score`` against torch-fidelity's ``fidelity`` command, both as
    command lines on the same PNG folders (10,000 samples, 1,000 reference images): process start, PNG
    decoding, two Inception passes, FID and KID (100 subsets of 1,000), no caches, batch ``BS``."""
    import json
    import sys

    gen, ref = png_sets_10k
    weights = str(dgm_extractor.weights_path)  # the same file on both sides
    if impl == "dgmbench":
        cmd = [sys.executable, "-m", "dgmbench", "score", "--samples", str(gen), "--dataset", f"folder:{ref}",
               "--metrics", "fid,kid", "--extractor", "inception", "--device", DEVICE, "--batch-size", str(BS),
               "--kid-subsets", "100", "--kid-subset-size", "1000", "--fid-bootstrap", "0", "--no-cache",
               "--no-progress", "--json", "--inception-weights", weights]
    else:
        cmd = [sys.executable, "-m", "torch_fidelity.fidelity", "--input1", str(gen), "--input2", str(ref), "--fid", "--kid",
               "--kid-subsets", "100", "--kid-subset-size", "1000", "-b", str(BS), "--no-cache", "--json",
               "--feature-extractor-weights-path", weights]
        cmd += ["--gpu", "0"] if DEVICE.startswith("cuda") else ["--cpu"]
    benchmark.group = f"command line end to end, 10,000 + 1,000 CIFAR PNGs, {DEVICE}"
    log: list = []
    out = benchmark.pedantic(lambda: _run_cli(cmd, log), rounds=1, iterations=1)
    if impl == "dgmbench":
        metrics = json.loads(out)["metrics"]
        fid, kid = metrics["fid"]["value"], metrics["kid"]["value"]
    else:
        res = json.loads(out[out.index("{"):])
        fid, kid = res["frechet_inception_distance"], res["kernel_inception_distance_mean"]
    benchmark.extra_info.update(impl=impl, images=11_000, device=DEVICE, fid=fid, kid=kid, command=" ".join(cmd),
                                images_per_s=11_000 / _medians(log)["wall_s"], **_medians(log))
    assert np.isfinite(fid) and fid > 0
