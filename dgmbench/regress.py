"""Baseline comparison for CI: did a model's metrics get worse than a stored baseline?

A *baseline* is a JSON file (``format_version`` 2) holding, per (model, dataset, split,
metric), the accepted value, the metric's direction, a tolerance, and the provenance that
makes two values comparable (n, likelihood kind, feature-extractor checksum).

Tolerance. A change *against* the metric's direction is allowed up to::

    allowed = max(abs, rel * |baseline|, unc * u)

in the metric's own units, where ``u`` is the uncertainty of the difference (see
:func:`combined_uncertainty`): for single runs, ``sqrt(u_baseline^2 + u_current^2)`` with a
value's ``u`` its CI half-width ``(ci_high - ci_low) / 2`` when there is a CI, else its
``std``; for a baseline aggregated over k seeds (value = mean, std = spread over seeds),
the spread predicts how far a new run can land: ``std * sqrt(1 + 1/k)`` against one
current run, ``sqrt(std_b^2 / k_b + std_c^2 / k_c)`` against a current mean over seeds.
Unset parts count as 0. A worsening ``> allowed`` is REGRESSED (equal is ok); an improvement
``> allowed`` is reported as improved (never a failure).

Cap on a run's own uncertainty. The current run's ``u`` is capped at
``max(u_baseline, UNCERTAINTY_CAP_REL * |baseline|)`` (10 %), so a run with a huge interval
(tiny n, a broken bootstrap) cannot widen its own tolerance far enough to pass by itself;
the row says when the cap applied.

Fails closed. A baseline entry whose value, interval or std is NaN/Inf, whose direction
disagrees with dgmbench's metric table (:mod:`dgmbench.metrics.registry`), or a baseline with
no entries, is invalid (DataError, exit 3, naming the entry); ``--update`` refuses to write
a non-finite value. A current value that is NaN/Inf is REGRESSED; one that is missing is
``missing``.

Speed. ``samples_per_s`` depends on the machine, so it is compared as a ratio to a fixed
reference workload timed *in the same run* (:func:`measure_speed_reference`), stored as
``speed_reference`` (reference ops/s) in the metric's ``extra`` or the record's ``config``.
A speed value without a reference on both sides is reported ``unchecked``.

Verdicts: ``ok``, ``improved``, ``REGRESSED``, ``missing`` (in the baseline, absent or
n/a in the current run), ``INCOMPARABLE`` (n, kind or feature extractor changed: the
values measure different things), ``new`` (in the current run only) and ``unchecked``.
The gate fails on REGRESSED, missing and INCOMPARABLE.

Format history: version 1 (``{"format_version": 1, "metrics": [{model, dataset, split, metric,
value, tolerance (absolute)}]}``) is migrated on read; other versions are refused.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from . import __version__
from .errors import DataError, UsageError, suggest
from .metrics.registry import METRICS, default_tolerance
from .metrics.speed import measure_speed_reference
from .metrics.tolerance import Tolerance
from .results import MetricValue, Record, atomic_write_text, git_revision, mean_std

FORMAT_VERSION = 2
OLDEST_READABLE_VERSION = 1

SPEED_METRICS = frozenset({"samples_per_s"})
UNCERTAINTY_CAP_REL = 0.10  # a current run's own uncertainty counts up to max(u_baseline, 10 % of |baseline|)

OK, IMPROVED, REGRESSED, MISSING, INCOMPARABLE, NEW, UNCHECKED = (
    "ok", "improved", "REGRESSED", "missing", "INCOMPARABLE", "new", "unchecked")
FAILING = frozenset({REGRESSED, MISSING, INCOMPARABLE})


# --------------------------------------------------------------------------- tolerance
def parse_tolerances(spec: str | None) -> dict[str, Tolerance]:
    """``'fid=0.5,kid=10%,fid=2u,*=5%'`` -> {metric: Tolerance}; repeated metrics combine
    (the largest part wins when comparing); ``*`` applies to every metric not named."""
    out: dict[str, Tolerance] = {}
    if not spec:
        return out
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise UsageError(f"bad --tolerance item '{item}': expected METRIC=VALUE, e.g. fid=0.5 or kid=10%")
        name, value = (s.strip() for s in item.split("=", 1))
        if name != "*" and name not in METRICS:
            raise UsageError("--tolerance: " + suggest(name, list(METRICS) + ["*"], "metric"))
        out[name] = out.get(name, Tolerance()).merged(Tolerance.parse(value))
    return out


def _override(overrides: dict[str, Tolerance], metric: str) -> Tolerance | None:
    return overrides.get(metric, overrides.get("*"))


# --------------------------------------------------------------------------- baseline
@dataclass
class BaselineEntry:
    """The accepted value of one metric of one model on one dataset split."""

    model: str
    dataset: str
    split: str
    metric: str
    value: float
    higher_is_better: bool
    tolerance: Tolerance = field(default_factory=Tolerance)
    n: int | None = None
    kind: str | None = None
    unit: str | None = None
    extractor_sha256: str | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    std: float | None = None
    seeds: list[int] = field(default_factory=list)
    speed_reference: float | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.model, self.dataset, self.split, self.metric)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tolerance"] = self.tolerance.to_dict()
        return {k: v for k, v in d.items() if v is not None and v != []} | {"tolerance": d["tolerance"]}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> BaselineEntry:
        if not isinstance(d, dict):
            raise DataError(f"{where} must be an object, got {type(d).__name__}")
        missing = [k for k in ("model", "dataset", "split", "metric", "value", "higher_is_better") if k not in d]
        if missing:
            raise DataError(f"{where} lacks {', '.join(missing)}")
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise DataError(f"{where} has unknown fields {sorted(unknown)}")
        d = dict(d)
        d["tolerance"] = Tolerance.from_dict(d.get("tolerance"), f"{where}.tolerance")
        v = d["value"]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise DataError(f"{where}.value must be a number, got {v!r}")
        for k in ("value", "ci_low", "ci_high", "std", "speed_reference"):
            x = d.get(k)
            if x is not None and (isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x)):
                raise DataError(f"{where} ({d['metric']}): {k} must be a finite number, got {x!r}; an invalid "
                                "baseline never passes: regenerate it with 'dgmbench regress --update'")
        if not isinstance(d["higher_is_better"], bool):
            raise DataError(f"{where}.higher_is_better must be true or false")
        spec = METRICS.get(d["metric"])
        if spec is not None and spec.higher_is_better != d["higher_is_better"]:
            raise DataError(f"{where} ({d['metric']}): higher_is_better is {str(d['higher_is_better']).lower()}, but "
                            f"for {d['metric']} {'higher' if spec.higher_is_better else 'lower'} is better "
                            "(dgmbench's metric table); the baseline is invalid")
        return cls(**d)


@dataclass
class Baseline:
    """A set of accepted metric values; :meth:`load` / :meth:`save` read and write the JSON."""

    entries: list[BaselineEntry] = field(default_factory=list)
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    source: str | None = None
    git_rev: str | None = None
    dgmbench_version: str | None = None
    format_version: int = FORMAT_VERSION

    def get(self, model: str, dataset: str, split: str, metric: str) -> BaselineEntry | None:
        for e in self.entries:
            if e.key == (model, dataset, split, metric):
                return e
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "created": self.created,
            "source": self.source,
            "git_rev": self.git_rev,
            "dgmbench_version": self.dgmbench_version,
            "entries": [e.to_dict() for e in sorted(self.entries, key=lambda e: e.key)],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, allow_nan=False) + "\n"

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically (a temporary file and a rename: a kill never leaves half a file)."""
        atomic_write_text(path, self.to_json())

    @classmethod
    def from_dict(cls, d: Any, where: str = "baseline") -> Baseline:
        if not isinstance(d, dict):
            raise DataError(f"{where} is not a dgmbench baseline: expected a JSON object, got {type(d).__name__}")
        if "format_version" not in d:
            raise DataError(f"{where} is not a dgmbench baseline (no 'format_version'); "
                            "write one with 'dgmbench regress --update'")
        version = d["format_version"]
        if not isinstance(version, int) or isinstance(version, bool):
            raise DataError(f"{where}: format_version must be an integer, got {version!r}")
        if version > FORMAT_VERSION:
            raise DataError(f"{where} was written by a newer dgmbench (format version {version}; this one reads "
                            f"{OLDEST_READABLE_VERSION} to {FORMAT_VERSION}): upgrade dgmbench")
        if version < OLDEST_READABLE_VERSION:
            raise DataError(f"{where} has format version {version}, older than any this dgmbench reads "
                            f"({OLDEST_READABLE_VERSION} to {FORMAT_VERSION}): regenerate it with "
                            "'dgmbench regress --update'")
        while version < FORMAT_VERSION:
            d = _MIGRATIONS[version](d, where)
            version = d["format_version"]
        entries_raw = d.get("entries")
        if not isinstance(entries_raw, list):
            raise DataError(f"{where}: 'entries' must be a list")
        entries = [BaselineEntry.from_dict(e, f"{where}: entry {i}") for i, e in enumerate(entries_raw)]
        if not entries:
            raise DataError(f"{where} has no entries: a gate with nothing to check would always pass; write one "
                            "with 'dgmbench regress --update'")
        seen = set()
        for e in entries:
            if e.key in seen:
                raise DataError(f"{where}: duplicate entry for {'/'.join(e.key)}")
            seen.add(e.key)
        return cls(entries=entries, created=d.get("created") or "", source=d.get("source"),
                   git_rev=d.get("git_rev"), dgmbench_version=d.get("dgmbench_version"))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Baseline:
        """Read a baseline file; corrupt JSON or an unknown format raises :class:`DataError`."""
        path = os.fspath(path)
        if not os.path.exists(path):
            raise UsageError(f"baseline file {path} does not exist; create it from a run with "
                             f"'dgmbench regress --baseline {path} --current RESULTS.jsonl --update'")
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except json.JSONDecodeError as e:
            raise DataError(f"baseline {path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
                            "restore it from version control or rewrite it with --update") from None
        except UnicodeDecodeError:
            raise DataError(f"baseline {path} is not a UTF-8 text file; restore it from version control "
                            "or rewrite it with --update") from None
        return cls.from_dict(d, where=f"baseline {path}")


