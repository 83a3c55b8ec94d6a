"""Sampler-sweep files from Records: one checkpoint scored under several sampler settings.

``dgmbench sweep`` writes one :class:`~dgmbench.results.Record` per setting with
``config["sampling_options"]`` (the options given), ``config["sampler"]`` (the settings the
model reports after them, :func:`dgmbench.sampling.describe_sampler`, with
``nfe_per_sample``: network evaluations per sample) and ``config["sweep"]`` (``index``: the
row, ``setting`` text, ``columns``: the sampler settings in the model's order, ``cpu_time_s``:
this process's CPU seconds for the setting, ``x``: the plot's x axis, ``command``, ``key``: what a
rerun compares before reusing the row). This module
turns them into the Markdown table (one row per setting) and the PNG plot (each sample metric
against NFE, or against a numeric sampler setting such as ``guidance``). It never loads a model.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..metrics.registry import METRICS
from ..results import Record
from .comparison import fmt
from .leaderboard import metric_cell, metric_header, provenance_lines
from .plots import COLORS, clipped_errors, figure_png, new_figure
from .summary import ModelSummary, dataset_kind

NFE = "nfe"  # the x axis "network evaluations per sample" (from config.sampler.nfe_per_sample)
SPEED_METRICS = ("samples_per_s", "nfe")  # shown as columns, never plotted against NFE
# a sampler setting that moves along the NFE axis rather than naming a curve
NFE_SETTINGS = frozenset({"steps", "levels", "steps_per_level", "sample_steps"})
MARKERS = ("o", "s", "^", "D", "v", "P")
MIN_LOG_GAP = 0.15  # log10 distance below which a second x tick gets no label (40 and 50 would overlap)
DODGE = 0.04  # curves sharing an x value are drawn this fraction of the step apart (log axis: x factor)


@dataclass
class SweepMeta:
    """What the header of a sweep file says besides the numbers."""

    name: str
    command: str
    model: str
    checkpoint_sha256: str | None = None
    x: str = NFE


def sweep_info(rec: Record) -> dict[str, Any]:
    """The ``config["sweep"]`` block of a sweep Record ({} for other records)."""
    return dict((rec.config or {}).get("sweep") or {})


def sampler_settings(rec: Record) -> dict[str, Any]:
    """The sampler settings the model reported for this row (without its NFE)."""
    return {k: v for k, v in ((rec.config or {}).get("sampler") or {}).items() if k != "nfe_per_sample"}


def nfe(rec: Record) -> float | None:
    """Network evaluations per sample of the row's sampler (None when the model does not say)."""
    return x_of((rec.config or {}).get("sampler") or {}, NFE)


def x_of(sampler: dict[str, Any], x: str) -> float | None:
    """A position on the plot's x axis from a sampler description (:func:`dgmbench.sampling.describe_sampler`):
    its ``nfe_per_sample`` for ``x = "nfe"``, else the numeric setting ``x``; None when it has none."""
    v = sampler.get("nfe_per_sample" if x == NFE else x)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else None


def x_value(rec: Record, x: str) -> float | None:
    """The row's position on the plot's x axis: its NFE, or the numeric sampler setting ``x``."""
    return x_of((rec.config or {}).get("sampler") or {}, x)


def setting_columns(records: Sequence[Record]) -> list[str]:
    """Sampler setting names over all rows, in the order the model reports them (``config.sweep.columns``:
    a JSON object's keys come back sorted)."""
    cols: list[str] = []
    for r in records:
        cols += [k for k in sweep_info(r).get("columns") or sampler_settings(r) if k not in cols]
    return cols


def sample_metrics(records: Sequence[Record]) -> list[str]:
    """Metrics with a value in some row, in registry order (speed metrics last)."""
    present = {m for r in records for m, mv in r.metrics.items() if mv.value is not None}
    ordered = [m for m in METRICS if m in present] + sorted(present - set(METRICS))
    return [m for m in ordered if m not in SPEED_METRICS] + [m for m in SPEED_METRICS if m in present and m != "nfe"]


