"""DINOv2-S/14 features: dgmbench's extractor vs torch-fidelity's own ``FeatureExtractorDinoV2``, same images.

Run (CPU; random weights are enough for throughput, nothing is downloaded)::

    OMP_NUM_THREADS=1 DGMBENCH_BENCH_DINOV2_REPO=/path/to/dinov2-checkout \
        .venv/bin/pytest benchmarks/bench_dinov2.py --benchmark-only \
        --benchmark-group-by=group --benchmark-columns=min,median,max,rounds

Both sides run the same ViT-S/14 weights (random, seeded; saved once to a temporary
``dinov2_vits14``-layout file that dgmbench loads through ``weights=``) on the same uint8
CIFAR-10 test images (offline folder), both resized to 224 x 224 by torch-fidelity's forward.

- dgmbench: ``DinoV2Extractor`` through ``feature_pass`` (float [0, 1] input, as ``score`` feeds it).
- torch-fidelity: its ``FeatureExtractorDinoV2`` built by its own constructor, through its own
  ``get_featuresdict_from_dataset`` loop. Its constructor calls ``torch.hub.load('facebookresearch/dinov2',
  'dinov2_vits14')``, which needs GitHub; that call is answered with the official network code from a
  local checkout of facebookresearch/dinov2 (``DGMBENCH_BENCH_DINOV2_REPO``, loaded with
  ``source='local', pretrained=False``) carrying the same weights, or, without a checkout, with timm's
  VisionTransformer (the reference the tests use). ``extra_info['reference_network']`` says which.

Each case records images/s and the median wall and process-CPU seconds; the features of the two
sides are checked to agree (atol 1e-4). ``DGMBENCH_BENCH_N`` images (default 64),
``DGMBENCH_BENCH_BS`` batch size (default 32), ``DGMBENCH_BENCH_ROUNDS`` (default 3),
``DGMBENCH_BENCH_DEVICE`` (default cuda when available, else cpu).
"""

from __future__ import annotations

import os
import time
from functools import partial

import numpy as np
import pytest
import torch
from bench_inputs import U8Dataset, cifar_test_u8, device_name, sync

os.environ.setdefault("DGMBENCH_OFFLINE", "1")
os.environ.setdefault("XFORMERS_DISABLED", "1")

N = int(os.environ.get("DGMBENCH_BENCH_N", "64"))
BS = int(os.environ.get("DGMBENCH_BENCH_BS", "32"))
ROUNDS = int(os.environ.get("DGMBENCH_BENCH_ROUNDS", "3"))
DEVICE = os.environ.get("DGMBENCH_BENCH_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
REPO = os.environ.get("DGMBENCH_BENCH_DINOV2_REPO")




@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A ViT-S/14 state dict in the official layout with seeded random weights, saved to a file."""
    from dgmbench.features.dinov2 import ARCHS, DinoV2ViT

    torch.manual_seed(0)
    net = DinoV2ViT(ARCHS["dinov2-vit-s-14"])
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(1 + 0.05 * torch.randn_like(p) if "norm" in name and name.endswith("weight")
                    else 0.02 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("dinov2") / "dinov2_vits14_pretrain.pth"
    torch.save(net.state_dict(), path)
    return path, net.state_dict()


def _reference_network(sd):
    """(network with the same weights, its description): the official dinov2 code, or timm's ViT."""
    if REPO:
        net = torch.hub.load(REPO, "dinov2_vits14", source="local", pretrained=False)
        net.load_state_dict(sd, strict=True)
        return net.eval(), "facebookresearch/dinov2 (local checkout)"
    import torch.nn.functional as F
    from timm.models.vision_transformer import VisionTransformer

    ref = VisionTransformer(img_size=224, patch_size=14, embed_dim=384, depth=12, num_heads=6, init_values=1.0,
                            num_classes=0, global_pool="token", norm_layer=partial(torch.nn.LayerNorm, eps=1e-6))
    sd = {k: v for k, v in sd.items() if k != "mask_token"}
    pos = sd["pos_embed"]
    grid = pos[:, 1:].reshape(1, 37, 37, 384).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, scale_factor=((16 + 0.1) / 37,) * 2, mode="bicubic", antialias=False)
    sd["pos_embed"] = torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, 256, 384)], 1)
    ref.load_state_dict(sd, strict=True)
    return ref.eval(), "timm VisionTransformer"


@pytest.fixture(scope="module")
def extractors(weights):
    from torch_fidelity.feature_extractor_dinov2 import FeatureExtractorDinoV2

    from dgmbench.features.dinov2 import DinoV2Extractor

    path, sd = weights
    dgm = DinoV2Extractor("dinov2-vit-s-14", weights=path, device=DEVICE)
    net, desc = _reference_network(sd)
    real_load = torch.hub.load
    torch.hub.load = lambda *a, **k: net  # torch-fidelity's constructor asks GitHub for the network
    try:
        tf = FeatureExtractorDinoV2("dinov2-vit-s-14", ["dinov2"])
    finally:
        torch.hub.load = real_load
    return dgm, tf.to(DEVICE), desc


def _dgm(ext, u8):
    from dgmbench.features.registry import feature_pass

    fp = feature_pass({ext: ["dinov2"]}, u8.float() / 255.0, batch_size=BS, device=DEVICE)
    sync(DEVICE)
    return fp.features[("dinov2-vit-s-14", "dinov2")]


def _tf(ext, u8):
    from torch_fidelity.utils import get_featuresdict_from_dataset

    out = get_featuresdict_from_dataset(U8Dataset(u8), ext, batch_size=BS, cuda=DEVICE.startswith("cuda"),
                                        save_cpu_ram=False, verbose=False)
    sync(DEVICE)
    return out["dinov2"]


@pytest.mark.parametrize("impl", ["dgmbench", "torch-fidelity"])
def test_dinov2_features(benchmark, impl, extractors):
    dgm, tf, desc = extractors
    data = cifar_test_u8()
    u8 = data[torch.arange(N) % len(data)].clone()
    benchmark.group = f"DINOv2-S/14 features, {N} CIFAR images 32x32 -> 224, batch {BS}, {DEVICE}"
    fn = (lambda: _dgm(dgm, u8)) if impl == "dgmbench" else (lambda: _tf(tf, u8))
    log: list = []

    def run():
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        log.append((time.perf_counter() - w0, time.process_time() - c0))
        return out

    feats = benchmark.pedantic(run, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert feats.shape == (N, 384)
    other = _tf(tf, u8[:8]) if impl == "dgmbench" else _dgm(dgm, u8[:8])
    torch.testing.assert_close(feats[:8].cpu(), other.cpu(), rtol=0, atol=1e-4)
    wall = float(np.median([w for w, _ in log]))
    benchmark.extra_info.update(impl=impl, images=N, batch_size=BS, device=DEVICE, device_name=device_name(DEVICE),
                                reference_network=desc, threads=torch.get_num_threads(), images_per_s=N / wall,
                                wall_s=wall, cpu_s=float(np.median([c for _, c in log])),
                                max_abs_diff=float((feats[:8].cpu() - other.cpu()).abs().max()))