def _migrate_v1(d: dict[str, Any], where: str) -> dict[str, Any]:
    """Version 1 (values and an absolute tolerance, no directions) -> version 2."""
    rows = d.get("metrics")
    if not isinstance(rows, list):
        raise DataError(f"{where}: format version 1 needs a 'metrics' list")
    entries = []
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or "metric" not in r:
            raise DataError(f"{where}: format-1 entry {i} must be an object with a 'metric'")
        metric = r["metric"]
        if metric not in METRICS:
            raise DataError(f"{where}: cannot migrate format-1 entry {i}: metric '{metric}' has no known "
                            "direction; regenerate the baseline with 'dgmbench regress --update'")
        e = {k: r[k] for k in ("model", "dataset", "split", "metric", "value", "n") if k in r}
        e.setdefault("split", "test")
        e["higher_is_better"] = METRICS[metric].higher_is_better
        tol = r.get("tolerance")
        e["tolerance"] = {"abs": tol} if tol is not None else default_tolerance(metric).to_dict()
        entries.append(e)
    return {"format_version": 2, "created": d.get("created"), "source": d.get("source"), "entries": entries}


_MIGRATIONS = {1: _migrate_v1}


# --------------------------------------------------------------------------- records -> values
@dataclass
class Observed:
    """One metric of one (model, dataset, split) in a set of records (aggregated over seeds)."""

    value: float | None
    higher_is_better: bool | None
    n: int | None = None
    kind: str | None = None
    unit: str | None = None
    extractor_sha256: str | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    std: float | None = None
    seeds: list[int] = field(default_factory=list)
    speed_reference: float | None = None
    note: str | None = None


