"""From table Records to per-model summaries across seeds.

``dgmbench table`` writes one :class:`~dgmbench.results.Record` per (family, seed) with
``config["table"]`` holding the run's facts: family, preset, seed, ``status`` (``ok``,
``diverged`` or ``failed``), ``note``, checkpoint path and sha256, training steps,
``history`` (the trainer's loss log), ``likelihood_kind``, ``nfe_per_sample``, on
mixtures ``num_modes``, and for a scored run its sample grid file ``sample_grid`` (relative
to the leaderboard's folder) with ``sample_grid_sha256``. A diverged or failed run has no
metrics and no grid.

Aggregates over seeds use finished runs only: mean and sample std (ddof=1), and the median
where one seed dominates the mean (:func:`dgmbench.results.tail_median`).

The table's real-data row (held-out training items scored as if they were a model, family
``REAL_FAMILY``, ``config.table.real_data`` true) sorts first.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..data.registry import DATASETS
from ..results import Record, mean_std, tail_median
from .stars import collapsed_image_run, collapsed_modes_run

# family display order: the registry's
FAMILY_ORDER = ("autoregressive", "vae", "flow", "gan", "ebm", "score", "diffusion")

# the quality metric whose spread across seeds measures training stability
STABILITY_METRIC = {"image": "fid", "points": "hq_fraction"}
# the metric standing for "explicit density" in the comparison table
DENSITY_METRIC = {"image": "bpd", "points": "nll"}
REAL_FAMILY = "real data"


def is_real_data(record: Record) -> bool:
    """True for the table's real-data row."""
    return bool(table_info(record).get("real_data")) or record.family == REAL_FAMILY


def table_info(record: Record) -> dict:
    """The ``config["table"]`` block of a table Record ({} for other records)."""
    return dict((record.config or {}).get("table") or {})


def record_status(record: Record) -> str:
    return table_info(record).get("status", "ok")


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


