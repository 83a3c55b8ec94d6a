"""Report figures with matplotlib, returned as PNG bytes (no pyplot global state: each plot
builds its own :class:`matplotlib.figure.Figure` and renders it with the Agg canvas). Sample
grids are not drawn here: the table job draws them to files (:mod:`dgmbench.table.grids`).

- :func:`metric_bars_png`: one bar per model per metric with a 95% interval (a log axis when the
  values span more than ``LOG_SPAN``; a symmetric-log axis when they also cross zero, e.g. an
  unbiased MMD² estimate below zero beside a GAN's far larger one);
- :func:`quality_speed_png`: quality metric against samples/s (log x; log y too when the values
  span more than ``LOG_SPAN``);
- :func:`loss_curves_png`: training curves against step, a colour per seed (a GAN's D and G
  losses, an EBM's loss and energies);
- :func:`textbook_png`: textbook vs measured stars, one panel per comparison column.

Error bars are clipped to each metric's valid range (:func:`valid_range`: FID and distances
>= 0, fractions in [0, 1], IS >= 1, speed > 0, modes captured at most the mixture's modes);
panel titles are wrapped so that neighbouring titles never overlap; small values (MMD², KID) get scientific tick labels.
"""

from __future__ import annotations

import io
import math
import statistics
import textwrap
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
# ... or when its largest value is more than this factor above the median of the others (an outlier
# such as an EBM's FID squeezing the rest into the bottom of a linear axis).
OUTLIER_FACTOR = 8.0
TITLE_WIDTH = 34  # characters per line of a panel title
NONNEGATIVE = frozenset({"fid", "fid_inf", "clip_fd", "nfe", "density", "mode_rkl"})  # distances, counts, KL


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
    if not vals or min(vals) <= 0:
        return False
    if max(vals) / min(vals) > LOG_SPAN:
        return True
    rest = sorted(vals)[:-1]
    return len(rest) >= 2 and max(vals) > OUTLIER_FACTOR * statistics.median(rest)


def symlog_threshold(values: Sequence[float]) -> float | None:
    """The linear half-width of a symmetric-log axis for ``values`` that cross zero (some <= 0,
    some > 0) where one magnitude is more than ``OUTLIER_FACTOR`` times every other (on a linear
    axis the rest would be flattened against zero, as grid25's MMD² beside its GAN's): the power of
    ten at or below the smallest non-zero magnitude, so every bar but a zero one reaches the
    logarithmic part. ``None`` when a plain linear or log axis serves (values on one side of zero, or
    no single dominating magnitude: a linear axis then shows the values, negatives included, as they are)."""
    vals = [float(v) for v in values]
    if not vals or min(vals) > 0 or max(vals) <= 0:
        return None
    mags = sorted(abs(v) for v in vals if v != 0)
    if len(mags) < 2 or mags[-1] <= OUTLIER_FACTOR * mags[-2]:
        return None
    return 10.0 ** math.floor(math.log10(mags[0]))


def valid_range(metric: str, num_modes: int | None = None) -> tuple[float, float]:
    """The values ``metric`` can take, for clipping error bars: fractions [0, 1], IS [1, inf), speed
    (0, inf) (a tiny positive floor), modes captured [0, ``num_modes``] (the mixture's mode count
    when known), FID and other distances [0, inf); otherwise unbounded."""
    spec = METRICS.get(metric)
    if spec is not None and spec.unit == "fraction":
        return (0.0, 1.0)
    if num_modes and spec is not None and spec.unit == "modes":
        return (0.0, float(num_modes))
    if metric == "is":
        return (1.0, math.inf)
    if metric == "samples_per_s":
        return (1e-12, math.inf)
    if metric in NONNEGATIVE or (spec is not None and spec.unit in ("modes", "evaluations/sample")):
        return (0.0, math.inf)
    return (-math.inf, math.inf)


def clipped_errors(value: float, ci: tuple[float, float] | None, metric: str,
                   num_modes: int | None = None) -> tuple[float, float]:
    """(below, above) error-bar lengths of ``ci`` around ``value`` with the interval clipped to the
    metric's valid range (never negative lengths; ``num_modes`` caps modes captured)."""
    if ci is None:
        return (0.0, 0.0)
    lo_ok, hi_ok = valid_range(metric, num_modes)
    lo, hi = max(ci[0], lo_ok), min(ci[1], hi_ok)
    return (max(value - lo, 0.0), max(hi - value, 0.0))


def panel_title(text: str) -> str:
    """A panel title wrapped at ``TITLE_WIDTH`` characters."""
    return "\n".join(textwrap.wrap(text, TITLE_WIDTH)) or text


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


