"""On-disk cache of reference-set features and their float64 statistics.

Entries live in ``$DGMBENCH_HOME/reference/<key>.pt`` (``DGMBENCH_HOME`` defaults to
``~/.cache/dgmbench``; ``DGMBENCH_CACHE=0`` disables the cache). The key is the sha256
of the JSON of (dataset, split, extractor name, weights sha256, resize mode, n,
transform id, extra), so a different weights file, resize mode or sample count can never
return stale statistics. Each file holds, per extractor output, the (n, d) float32
features (unless ``keep_features=False``) and a :class:`StreamingStats` state.

Writes are atomic (a temporary file in the same folder, then ``os.replace``); a file
that cannot be read (torn, corrupt, wrong format) is recomputed with a warning.

Tamper evidence (format 2): each file also stores the canonical key JSON (whose sha256 must
be the key) and ``sha256``, a digest of key, metadata and every stored tensor's dtype,
shape and bytes (:func:`payload_digest`). A file whose tensors, statistics or key were
edited after it was written fails that check on load and is recomputed with a warning,
exactly like a torn one. This detects damage and naive edits, not a forger who also
recomputes the digest (the file is not signed); files are read with ``weights_only=True``,
so a cache file can never run code either way.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..data.download import dgmbench_home as _home
from ..results import atomic_writer
from .stats import StreamingStats

CACHE_FORMAT = 2


def dgmbench_home() -> Path:
    """``$DGMBENCH_HOME`` or ``~/.cache/dgmbench`` (shared with the dataset downloader)."""
    return Path(_home())


def reference_cache_dir() -> Path:
    return dgmbench_home() / "reference"


def cache_enabled() -> bool:
    return os.environ.get("DGMBENCH_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def cache_key(*args: Any, **kwargs: Any) -> str:
    """Hex sha256 of the canonical JSON of everything that changes the reference features
    (the arguments of :func:`cache_key_json`)."""
    return hashlib.sha256(cache_key_json(*args, **kwargs).encode()).hexdigest()


def cache_key_json(
    dataset: str,
    split: str,
    extractor_name: str,
    sha256: str | None,
    resize: str | None,
    n: int | None,
    transform_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """The canonical JSON that :func:`cache_key` hashes (stored in each file to re-check its key)."""
    payload = {
        "format": CACHE_FORMAT,
        "dataset": dataset,
        "split": split,
        "extractor": extractor_name,
        "sha256": sha256,
        "resize": resize,
        "n": None if n is None else int(n),
        "transform": transform_id,
        "extra": dict(sorted((extra or {}).items())),
    }
    return json.dumps(payload, sort_keys=True, default=str)


def _feed(h: Any, obj: Any) -> None:
    """Update hash ``h`` with a type-tagged, length-prefixed, order-independent encoding of ``obj``."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)};".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())  # the buffer itself, no copy
    elif isinstance(obj, Mapping):
        h.update(f"D{len(obj)};".encode())
        for k in sorted(obj, key=str):
            _feed(h, str(k))
            _feed(h, obj[k])
    elif isinstance(obj, (list, tuple)):
        h.update(f"L{len(obj)};".encode())
        for v in obj:
            _feed(h, v)
    else:  # str, int, float (repr is exact), bool, None
        text = f"{type(obj).__name__}:{obj!r}"
        h.update(f"S{len(text)};{text}".encode())


def payload_digest(key: str, key_json: str, meta: Mapping[str, Any], outputs: Mapping[str, Any]) -> str:
    """Hex sha256 over a cache entry's key, key JSON, metadata and stored tensors (dtype, shape, bytes)."""
    h = hashlib.sha256()
    _feed(h, {"key": key, "key_json": key_json, "meta": meta, "outputs": outputs})
    return h.hexdigest()