def uncertainty(ci_low: float | None, ci_high: float | None, std: float | None) -> float | None:
    """CI half-width when there is a CI, else the std, else None."""
    if ci_low is not None and ci_high is not None:
        return (ci_high - ci_low) / 2.0
    return std


def _finite(u: float | None) -> float | None:
    return u if u is not None and math.isfinite(u) else None


def combined_uncertainty(e: BaselineEntry, obs: Observed) -> float | None:
    """Uncertainty of ``current - baseline`` (see the module docstring); None when unknown.

    A seed spread already contains each run's own sampling noise, so when the baseline is a
    mean over k > 1 seeds the current run's CI is not added on top of it.
    """
    k_b, k_c = len(e.seeds), len(obs.seeds)
    obs = _capped(e, obs)
    if k_b > 1 and e.ci_low is None and _finite(e.std) is not None:
        if k_c > 1 and obs.ci_low is None and _finite(obs.std) is not None:
            return math.sqrt(e.std ** 2 / k_b + obs.std ** 2 / k_c)
        return e.std * math.sqrt(1.0 + 1.0 / k_b)
    us = [u for u in (_finite(uncertainty(e.ci_low, e.ci_high, e.std)),
                      _finite(uncertainty(obs.ci_low, obs.ci_high, obs.std))) if u is not None]
    return math.sqrt(sum(u * u for u in us)) if us else None