def _text(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return fmt(v, 4)
    return str(v)


def _extractor(records: Sequence[Record], m: str) -> str | None:
    return next((r.metrics[m].extractor for r in records if m in r.metrics and r.metrics[m].extractor), None)


def is_sweep(records: Sequence[Record]) -> bool:
    """True when every record is a sweep row (``config["sweep"]``)."""
    return bool(records) and all(sweep_info(r) for r in records)


def sweep_rows(records: Sequence[Record]) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of the sweep table: one row per setting with its sampler settings, NFE,
    metrics (value with its interval or std) and its wall and CPU seconds."""
    records = sorted(records, key=lambda r: sweep_info(r).get("index", 0))
    kind = dataset_kind(records) if records else "image"
    cols = setting_columns(records)
    metrics = sample_metrics(records)
    heads = (["#", "setting", *cols, "NFE/sample ↓"]
             + [metric_header(m, None, kind, _extractor(records, m)) for m in metrics] + ["wall (s)", "CPU (s)"])
    rows = []
    for r in records:
        info, st = sweep_info(r), sampler_settings(r)
        one = ModelSummary(family=r.family or r.model, preset=None, model=r.model, records=[r])
        rows.append([str(info.get("index", "")), str(info.get("setting", ""))] + [_text(st.get(c)) for c in cols]
                    + [_text(nfe(r))] + [metric_cell(one, m) for m in metrics]
                    + [fmt(r.wall_time_s), fmt(info.get("cpu_time_s"))])
    return heads, rows


def sweep_table(records: Sequence[Record]) -> str:
    """The Markdown table of :func:`sweep_rows` (settings in backticks)."""
    heads, rows = sweep_rows(records)
    lines = ["| " + " | ".join(heads) + " |", "|---" * len(heads) + "|"]
    lines += ["| " + " | ".join([row[0], f"`{row[1]}`", *row[2:]]) + " |" for row in rows]
    return "\n".join(lines)


SWEEP_NOTE = ("One checkpoint, one row per `--sampling` setting; options a setting does not name keep the "
              "checkpoint's own defaults. Every row uses the same seed, so the same requested labels (balanced "
              "classes for a class-conditional model) and the same seeded noise generator. NFE/sample counts "
              "network evaluations per sample (the model's `nfe_per_sample`; a classifier-free guided step with "
              "w other than 0 or 1 evaluates the conditional and unconditional rows, 2 per step). Guidance w is "
              "eps_uncond + w (eps_cond - eps_uncond): w = 0 is the unconditional model, w = 1 the conditional "
              "one without guidance (Ho & Salimans 2022 write the same rule as (1 + w') eps_cond - w' eps_uncond, "
              "w' = w - 1). FID is shown "
              "with its 95% interval; conditional accuracy (the domain classifier's agreement with the requested "
              "class) with its binomial std. wall and CPU are each setting's seconds (sampling, features and "
              "metrics; CPU is the process's user+system time).")


def sweep_markdown(records: Sequence[Record], meta: SweepMeta) -> str:
    """The whole Markdown file: the command, what was scored and how, the table, the notes."""
    records = sorted(records, key=lambda r: sweep_info(r).get("index", 0))
    first = records[0] if records else None
    sha = f" (sha256 {meta.checkpoint_sha256[:12]})" if meta.checkpoint_sha256 else ""
    what = (f"model `{meta.model}`{sha}, dataset `{first.dataset}`, split {first.split}, n = {first.n_samples}, "
            f"seed {first.seed}" if first else f"model `{meta.model}`{sha}")
    opts = (first.config or {}).get("options", {}) if first else {}
    out = [f"<!-- generated by: {meta.command} -->", f"# dgmbench sampler sweep: {meta.name}", "",
           f"Generated by `{meta.command}` ({what}).", ""]
    out += provenance_lines(list(records))
    interval = {"delta": "delta method", "bootstrap": "bootstrap"}.get(opts.get("fid_interval"), "none")
    axis = "NFE per sample (log scale)" if meta.x == NFE else f"`{meta.x}`"
    out += ["", SWEEP_NOTE + f" FID interval: {interval}.", "", sweep_table(records), "",
            f"![each metric against {axis}]({meta.name}.png)", ""]
    notes = sorted({n for r in records for n in (r.config or {}).get("notes") or []})
    notes += sorted({f"{m}: {mv.note}" for r in records for m, mv in r.metrics.items() if mv.value is None and mv.note})
    if notes:
        out += ["Notes:", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(out)


def _series_key(rec: Record, x: str, varying: Sequence[str]) -> tuple:
    """Rows on one curve share every varying setting except the x axis (and, against NFE, the step counts)."""
    skip = {x} | (NFE_SETTINGS if x == NFE else set())
    st = sampler_settings(rec)
    return tuple((k, st.get(k)) for k in varying if k not in skip)


def sweep_png(records: Sequence[Record], x: str = NFE, title: str | None = None) -> bytes | None:
    """One panel per sample metric against ``x`` (NFE on a log axis, or a numeric sampler setting on a
    linear one), a line per group of rows that differ only along ``x``, 95% error bars clipped to the
    metric's range. None when no row has both an x value and a metric value."""
    rows = [r for r in records if x_value(r, x) is not None]
    metrics = [m for m in sample_metrics(rows) if m not in SPEED_METRICS]
    if not rows or not metrics:
        return None
    cols = setting_columns(rows)
    varying = [c for c in cols if len({repr(sampler_settings(r).get(c)) for r in rows}) > 1]
    fixed = [f"{c}={_text(sampler_settings(rows[0]).get(c))}" for c in cols if c not in varying]
    series: dict[tuple, list[Record]] = {}
    for r in rows:
        series.setdefault(_series_key(r, x, varying), []).append(r)
    # a curve's colour follows its numeric settings (e.g. guidance), its marker its words (e.g. the sampler)
    numeric = {k: tuple(kv for kv in k if _is_number(kv[1])) for k in series}
    words = {k: tuple(kv for kv in k if not _is_number(kv[1])) for k in series}
    color_of = {v: COLORS[i % len(COLORS)] for i, v in enumerate(dict.fromkeys(numeric.values()))}
    marker_of = {v: MARKERS[i % len(MARKERS)] for i, v in enumerate(dict.fromkeys(words.values()))}
    fig = new_figure(5.0 * len(metrics), 3.8)
    kind = dataset_kind(rows)
    xs_all = sorted({x_value(r, x) for r in rows})
    log = x == NFE and min(xs_all) > 0
    shared = {v for v in xs_all if sum(1 for rs in series.values() if any(x_value(r, x) == v for r in rs)) > 1}
    span = (max(xs_all) - min(xs_all)) or 1.0
    # against a setting other than NFE, each x tick names its NFE when all rows there share one
    cost_at = {v: {nfe(r) for r in rows if x_value(r, x) == v} for v in xs_all}
    nfe_ticks = x != NFE and all(len(c) == 1 and None not in c for c in cost_at.values())
    labels = _tick_labels(xs_all, log)
    if nfe_ticks:
        labels = [f"{t}\nNFE {fmt(next(iter(cost_at[v])))}" for t, v in zip(labels, xs_all)]
    for i, m in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        for j, (key, rs) in enumerate(series.items()):
            pts = sorted(((x_value(r, x), r.metrics[m], r) for r in rs if m in r.metrics and r.metrics[m].value is not None),
                         key=lambda p: p[0])
            if not pts:
                continue
            # at an x value several curves share, each is shifted a little so that points and bars stay apart
            shift = (j - (len(series) - 1) / 2) * DODGE
            xs = [p[0] if p[0] not in shared else p[0] * (1 + shift) if log else p[0] + shift * span for p in pts]
            mvs = [p[1] for p in pts]
            ys = [mv.value for mv in mvs]
            errs = [clipped_errors(mv.value, mv.ci or (None if mv.std is None else
                                                       (mv.value - 1.96 * mv.std, mv.value + 1.96 * mv.std)), m)
                    for mv in mvs]
            label = ", ".join(f"{k}={_text(v)}" for k, v in key) or "all settings"
            color = color_of[numeric[key]]
            ax.errorbar(xs, ys, yerr=[[e[0] for e in errs], [e[1] for e in errs]], color=color,
                        marker=marker_of[words[key]], ms=5, lw=1.5, capsize=3, label=label)
            if x != NFE and not nfe_ticks:  # the cost of each point, which the x axis does not show
                for xv, yv, (_, _, r) in zip(xs, ys, pts):
                    cost = nfe(r)
                    if cost is not None:
                        ax.annotate(f"NFE {fmt(cost)}", (xv, yv), textcoords="offset points", xytext=(5, 5), fontsize=7,
                                    color=color)
        if log:
            ax.set_xscale("log")
        ax.set_xticks(xs_all)
        ax.set_xticklabels(labels, fontsize=8)
        ax.minorticks_off()
        ax.set_xlabel("network evaluations per sample (NFE, log scale)" if x == NFE else f"sampler setting '{x}'",
                      fontsize=9)
        spec = METRICS.get(m)
        head = metric_header(m, None, kind, _extractor(rows, m), arrow=False)
        direction = "" if spec is None else (" (higher is better)" if spec.higher_is_better else " (lower is better)")
        ax.set_title("\n".join(textwrap.wrap(head + direction, 64)), fontsize=9)
        if spec is not None and spec.unit == "fraction":
            lo = min(mv.value for r in rows if (mv := r.metrics.get(m)) is not None and mv.value is not None)
            bottom = max(0.0, min(lo - 0.05, 0.9))
            ax.set_ylim(bottom, 1.0 + 0.03 * (1.0 - bottom))  # a little room above 1 so that points at 1 show
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(True, alpha=0.3)
    sup = "; ".join(p for p in (title, ", ".join(fixed)) if p)
    if sup:
        fig.suptitle(sup, fontsize=9)
    fig.tight_layout()
    if len(series) > 1 or any(k for k in series):  # one legend for all panels, below them
        handles, labels = fig.axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(labels), 4),
                   fontsize=8, frameon=False)
    return figure_png(fig)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _tick_labels(values: Sequence[float], log: bool) -> list[str]:
    """Tick labels for the x values; on a log axis a value too close to the last labelled one gets none."""
    out, last = [], None
    for v in values:
        close = last is not None and (math.log10(v) - math.log10(last) < MIN_LOG_GAP if log else False)
        out.append("" if close else fmt(v))
        last = last if close else v
    return out
