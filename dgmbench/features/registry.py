"""Extractor registry and the single feature pass.

- :func:`get_extractor` builds an extractor by name: ``inception`` (torch-fidelity's
  Inception-v3, FID features 'pool' and, with the full weights, IS 'logits_unbiased'), ``clip``
  (open_clip image embeddings), ``classifier-digits`` / ``classifier-mnist`` (dgmbench's
  small domain classifiers, 'features' and 'logits'), ``raw`` (flattened pixels/points).
- :func:`register_extractor` adds a user extractor (a lab's own encoder) under a name; packages
  can also declare one in the ``dgmbench.extractors`` entry-point group
  (``name = "package.module:factory"``). Either way ``get_extractor(name)`` calls
  ``factory(device=torch.device, **kwargs)``, checks the result against the
  :class:`~dgmbench.features.base.FeatureExtractor` protocol (its ``name`` must be the
  registered name and its ``sha256`` a non-empty string identifying its weights, which keys
  the reference cache and goes into every Record), and it then flows through the feature
  pass, the cache, ``score`` and the leaderboards like a built-in one.
- :func:`default_extractor` says which extractor a dataset's metrics use by default.
- :func:`extract_features` / :func:`feature_pass` run ONE pass over the images (a tensor,
  a DataSplit or an iterable of batches) for every extractor and output the metrics need,
  optionally accumulating float64 :class:`StreamingStats` on the way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.base import DataSplit
from ..devices import resolve_device
from ..errors import DataError, ModelError, UsageError, suggest
from ..validation import as_image_tensor, check_points
from .base import FeatureExtractor, RawPixels
from .classifier import ClassifierExtractor
from .clip import ClipExtractor
from .dinov2 import DinoV2Extractor
from .inception import InceptionExtractor
from .stats import StreamingStats

ASSETS = Path(__file__).resolve().parent.parent / "assets"

EXTRACTORS = {
    "inception": "torch-fidelity Inception-v3 (FID network): 'pool' 2048-d, 'logits_unbiased' 1008-d with full weights",
    "clip": "open_clip image encoder: 'clip' L2-normalised embeddings (model_name=, pretrained=)",
    "classifier-digits": "dgmbench CNN trained on the 8x8 digits: 'features' (penultimate) and 'logits'",
    "classifier-mnist": "dgmbench CNN trained on MNIST: 'features' (penultimate) and 'logits'",
    "raw": "flattened pixels or 2-D points: 'raw'",
    "dinov2-vit-s-14": "DINOv2 ViT-S/14 through torch-fidelity's extractor: 'dinov2' 384-d CLS embedding (weights=)",
    "dinov2-vit-b-14": "DINOv2 ViT-B/14 through torch-fidelity's extractor: 'dinov2' 768-d CLS embedding (weights=)",
    "dinov2-vit-l-14": "DINOv2 ViT-L/14 (FD_DINOv2) through torch-fidelity's extractor: 'dinov2' 1024-d (weights=)",
    "dinov2-vit-g-14": "DINOv2 ViT-g/14 through torch-fidelity's extractor: 'dinov2' 1536-d CLS embedding (weights=)",
}
DINOV2_NAMES = tuple(n for n in EXTRACTORS if n.startswith("dinov2-"))

ENTRY_POINT_GROUP = "dgmbench.extractors"
Factory = Callable[..., FeatureExtractor]
_USER: dict[str, tuple[Factory, str]] = {}  # name -> (factory, description)

Key = tuple[str, str]  # (extractor name, output name)


def register_extractor(name: str, factory: Factory, *, description: str | None = None,
                       replace: bool = False) -> None:
    """Make ``get_extractor(name)`` (and ``score --extractor name``) build ``factory(device=..., **kwargs)``.

    ``factory`` returns an object with the FeatureExtractor attributes: ``name`` (equal to
    ``name``), ``sha256`` (a checksum of its weights, e.g. :func:`dgmbench.results.sha256_file`
    of the checkpoint or :func:`~dgmbench.features.base.state_dict_sha256` of the module:
    reference features are cached under it), ``resize`` (a string naming its preprocessing, or
    None), ``outputs``, ``feature_output``, ``logits_output`` and ``extract(images, outputs)``
    taking float [0, 1] (N, C, H, W) images and returning ``{output: (N, d) CPU tensor}``.
    Built-in names cannot be taken; re-registering a user name needs ``replace=True``.
    """
    if not isinstance(name, str) or not name or any(c.isspace() for c in name) or "," in name:
        raise UsageError(f"extractor name must be a non-empty string without spaces or commas, got {name!r}")
    if name in EXTRACTORS or name.startswith("classifier-"):
        raise UsageError(f"'{name}' is a built-in extractor name; register yours under another name")
    if not callable(factory):
        raise UsageError(f"register_extractor('{name}'): factory must be callable, got {type(factory).__name__}")
    if name in _USER and not replace:
        raise UsageError(f"an extractor named '{name}' is already registered; pass replace=True to replace it")
    _USER[name] = (factory, description or getattr(factory, "__doc__", None) or "user-registered extractor")


def unregister_extractor(name: str) -> None:
    """Remove a user-registered extractor (no-op when absent)."""
    _USER.pop(name, None)


def _entry_points() -> dict[str, metadata.EntryPoint]:
    """The ``dgmbench.extractors`` entry points of the installed distributions, by name."""
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _user_factory(name: str) -> Factory | None:
    if name in _USER:
        return _USER[name][0]
    ep = _entry_points().get(name)
    if ep is None:
        return None
    try:
        factory = ep.load()
    except Exception as e:  # noqa: BLE001 - a broken plug-in package is reported, not raised raw
        raise ModelError(f"extractor '{name}' (entry point {ep.value}) could not be imported: "
                         f"{type(e).__name__}: {e}") from None
    if not callable(factory):
        raise ModelError(f"extractor entry point '{name}' = {ep.value} is not callable")
    return factory


def check_extractor(ext: Any, name: str) -> FeatureExtractor:
    """``ext`` if it satisfies the FeatureExtractor protocol as registered under ``name``, else ModelError."""
    missing = [a for a in ("name", "sha256", "resize", "outputs", "feature_output", "logits_output", "extract")
               if not hasattr(ext, a)]
    if missing:
        raise ModelError(f"extractor '{name}': the factory's object lacks {missing} (see register_extractor)")
    if ext.name != name:
        raise ModelError(f"extractor '{name}': the object's .name is {ext.name!r}; it must equal the registered name")
    if not isinstance(ext.sha256, str) or not ext.sha256:
        raise ModelError(f"extractor '{name}': .sha256 must be a non-empty string identifying its weights "
                         f"(it keys the reference cache and goes into Records); got {ext.sha256!r}")
    outs = tuple(ext.outputs)
    if not outs or ext.feature_output not in outs or (ext.logits_output is not None and ext.logits_output not in outs):
        raise ModelError(f"extractor '{name}': feature_output {ext.feature_output!r} and logits_output "
                         f"{ext.logits_output!r} must be among its outputs {outs}")
    if not callable(ext.extract):
        raise ModelError(f"extractor '{name}': .extract is not callable")
    return ext


def classifier_weights_path(dataset: str) -> Path:
    """Where dgmbench's committed classifier for ``dataset`` lives (may not exist)."""
    return ASSETS / f"classifier-{dataset}.pt"