@dataclass
class ModelSummary:
    """One model (family + preset) across its seeds."""

    family: str
    preset: str | None
    model: str
    records: list[Record] = field(default_factory=list)

    @property
    def is_real(self) -> bool:
        """The real-data row (held-out training items), not a model."""
        return bool(self.records) and all(is_real_data(r) for r in self.records)

    @property
    def seeds(self) -> list[int]:
        return sorted(r.seed for r in self.records)

    @property
    def finished(self) -> list[Record]:
        return [r for r in self.records if record_status(r) == "ok"]

    @property
    def n_runs(self) -> int:
        return len(self.records)

    @property
    def n_diverged(self) -> int:
        """Diverged training runs plus runs whose samples could not be scored (e.g. NaN)."""
        return sum(1 for r in self.records if record_status(r) != "ok")

    @property
    def likelihood_kind(self) -> str:
        for r in self.records:
            for name in ("bpd", "nll"):
                mv = r.metrics.get(name)
                if mv is not None and mv.kind:
                    return mv.kind
        for r in self.records:
            kind = table_info(r).get("likelihood_kind")
            if kind:
                return kind
        return "none"

    @property
    def nfe(self) -> float | None:
        vals = self.values("nfe")
        if vals:
            return vals[0]
        for r in self.records:
            v = table_info(r).get("nfe_per_sample")
            if _finite(v):
                return float(v)
        return None

    @property
    def num_modes(self) -> int | None:
        for r in self.records:
            v = table_info(r).get("num_modes")
            if v:
                return int(v)
            mv = r.metrics.get("modes_captured")
            if mv is not None and mv.extra.get("num_modes"):
                return int(mv.extra["num_modes"])
        return None

    def collapsed(self, kind: str) -> list[Record]:
        """Finished runs that collapsed: recall < 0.1 on images, fewer than half the modes on 2-D
        mixtures (see :mod:`.stars`)."""
        if self.is_real:
            return []
        out = []
        for r in self.finished:
            if kind == "image":
                bad = collapsed_image_run(r.value("recall"))
            else:
                mv = r.metrics.get("modes_captured")
                k = table_info(r).get("num_modes") or (mv.extra.get("num_modes") if mv is not None else None)
                bad = collapsed_modes_run(r.value("modes_captured"), k)
            if bad:
                out.append(r)
        return out

    def n_failed(self, kind: str) -> int:
        """Diverged, unscorable and collapsed runs."""
        return self.n_diverged + len(self.collapsed(kind))

    def healthy_values(self, name: str, kind: str) -> list[float]:
        """Finite values of ``name`` over finished runs that did not collapse, in seed order."""
        bad = {id(r) for r in self.collapsed(kind)}
        out = []
        for r in sorted(self.finished, key=lambda r: r.seed):
            v = r.value(name)
            if id(r) not in bad and _finite(v):
                out.append(float(v))
        return out

    def extractors(self, name: str) -> list[str]:
        """The feature extractors ``name`` was computed with over finished runs."""
        out: list[str] = []
        for r in self.finished:
            mv = r.metrics.get(name)
            if mv is not None and mv.extractor and mv.extractor not in out:
                out.append(mv.extractor)
        return out

    def metric_names(self) -> list[str]:
        names: list[str] = []
        for r in self.finished:
            for k in r.metrics:
                if k not in names:
                    names.append(k)
        return names

    def runs(self, name: str, extractor: str | None = None):
        """(Record, MetricValue) of ``name`` over finished runs in seed order (``extractor``'s only when given)."""
        for r in sorted(self.finished, key=lambda r: r.seed):
            mv = r.metrics.get(name)
            if mv is not None and (extractor is None or mv.extractor == extractor):
                yield r, mv

    def value_notes(self, name: str, extractor: str | None = None) -> list[str]:
        """Distinct notes on the finite values of ``name`` (e.g. why a FID-inf is negative, on what subset
        an NLL was computed), in seed order."""
        out: list[str] = []
        for _, mv in self.runs(name, extractor):
            if _finite(mv.value) and mv.note and mv.note not in out:
                out.append(str(mv.note))
        return out

    def values(self, name: str, extractor: str | None = None) -> list[float]:
        """Finite values of ``name`` over finished runs, in seed order (only those computed with
        ``extractor`` when given)."""
        return [float(mv.value) for _, mv in self.runs(name, extractor) if _finite(mv.value)]

    def mean(self, name: str, extractor: str | None = None) -> float | None:
        return mean_std(self.values(name, extractor))[0]

    def std(self, name: str, extractor: str | None = None) -> float | None:
        """Sample std (ddof = 1) over finished seeds; None for fewer than 2."""
        return mean_std(self.values(name, extractor))[1]

    def tail_median(self, name: str, extractor: str | None = None) -> float | None:
        """The median over finished seeds when one seed dominates the mean (:func:`results.tail_median`), else None."""
        return tail_median(self.values(name, extractor))

    def median(self, name: str, extractor: str | None = None) -> float | None:
        """The median over finished seeds (None for none)."""
        vals = self.values(name, extractor)
        return statistics.median(vals) if vals else None

    def metric(self, name: str, extractor: str | None = None):
        """The MetricValue of the first finished run that has ``name`` (unit, kind, extractor)."""
        for _, mv in self.runs(name, extractor):
            return mv
        return None

    def notes(self) -> list[str]:
        return [f"seed {r.seed}: {record_status(r)}" + (f" ({table_info(r)['note']})" if table_info(r).get("note") else "")
                for r in self.records if record_status(r) != "ok"]


def _family_rank(family: str) -> int:
    """The real-data row first, then the registry's family order, then the others."""
    if family == REAL_FAMILY:
        return -1
    return FAMILY_ORDER.index(family) if family in FAMILY_ORDER else len(FAMILY_ORDER)


def record_order(record: Record) -> tuple:
    """Sort key of Records in a leaderboard: real data first, then families in registry order, seeds."""
    family = table_info(record).get("family") or record.family or ""
    return (_family_rank(family), family, record.seed)


def summarize(records: Iterable[Record]) -> list[ModelSummary]:
    """Group records by (family, preset) in the registry's family order."""
    groups: dict[tuple[str, str | None], ModelSummary] = {}
    for r in records:
        info = table_info(r)
        family = r.family or info.get("family") or r.model
        preset = info.get("preset")
        key = (family, preset)
        if key not in groups:
            groups[key] = ModelSummary(family=family, preset=preset, model=r.model)
        groups[key].records.append(r)
    return sorted(groups.values(), key=lambda s: (_family_rank(s.family), s.family, s.preset or ""))


def dataset_kind(records: Iterable[Record]) -> str:
    """'image' or 'points', from the dataset registry (or from the metrics present)."""
    records = list(records)
    if records:
        try:

            info = DATASETS.get(records[0].dataset)
            if info is not None:
                return info.kind
        except ImportError:  # pragma: no cover
            pass
        for r in records:
            if "modes_captured" in r.metrics or "hq_fraction" in r.metrics:
                return "points"
    return "image"
