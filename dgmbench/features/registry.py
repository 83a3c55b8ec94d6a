"""Extractor registry and the single feature pass.

- :func:`get_extractor` builds an extractor by name: ``inception`` (torch-fidelity's
  Inception-v3, FID features 'pool' and, with the full weights, IS 'logits_unbiased'), ``clip``
  (open_clip image embeddings), ``classifier-digits`` / ``classifier-mnist`` (dgmbench's
  small domain classifiers, 'features' and 'logits'), ``raw`` (flattened pixels/points).
- :func:`default_extractor` says which extractor a dataset's metrics use by default.
- :func:`extract_features` / :func:`feature_pass` run ONE pass over the images (a tensor,
  a DataSplit or an iterable of batches) for every extractor and output the metrics need,
  optionally accumulating float64 :class:`StreamingStats` on the way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.base import DataSplit
from ..devices import resolve_device
from ..errors import DataError, UsageError, suggest
from ..validation import as_image_tensor, check_points
from .base import FeatureExtractor, RawPixels
from .stats import StreamingStats

ASSETS = Path(__file__).resolve().parent.parent / "assets"

EXTRACTORS = {
    "inception": "torch-fidelity Inception-v3 (FID network): 'pool' 2048-d, 'logits_unbiased' 1008-d with full weights",
    "clip": "open_clip image encoder: 'clip' L2-normalised embeddings (model_name=, pretrained=)",
    "classifier-digits": "dgmbench CNN trained on the 8x8 digits: 'features' (penultimate) and 'logits'",
    "classifier-mnist": "dgmbench CNN trained on MNIST: 'features' (penultimate) and 'logits'",
    "raw": "flattened pixels or 2-D points: 'raw'",
}

Key = tuple[str, str]  # (extractor name, output name)


def classifier_weights_path(dataset: str) -> Path:
    """Where dgmbench's committed classifier for ``dataset`` lives (may not exist)."""
    return ASSETS / f"classifier-{dataset}.pt"


def get_extractor(name: str | FeatureExtractor, *, device: str | torch.device = "auto", **kw) -> FeatureExtractor:
    """Build an extractor by name (an extractor instance is returned unchanged).

    Keyword arguments go to the extractor: ``weights=`` (Inception weights file),
    ``model_name=``/``pretrained=`` (CLIP), ``weights=`` (classifier file).
    """
    if not isinstance(name, str):
        return name
    dev = resolve_device(device)
    if name == "raw":
        return RawPixels()
    if name == "inception":
        from .inception import InceptionExtractor

        return InceptionExtractor(device=dev, **kw)
    if name == "clip":
        from .clip import ClipExtractor

        return ClipExtractor(device=dev, **kw)
    if name.startswith("classifier-"):
        from .classifier import ClassifierExtractor

        return ClassifierExtractor(name[len("classifier-"):], device=dev, **kw)
    raise UsageError(suggest(name, EXTRACTORS, "feature extractor"))


def default_extractor(dataset_name: str) -> str:
    """Name of the extractor a dataset is scored with by default.

    Digits/MNIST/Fashion-MNIST use dgmbench's domain classifier when its weights exist
    (as papers do for MNIST), 2-D toy data use raw points, anything else Inception.
    """
    from ..data.registry import DATASETS

    info = DATASETS.get(dataset_name)
    if info is not None and info.kind == "points":
        return "raw"
    if dataset_name in ("digits", "mnist", "fashion-mnist") and classifier_weights_path(dataset_name).exists():
        return f"classifier-{dataset_name}"
    return "inception"


# -- the feature pass -------------------------------------------------------------------


@dataclass
class FeaturePass:
    """What one pass produced: kept features, accumulated stats, and the item count."""

    features: dict[Key, torch.Tensor] = field(default_factory=dict)
    stats: dict[Key, StreamingStats] = field(default_factory=dict)
    n: int = 0


def _normalise_request(extractors) -> list[tuple[FeatureExtractor, list[str]]]:
    """Accept an extractor, a name, a sequence of those, or {extractor|name: outputs}."""
    if isinstance(extractors, Mapping):
        items = list(extractors.items())
    else:
        if isinstance(extractors, (str, FeatureExtractor)) or not isinstance(extractors, Iterable):
            extractors = [extractors]
        items = [(e, None) for e in extractors]
    out: list[tuple[FeatureExtractor, list[str]]] = []
    seen: set[str] = set()
    for ext, outs in items:
        ext = get_extractor(ext) if isinstance(ext, str) else ext
        if ext.name in seen:
            raise UsageError(f"extractor '{ext.name}' was given twice; pass it once with all its outputs")
        seen.add(ext.name)
        outs = list(ext.outputs) if outs is None else [outs] if isinstance(outs, str) else list(outs)
        if not outs:
            continue
        out.append((ext, outs))
    if not out:
        raise UsageError("extract_features: no extractor outputs were requested")
    return out


