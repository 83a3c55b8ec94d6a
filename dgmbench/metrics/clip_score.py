"""CLIP alignment: CLIP score of generated images against their class prompts, and CLIP-space FD.

CLIP score (Hessel et al. 2021; the torchmetrics convention) per image-prompt pair is
``100 * w * max(cos(E_img, E_txt), 0)`` with w = 1 by default (``w = 2.5`` gives the
paper's CLIP-S scaling); the value is the mean over generated images, with its standard
error and a normal 95% interval. Prompts are built from class names: "a handwritten digit
{name}" for digit datasets, "a photo of a {name}" otherwise (or a given template). A
class-conditional model is sampled with known labels, and each image is scored against
its own label's prompt.

The Frechet distance in CLIP space (``clip_fd``) is the Frechet distance of
:mod:`dgmbench.metrics.fid` on the CLIP image embeddings of the generated and the reference
set.

Embeddings come from an extractor with ``extract(images) -> {"clip": (N, d)}`` and
``encode_text(list[str]) -> (T, d)`` (dgmbench.features.clip.ClipExtractor); they are
L2-normalised here again, so unnormalised inputs are fine.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import DataError
from ..results import MetricValue
from .fid import fid_from_features

DIGIT_DATASETS = ("digits", "mnist")
TEMPLATES = {name: "a handwritten digit {name}" for name in DIGIT_DATASETS}
DEFAULT_TEMPLATE = "a photo of a {name}"


def class_prompts(class_names: list[str], dataset: str | None = None, template: str | None = None) -> list[str]:
    """One prompt per class, from ``template`` (with ``{name}``) or the dataset's default."""
    template = template or TEMPLATES.get(dataset or "", DEFAULT_TEMPLATE)
    if "{name}" not in template:
        raise DataError(f"prompt template {template!r} must contain '{{name}}'")
    return [template.format(name=c) for c in class_names]


def _emb(x, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        raise DataError(f"{name}: expected (N, d) embeddings, got {getattr(x, 'shape', type(x).__name__)}")
    x = x.detach().to("cpu", torch.float64)
    if not bool(torch.isfinite(x).all()):
        raise DataError(f"{name}: contains NaN or Inf")
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def clip_scores(image_emb: torch.Tensor, text_emb: torch.Tensor, labels: torch.Tensor | None = None, *,
                w: float = 1.0) -> torch.Tensor:
    """Per-image CLIP scores 100 * w * max(cos, 0).

    ``text_emb`` is either one embedding per image (N, d) or one per class (C, d) with
    ``labels`` (N,) picking each image's prompt.
    """
    im, tx = _emb(image_emb, "image embeddings"), _emb(text_emb, "text embeddings")
    if im.shape[1] != tx.shape[1]:
        raise DataError(f"CLIP score: image and text embedding sizes differ ({im.shape[1]} vs {tx.shape[1]})")
    if labels is not None:
        labels = torch.as_tensor(labels).long().cpu()
        if labels.shape[0] != im.shape[0]:
            raise DataError(f"CLIP score: {labels.shape[0]} labels for {im.shape[0]} images")
        if int(labels.min()) < 0 or int(labels.max()) >= tx.shape[0]:
            raise DataError(f"CLIP score: labels must be in [0, {tx.shape[0]}) (one text per class)")
        tx = tx[labels]
    elif tx.shape[0] != im.shape[0]:
        raise DataError(f"CLIP score: {tx.shape[0]} texts for {im.shape[0]} images; pass labels to index class prompts")
    cos = (im * tx).sum(1)
    return 100.0 * w * cos.clamp_min(0)


def clip_score(image_emb: torch.Tensor, text_emb: torch.Tensor, labels: torch.Tensor | None = None, *,
               w: float = 1.0, z: float = 1.96, name: str = "clip_score", **mv_kwargs) -> MetricValue:
    """Mean CLIP score with standard error and a normal interval; see :func:`clip_scores`."""
    s = clip_scores(image_emb, text_emb, labels, w=w)
    n = s.shape[0]
    mean = float(s.mean())
    se = float(s.std() / math.sqrt(n)) if n > 1 else float("nan")
    return MetricValue(name=name, value=mean, n=n, std=se, ci_low=mean - z * se, ci_high=mean + z * se,
                       higher_is_better=True, extra={"w": w, "std_is": "standard error of the mean"}, **mv_kwargs)


def clip_fd(emb_gen: torch.Tensor, emb_ref_or_stats, *, bootstrap: int = 0, seed: int = 0, **mv_kwargs) -> MetricValue:
    """Frechet distance between generated and reference CLIP image embeddings."""
    return fid_from_features(emb_gen, emb_ref_or_stats, bootstrap=bootstrap, seed=seed, name="clip_fd", **mv_kwargs)
