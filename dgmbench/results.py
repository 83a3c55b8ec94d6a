"""Evaluation records, a JSONL store with atomic appends, and pandas tables.

A :class:`Record` is one evaluation of one model on one dataset split. Each metric is a
:class:`MetricValue` with its value, n, uncertainty and provenance (feature extractor and
its weights' sha256, resize mode). ``kind`` on likelihood metrics is ``exact``, ``bound``
or ``estimate``; ``value`` is None with a ``note`` when a metric could not be computed
(e.g. the Inception logits weights for IS are missing).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import functools
import hashlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import uuid
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from .errors import DataError, UsageError

SCHEMA_VERSION = 1


@dataclass
class MetricValue:
    """One metric's value. Units are in ``unit`` (e.g. 'nats', 'bits/dim', 'samples/s')."""

    name: str
    value: float | None
    n: int | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    std: float | None = None
    kind: str | None = None
    unit: str | None = None
    extractor: str | None = None
    extractor_sha256: str | None = None
    resize: str | None = None
    higher_is_better: bool | None = None
    note: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ci(self) -> tuple[float, float] | None:
        return None if self.ci_low is None else (self.ci_low, self.ci_high)

    def format(self, digits: int = 4) -> str:
        """'12.34 [11.9, 12.8]' or '12.34 ± 0.5' or the note when there is no value."""
        if self.value is None:
            return f"n/a ({self.note})" if self.note else "n/a"
        s = f"{self.value:.{digits}g}"
        if self.ci_low is not None:
            s += f" [{self.ci_low:.{digits}g}, {self.ci_high:.{digits}g}]"
        elif self.std is not None:
            s += f" ± {self.std:.{digits - 1}g}"
        if self.kind:
            s += f" ({self.kind})"
        return s


# module name (the key in Record.versions) -> distribution name
_VERSIONED = {"dgmbench": "dgmbench", "torch": "torch", "torch_fidelity": "torch-fidelity", "numpy": "numpy",
              "scipy": "scipy", "sklearn": "scikit-learn", "open_clip": "open-clip-torch"}


@functools.lru_cache(maxsize=1)
def _installed_versions() -> tuple[tuple[str, str], ...]:
    from importlib import metadata

    out = []
    for mod, dist in _VERSIONED.items():
        try:
            out.append((mod, metadata.version(dist)))
        except metadata.PackageNotFoundError:  # optional packages
            continue
    return tuple(out)


def package_versions() -> dict[str, str]:
    """Versions of the packages that can change a number.

    torch and modules already imported report their ``__version__`` (torch's includes the
    build tag, e.g. ``2.x+cu121``); the others are read from installed metadata, so nothing
    slow (open_clip, scikit-learn) is imported here.
    """
    import torch  # noqa: F401 - always: its build tag (e.g. +cu121) is not in the installed metadata

    out = {"python": platform.python_version()}
    for mod, version in _installed_versions():
        loaded = sys.modules.get(mod)
        out[mod] = str(getattr(loaded, "__version__", None) or version)
    return out


