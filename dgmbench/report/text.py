"""Plain-text views of Records: one Record's metric table (``dgmbench score``) and a
summary over many (``dgmbench stats``: mean/std/min/max per group and metric)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from ..errors import UsageError
from ..regress import Comparison
from ..results import Record, to_frame


def _fmt(v: float | None) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return f"{v:.5g}"


def format_record_table(rec: Record) -> str:
    """A plain-text table of a Record's metrics: value, interval or std, n, kind, extractor, note."""
    rows = [("metric", "value", "interval / std", "n", "kind", "extractor", "note")]
    for name, mv in rec.metrics.items():
        if mv.ci_low is not None:
            spread = f"[{_fmt(mv.ci_low)}, {_fmt(mv.ci_high)}]"
        elif mv.std is not None:
            spread = f"± {_fmt(mv.std)}"
        else:
            spread = ""
        unit = f" {mv.unit}" if mv.unit and mv.unit not in ("fraction",) else ""
        rows.append((name, _fmt(mv.value) + (unit if mv.value is not None else ""), spread,
                     "" if mv.n is None else str(mv.n), mv.kind or "", mv.extractor or "", mv.note or ""))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r[:6], widths)) + ("  " + r[6] if r[6] else ""))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summarise(records: Sequence[Record], *, metrics: Sequence[str] | None = None,
              by: Sequence[str] = ("model", "dataset", "split")) -> pd.DataFrame:
    """DataFrame with one row per (group, metric): count, mean, std (ddof=1), min, max, kind, n."""
    df = to_frame(records)
    if df.empty:
        return df
    if metrics:
        df = df[df["metric"].isin(metrics)]
    df = df[df["value"].notna()]
    if df.empty:
        return df
    unknown = [c for c in by if c not in df.columns]
    if unknown:
        raise UsageError(f"cannot group by {unknown}; columns are {sorted(df.columns)}")
    keys = [*by, "metric"]
    df = df.assign(**{c: df[c].fillna("") for c in by})
    g = df.groupby(keys, sort=True)
    out = g["value"].agg(["count", "mean", "std", "min", "max"]).reset_index()
    kinds = g["kind"].agg(lambda s: ",".join(sorted({str(k) for k in s if k is not None and k == k})))
    ns = g["n"].agg(lambda s: ",".join(str(int(v)) for v in sorted({v for v in s if v == v and v is not None})))
    out["kind"] = kinds.values
    out["n"] = ns.values
    return pd.DataFrame(out)


def _fmt_regress(v: float | None) -> str:
    if v is None:
        return "-"
    if v == 0:
        return "0"
    return f"{v:.4g}"


def _fmt_delta(delta: float | None, base: float | None) -> str:
    if delta is None:
        return "-"
    s = f"{delta:+.3g}"
    if base not in (None, 0) and math.isfinite(base) and math.isfinite(delta):
        s += f" ({delta / abs(base) * 100:+.1f}%)"
    return s


def comparison_table(comparison: Comparison) -> str:
    """The human-readable table plus a summary line (and notes for failing rows)."""
    header = ["model", "dataset", "metric", "baseline", "current", "delta", "tolerance", "verdict"]
    lines = []
    for r in comparison.rows:
        arrow = "" if r.higher_is_better is None else (" (↑)" if r.higher_is_better else " (↓)")
        lines.append([
            r.model, f"{r.dataset}:{r.split}", r.metric + ("/ref" if r.per_reference else "") + arrow, _fmt_regress(r.baseline), _fmt_regress(r.current),
            _fmt_delta(r.delta, r.baseline), "-" if r.allowed is None else f"{_fmt_regress(r.allowed)} ({r.tolerance})",
            r.verdict,
        ])
    widths = [max(len(h), *(len(row[i]) for row in lines)) if lines else len(h) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in lines]
    notes = [f"  {r.model} / {r.dataset}:{r.split} / {r.metric}: {r.note}" for r in comparison.rows if r.note]
    if notes:
        out += ["notes:"] + notes
    out.append(comparison.summary())
    return "\n".join(out)