def _cap(e: BaselineEntry) -> float:
    """The largest uncertainty a current run may bring (module docstring)."""
    u_b = _finite(uncertainty(e.ci_low, e.ci_high, e.std)) or 0.0
    return max(u_b, UNCERTAINTY_CAP_REL * abs(e.value))


def _capped(e: BaselineEntry, obs: Observed) -> Observed:
    """``obs`` with its interval / std shrunk to the cap when it is wider."""
    u = _finite(uncertainty(obs.ci_low, obs.ci_high, obs.std))
    cap = _cap(e)
    if u is None or u <= cap:
        return obs
    if obs.ci_low is not None and obs.ci_high is not None:
        return replace(obs, ci_low=obs.value - cap, ci_high=obs.value + cap)
    return replace(obs, std=cap)


def uncertainty_capped(e: BaselineEntry, obs: Observed) -> bool:
    """Whether the current run's uncertainty was capped for this comparison."""
    u = _finite(uncertainty(obs.ci_low, obs.ci_high, obs.std))
    return u is not None and u > _cap(e)


def _speed_reference(record: Record, mv: MetricValue) -> float | None:
    ref = mv.extra.get("speed_reference") if mv.extra else None
    if ref is None:
        ref = record.config.get("speed_reference") if record.config else None
    try:
        ref = float(ref) if ref is not None else None
    except (TypeError, ValueError):
        return None
    return ref if ref and math.isfinite(ref) and ref > 0 else None


def _direction(name: str, mv: MetricValue) -> bool | None:
    if name in METRICS:
        return METRICS[name].higher_is_better
    return mv.higher_is_better


def observe(records: Iterable[Record]) -> dict[tuple[str, str, str, str], Observed]:
    """Collect metric values per (model, dataset, split, metric).

    A later record replaces an earlier one of the same seed (metric by metric, so two
    ``score`` calls for different metrics combine). Several seeds are aggregated: the
    value is their mean and ``std`` their spread (sample std), ``seeds`` lists them.
    """
    per_seed: dict[tuple[str, str, str, str], dict[int, tuple[Record, MetricValue]]] = {}
    for rec in records:
        for name, mv in rec.metrics.items():
            per_seed.setdefault((rec.model, rec.dataset, rec.split, name), {})[int(rec.seed)] = (rec, mv)
    out: dict[tuple[str, str, str, str], Observed] = {}
    for key, by_seed in per_seed.items():
        seeds = sorted(by_seed)
        name = key[3]
        rec0, mv0 = by_seed[seeds[0]]
        obs = Observed(value=mv0.value, higher_is_better=_direction(name, mv0), n=mv0.n, kind=mv0.kind,
                       unit=mv0.unit, extractor_sha256=mv0.extractor_sha256, ci_low=mv0.ci_low,
                       ci_high=mv0.ci_high, std=mv0.std, seeds=seeds, speed_reference=_speed_reference(rec0, mv0),
                       note=mv0.note)
        if len(seeds) > 1:
            pairs = [by_seed[s] for s in seeds]
            if any(mv.value is None for _, mv in pairs):
                obs.value, obs.note = None, "n/a for some seeds"
            else:
                if name in SPEED_METRICS:
                    refs = [_speed_reference(r, mv) for r, mv in pairs]
                    if all(refs):
                        # aggregate the machine-independent ratio, then express it in samples/s
                        # at the mean reference speed
                        ratios = [mv.value / ref for (_, mv), ref in zip(pairs, refs)]
                        obs.speed_reference = sum(refs) / len(refs)
                        vals = [r * obs.speed_reference for r in ratios]
                    else:
                        obs.speed_reference = None
                        vals = [float(mv.value) for _, mv in pairs]
                else:
                    vals = [float(mv.value) for _, mv in pairs]
                obs.value, obs.std = mean_std(vals)
                obs.ci_low = obs.ci_high = None
            if len({mv.n for _, mv in pairs}) > 1:
                obs.note = "different n across seeds"
        out[key] = obs
    return out


