"""Feature-extractor interface shared by Inception, CLIP, the domain classifiers and raw pixels.

An extractor maps float images in [0, 1] (N, C, H, W) to named feature tensors, e.g.
``{"pool": (N, 2048), "logits_unbiased": (N, 1008)}`` for Inception. Its ``sha256`` identifies the
weights (it is written into every Record and into the reference-statistics cache key), and
``resize`` names the resize mode applied before the network (e.g.
'torch-fidelity-bilinear-299').

``feature_output`` names the output that FID, KID and precision/recall/density/coverage
use; ``logits_output`` the class logits for Inception-Score-style metrics (None when the
extractor has none, or its weights lack them). ``extract(images, outputs=None)`` may be
asked for a subset of ``outputs`` to skip work.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class FeatureExtractor(Protocol):
    name: str
    sha256: str | None
    resize: str | None
    outputs: tuple[str, ...]  # names of the tensors ``extract`` returns
    feature_output: str  # the output FID/KID/PRDC use
    logits_output: str | None  # class logits (IS-style scores), or None

    def extract(self, images: torch.Tensor, outputs: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Images float [0, 1] (N, C, H, W) -> {output name: (N, d) float tensor} on CPU."""
        ...


class RawPixels:
    """Flattened pixels (or 2-D points) as features: ``{"raw": (N, D)}``; no weights."""

    name = "raw"
    sha256 = None
    resize = None
    outputs = ("raw",)
    feature_output = "raw"
    logits_output = None
    device = torch.device("cpu")

    def extract(self, images: torch.Tensor, outputs: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        return {"raw": images.reshape(images.shape[0], -1).float().cpu()}


def state_dict_sha256(module: torch.nn.Module) -> str:
    """Hex sha256 of a module's state dict (names, dtypes, shapes and bytes, in order).

    For extractors built in code rather than loaded from one file: two modules with equal
    weights give equal digests, any changed weight a different one.
    """
    h = hashlib.sha256()
    for key, t in module.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
