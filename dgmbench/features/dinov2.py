"""DINOv2 image embeddings (Oquab et al. 2023) for FD_DINOv2 (Stein et al. 2023), through torch-fidelity.

Names: ``dinov2-vit-s-14`` (384-d), ``dinov2-vit-b-14`` (768-d), ``dinov2-vit-l-14`` (1024-d,
the one Stein et al. recommend and EDM2 reports), ``dinov2-vit-g-14`` (1536-d): torch-fidelity
0.4's names. The output ``dinov2`` is the final-LayerNorm CLS token (``x_norm_clstoken``), what
``torch.hub.load('facebookresearch/dinov2', ...)`` returns and torch-fidelity uses.

Preprocessing is torch-fidelity's own ``FeatureExtractorDinoV2.forward``, run unchanged:
float images in [0, 1] are quantised to uint8 (``round(255 x)``, grayscale repeated), resized
to 224 x 224 with its TF1-compatible bilinear interpolation, normalised with the ImageNet
mean/std (times 255), then the network. The recorded resize mode is :data:`RESIZE`.

torch-fidelity builds the network with ``torch.hub.load`` (which fetches the dinov2 code from
GitHub and cannot load a local weights file); here its constructor is bypassed and its
``model`` is :class:`DinoV2ViT`, a re-implementation of the DINOv2 ViT whose parameter names
are those of the official checkpoints (``dinov2_vits14_pretrain.pth`` etc.), so those files
load strictly. Its forward is the reference one: patch embedding, CLS token, position
embeddings bicubically interpolated from the checkpoint's 37 x 37 grid with DINOv2's
``interpolate_offset`` 0.1 (scale factor (16 + 0.1) / 37, no antialias), pre-norm blocks
with LayerScale (LayerNorm eps 1e-6, GELU MLP, or SwiGLU for ViT-g), final LayerNorm.

Weights (the sha256 of the file loaded is ``extractor.sha256``, in every Record and cache key):

1. ``weights=PATH`` (CLI ``--weights``): an official DINOv2 checkpoint (a plain state dict);
2. the file in the torch hub checkpoint folder (where ``torch.hub``/torch-fidelity put it);
3. its download from :data:`URL` into that folder when downloads are allowed (not under
   ``DGMBENCH_OFFLINE=1`` / ``CI=true`` / ``allow_download=False``).

The architecture is read from the checkpoint's shapes (width, depth, patch size, grid, MLP
kind; heads = width / 64 as in every DINOv2 model) and must match the requested name unless
``check_arch=False`` (for other checkpoints of the same family, e.g. tiny test models).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError, WeightsMissingError
from .inception import download_file, downloads_allowed, file_sha256

RESIZE = "torch-fidelity-bilinear-224"
URL = "https://dl.fbaipublicfiles.com/dinov2/{arch}/{arch}_pretrain.pth"
HUB_ARCH = {"dinov2-vit-s-14": "dinov2_vits14", "dinov2-vit-b-14": "dinov2_vitb14",
            "dinov2-vit-l-14": "dinov2_vitl14", "dinov2-vit-g-14": "dinov2_vitg14"}
HEAD_DIM = 64
LN_EPS = 1e-6
INTERPOLATE_OFFSET = 0.1


@dataclass(frozen=True)
class VitArch:
    """Shape of a DINOv2 ViT: width, depth, heads, patch size, position grid, MLP kind and hidden size."""

    embed_dim: int
    depth: int
    num_heads: int
    patch_size: int = 14
    grid: int = 37  # 518 / 14: the pretraining resolution
    ffn: str = "mlp"  # "mlp" (GELU) or "swiglu"
    hidden: int = 0  # MLP hidden width (0: 4 x embed_dim, or DINOv2's SwiGLU rule)

    def hidden_dim(self) -> int:
        if self.hidden:
            return self.hidden
        h = 4 * self.embed_dim
        return (int(h * 2 / 3) + 7) // 8 * 8 if self.ffn == "swiglu" else h


ARCHS = {
    "dinov2-vit-s-14": VitArch(384, 12, 6),
    "dinov2-vit-b-14": VitArch(768, 12, 12),
    "dinov2-vit-l-14": VitArch(1024, 24, 16),
    "dinov2-vit-g-14": VitArch(1536, 40, 24, ffn="swiglu"),
}


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class _SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w12, self.w3 = nn.Linear(dim, 2 * hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(x1) * x2)


class _LayerScale(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class _Block(nn.Module):
    def __init__(self, arch: VitArch):
        super().__init__()
        d = arch.embed_dim
        self.norm1, self.norm2 = nn.LayerNorm(d, eps=LN_EPS), nn.LayerNorm(d, eps=LN_EPS)
        self.attn = _Attention(d, arch.num_heads)
        self.ls1, self.ls2 = _LayerScale(d), _LayerScale(d)
        self.mlp = (_SwiGLU if arch.ffn == "swiglu" else _Mlp)(d, arch.hidden_dim())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class _PatchEmbed(nn.Module):
    def __init__(self, arch: VitArch):
        super().__init__()
        self.proj = nn.Conv2d(3, arch.embed_dim, arch.patch_size, arch.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class DinoV2ViT(nn.Module):
    """DINOv2 ViT backbone; ``forward(x)`` -> the normalised CLS token (N, embed_dim)."""

    def __init__(self, arch: VitArch):
        super().__init__()
        self.arch = arch
        d = arch.embed_dim
        self.patch_size = arch.patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, arch.grid * arch.grid + 1, d))
        self.mask_token = nn.Parameter(torch.zeros(1, d))  # in the checkpoints; unused at inference
        self.patch_embed = _PatchEmbed(arch)
        self.blocks = nn.ModuleList(_Block(arch) for _ in range(arch.depth))
        self.norm = nn.LayerNorm(d, eps=LN_EPS)

    def interpolate_pos_encoding(self, n_patches: int, h: int, w: int, dtype: torch.dtype) -> torch.Tensor:
        """Position embeddings for an h x w input: the checkpoint's grid resized bicubically
        with scale factor (h / patch + 0.1) / grid (DINOv2's offset), no antialias."""
        pos = self.pos_embed
        n = pos.shape[1] - 1
        if n_patches == n and w == h:
            return pos
        pos = pos.float()
        m = self.arch.grid
        h0, w0 = h // self.patch_size, w // self.patch_size
        grid = pos[:, 1:].reshape(1, m, m, -1).permute(0, 3, 1, 2)
        scale = ((h0 + INTERPOLATE_OFFSET) / m, (w0 + INTERPOLATE_OFFSET) / m)
        grid = F.interpolate(grid, scale_factor=scale, mode="bicubic", antialias=False)
        if tuple(grid.shape[-2:]) != (h0, w0):
            raise ValueError(f"position-embedding interpolation gave {tuple(grid.shape[-2:])}, expected {(h0, w0)}")
        grid = grid.permute(0, 2, 3, 1).reshape(1, h0 * w0, -1)
        return torch.cat([pos[:, :1], grid], dim=1).to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        t = self.patch_embed(x)
        t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], dim=1)
        t = t + self.interpolate_pos_encoding(t.shape[1] - 1, h, w, t.dtype)
        for blk in self.blocks:
            t = blk(t)
        return self.norm(t)[:, 0]