def get_extractor(name: str | FeatureExtractor, *, device: str | torch.device = "auto", **kw) -> FeatureExtractor:
    """Build an extractor by name (an extractor instance is returned unchanged).

    Keyword arguments go to the extractor: ``weights=`` (Inception, DINOv2 or classifier
    weights file), ``resize=`` (Inception: 'tf-bilinear' or 'clean'),
    ``model_name=``/``pretrained=`` (CLIP); anything to a user-registered factory.
    """
    if not isinstance(name, str):
        return name
    dev = resolve_device(device)
    if name == "raw":
        return RawPixels()
    if name == "inception":
        return InceptionExtractor(device=dev, **kw)
    if name == "clip":
        return ClipExtractor(device=dev, **kw)
    if name.startswith("classifier-"):
        return ClassifierExtractor(name[len("classifier-"):], device=dev, **kw)
    if name in DINOV2_NAMES:
        return DinoV2Extractor(name, device=dev, **kw)
    factory = _user_factory(name)
    if factory is not None:
        return check_extractor(factory(device=dev, **kw), name)
    raise UsageError(suggest(name, available_extractors(), "feature extractor"))


def extractor_options(name: str, weights: str | None = None, resize: str | None = None) -> dict[str, Any]:
    """``get_extractor(name, ...)`` keyword arguments for the CLI's ``--weights`` / ``--resize``.

    ``resize`` ('tf-bilinear' or 'clean') applies to ``inception`` only and ``weights`` (a
    file) to every extractor that loads one (not ``raw``, not ``clip``, whose checkpoint is
    ``pretrained=``); anything else is a UsageError. User extractors receive ``weights=``.
    """
    kw: dict[str, Any] = {}
    if resize is not None:
        if name != "inception":
            raise UsageError(f"--resize applies to the inception extractor, not '{name}'")
        kw["resize"] = resize
    if weights is not None:
        if name in ("raw", "clip"):
            hint = " (use --clip-pretrained PATH)" if name == "clip" else ""
            raise UsageError(f"--weights does not apply to the '{name}' extractor{hint}")
        kw["weights"] = weights
    return kw


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
    """Built-in, user-registered and entry-point extractors: {name: description}."""
    out = dict(EXTRACTORS)
    out.update({n: d for n, (_, d) in _USER.items()})
    for n, ep in _entry_points().items():
        out.setdefault(n, f"entry point {ep.value}")
    return out


__all__ = [
    "DINOV2_NAMES", "ENTRY_POINT_GROUP", "EXTRACTORS", "FeaturePass", "Key", "available_extractors",
    "check_extractor", "classifier_weights_path", "default_extractor", "extract_features", "extractor_info",
    "extractor_options", "feature_pass", "get_extractor", "register_extractor", "unregister_extractor",
]
