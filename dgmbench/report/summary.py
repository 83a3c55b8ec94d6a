"""From table Records to per-model summaries across seeds.

``dgmbench table`` writes one :class:`~dgmbench.results.Record` per (family, seed) with
``config["table"]`` holding the run's facts: family, preset, seed, ``status`` (``ok``,
``diverged`` or ``failed``), ``note``, checkpoint path and sha256, training steps,
``history`` (the trainer's loss log), ``likelihood_kind``, ``nfe_per_sample``, on
mixtures ``num_modes``, and for a scored run its sample grid file ``sample_grid`` (relative
to the leaderboard's folder) with ``sample_grid_sha256``. A diverged or failed run has no
metrics and no grid.

Aggregates over seeds use finished runs only: mean and sample std (ddof=1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..data.registry import DATASETS
from ..results import Record

# family display order: the registry's
FAMILY_ORDER = ("autoregressive", "vae", "flow", "gan", "ebm", "score", "diffusion")

# the quality metric whose spread across seeds measures training stability
STABILITY_METRIC = {"image": "fid", "points": "hq_fraction"}
# the metric standing for "explicit density" in the comparison table
DENSITY_METRIC = {"image": "bpd", "points": "nll"}


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

    def metric_names(self) -> list[str]:
        names: list[str] = []
        for r in self.finished:
            for k in r.metrics:
                if k not in names:
                    names.append(k)
        return names

    def values(self, name: str) -> list[float]:
        """Finite values of ``name`` over finished runs, in seed order."""
        out = []
        for r in sorted(self.finished, key=lambda r: r.seed):
            v = r.value(name)
            if _finite(v):
                out.append(float(v))
        return out

    def mean(self, name: str) -> float | None:
        v = self.values(name)
        return sum(v) / len(v) if v else None

    def std(self, name: str) -> float | None:
        v = self.values(name)
        if len(v) < 2:
            return None
        m = sum(v) / len(v)
        return math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))

    def metric(self, name: str):
        """The MetricValue of the first finished run that has ``name`` (unit, kind, extractor)."""
        for r in sorted(self.finished, key=lambda r: r.seed):
            if name in r.metrics:
                return r.metrics[name]
        return None

    def notes(self) -> list[str]:
        return [f"seed {r.seed}: {record_status(r)}" + (f" ({table_info(r)['note']})" if table_info(r).get("note") else "")
                for r in self.records if record_status(r) != "ok"]


def _family_rank(family: str) -> int:
    return FAMILY_ORDER.index(family) if family in FAMILY_ORDER else len(FAMILY_ORDER)


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