def arch_from_state_dict(sd: dict[str, torch.Tensor]) -> VitArch:
    """The :class:`VitArch` of a DINOv2 checkpoint, read from its tensor shapes."""
    try:
        d = int(sd["cls_token"].shape[-1])
        patch = int(sd["patch_embed.proj.weight"].shape[-1])
        n_pos = int(sd["pos_embed"].shape[1]) - 1
    except (KeyError, IndexError) as e:
        raise ValueError(f"not a DINOv2 ViT state dict (missing {e})") from None
    grid = round(n_pos**0.5)
    if grid * grid != n_pos:
        raise ValueError(f"pos_embed holds {n_pos} patch positions, not a square grid")
    depth = 1 + max((int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k))), default=-1)
    if depth < 1:
        raise ValueError("no transformer blocks ('blocks.N.*') in the state dict")
    if any(k.startswith("register_tokens") for k in sd):
        raise ValueError("register-token DINOv2 models (dinov2_*_reg) are not supported")
    if "blocks.0.mlp.w12.weight" in sd:
        ffn, hidden = "swiglu", int(sd["blocks.0.mlp.w12.weight"].shape[0]) // 2
    else:
        ffn, hidden = "mlp", int(sd["blocks.0.mlp.fc1.weight"].shape[0])
    if d % HEAD_DIM:
        raise ValueError(f"width {d} is not a multiple of DINOv2's head size {HEAD_DIM}")
    return VitArch(d, depth, d // HEAD_DIM, patch, grid, ffn, hidden)


def hub_weights_path(name: str) -> Path:
    """Where torch.hub (and so torch-fidelity) keeps the official checkpoint of ``name``."""
    arch = HUB_ARCH[name]
    return Path(torch.hub.get_dir()) / "checkpoints" / f"{arch}_pretrain.pth"


def resolve_weights(name: str, weights: str | os.PathLike | None = None, *,
                    allow_download: bool | None = None) -> tuple[Path, str]:
    """(checkpoint path, origin: 'user' | 'torch-hub' | 'download')."""
    if weights is not None:
        p = Path(weights).expanduser()
        if not p.is_file():
            raise WeightsMissingError(f"DINOv2 weights file '{weights}' does not exist; check --weights")
        return p, "user"
    hub = hub_weights_path(name)
    if hub.is_file():
        return hub, "torch-hub"
    url = URL.format(arch=HUB_ARCH[name])
    allow = downloads_allowed() if allow_download is None else allow_download
    if allow and download_file(url, hub) is not None:
        return hub, "download"
    raise WeightsMissingError(
        f"no {name} weights: pass --weights PATH (the official {HUB_ARCH[name]}_pretrain.pth from {url}) "
        f"or place that file at {hub}" + ("" if allow else " (downloads are disabled: DGMBENCH_OFFLINE or CI)")
    )


def load_vit(path: Path, name: str, *, check_arch: bool = True) -> DinoV2ViT:
    """:class:`DinoV2ViT` with the checkpoint at ``path`` loaded strictly."""
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(sd, dict):
            raise ValueError(f"expected a state dict, got {type(sd).__name__}")
        arch = arch_from_state_dict(sd)
    except Exception as e:  # noqa: BLE001 - any unreadable file is a missing-weights error
        raise WeightsMissingError(f"'{path}' is not a DINOv2 ViT checkpoint ({type(e).__name__}: {e})") from None
    want = ARCHS[name]
    if check_arch and (arch.embed_dim, arch.depth, arch.patch_size, arch.ffn) != (
            want.embed_dim, want.depth, want.patch_size, want.ffn):
        raise WeightsMissingError(
            f"'{path}' holds a ViT of width {arch.embed_dim}, depth {arch.depth}, patch {arch.patch_size} "
            f"({arch.ffn}), not {name} (width {want.embed_dim}, depth {want.depth}); pass that model's checkpoint"
        )
    sd = dict(sd)
    sd.setdefault("mask_token", torch.zeros(1, arch.embed_dim))
    net = DinoV2ViT(arch)
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0] + " " + " ".join(str(e).split()[1:12])
        raise WeightsMissingError(f"'{path}' does not load into {name}: {first}") from None
    return net.float().requires_grad_(False).eval()


