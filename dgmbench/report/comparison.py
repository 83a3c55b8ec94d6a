"""The measured comparison table: each family rated 1-5 stars per column, numbers beside.

Columns: explicit density, training stability, sample quality, sample speed, mode
coverage. The rules are in :mod:`dgmbench.report.stars` (``RULES``) and are printed
under the table wherever it appears.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..units import EIGHT_BIT_LEVELS, bpd_unit, uniform_bpd
from . import stars as S
from .summary import DENSITY_METRIC, STABILITY_METRIC, ModelSummary

COLUMNS: list[tuple[str, str]] = [
    ("density", "explicit density"),
    ("stability", "training stability"),
    ("quality", "sample quality"),
    ("speed", "sample speed"),
    ("coverage", "mode coverage"),
]


@dataclass
class Cell:
    stars: int | None
    text: str

    def markdown(self) -> str:
        return f"{S.star_string(self.stars)} {self.text}".strip()


@dataclass
class ComparisonRow:
    family: str
    preset: str | None
    cells: dict[str, Cell]
    is_real: bool = False  # the real-data row (the anchor of sample quality)


def fmt(x: float | None, digits: int = 3) -> str:
    """Compact number: 3 significant digits, thousands as integers, '-' for missing."""
    if x is None:
        return "-"
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if abs(x) >= 10 ** digits:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def rules_for(kind: str) -> dict[str, str]:
    """Column -> rule text for a dataset kind ('image' or 'points')."""
    return {
        "density": S.RULES["density"],
        "stability": S.RULES["stability"],
        "quality": S.RULES["quality"] if kind == "image" else S.RULES["quality_points"],
        "speed": S.RULES["speed"],
        "coverage": S.RULES["coverage_images"] if kind == "image" else S.RULES["coverage_modes"],
    }


def _best(values, lower_is_better: bool):
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return None
    return min(vals) if lower_is_better else max(vals)


def _all_values(s: ModelSummary, name: str) -> list[float]:
    """Values of ``name`` over finished runs, keeping infinities (e.g. reverse KL with no HQ sample)."""
    out = []
    for r in s.finished:
        v = r.value(name)
        if v is not None and not math.isnan(v):
            out.append(float(v))
    return out


def _mean_keep_inf(vals: list[float]) -> float | None:
    if not vals:
        return None
    if any(math.isinf(v) for v in vals):
        return math.inf
    return sum(vals) / len(vals)


def _grid(s: ModelSummary, name: str) -> int:
    """The grid (values per sub-pixel) a model's bits/dim are on: 256 unless its Record says otherwise."""
    mv = s.metric(name)
    return int(mv.extra.get("grid_levels", EIGHT_BIT_LEVELS)) if name == "bpd" and mv is not None else EIGHT_BIT_LEVELS


