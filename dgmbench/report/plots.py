"""Report figures with matplotlib, returned as PNG bytes (no pyplot global state: each plot
builds its own :class:`matplotlib.figure.Figure` and renders it with the Agg canvas). Sample
grids are not drawn here: the table job draws them to files (:mod:`dgmbench.table.grids`).

- :func:`metric_bars_png`: one bar per model per metric with a 95% interval (a log axis when the
  values span more than ``LOG_SPAN``);
- :func:`quality_speed_png`: quality metric against samples/s (log x; log y too when the values
  span more than ``LOG_SPAN``);
- :func:`loss_curves_png`: training curves against step, a colour per seed (a GAN's D and G
  losses, an EBM's loss and energies).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

from ..metrics.registry import METRICS
from .summary import ModelSummary, table_info

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
          "#bcbd22", "#17becf"]
# The seven built-in baseline families in their registry order, so each keeps one colour in every
# plot and every report. Written out rather than read from the baseline registry (the report
# imports no model code, and families registered at run time, plugins or tests, must not shift the
# built-in ones' colours); a test checks that this matches the registry's built-ins.
FAMILY_ORDER = ("autoregressive", "vae", "flow", "gan", "ebm", "score", "diffusion")
# A panel switches to a log axis when its positive values span more than this factor.
LOG_SPAN = 30.0


def series_colors(names: Sequence[str]) -> dict[str, str]:
    """One colour per name: a baseline family always gets its own colour; other names (a user's
    models) take the remaining colours in the order given."""
    colors = {n: COLORS[FAMILY_ORDER.index(n)] for n in names if n in FAMILY_ORDER}
    spare = [c for c in COLORS if c not in colors.values()]  # never empty: 10 colours, 7 families
    others = [n for n in dict.fromkeys(names) if n not in colors]
    for i, n in enumerate(others):
        colors[n] = spare[i % len(spare)]
    return colors


def wants_log_axis(values: Sequence[float]) -> bool:
    """True when every value is positive and they span more than ``LOG_SPAN`` (e.g. samples/s from 1
    to 1,000, or one FID far above the rest): on a linear axis the small bars would vanish."""
    vals = [float(v) for v in values]
    return bool(vals) and min(vals) > 0 and max(vals) / min(vals) > LOG_SPAN


def new_figure(w: float, h: float):
    """A matplotlib Figure of ``w`` x ``h`` inches at 100 dpi on its own Agg canvas (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig) -> bytes:
    """``fig`` rendered as PNG bytes (tight bounding box)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def interval(s: ModelSummary, metric: str) -> tuple[float, float] | None:
    """95% interval shown on a bar: a t-interval of the seed mean with >= 2 finished seeds, else
    the record's own CI (bootstrap or subset std x 1.96)."""
    vals = s.values(metric)
    if len(vals) >= 2:
        from scipy import stats

        m = sum(vals) / len(vals)
        sd = s.std(metric) or 0.0
        h = float(stats.t.ppf(0.975, len(vals) - 1)) * sd / math.sqrt(len(vals))
        return (m - h, m + h)
    mv = s.metric(metric)
    if mv is None or mv.value is None:
        return None
    if mv.ci_low is not None and mv.ci_high is not None:
        return (float(mv.ci_low), float(mv.ci_high))
    if mv.std is not None:
        return (mv.value - 1.96 * mv.std, mv.value + 1.96 * mv.std)
    return None


