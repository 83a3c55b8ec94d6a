"""DINOv2 extractor: tiny ViTs with random weights saved to a temporary file and loaded through the real
path (``weights=``), compared with torch-fidelity's own ``FeatureExtractorDinoV2`` object (its real
constructor and forward, with ``torch.hub.load`` answered by an independent network: timm's
VisionTransformer carrying the same weights). Nothing is downloaded (DGMBENCH_OFFLINE=1, empty TORCH_HOME).
"""

from __future__ import annotations

import hashlib
import socket
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dgmbench.errors import UsageError, WeightsMissingError
from dgmbench.features.dinov2 import ARCHS, DinoV2ViT, VitArch

timm = pytest.importorskip("timm")

GRID = 4  # the tiny checkpoints' position grid (56 px / 14); 224 px inputs need 16 x 16: interpolated


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """No test here may reach the network: offline mode, an empty torch hub folder, and every
    download path (urllib, torch hub) failing the test if it is called."""
    import urllib.request

    monkeypatch.setenv("DGMBENCH_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def no_network(*a, **k):
        pytest.fail(f"a test tried to download: {a[:1]}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    # and below every library (requests, http.client, a urlopen imported by name): no outgoing connection
    # except to this machine
    local = ("127.0.0.1", "::1", "localhost")

    def local_only(real):
        def guarded(sock, address, *a, **k):
            host = address[0] if isinstance(address, tuple) else address
            if isinstance(host, str) and host not in local and not host.startswith("/"):
                pytest.fail(f"a test tried to connect to {host}")
            return real(sock, address, *a, **k)
        return guarded

    def resolve_local_only(real):
        def guarded(host, *a, **k):  # a name lookup is already a network request (DNS)
            if host not in (None, *local) and not (isinstance(host, bytes) and host.decode() in local):
                pytest.fail(f"a test tried to resolve {host!r}")
            return real(host, *a, **k)
        return guarded

    monkeypatch.setattr(socket.socket, "connect", local_only(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", local_only(socket.socket.connect_ex))
    monkeypatch.setattr(socket, "getaddrinfo", resolve_local_only(socket.getaddrinfo))


def _tiny_checkpoint(path, ffn: str, seed: int = 0):
    """An official-layout DINOv2 state dict (width 64, 2 blocks, 1 head of 64) with random weights."""
    torch.manual_seed(seed)
    net = DinoV2ViT(VitArch(64, 2, 1, 14, GRID, ffn))
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))
    torch.save(net.state_dict(), path)
    return net.state_dict()


def _timm_reference(sd: dict[str, torch.Tensor], ffn: str) -> nn.Module:
    """timm's VisionTransformer with the checkpoint's weights at 224 px: position embeddings resized to
    16 x 16 with DINOv2's rule (bicubic, scale factor (16 + 0.1) / grid, no antialias), written out here."""
    from timm.layers import SwiGLUPacked
    from timm.models.vision_transformer import VisionTransformer

    mlp = dict(mlp_layer=SwiGLUPacked, act_layer=nn.SiLU, mlp_ratio=2 * 176 / 64) if ffn == "swiglu" else {}
    ref = VisionTransformer(img_size=224, patch_size=14, embed_dim=64, depth=2, num_heads=1, init_values=1.0,
                            num_classes=0, global_pool="token", qkv_bias=True,
                            norm_layer=partial(nn.LayerNorm, eps=1e-6), **mlp)
    sd = {k.replace("mlp.w12", "mlp.fc1").replace("mlp.w3", "mlp.fc2"): v for k, v in sd.items() if k != "mask_token"}
    pos = sd["pos_embed"]
    grid = pos[:, 1:].reshape(1, GRID, GRID, 64).permute(0, 3, 1, 2)
    s = (16 + 0.1) / GRID
    grid = F.interpolate(grid, scale_factor=(s, s), mode="bicubic", antialias=False)
    sd["pos_embed"] = torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, 256, 64)], 1)
    ref.load_state_dict(sd, strict=True)
    return ref.eval()


def _torch_fidelity_own(monkeypatch, model: nn.Module):
    """torch-fidelity's FeatureExtractorDinoV2 built by its own constructor; torch.hub.load returns ``model``."""
    from torch_fidelity.feature_extractor_dinov2 import FeatureExtractorDinoV2

    calls = []

    def fake_hub_load(repo, name, *a, **k):
        calls.append((repo, name))
        return model

    monkeypatch.setattr(torch.hub, "load", fake_hub_load)
    fe = FeatureExtractorDinoV2("dinov2-vit-s-14", ["dinov2"])
    assert calls == [("facebookresearch/dinov2", "dinov2_vits14")]
    return fe