def metric_bars_png(summaries: Sequence[ModelSummary], metrics: Sequence[str],
                    headers: dict[str, str] | None = None, scales: dict[str, float] | None = None) -> bytes | None:
    """One panel per metric: a bar per model (seed mean) with its 95% interval as an error bar,
    clipped to the metric's valid range. ``headers``: panel title per metric (default: the
    registry label); ``scales``: display factor per metric (KID x10^3)."""
    metrics = [m for m in metrics if any(s.mean(m) is not None for s in summaries)]
    if not metrics:
        return None
    colors = series_colors([s.family for s in summaries])
    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig = new_figure(4.2 * cols, 3.1 * rows)
    for i, m in enumerate(metrics):
        ax = fig.add_subplot(rows, cols, i + 1)
        k = (scales or {}).get(m, 1.0)
        names, vals, lo, hi = [], [], [], []
        for s in summaries:
            v = s.mean(m)
            if v is None:
                continue
            below, above = clipped_errors(v, interval(s, m), m, s.num_modes)
            names.append(s.family)
            vals.append(k * v)
            lo.append(k * below)
            hi.append(k * above)
        x = list(range(len(names)))
        # a log axis for wide spans (symmetric log when the values cross zero), never for fractions
        # (their [0, 1] scale is the point); an interval reaching zero is drawn down to the axis' bottom edge
        fraction = valid_range(m) == (0.0, 1.0)
        log = wants_log_axis(vals) and not fraction
        linthresh = None if fraction else symlog_threshold(vals)
        ax.bar(x, vals, color=[colors[n] for n in names], yerr=[lo, hi], capsize=3, ecolor="black")
        if log:
            ax.set_yscale("log")
        elif linthresh is not None:
            ax.set_yscale("symlog", linthresh=linthresh)
            ax.axhline(0.0, color="black", linewidth=0.6)
        elif fraction:
            ax.set_ylim(0.0, 1.05)
        elif vals and 0 < max(abs(v) for v in vals) < 1e-2:
            ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))  # MMD² 1e-4: "1e-4" offset, short ticks
            ax.yaxis.get_offset_text().set_fontsize(7)
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        spec = METRICS.get(m)
        label = (headers or {}).get(m) or (spec.label if spec else m)
        direction = "" if spec is None else (" (higher is better)" if spec.higher_is_better else " (lower is better)")
        ax.set_title(panel_title(f"{label}{direction}{scale_note(log, linthresh)}"), fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout(h_pad=1.2, w_pad=1.0)
    return figure_png(fig)


def scale_note(log: bool, linthresh: float | None) -> str:
    """The panel-title suffix naming a non-linear axis."""
    if log:
        return ", log scale"
    if linthresh is not None:
        return f", symmetric log scale (linear within ±{linthresh:.0e})"
    return ""


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


def textbook_png(rows: Sequence) -> bytes | None:
    """Textbook vs measured stars (:class:`dgmbench.report.textbook.TextbookRow` s): one panel per
    column, per family the textbook rating (hollow square) and the measured one (filled circle),
    joined by a line, red where they differ by more than one star."""
    from matplotlib.lines import Line2D

    from .comparison import COLUMNS

    rows = list(rows)
    if not rows:
        return None
    fig = new_figure(2.6 * len(COLUMNS), 2.9)
    names = [r.family for r in rows]
    for i, (col, title) in enumerate(COLUMNS):
        ax = fig.add_subplot(1, len(COLUMNS), i + 1)
        for j, r in enumerate(rows):
            cell = r.cells[col]
            ax.scatter([j], [cell.textbook], marker="s", s=36, facecolors="none", edgecolors="black", zorder=3)
            if cell.measured is not None:
                bad = cell.agree is False
                ax.plot([j, j], [cell.textbook, cell.measured], color="#b22222" if bad else "#999", lw=1, zorder=1)
                ax.scatter([j], [cell.measured], marker="o", s=26, color="#b22222" if bad else "#2a7d2a", zorder=4)
        ax.set_ylim(0.5, 5.5)
        ax.set_yticks([1, 2, 3, 4, 5])
        ax.set_xticks(list(range(len(names))))
        ax.set_xticklabels(names, rotation=45, ha="right", fontsize=7)
        ax.set_title(panel_title(title), fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(True, axis="y", alpha=0.3)
        if i == 0:
            ax.set_ylabel("stars", fontsize=8)
    handles = [Line2D([], [], ls="", marker="s", mfc="none", mec="black", label="textbook"),
               Line2D([], [], ls="", marker="o", color="#2a7d2a", label="measured, within one star"),
               Line2D([], [], ls="", marker="o", color="#b22222", label="measured, more than one star apart")]
    fig.legend(handles=handles, loc="upper center", ncol=3, fontsize=7, frameon=False, bbox_to_anchor=(0.5, 1.06))
    fig.tight_layout(w_pad=0.8)
    return figure_png(fig)