def git_revision(path: str | None = None) -> str | None:
    """The git commit of ``path`` (default: the current directory), or None."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path or os.getcwd(), capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@dataclass
class Record:
    """One evaluation: model x dataset split x metrics, with everything needed to reproduce it."""

    model: str
    dataset: str
    split: str
    metrics: dict[str, MetricValue] = field(default_factory=dict)
    family: str | None = None
    seed: int = 0
    device: str = "cpu"
    n_samples: int | None = None
    wall_time_s: float | None = None
    versions: dict[str, str] = field(default_factory=package_versions)
    git_rev: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    record_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    schema_version: int = SCHEMA_VERSION

    def add(self, mv: MetricValue) -> None:
        self.metrics[mv.name] = mv

    def value(self, name: str) -> float | None:
        mv = self.metrics.get(name)
        return None if mv is None else mv.value

    def to_dict(self) -> dict[str, Any]:
        """A strict-JSON dict: a non-finite metric value, interval or std becomes null with a note
        saying what it was; any other non-finite float (in ``extra`` or ``config``) becomes null."""
        d = asdict(self)
        d["metrics"] = {k: _finite_metric(asdict(v)) for k, v in self.metrics.items()}
        return json_safe(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Record:
        d = dict(d)
        version = d.get("schema_version", 0)
        if version > SCHEMA_VERSION:
            raise DataError(f"record schema version {version} is newer than this dgmbench ({SCHEMA_VERSION}); upgrade dgmbench")
        known_mv = {f.name for f in dataclasses.fields(MetricValue)}
        metrics = {}
        for k, v in (d.pop("metrics", None) or {}).items():
            v = {kk: vv for kk, vv in v.items() if kk in known_mv}
            v.setdefault("name", k)
            metrics[k] = MetricValue(**v)
        known = {f.name for f in dataclasses.fields(cls)}
        rec = cls(**{k: v for k, v in d.items() if k in known})
        rec.metrics = metrics
        return rec

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)


def _nonfinite(v: Any) -> bool:
    return isinstance(v, float) and not math.isfinite(v)


def json_safe(obj: Any) -> Any:
    """``obj`` with every NaN/Inf float replaced by None (JSON has no NaN; strict parsers reject it)."""
    if _nonfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def _finite_metric(d: dict[str, Any]) -> dict[str, Any]:
    """A MetricValue dict whose non-finite numbers are null, each named in the note."""
    bad = [f"{k} was {d[k]}" for k in ("value", "ci_low", "ci_high", "std") if _nonfinite(d.get(k))]
    if bad:
        for k in ("value", "ci_low", "ci_high", "std"):
            if _nonfinite(d.get(k)):
                d[k] = None
        note = "non-finite: " + ", ".join(bad) + " (written as null)"
        d["note"] = f"{d['note']}; {note}" if d.get("note") else note
    return d


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on success it is fsynced and renamed
    over ``path`` (a kill never leaves half a file), on error it is removed. The file gets the
    permissions a plain ``open()`` would give. ``mode``: "w" (text) or "wb"."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_writer`)."""
    if not isinstance(text, str):
        raise TypeError(f"atomic_write_text takes a str, got {type(text).__name__}")
    with atomic_writer(path, "wb") as f:
        f.write(text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_writer`)."""
    with atomic_writer(path, "wb") as f:
        f.write(data)


def mean_std(values: Iterable[float]) -> tuple[float | None, float | None]:
    """Mean and sample std (ddof = 1) of values over seeds: (None, None) for none, (x, None) for one.
    The one aggregation of per-seed values that the leaderboards, stars and regress use."""
    v = [float(x) for x in values]
    if not v:
        return None, None
    mean = sum(v) / len(v)
    if len(v) < 2:
        return mean, None
    return mean, math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1))


# tail_median's rule: the mean is "far" from the median when the gap exceeds this many times
# the larger of the median absolute deviation and TAIL_REL_FLOOR x |median|
TAIL_MAD_FACTOR = 2.0
TAIL_REL_FLOOR = 0.1


def tail_median(values: Iterable[float]) -> float | None:
    """The median of per-seed values when the mean misrepresents them, else None.

    Shown beside the mean when one seed's value dominates it (e.g. an NLL of 282 nats next to
    two of -3.5): with at least 3 values, when ``|mean - median| > TAIL_MAD_FACTOR *
    max(MAD, TAIL_REL_FLOOR * |median|)`` (MAD: median absolute deviation from the median; the
    floor keeps a spread that is small against the value itself, like modes 8, 8, 7, from
    counting). The median is ``statistics.median`` (the mean of the two middle values for an
    even count). The leaderboards use this one rule."""
    v = [float(x) for x in values]
    if len(v) < 3:
        return None
    med = statistics.median(v)
    mad = statistics.median(abs(x - med) for x in v)
    gap = abs(sum(v) / len(v) - med)
    return med if gap > TAIL_MAD_FACTOR * max(mad, TAIL_REL_FLOOR * abs(med)) else None


def _check_creatable(path: str, flag: str) -> None:
    """UsageError unless the nearest existing folder above ``path`` is a writable folder."""
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise UsageError(f"{flag} {path} cannot be created: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path} cannot be created: {parent} is not writable")


def check_writable_file(path: str | os.PathLike, flag: str) -> None:
    """UsageError (exit 2) unless ``path`` can be written as a file: not a folder, and its folder
    exists or can be created and is writable. Called before any computation, so a bad output
    path never costs a run."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path} is a folder; give a file path")
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            raise UsageError(f"{flag} {path} is not writable")
        return
    _check_creatable(path, flag)


def check_writable_dir(path: str | os.PathLike, flag: str) -> None:
    """UsageError (exit 2) unless ``path`` is, or can be created as, a writable folder."""
    path = os.fspath(path)
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise UsageError(f"{flag} {path} is a file; give a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"{flag} {path} is not writable")
        return
    _check_creatable(path, flag)


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks (no memo: a file rewritten in place is re-read)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def append_jsonl_line(path: str | os.PathLike, line: str) -> None:
    """Append one JSON line to ``path`` under an exclusive lock, with one write call.

    Concurrent writers never interleave; a torn last line left by a killed writer is
    terminated first, so it cannot glue onto the new line (readers skip the torn one).
    """
    import fcntl

    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    data = (line + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size:
            with open(path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    data = b"\n" + data
        os.write(fd, data)
        os.fsync(fd)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class RecordStore:
    """Append-only JSONL file of Records.

    Appends take an exclusive lock and write each record as one line with one write
    call, so concurrent writers never interleave and a kill leaves at most a torn last
    line, which :meth:`load` skips with a warning instead of failing.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)

    def append(self, record: Record) -> None:
        append_jsonl_line(self.path, record.to_json())

    def load(self) -> list[Record]:
        """The Records in the file. A torn line (a prefix of a record left by a killed writer)
        or a JSON value that is not a record is skipped with a warning; text that is not UTF-8
        or not JSON is a :class:`DataError` naming the line (and column)."""
        if not os.path.exists(self.path):
            return []
        if os.path.isdir(self.path):
            raise DataError(f"{self.path} is a folder, not a Records JSONL file")
        records = []
        with open(self.path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise DataError(f"{self.path}:{lineno}: not UTF-8 text (byte 0x{raw[e.start]:02x} at column "
                                    f"{e.start + 1}); this is not a dgmbench Records JSONL file") from None
                text = line.strip()
                if not text:
                    continue
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as e:
                    if not text.startswith("{"):  # a torn record line is a prefix of '{...}'
                        raise DataError(f"{self.path}:{lineno}:{e.colno}: not a JSON record ({e.msg}); this is not "
                                        "a dgmbench Records JSONL file, or it was edited") from None
                    obj = None  # torn: the JSON ends early
                try:
                    if obj is None:
                        raise ValueError("torn line")
                    records.append(Record.from_dict(obj))
                except (ValueError, TypeError, AttributeError, KeyError):
                    warnings.warn(f"{self.path}:{lineno}: skipping a corrupt or truncated record line", stacklevel=2)
        return records


def to_frame(records: list[Record], wide: bool = False):
    """Records as a pandas DataFrame: one row per (record, metric), or one row per record when ``wide``."""
    import pandas as pd

    rows = []
    for r in records:
        base = {"record_id": r.record_id, "model": r.model, "family": r.family, "dataset": r.dataset,
                "split": r.split, "seed": r.seed, "device": r.device, "created": r.created}
        for name, mv in r.metrics.items():
            rows.append({**base, "metric": name, "value": mv.value, "n": mv.n, "ci_low": mv.ci_low,
                         "ci_high": mv.ci_high, "std": mv.std, "kind": mv.kind, "unit": mv.unit,
                         "extractor": mv.extractor, "note": mv.note})
    df = pd.DataFrame(rows)
    if wide and not df.empty:
        df = df.pivot_table(index=["record_id", "model", "family", "dataset", "split", "seed"],
                            columns="metric", values="value", aggfunc="first").reset_index()
    return df


def load_records(path: str | os.PathLike) -> list[Record]:
    """Records from a JSONL store, a JSON list of records, or one JSON record."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UsageError(f"results file {path} does not exist (pass the JSONL store 'dgmbench score' wrote)")
    if os.path.isdir(path):
        raise UsageError(f"results file {path} is a folder; pass the JSONL store 'dgmbench score' wrote")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise DataError(f"results file {path}:{line}:{col}: not UTF-8 text (byte 0x{raw[e.start]:02x}); "
                        "this is not a dgmbench results file") from None
    stripped = text.lstrip()
    records: list[Record] = []
    whole = None
    if stripped.startswith("["):
        try:
            whole = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"results file {path}:{e.lineno}:{e.colno} is not valid JSON ({e.msg})") from None
    elif stripped.startswith("{") and "\n" in stripped.strip():
        try:
            whole = json.loads(text)  # one pretty-printed record
        except json.JSONDecodeError:
            whole = None  # JSONL: one record per line
    if whole is not None:
        items = whole if isinstance(whole, list) else [whole]
        for i, item in enumerate(items):
            records.append(_record_from(item, f"{path}: item {i}"))
    else:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            records = RecordStore(path).load()
        for w in caught:
            warnings.warn(str(w.message), stacklevel=2)
    if not records:
        raise DataError(f"results file {path} holds no records; run 'dgmbench score ... --out {path}' first")
    return records


def _record_from(item: Any, where: str) -> Record:
    try:
        return Record.from_dict(item)
    except (TypeError, KeyError, AttributeError) as e:
        raise DataError(f"{where} is not a dgmbench record ({e})") from None


def as_records(obj: Record | Iterable[Record] | str | os.PathLike) -> list[Record]:
    """A Record, several, or a path to a results file -> list of Records."""
    if _is_record(obj):
        return [obj]
    if isinstance(obj, (str, os.PathLike)):
        return load_records(obj)
    try:
        records = list(obj)
    except TypeError:
        raise UsageError(f"expected a dgmbench Record, a list of them or a results-file path, "
                         f"got a {type(obj).__name__}") from None
    for r in records:
        if not _is_record(r):
            raise UsageError(f"expected dgmbench Records, got a {type(r).__name__}")
    return records


def _is_record(obj: Any) -> bool:
    # duck-typed, so a Record from a reloaded dgmbench.results module is accepted too
    return isinstance(obj, Record) or all(hasattr(obj, a) for a in ("model", "dataset", "split", "seed", "metrics"))
