"""Reference-statistics files (.npz) in the format pytorch-fid and clean-fid use, read and written.

Format: an ``.npz`` archive with ``mu`` (d,) and ``sigma`` (d, d), the mean and unbiased
(ddof = 1) covariance of the reference features. pytorch-fid's ``--save-stats`` writes both as
float64 (``np.savez_compressed(path, mu=m1, sigma=s1)``); clean-fid's custom statistics
(``make_custom_stats``) write ``mu`` as float32 (the mean of float32 features) and ``sigma`` as
float64 (``np.cov``). Both, and any file with these two keys, are read here; float32 values
are promoted to float64.

dgmbench writes ``mu`` and ``sigma`` as float64 (so pytorch-fid and clean-fid read its files
unchanged) plus one extra key, :data:`PROVENANCE_KEY`, a JSON string (0-d unicode array, no
pickle) with the dataset, split, n, extractor name, weights sha256, resize mode and feature
output the statistics come from. Files without it (from other tools) are read with empty
provenance: the caller must then trust that the same network and resize were used.

:func:`load_ref_stats` fails closed with a one-line :class:`~dgmbench.errors.DataError` on a
missing or unreadable file, a pickled/object array, missing keys, wrong shapes or dtypes,
NaN/Inf, a non-symmetric ``sigma`` (beyond float rounding) or a negative variance.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from ..metrics.fid import GaussianStats, as_stats
from ..results import sha256_file

PROVENANCE_KEY = "dgmbench_provenance"
FORMAT = "dgmbench-ref-stats-1"
# |sigma - sigma^T| allowed, relative to max |sigma|: float32 round-off of a symmetric product
SYMMETRY_RTOL = 1e-5


def save_ref_stats(path: str | os.PathLike, stats, *, provenance: Mapping[str, Any] | None = None) -> Path:
    """Write ``stats`` (StreamingStats, GaussianStats, or anything :func:`as_stats` reads) to ``path``.

    ``mu``/``sigma`` are float64; ``provenance`` (JSON-serialisable) goes into
    :data:`PROVENANCE_KEY` with ``n``, ``dim`` and the format name added. The write is atomic
    (temporary file in the same folder, then rename) and the name is used as given (numpy
    would otherwise append '.npz'). Returns the path.
    """
    g = as_stats(stats)
    mu = g.mean.detach().cpu().to(torch.float64).numpy()
    sigma = g.cov.detach().cpu().to(torch.float64).numpy()
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise DataError(f"save_ref_stats: mean {mu.shape} and covariance {sigma.shape} do not match")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise DataError("save_ref_stats: the statistics contain NaN or Inf; nothing was written")
    prov = {"format": FORMAT, "n": int(g.n) if g.n else None, "dim": int(mu.shape[0]), **dict(provenance or {})}
    blob = json.dumps(prov, sort_keys=True, default=str)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.name)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, mu=mu, sigma=sigma, **{PROVENANCE_KEY: np.array(blob)})
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _array(z, key: str, path: Path) -> np.ndarray:
    try:
        return np.asarray(z[key])
    except ValueError as e:  # object arrays need allow_pickle, which is never given
        raise DataError(f"{path}: '{key}' is not a plain numeric array ({e})") from None


def load_ref_stats(path: str | os.PathLike) -> GaussianStats:
    """Read a statistics file (pytorch-fid, clean-fid or dgmbench) as the :class:`GaussianStats` FID uses.

    ``mean``/``cov`` are float64 tensors (``cov`` exactly symmetrised); ``n`` is the item count
    from dgmbench's provenance (0 when unknown); ``extra`` holds the provenance plus
    ``path``, ``sha256`` (of the file's bytes) and ``source`` ('dgmbench' or 'external').
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"reference statistics file '{path}' does not exist")
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path}: not a readable .npz statistics file ({type(e).__name__}: {e})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: a single array, not an .npz archive with 'mu' and 'sigma'")
    with z:
        keys = set(z.files)
        missing = [k for k in ("mu", "sigma") if k not in keys]
        if missing:
            raise DataError(f"{path}: missing key(s) {missing}; found {sorted(keys)} (expected 'mu' and 'sigma', "
                            "as pytorch-fid --save-stats and clean-fid write)")
        mu, sigma = _array(z, "mu", path), _array(z, "sigma", path)
        prov: dict[str, Any] = {}
        if PROVENANCE_KEY in keys:
            try:
                prov = json.loads(str(_array(z, PROVENANCE_KEY, path)))
                if not isinstance(prov, dict):
                    raise ValueError("not a JSON object")
            except ValueError as e:
                raise DataError(f"{path}: unreadable '{PROVENANCE_KEY}' ({e})") from None
    for key, a in (("mu", mu), ("sigma", sigma)):
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise DataError(f"{path}: '{key}' has dtype {a.dtype}; expected floating point")
    if mu.ndim != 1 or mu.shape[0] < 1:
        raise DataError(f"{path}: 'mu' must be a vector (d,), got shape {mu.shape}")
    d = mu.shape[0]
    if sigma.shape != (d, d):
        raise DataError(f"{path}: 'sigma' must be ({d}, {d}) to match 'mu', got shape {sigma.shape}")
    mu, sigma = mu.astype(np.float64), sigma.astype(np.float64)
    if not np.isfinite(mu).all() or not np.isfinite(sigma).all():
        raise DataError(f"{path}: 'mu' or 'sigma' contains NaN or Inf")
    scale = float(np.abs(sigma).max()) or 1.0
    asym = float(np.abs(sigma - sigma.T).max())
    if asym > SYMMETRY_RTOL * scale:
        raise DataError(f"{path}: 'sigma' is not symmetric (max |sigma - sigma^T| = {asym:.3g}, "
                        f"max |sigma| = {scale:.3g}); not a covariance matrix")
    if float(np.diag(sigma).min()) < 0:
        raise DataError(f"{path}: 'sigma' has a negative variance on its diagonal; not a covariance matrix")
    if "dim" in prov and prov["dim"] != d:
        raise DataError(f"{path}: provenance says dim {prov['dim']} but 'mu' has {d} entries")
    sigma = (sigma + sigma.T) / 2
    n = prov.get("n") or 0
    extra = {**prov, "path": str(path), "sha256": sha256_file(path),
             "source": "dgmbench" if prov.get("format") == FORMAT else "external"}
    return GaussianStats(torch.from_numpy(mu), torch.from_numpy(sigma), int(n), extra)


def provenance_mismatches(stats: GaussianStats, extractor) -> list[str]:
    """What in a file's dgmbench provenance disagrees with ``extractor`` (empty when all agree or unknown).

    Compares the extractor name, weights sha256 and resize mode recorded in the file with the
    extractor's; an external file has no provenance and yields no mismatch.
    """
    out = []
    for key, attr in (("extractor", "name"), ("extractor_sha256", "sha256"), ("resize", "resize")):
        recorded, current = stats.extra.get(key), getattr(extractor, attr, None)
        if recorded is not None and current is not None and recorded != current:
            out.append(f"{key}: file {recorded!r} vs current {current!r}")
    return out


__all__ = ["FORMAT", "PROVENANCE_KEY", "load_ref_stats", "provenance_mismatches", "save_ref_stats"]
