"""What a metric adapter sees: :class:`MetricContext`, built by the evaluator's ``compute``.

An adapter ``(ctx) -> list[MetricValue]`` reads the collections its registry entry asked
for (``needs``) and the options; it never samples a model or reads a dataset itself,
except through ``ctx.reference`` (cached reference features) and ``ctx.model`` (NLL, speed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..data.base import DataSplit
from ..options import EvalOptions


def provenance(ext: Any) -> dict[str, Any]:
    """The MetricValue fields naming a feature extractor: name, weights' sha256, resize mode."""
    return {"extractor": getattr(ext, "name", None), "extractor_sha256": getattr(ext, "sha256", None),
            "resize": getattr(ext, "resize", None)}


@dataclass
class MetricContext:
    """The evaluator's state at ``compute`` time.

    ``features``: the main extractor's kept per-sample outputs by output name (e.g. "2048",
    "logits_unbiased"); ``stats``: their float64 streaming statistics; ``raw``: the samples
    ((N, D) points, or images (N, C, H, W)); ``labels``: class labels or None;
    ``reference``: a :class:`dgmbench.reference.ReferenceSet`; ``n`` / ``n_ref``: counts.
    """

    options: EvalOptions
    data: DataSplit
    reference: Any
    n: int
    n_ref: int
    seed: int
    device: torch.device
    batch_size: int
    is_image: bool
    extractor: Any = None
    clip: Any = None
    features: dict[str, torch.Tensor] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    clip_embeddings: torch.Tensor | None = None
    raw: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    model: Any = None
    progress: bool = False
    data_dir: str | None = None
    keep_reference_features: bool = False  # some requested group needs the reference's per-item features
    _main_ref: Any = None

    def prov(self, ext: Any = None) -> dict[str, Any]:
        return provenance(self.extractor if ext is None else ext)

    def main_reference(self) -> Any:
        """The reference's cached features/statistics for the main extractor (once per compute)."""
        if self._main_ref is None:
            self._main_ref = self.reference.features(self.extractor, [self.extractor.feature_output],
                                                     keep_features=self.keep_reference_features)
        return self._main_ref