def metric_bars_png(summaries: Sequence[ModelSummary], metrics: Sequence[str]) -> bytes | None:
    """One panel per metric: a bar per model (seed mean) with its 95% interval as an error bar."""
    metrics = [m for m in metrics if any(s.mean(m) is not None for s in summaries)]
    if not metrics:
        return None
    colors = series_colors([s.family for s in summaries])
    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig = new_figure(4.0 * cols, 2.8 * rows)
    for i, m in enumerate(metrics):
        ax = fig.add_subplot(rows, cols, i + 1)
        names, vals, lo, hi = [], [], [], []
        for s in summaries:
            v = s.mean(m)
            if v is None:
                continue
            names.append(s.family)
            vals.append(v)
            ci = interval(s, m)
            lo.append(v - ci[0] if ci else 0.0)
            hi.append(ci[1] - v if ci else 0.0)
        x = list(range(len(names)))
        log = wants_log_axis(vals)  # an interval reaching zero is drawn down to the axis' bottom edge
        ax.bar(x, vals, color=[colors[n] for n in names], yerr=[lo, hi], capsize=3, ecolor="black")
        if log:
            ax.set_yscale("log")
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        spec = METRICS.get(m)
        label = spec.label if spec else m
        direction = "" if spec is None else (" (higher is better)" if spec.higher_is_better else " (lower is better)")
        ax.set_title(f"{label}{direction}{', log scale' if log else ''}", fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    return figure_png(fig)


def quality_speed_png(summaries: Sequence[ModelSummary], quality: str = "fid") -> bytes | None:
    """Quality metric (seed mean) against samples/s on a log x axis, one labelled point per model."""
    pts = [(s.family, s.mean("samples_per_s"), s.mean(quality)) for s in summaries]
    pts = [p for p in pts if p[1] is not None and p[2] is not None and p[1] > 0]
    if not pts:
        return None
    colors = series_colors([s.family for s in summaries])
    fig = new_figure(5.0, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    for name, sps, q in pts:
        ax.scatter([sps], [q], s=40, color=colors[name], zorder=3)
        ax.annotate(name, (sps, q), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("samples/s (log scale)")
    spec = METRICS.get(quality)
    log_q = wants_log_axis([q for _, _, q in pts])
    if log_q:
        ax.set_yscale("log")
    ax.set_ylabel((spec.label if spec else quality) + (" (log scale)" if log_q else ""))
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"{spec.label if spec else quality} vs sampling speed", fontsize=10)
    fig.tight_layout()
    return figure_png(fig)


# Series drawn in a training-loss panel, first match wins: a GAN's two players (its ``loss`` is
# the discriminator's), an EBM's loss with the mean energies of data and of its SGLD samples (the
# gap shows whether the sampler keeps up), otherwise the trainer's ``loss``.
LOSS_SERIES: tuple[tuple[tuple[str, str], ...], ...] = (
    (("d_loss", "D loss"), ("g_loss", "G loss")),
    (("loss", "loss"), ("e_pos", "E(data)"), ("e_neg", "E(samples)")),
    (("loss", "loss"),),
)
_LINESTYLES = ("-", "--", ":")


def loss_series(history: Sequence[dict]) -> list[tuple[str, list[float], list[float]]]:
    """(label, steps, values) for each series of the first ``LOSS_SERIES`` group that the history
    logs completely; non-finite values are dropped."""
    rows = [h for h in history if "step" in h]
    for group in LOSS_SERIES:
        if rows and all(all(k in h for k, _ in group) for h in rows):
            out = []
            for key, label in group:
                finite = [(float(h["step"]), float(h[key])) for h in rows if math.isfinite(float(h[key]))]
                if finite:
                    out.append((label, [a for a, _ in finite], [b for _, b in finite]))
            return out
    return []


def loss_curves_png(summaries: Sequence[ModelSummary]) -> bytes | None:
    """Training curves from the trainer's log against step: one panel per model, a colour per seed
    and a line style per series (``LOSS_SERIES``: loss; a GAN's D and G losses; an EBM's energies)."""
    panels = []
    for s in summaries:
        lines = []
        for r in sorted(s.records, key=lambda r: r.seed):
            series = loss_series(table_info(r).get("history") or [])
            if series:
                lines.append((r.seed, series))
        if lines:
            panels.append((s.family, lines))
    if not panels:
        return None
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = new_figure(3.3 * cols, 2.5 * rows)
    for i, (name, lines) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        for j, (seed, series) in enumerate(lines):
            for k, (label, steps, values) in enumerate(series):
                ax.plot(steps, values, color=COLORS[j % len(COLORS)], lw=1, ls=_LINESTYLES[k % len(_LINESTYLES)],
                        label=f"seed {seed}" if len(series) == 1 else f"{label}, seed {seed}")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return figure_png(fig)
