"""Feature-extractor interface shared by Inception, CLIP, the domain classifiers and raw pixels.

An extractor maps float images in [0, 1] (N, C, H, W) to named feature tensors, e.g.
``{"pool": (N, 2048), "logits": (N, 1008)}`` for Inception. Its ``sha256`` identifies the
weights (it is written into every Record and into the reference-statistics cache key), and
``resize`` names the resize mode applied before the network (e.g. 'tf-bilinear-299').
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class FeatureExtractor(Protocol):
    name: str
    sha256: str | None
    resize: str | None
    outputs: tuple[str, ...]  # names of the tensors ``extract`` returns

    def extract(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Images float [0, 1] (N, C, H, W) -> {output name: (N, d) float tensor} on CPU."""
        ...


class RawPixels:
    """Flattened pixels (or 2-D points) as features: ``{"raw": (N, D)}``; no weights."""

    name = "raw"
    sha256 = None
    resize = None
    outputs = ("raw",)

    def extract(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"raw": images.reshape(images.shape[0], -1).float().cpu()}