def _batches(images, batch_size: int, limit: int | None) -> tuple[Iterator[torch.Tensor], int | None]:
    """Split a tensor/array/DataSplit, or re-chunk an iterable of batches, to <= batch_size."""
    if isinstance(images, DataSplit):
        images = images.data
    if isinstance(images, (torch.Tensor, np.ndarray)):
        t = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(images))
        total = int(t.shape[0]) if limit is None else min(int(t.shape[0]), limit)

        def gen_tensor():
            for i in range(0, total, batch_size):
                yield t[i : min(i + batch_size, total)]

        return gen_tensor(), total

    def gen_iter():
        seen = 0
        for b in images:
            if isinstance(b, (tuple, list)):
                b = b[0]  # (images, labels) batches from a DataLoader
            if not isinstance(b, torch.Tensor):
                b = torch.as_tensor(np.asarray(b))
            for i in range(0, int(b.shape[0]), batch_size):
                chunk = b[i : i + batch_size]
                if limit is not None:
                    chunk = chunk[: max(limit - seen, 0)]
                if chunk.shape[0] == 0:
                    return
                seen += int(chunk.shape[0])
                yield chunk
            if limit is not None and seen >= limit:
                return

    return gen_iter(), limit


def feature_pass(
    extractors,
    images_or_batches,
    *,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    progress: bool = False,
    keep: Iterable[Key] | None = None,
    stats: Iterable[Key] | None = None,
    n: int | None = None,
    desc: str = "features",
) -> FeaturePass:
    """One pass over the images for every requested extractor output.

    ``keep`` lists the (extractor, output) keys whose features are returned (default: all
    requested); ``stats`` the keys for which float64 :class:`StreamingStats` are
    accumulated batch by batch (their features need not be kept, so memory stays
    O(d^2)). ``n`` caps how many items are read. Images must be float in [0, 1] (or
    uint8) of shape (N, C, H, W); 2-D points (N, D) are accepted when only ``raw`` is
    requested. ``device`` moves each batch once before the extractors see it (default:
    the first extractor's device).
    """
    if batch_size < 1:
        raise UsageError(f"batch_size must be >= 1, got {batch_size}")
    request = _normalise_request(extractors)
    all_keys = [(e.name, o) for e, outs in request for o in outs]
    for ext, outs in request:
        check = getattr(ext, "check_outputs", None)
        if check is not None:
            check(outs)  # e.g. Inception logits without the classifier weights -> WeightsMissingError
        bad = [o for o in outs if o not in ext.outputs]
        if bad:
            raise UsageError(f"extractor '{ext.name}' has no output(s) {bad}; it provides {list(ext.outputs)}")
    keep_set = set(all_keys) if keep is None else set(keep)
    stats_set = set() if stats is None else set(stats)
    unknown = (keep_set | stats_set) - set(all_keys)
    if unknown:
        raise UsageError(f"keep/stats name outputs that were not requested: {sorted(unknown)}")
    points_ok = all(e.name == "raw" for e, _ in request)
    dev = torch.device(device) if device is not None else getattr(request[0][0], "device", torch.device("cpu"))

    it, total = _batches(images_or_batches, batch_size, n)
    pbar = None
    if progress:
        from tqdm.auto import tqdm

        pbar = tqdm(total=total, desc=desc, unit="img", leave=False)
    chunks: dict[Key, list[torch.Tensor]] = {k: [] for k in keep_set}
    accum: dict[Key, StreamingStats] = {}
    count = 0
    try:
        for b in it:
            if b.ndim == 2 and points_ok:
                b = check_points(b, name="samples", dim=int(b.shape[1]))
            else:
                b = as_image_tensor(b, name="samples")
            b = b.to(dev, non_blocking=True)
            for ext, outs in request:
                res = ext.extract(b, outputs=outs)
                for o in outs:
                    key = (ext.name, o)
                    f = res[o]
                    if key in chunks:
                        chunks[key].append(f.detach().float().cpu())
                    if key in stats_set:
                        if key not in accum:
                            accum[key] = StreamingStats(int(f.shape[1]))
                        accum[key].update(f.detach())
            count += int(b.shape[0])
            if pbar is not None:
                pbar.update(int(b.shape[0]))
    finally:
        if pbar is not None:
            pbar.close()
    if count == 0:
        raise DataError("extract_features: the input holds no images")
    out = FeaturePass(n=count)
    for k in all_keys:
        if k in chunks:
            out.features[k] = torch.cat(chunks[k], 0)
        if k in accum:
            out.stats[k] = accum[k]
    return out


def extract_features(
    extractors,
    images_or_batches,
    *,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    progress: bool = False,
    n: int | None = None,
) -> dict[Key, torch.Tensor]:
    """``{(extractor name, output): (N, d) float32 CPU tensor}`` from one pass (see :func:`feature_pass`)."""
    return feature_pass(
        extractors, images_or_batches, batch_size=batch_size, device=device, progress=progress, n=n
    ).features


def extractor_info(ext: FeatureExtractor) -> dict[str, Any]:
    """Provenance written into Records: name, weights sha256, resize mode, outputs."""
    return {
        "extractor": ext.name,
        "extractor_sha256": getattr(ext, "sha256", None),
        "resize": getattr(ext, "resize", None),
        "outputs": list(ext.outputs),
    }


def available_extractors() -> dict[str, str]:
    return dict(EXTRACTORS)


__all__ = [
    "EXTRACTORS", "FeaturePass", "Key", "available_extractors", "classifier_weights_path", "default_extractor",
    "extract_features", "extractor_info", "feature_pass", "get_extractor",
]