@dataclass
class CachedReference:
    """Reference features/statistics per extractor output, and where they came from."""

    key: str
    path: Path | None
    features: dict[str, torch.Tensor] = field(default_factory=dict)
    stats: dict[str, StreamingStats] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    hit: bool = False  # True when everything requested was read from disk


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save through a file object (equal objects give equal bytes) written atomically."""
    with atomic_writer(path, "wb") as f:
        torch.save(obj, f)


def _load_entry(path: Path, key: str) -> dict[str, Any] | None:
    """The stored dict, or None (with a warning) when the file is unreadable, altered or not ours."""
    if not path.exists():
        return None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(obj, dict) or obj.get("format") != CACHE_FORMAT or obj.get("key") != key:
            raise ValueError("not a dgmbench reference-cache entry of this format")
        key_json, outputs = obj["key_json"], obj["outputs"]
        if hashlib.sha256(str(key_json).encode()).hexdigest() != key:
            raise ValueError("its stored key fields do not hash to its key")
        if obj.get("sha256") != payload_digest(key, key_json, obj["meta"], outputs):
            raise ValueError("its contents do not match their stored sha256: the file was edited or damaged")
        for out, entry in outputs.items():
            StreamingStats.from_state(entry["stats"])  # validates shapes
            if entry.get("features") is not None and entry["features"].shape[0] != entry["stats"]["n"]:
                raise ValueError(f"output {out}: feature rows and stats n differ")
        return obj
    except Exception as e:  # noqa: BLE001 - any unreadable file is recomputed
        warnings.warn(
            f"reference cache file {path} is unreadable or altered ({type(e).__name__}: {e}); recomputing it",
            RuntimeWarning,
            stacklevel=3,
        )
        return None


def cached_reference_features(
    dataset: str,
    split: str,
    extractor,
    n: int | None,
    compute_fn: Callable[[list[str]], Mapping[str, torch.Tensor]],
    *,
    outputs: Iterable[str] | None = None,
    transform_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
    keep_features: bool = True,
    cache_dir: str | os.PathLike | None = None,
    enabled: bool | None = None,
) -> CachedReference:
    """Reference features and stats for ``outputs`` of ``extractor``, from disk or ``compute_fn``.

    ``extractor`` is anything with ``name``, ``sha256`` and ``resize`` attributes (a
    FeatureExtractor). ``compute_fn(missing_outputs)`` must return ``{output: (n, d) tensor}``
    for the outputs not yet cached; its result is stored (atomically) and merged with what
    the file already held. ``n`` is the number of reference items the features come from
    (None = the whole split); ``transform_id`` names any preprocessing or subset choice
    that changes the features (e.g. 'subset-seed0'). With ``keep_features=False`` only the
    statistics are stored and returned (enough for FID, not for KID/PRDC).
    """
    outputs = list(outputs) if outputs is not None else list(getattr(extractor, "outputs", ()))
    key_json = cache_key_json(
        dataset, split, extractor.name, getattr(extractor, "sha256", None), getattr(extractor, "resize", None),
        n, transform_id, {**dict(extra or {}), "config": getattr(extractor, "config_id", None)},
    )
    key = hashlib.sha256(key_json.encode()).hexdigest()
    use = cache_enabled() if enabled is None else enabled
    folder = Path(cache_dir) if cache_dir is not None else reference_cache_dir()
    path = folder / f"{key}.pt"
    meta = {
        "dataset": dataset, "split": split, "extractor": extractor.name,
        "sha256": getattr(extractor, "sha256", None), "resize": getattr(extractor, "resize", None),
        "n": n, "transform": transform_id, "extra": dict(extra or {}),
    }
    stored: dict[str, dict[str, Any]] = {}
    if use:
        obj = _load_entry(path, key)
        if obj is not None:
            stored = dict(obj["outputs"])
    usable = {o for o, e in stored.items() if not keep_features or e.get("features") is not None}
    missing = [o for o in outputs if o not in usable]
    if missing:
        fresh = compute_fn(missing)
        for o in missing:
            if o not in fresh:
                raise KeyError(f"compute_fn did not return output '{o}' (returned {sorted(fresh)})")
            raw = fresh[o].detach().cpu()
            stored[o] = {
                "features": raw.to(torch.float32).contiguous() if keep_features else None,
                "stats": StreamingStats.from_features(raw).state_dict(),
            }
        if use:
            try:
                digest = payload_digest(key, key_json, meta, stored)
                atomic_torch_save({"format": CACHE_FORMAT, "key": key, "key_json": key_json, "meta": meta,
                                   "outputs": stored, "sha256": digest}, path)
            except OSError as e:  # read-only or full disk: the numbers are still right, just not cached
                warnings.warn(f"could not write the reference cache file {path} ({e}); continuing without it",
                              RuntimeWarning, stacklevel=2)
    ref = CachedReference(key=key, path=path if use else None, meta=meta, hit=not missing)
    for o in outputs:
        e = stored[o]
        ref.stats[o] = StreamingStats.from_state(e["stats"])
        if keep_features and e.get("features") is not None:
            ref.features[o] = e["features"]
    return ref


def clear_reference_cache(cache_dir: str | os.PathLike | None = None) -> int:
    """Delete every cached reference file; return how many were removed."""
    folder = Path(cache_dir) if cache_dir is not None else reference_cache_dir()
    count = 0
    for p in folder.glob("*.pt"):
        p.unlink(missing_ok=True)
        count += 1
    return count