@pytest.mark.parametrize("ffn", ["mlp", "swiglu"])
def test_features_equal_torch_fidelity_own_extractor(tmp_path, monkeypatch, ffn):
    from dgmbench.features.registry import get_extractor

    path = tmp_path / f"tiny-{ffn}.pth"
    sd = _tiny_checkpoint(path, ffn)
    ext = get_extractor("dinov2-vit-s-14", device="cpu", weights=path, check_arch=False)
    assert ext.name == "dinov2-vit-s-14" and ext.outputs == ("dinov2",) and ext.feature_output == "dinov2"
    assert ext.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and ext.weights_origin == "user"
    assert ext.resize == "torch-fidelity-bilinear-224" and ext.logits_output is None
    imgs = torch.rand(4, 3, 40, 52, generator=torch.Generator().manual_seed(1))  # non-square: the resize matters
    got = ext.extract(imgs)["dinov2"]
    assert got.shape == (4, 64) and got.dtype == torch.float32
    fe = _torch_fidelity_own(monkeypatch, _timm_reference(sd, ffn))
    with torch.no_grad():
        (want,) = fe((imgs * 255).round().to(torch.uint8))
    assert float(want.std()) > 0.1  # a non-trivial embedding
    torch.testing.assert_close(got, want, rtol=0, atol=2e-5)
    # batch independence and grayscale repetition
    torch.testing.assert_close(torch.cat([ext.extract(imgs[:1])["dinov2"], ext.extract(imgs[1:])["dinov2"]]), got,
                               rtol=0, atol=1e-5)
    gray = imgs[:2].mean(1, keepdim=True)
    torch.testing.assert_close(ext.extract(gray)["dinov2"], ext.extract(gray.expand(-1, 3, -1, -1))["dinov2"])


def test_weights_resolution_and_checks(tmp_path, monkeypatch):
    from dgmbench.features import dinov2 as dv

    with pytest.raises(WeightsMissingError, match="no dinov2-vit-l-14 weights.*dinov2_vitl14_pretrain.pth.*disabled"):
        dv.DinoV2Extractor("dinov2-vit-l-14")
    with pytest.raises(WeightsMissingError, match="does not exist"):
        dv.DinoV2Extractor("dinov2-vit-s-14", weights=tmp_path / "nope.pth")
    path = tmp_path / "tiny.pth"
    _tiny_checkpoint(path, "mlp")
    with pytest.raises(WeightsMissingError, match="width 64, depth 2.*not dinov2-vit-s-14 \\(width 384, depth 12\\)"):
        dv.DinoV2Extractor("dinov2-vit-s-14", weights=path)
    # the torch hub checkpoint folder (where torch-fidelity's download lands) is found without weights=
    hub = dv.hub_weights_path("dinov2-vit-b-14")
    assert hub.name == "dinov2_vitb14_pretrain.pth" and str(hub).startswith(str(tmp_path / "torch"))
    hub.parent.mkdir(parents=True)
    hub.write_bytes(path.read_bytes())
    ext = dv.DinoV2Extractor("dinov2-vit-b-14", check_arch=False)
    assert ext.weights_origin == "torch-hub" and ext.weights_path == hub
    # never a download while offline
    monkeypatch.setattr(dv, "download_file", lambda *a, **k: pytest.fail("download attempted offline"))
    with pytest.raises(WeightsMissingError):
        dv.resolve_weights("dinov2-vit-g-14")
    bad = tmp_path / "bad.pth"
    torch.save({"foo": torch.zeros(3)}, bad)
    with pytest.raises(WeightsMissingError, match="not a DINOv2 ViT checkpoint"):
        dv.DinoV2Extractor("dinov2-vit-s-14", weights=bad)
    with pytest.raises(UsageError, match="dinov2-vit-s-14"):
        dv.DinoV2Extractor("dinov2-vit-s-16", weights=path)


def test_standard_architectures_match_checkpoint_shapes():
    """The four named models have the official widths/depths (and ViT-g its SwiGLU hidden size 4096)."""
    dims = {n: (a.embed_dim, a.depth, a.num_heads, a.ffn, a.hidden_dim()) for n, a in ARCHS.items()}
    assert dims == {"dinov2-vit-s-14": (384, 12, 6, "mlp", 1536), "dinov2-vit-b-14": (768, 12, 12, "mlp", 3072),
                    "dinov2-vit-l-14": (1024, 24, 16, "mlp", 4096), "dinov2-vit-g-14": (1536, 40, 24, "swiglu", 4096)}
    net = DinoV2ViT(ARCHS["dinov2-vit-s-14"])
    sd = net.state_dict()
    assert sd["pos_embed"].shape == (1, 1370, 384) and sd["mask_token"].shape == (1, 384)
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(22.06e6, rel=0.01)  # ViT-S/14: 22.1 M