def baseline_from_records(records: Sequence[Record], *, overrides: dict[str, Tolerance] | None = None,
                          previous: Baseline | None = None, source: str | None = None) -> Baseline:
    """A new baseline accepting the current values.

    Tolerances: ``overrides`` (e.g. from ``--tolerance``) first, then the entry's
    tolerance in ``previous`` (so hand-tuned tolerances survive an update), then
    the metric's registry tolerance (:mod:`dgmbench.metrics.registry`). Metrics without a value or a known direction are skipped
    with a warning.
    """
    overrides = overrides or {}
    entries = []
    for (model, dataset, split, metric), obs in sorted(observe(records).items()):
        where = f"{model} / {dataset}:{split} / {metric}"
        if obs.value is None:
            warnings.warn(f"{where}: no value ({obs.note or 'n/a'}); not added to the baseline", stacklevel=2)
            continue
        if obs.higher_is_better is None:
            warnings.warn(f"{where}: unknown metric with no direction; not added to the baseline", stacklevel=2)
            continue
        bad = [f"{k}={v}" for k, v in (("value", obs.value), ("ci_low", obs.ci_low), ("ci_high", obs.ci_high),
                                        ("std", obs.std)) if v is not None and not math.isfinite(v)]
        if bad:
            raise DataError(f"{where}: {', '.join(bad)} is not finite; a baseline never stores a non-finite value "
                            "(fix the run, or leave the metric out of it)")
        tol = _override(overrides, metric)
        if tol is None and previous is not None:
            old = previous.get(model, dataset, split, metric)
            tol = old.tolerance if old is not None else None
        if tol is None:
            tol = default_tolerance(metric)
        entries.append(BaselineEntry(
            model=model, dataset=dataset, split=split, metric=metric, value=float(obs.value),
            higher_is_better=bool(obs.higher_is_better), tolerance=tol, n=obs.n, kind=obs.kind, unit=obs.unit,
            extractor_sha256=obs.extractor_sha256, ci_low=obs.ci_low, ci_high=obs.ci_high, std=obs.std,
            seeds=obs.seeds, speed_reference=obs.speed_reference if metric in SPEED_METRICS else None))
    if not entries:
        raise DataError("the current results have no metric values to write into a baseline")
    return Baseline(entries=entries, source=source, git_rev=git_revision(), dgmbench_version=__version__)


# --------------------------------------------------------------------------- comparison
@dataclass
class Row:
    """One line of the comparison table."""

    model: str
    dataset: str
    split: str
    metric: str
    baseline: float | None
    current: float | None
    delta: float | None  # current - baseline (ratios to the speed reference for speed)
    allowed: float | None  # allowed worsening, same units as delta
    tolerance: str  # which part sets ``allowed``
    verdict: str
    higher_is_better: bool | None
    note: str = ""
    per_reference: bool = False  # speed compared as samples/s divided by the reference workload's speed

    @property
    def failed(self) -> bool:
        return self.verdict in FAILING


@dataclass
class Comparison:
    rows: list[Row]
    baseline_path: str | None = None
    current_path: str | None = None

    @property
    def failed(self) -> bool:
        return any(r.failed for r in self.rows)

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rows:
            out[r.verdict] = out.get(r.verdict, 0) + 1
        return out

    def summary(self) -> str:
        c = self.counts
        order = [REGRESSED, MISSING, INCOMPARABLE, IMPROVED, OK, NEW, UNCHECKED]
        parts = ", ".join(f"{c[v]} {v}" for v in order if c.get(v))
        checked = sum(c.get(v, 0) for v in (OK, IMPROVED, REGRESSED, MISSING, INCOMPARABLE))
        return f"{checked} baseline metrics checked: {parts or 'nothing to compare'} -> {'FAIL' if self.failed else 'PASS'}"

    def to_dict(self) -> dict[str, Any]:
        return {"passed": not self.failed, "counts": self.counts, "baseline": self.baseline_path,
                "current": self.current_path,
                "rows": [asdict(r) | {"failed": r.failed} for r in self.rows]}


def _worsening(base: float, cur: float, higher_is_better: bool) -> float:
    """How much worse ``cur`` is than ``base`` (negative = better); handles infinities."""
    if base == cur:
        return 0.0
    if math.isnan(cur):
        return math.inf
    if math.isnan(base):
        return -math.inf
    return (base - cur) if higher_is_better else (cur - base)