def torch_fidelity_extractor(name: str, model: nn.Module):
    """torch-fidelity's ``FeatureExtractorDinoV2`` with ``model`` as its network (its forward unchanged).

    Its constructor would ``torch.hub.load`` the network from GitHub; here the base class
    is initialised and ``model``, ``feature_extractor_internal_dtype`` (float32) set as it sets them.
    """
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase
    from torch_fidelity.feature_extractor_dinov2 import FeatureExtractorDinoV2

    class _WithModel(FeatureExtractorDinoV2):
        def __init__(self):
            FeatureExtractorBase.__init__(self, name, ["dinov2"])
            self.feature_extractor_internal_dtype = torch.float32
            self.model = model
            self.to(torch.float32)
            self.requires_grad_(False)
            self.eval()

    return _WithModel()


class DinoV2Extractor:
    """DINOv2 ViT-{S,B,L,g}/14 CLS embeddings as a FeatureExtractor: ``{"dinov2": (N, d)}``."""

    outputs = ("dinov2",)
    feature_output = "dinov2"
    logits_output = None
    resize = RESIZE

    def __init__(self, name: str = "dinov2-vit-l-14", weights: str | os.PathLike | None = None, *,
                 device: str | torch.device = "cpu", allow_download: bool | None = None, check_arch: bool = True):
        if name not in ARCHS:
            from ..errors import suggest

            raise UsageError(suggest(name, ARCHS, "DINOv2 model"))
        self.name = name
        path, origin = resolve_weights(name, weights, allow_download=allow_download)
        self.weights_path, self.weights_origin = path, origin
        self.sha256 = file_sha256(path)
        self.vit = load_vit(path, name, check_arch=check_arch)
        self.net = torch_fidelity_extractor(name, self.vit)
        self.device = torch.device(device)
        self.net.to(self.device)
        self.dim = self.vit.arch.embed_dim
        self.config_id = "fp32"

    def extract(self, images: torch.Tensor, outputs: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        from .inception import InceptionExtractor

        outs = list(self.outputs if outputs is None else outputs)
        if any(o != "dinov2" for o in outs):
            raise UsageError(f"{self.name} has no output(s) {[o for o in outs if o != 'dinov2']}; it provides ['dinov2']")
        x = InceptionExtractor.to_uint8_rgb(images.to(self.device))
        with torch.inference_mode():
            (feats,) = self.net(x)
        return {"dinov2": feats.float().cpu()}

    def __repr__(self) -> str:
        return f"DinoV2Extractor({self.name}, origin={self.weights_origin}, sha256={self.sha256[:12]})"


__all__ = ["ARCHS", "DinoV2Extractor", "DinoV2ViT", "RESIZE", "VitArch", "arch_from_state_dict", "load_vit",
           "resolve_weights", "torch_fidelity_extractor"]