def comparison_table(summaries: list[ModelSummary], kind: str) -> list[ComparisonRow]:
    """Rate every model of one table (one dataset) by the rules in :mod:`stars`.

    "Best in this table" is over the models (the real-data row is left out); the real-data row's
    FID anchors sample quality. The real-data row itself is rated for quality and coverage only."""
    dens_name = DENSITY_METRIC[kind]
    qual_name = STABILITY_METRIC[kind]
    models = [s for s in summaries if not s.is_real]
    real = next((s for s in summaries if s.is_real), None)
    real_fid = real.mean("fid") if real is not None else None
    grid = {id(s): _grid(s, dens_name) for s in summaries}  # bits/dim compare only on one grid
    best_density = {g: _best([s.mean(dens_name) for s in models if s.likelihood_kind != "none" and grid[id(s)] == g],
                             True) for g in set(grid.values())}
    best_fid = _best([s.mean("fid") for s in models], True)
    best_speed = _best([s.mean("samples_per_s") for s in models], False)
    rows = []
    for s in summaries:
        cells: dict[str, Cell] = {}
        # explicit density
        kind_ = s.likelihood_kind
        dens = s.mean(dens_name)
        unit = bpd_unit(grid[id(s)]) if dens_name == "bpd" else "nats"
        uniform = uniform_bpd(grid[id(s)])
        if s.is_real:
            cells["density"] = Cell(None, "real data: not a model")
        else:
            text = kind_ if dens is None or kind_ == "none" else f"{kind_}, {fmt(dens)} {unit}"
            if dens_name == "bpd" and kind_ != "none" and dens is not None and \
                    dens >= uniform * (1 - S.UNIFORM_MARGIN):
                text += f" (uniform: {uniform:.2f})"
            cells["density"] = Cell(S.density_stars(kind_, dens, best_density[grid[id(s)]],
                                                    bits_per_dim=dens_name == "bpd", uniform=uniform), text)
        # stability: failures (diverged, unscorable, collapsed) and spread of the healthy runs
        vals = s.healthy_values(qual_name, kind)
        n_coll = len(s.collapsed(kind))
        cv = S.coefficient_of_variation(vals)
        label = "FID" if qual_name == "fid" else "HQ"
        parts = []
        if vals:
            m = sum(vals) / len(vals)
            sd = S.sample_std(vals)
            parts.append(f"{label} {fmt(m)}" + (f" ± {fmt(sd, 2)}" if sd is not None else ""))
        if cv is not None:
            parts.append(f"cv {fmt(100 * cv, 2)}%")
        parts.append(f"{s.n_diverged}/{s.n_runs} diverged")
        if n_coll:
            why = f"recall < {S.COLLAPSE_RECALL:g}" if kind == "image" else "< half the modes"
            parts.append(f"{n_coll}/{s.n_runs} collapsed ({why})")
        if s.is_real:
            cells["stability"] = Cell(None, "real data: not trained")
        else:
            cells["stability"] = Cell(S.stability_stars(vals, s.n_failed(kind), s.n_runs), ", ".join(parts))
        # quality
        if kind == "image":
            fid, prec = s.mean("fid"), s.mean("precision")
            ratio = (f"{fmt(fid / real_fid)}x real" if fid is not None and real_fid and real_fid > 0 and not s.is_real
                     else "")
            text = ", ".join(p for p in (f"FID {fmt(fid)}" if fid is not None else "", ratio,
                                        f"precision {fmt(prec)}" if prec is not None else "") if p)
            cells["quality"] = Cell(S.quality_stars(fid, best_fid if not s.is_real else fid, prec,
                                                    real_fid if not s.is_real else None), text or "not measured")
        else:
            hq = s.mean("hq_fraction")
            mmd = s.mean("mmd")
            text = ", ".join(p for p in (f"{fmt(100 * hq)}% HQ" if hq is not None else "",
                                        f"MMD² {fmt(mmd)}" if mmd is not None else "") if p)
            cells["quality"] = Cell(S.band_stars(hq), text or "not measured")
        # speed
        sps = s.mean("samples_per_s")
        nfe = s.nfe
        if s.is_real:
            cells["speed"] = Cell(None, "real data: not sampled")
        else:
            text = ", ".join(p for p in (f"{fmt(sps)} samples/s" if sps is not None else "",
                                        f"NFE {fmt(nfe)}" if nfe is not None else "") if p)
            if sps is not None and best_speed and sps < best_speed:
                text += f", {fmt(best_speed / sps)}x slower than the fastest"
            cells["speed"] = Cell(S.speed_stars(sps, best_speed), text or "not measured")
        # coverage
        if kind == "image":
            rec, cov = s.mean("recall"), s.mean("coverage")
            text = ", ".join(p for p in (f"recall {fmt(rec)}" if rec is not None else "",
                                        f"coverage {fmt(cov)}" if cov is not None else "") if p)
            cells["coverage"] = Cell(S.image_coverage_stars(rec, cov), text or "not measured")
        else:
            captured = s.mean("modes_captured")
            k = s.num_modes
            rkl = _mean_keep_inf(_all_values(s, "mode_rkl"))
            if captured is None:
                cells["coverage"] = Cell(None, "not measured")
            else:
                text = f"{fmt(captured)}/{k if k else '?'} modes" + (f", rKL {fmt(rkl)}" if rkl is not None else "")
                cells["coverage"] = Cell(S.mode_coverage_stars(captured, k, rkl), text)
        rows.append(ComparisonRow(s.family, s.preset, cells, is_real=s.is_real))
    return rows


def comparison_markdown(rows: list[ComparisonRow], kind: str, *, with_rules: bool = True) -> str:
    head = "| family | " + " | ".join(title for _, title in COLUMNS) + " |"
    sep = "|---" * (len(COLUMNS) + 1) + "|"
    lines = [head, sep]
    for row in rows:
        lines.append(f"| {row.family} | " + " | ".join(row.cells[c].markdown() for c, _ in COLUMNS) + " |")
    if with_rules:
        lines.append("")
        lines.append("Star rules (numbers are means over finished seeds):")
        rules = rules_for(kind)
        for c, title in COLUMNS:
            lines.append(f"- **{title}**: {rules[c]}")
    return "\n".join(lines)


def comparison_frame(rows: list[ComparisonRow]):
    """The comparison table as a DataFrame: per column, '<col>_stars' and '<col>' (the numbers)."""
    import pandas as pd

    data = []
    for row in rows:
        d = {"family": row.family, "preset": row.preset}
        for c, _ in COLUMNS:
            d[f"{c}_stars"] = row.cells[c].stars
            d[c] = row.cells[c].text
        data.append(d)
    return pd.DataFrame(data)