def _compare_entry(e: BaselineEntry, obs: Observed | None, overrides: dict[str, Tolerance]) -> Row:
    row = Row(e.model, e.dataset, e.split, e.metric, e.value, None, None, None, "", MISSING, e.higher_is_better)
    if obs is None:
        row.note = "not in the current results"
        return row
    if obs.value is None:
        row.note = f"no value in the current results ({obs.note or 'n/a'})"
        return row
    base, cur = float(e.value), float(obs.value)
    u = combined_uncertainty(e, obs)
    notes = []
    if uncertainty_capped(e, obs):
        notes.append(f"the current run's uncertainty was capped at {_cap(e):.4g} (max of the baseline's and "
                     f"{UNCERTAINTY_CAP_REL:.0%} of |baseline|)")
    if e.metric in SPEED_METRICS:
        if e.speed_reference is None or obs.speed_reference is None:
            side = "baseline" if e.speed_reference is None else "current run"
            row.current, row.delta = cur, cur - base
            row.verdict = UNCHECKED
            row.note = (f"the {side} has no speed_reference, so the machine-dependent samples/s cannot be "
                        "compared; measure one with dgmbench.metrics.speed.measure_speed_reference()")
            return row
        # compare machine-independent ratios; show them as "x reference"
        base, cur = base / e.speed_reference, cur / obs.speed_reference
        u = None if u is None else u / e.speed_reference
        row.baseline, row.per_reference = base, True
    row.current = cur
    row.delta = cur - base
    mismatch = []
    if e.n is not None and obs.n is not None and e.n != obs.n:
        mismatch.append(f"n {e.n} -> {obs.n}")
    if e.kind is not None and obs.kind is not None and e.kind != obs.kind:
        mismatch.append(f"kind {e.kind} -> {obs.kind}")
    if e.unit and obs.unit and e.unit != obs.unit:  # e.g. 8-bit bits/dim against bits/dim of a 17-level grid
        mismatch.append(f"unit {e.unit} -> {obs.unit}")
    if e.extractor_sha256 and obs.extractor_sha256 and e.extractor_sha256 != obs.extractor_sha256:
        mismatch.append(f"feature extractor weights {e.extractor_sha256[:12]} -> {obs.extractor_sha256[:12]}")
    tol = _override(overrides, e.metric) or e.tolerance
    row.allowed = tol.allowed(base, u)
    row.tolerance = tol.source(base, u)
    if mismatch:
        row.verdict = INCOMPARABLE
        notes.append("; ".join(mismatch) + ": the values measure different things (rerun with the baseline's "
                     "settings, or accept the change with --update)")
    else:
        worse = _worsening(base, cur, e.higher_is_better)
        slack = row.allowed + 1e-12 * max(1.0, abs(base) if math.isfinite(base) else 1.0)
        if worse > slack:
            row.verdict = REGRESSED
            if not math.isfinite(cur):
                notes.append(f"current value is {cur}")
        elif -worse > slack:
            row.verdict = IMPROVED
        else:
            row.verdict = OK
    if obs.note:
        notes.append(obs.note)
    row.note = "; ".join(notes)
    return row


def compare(baseline: Baseline, records: Sequence[Record], *, overrides: dict[str, Tolerance] | None = None,
            baseline_path: str | None = None, current_path: str | None = None) -> Comparison:
    """Compare the current ``records`` with ``baseline`` metric by metric.

    ``overrides`` replace the stored tolerance of the metrics they name (``*``: all).
    Every baseline entry yields a row (``missing`` when the current run lacks it); metrics
    of the current run that the baseline does not know are listed as ``new``.
    """
    overrides = overrides or {}
    obs = observe(records)
    rows = [_compare_entry(e, obs.get(e.key), overrides) for e in sorted(baseline.entries, key=lambda e: e.key)]
    known = {e.key for e in baseline.entries}
    for key in sorted(k for k in obs if k not in known):
        o = obs[key]
        rows.append(Row(*key, None, o.value, None, None, "", NEW, o.higher_is_better,
                        "not in the baseline; add it with --update"))
    return Comparison(rows, baseline_path=baseline_path, current_path=current_path)


# --------------------------------------------------------------------------- speed reference
def attach_speed_reference(records: Iterable[Record], reference: float | None = None, **kw: Any) -> float:
    """Store a speed reference (measured now unless given) in each record's ``config``
    that lacks one; call it in the process that measured the records' samples/s."""
    records = list(records)
    if reference is None:
        reference = measure_speed_reference(**kw)
    for r in records:
        r.config.setdefault("speed_reference", reference)
    return reference
