"""Leaderboard files: ``NAME.csv`` (numbers), ``NAME.md`` (metrics + comparison table) and
``NAME.jsonl`` (the Records), each starting with the command that made it.

Values are means over the finished seeds with the sample std (ddof=1) beside them; with a
single seed the Record's own interval is shown instead (bootstrap CI; KID's subset std and
KDE's standard error as ± std). Every column header names the features the metric was
computed on and its unit (``FID (classifier-digits)``, ``NLL (nats/image)``, ``KID x10^3``);
a metric computed with different extractors in one table gets one column per extractor, so
two kinds of IS (classifier logits, Inception) never share a column. The real-data row comes
first. Files are written atomically (temporary file + rename).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..metrics.registry import METRICS, REPORT_TABLES, metric_section
from ..results import TAIL_MAD_FACTOR, TAIL_REL_FLOOR, Record, atomic_write_text
from ..sampling import format_sampling_options
from .comparison import comparison_markdown, comparison_table, fmt
from .published import published_markdown
from .summary import ModelSummary, dataset_kind, record_order, summarize, table_info
from .textbook import textbook_markdown

# metric -> (factor, header text): values are shown multiplied by the factor, as papers print them
DISPLAY_SCALE: dict[str, tuple[float, str]] = {"kid": (1e3, "x10^3")}
SCALED_EXTRACTORS = frozenset({"inception"})  # papers print Inception KID x10^3


def display_scale(m: str, extractors: Iterable[str | None]) -> tuple[float, str]:
    """(factor, label) a metric is printed with: KID x10^3 as papers print it on Inception features;
    on other features (the domain classifiers' are not normalised: their KID is ~1e3) as it is."""
    exts = [e for e in extractors if e]
    if m in DISPLAY_SCALE and exts and all(e in SCALED_EXTRACTORS for e in exts):
        return DISPLAY_SCALE[m]
    return 1.0, ""
# one seed: show these metrics' own std (KID's subset std, KDE's standard error) rather than their CI
OWN_STD = frozenset({"kid", "kde_ll", "kde_bpd", "cond_acc", "mmd"})
# units per data item: "nats" of a likelihood is per image or per point
PER_ITEM = frozenset({"nll", "kde_ll"})
RAW_FEATURES = {"image": "pixels in [0,1]", "points": "raw points"}


@dataclass
class LeaderboardMeta:
    """What the header of a leaderboard says besides the numbers."""

    name: str
    dataset: str
    command: str
    preset: str | None = None
    seeds: list[int] = field(default_factory=list)
    n: int | None = None
    split: str | None = None
    missing: dict[str, str] = field(default_factory=dict)  # family -> why it is not in the table


Column = tuple[str, str | None]  # (metric, extractor: None when every run used the same one)


def ordered_columns(summaries: list[ModelSummary]) -> list[Column]:
    """(metric, extractor) per column: one per metric, or one per extractor when a metric was
    computed with more than one extractor in this table (never two kinds of IS in one column)."""
    cols: list[Column] = []
    for m in ordered_metrics(summaries):
        exts: list[str] = []
        for s in summaries:
            exts += [e for e in s.extractors(m) if e not in exts]
        cols += [(m, e) for e in exts] if len(exts) > 1 else [(m, None)]
    return cols


def column_parts(summaries: list[ModelSummary]) -> list[tuple[str, list[Column]]]:
    """The metrics table split into the registry's REPORT_TABLES (title, columns), empty parts left out,
    so that no table is wider than a page."""
    cols = ordered_columns(summaries)
    parts = [(title, [c for c in cols if metric_section(c[0]) in sections]) for title, sections in REPORT_TABLES]
    return [(title, part) for title, part in parts if part]


def ordered_metrics(summaries: list[ModelSummary]) -> list[str]:
    """Metric names present in any summary, in the canonical order of ``metrics.names``."""
    present: list[str] = []
    for s in summaries:
        for m in s.metric_names():
            if m not in present:
                present.append(m)
    canon = [m for m in METRICS if m in present]
    return canon + sorted(m for m in present if m not in METRICS)


def leaderboard_frame(summaries: list[ModelSummary]):
    """One row per model: family, preset, likelihood kind, runs, diverged, NFE, then per metric
    ``<metric>`` (mean over finished seeds), ``<metric>_std`` and ``<metric>_median``."""
    import pandas as pd

    metrics = ordered_metrics(summaries)
    rows = []
    for s in summaries:
        row = {"family": s.family, "preset": s.preset, "model": s.model, "likelihood_kind": s.likelihood_kind,
               "seeds": " ".join(str(x) for x in s.seeds), "runs": s.n_runs, "diverged": s.n_diverged, "nfe": s.nfe}
        for m in metrics:
            row[m] = s.mean(m)
            row[f"{m}_std"] = s.std(m)
            row[f"{m}_median"] = s.median(m)
        rows.append(row)
    return pd.DataFrame(rows)


def metric_cell(s: ModelSummary, m: str, extractor: str | None = None, show_unit: bool = False) -> str:
    """Mean ± std over seeds (with the median where one seed dominates the mean), or one seed's
    value with its own interval; KID x10^3; MMD with its permutation-test p-value; the Record's
    unit with ``show_unit`` (a column mixing units)."""
    mean = s.mean(m, extractor)
    if mean is None:
        return "-"
    mv = s.metric(m, extractor)
    k = display_scale(m, [extractor or (mv.extractor if mv is not None else None)])[0]
    if len(s.values(m, extractor)) >= 2:
        out = f"{fmt(k * mean)} ± {fmt(k * s.std(m, extractor), 2)}"
        med = s.tail_median(m, extractor)
        if med is not None:
            out += f" (median {fmt(k * med)})"
    elif mv is not None and mv.std is not None and (m in OWN_STD or mv.ci_low is None):
        out = f"{fmt(k * mean)} ± {fmt(k * mv.std, 2)}"
    elif mv is not None and mv.ci_low is not None and mv.ci_high is not None:
        out = f"{fmt(k * mean)} [{fmt(k * mv.ci_low)}, {fmt(k * mv.ci_high)}]"
    else:
        out = fmt(k * mean)
    pvals = [float(r.metrics[m].extra["p_value"]) for r in s.finished if m in r.metrics
             and (extractor is None or r.metrics[m].extractor == extractor) and "p_value" in r.metrics[m].extra]
    if pvals:
        out += f" (p {fmt(sum(pvals) / len(pvals), 2)})"
    if show_unit and mv is not None and mv.unit:
        out += f" ({mv.unit})"
    return out


NOTE_MARK = " †"


def _noted_families(summaries: list[ModelSummary], m: str, extractor: str | None) -> dict[str, list[str]]:
    """note -> families whose shown values of ``m`` carry it."""
    by_note: dict[str, list[str]] = {}
    for s in summaries:
        for note in s.value_notes(m, extractor):
            by_note.setdefault(note, []).append(s.family)
    return by_note


def _shown(summaries: list[ModelSummary], m: str, extractor: str | None) -> list[str]:
    return [s.family for s in summaries if s.values(m, extractor)]


def marked_cell(s: ModelSummary, m: str, extractor: str | None = None,
                summaries: list[ModelSummary] | None = None) -> str:
    """``metric_cell`` with NOTE_MARK when a shown value carries a note that not every row of the column
    shares (those are listed once under the table by ``part_notes``), and with its unit when the
    column mixes units (bits/dim on different grids)."""
    notes = s.value_notes(m, extractor)
    if notes and summaries is not None:
        shown = _shown(summaries, m, extractor)
        by_note = _noted_families(summaries, m, extractor)
        notes = [x for x in notes if by_note.get(x) != shown]
    mixed_units = summaries is not None and len(record_units(m, summaries, extractor)) > 1
    return metric_cell(s, m, extractor, show_unit=mixed_units) + (NOTE_MARK if notes else "")


def part_notes(summaries: list[ModelSummary], cols: list[Column], kind: str) -> list[str]:
    """The notes on the values of one metrics table, one line per (metric, note) naming the rows it
    applies to ("every row" when all of them); a row whose seeds carry different notes (e.g. one number
    per seed) gets one line with its notes joined: a value is never shown without its Record's note."""
    lines: list[str] = []
    for m, e in cols:
        shown = _shown(summaries, m, e)
        head = metric_header(m, summaries, kind, e, arrow=False)
        by_note = _noted_families(summaries, m, e)
        multi = {f for f in shown if sum(f in fams for fams in by_note.values()) > 1}
        for note, fams in by_note.items():
            single = [f for f in fams if f not in multi]
            if single:
                lines.append(f"{head}, {'every row' if fams == shown else ', '.join(single)}: {note}")
        for s in summaries:
            if s.family in multi:
                lines.append(f"{head}, {s.family} (per seed): " + "; ".join(s.value_notes(m, e)))
    return lines


def metric_unit(m: str, kind: str) -> str:
    """The unit shown in a header: '' for unitless values and fractions; nats per image or point."""
    spec = METRICS.get(m)
    unit = spec.unit if spec is not None else ""
    if unit in ("", "fraction"):
        return ""
    if m in PER_ITEM or unit == "nats" and m not in ("mode_rkl",):
        return f"nats/{'image' if kind == 'image' else 'point'}"
    return unit


def record_units(m: str, summaries: list[ModelSummary], extractor: str | None = None) -> list[str | None]:
    """The units the Records state for ``m`` (the registry's when a Record states none), in order of
    appearance. They differ from the registry's
    when a value is on another scale (bits/dim of a 17-level grid: ``dgmbench.units.bpd_unit``)."""
    spec = METRICS.get(m)
    out: list[str | None] = []
    for s in summaries:
        for _, mv in s.runs(m, extractor):
            u = mv.unit or (spec.unit if spec is not None else None)  # no unit in the Record: the registry's
            if u not in out:
                out.append(u)
    return out


def metric_header(m: str, summaries: list[ModelSummary] | None = None, kind: str = "image",
                  extractor: str | None = None, arrow: bool = True) -> str:
    """'FID (classifier-digits) ↓', 'KID x10^3 (classifier-digits) ↓', 'NLL (nats/image) ↓',
    'KDE log-likelihood (pixels in [0,1], nats/image) ↑': label, scale, features, unit, direction."""
    spec = METRICS.get(m)
    label = spec.label if spec is not None else m
    exts = [extractor] if extractor else []
    if not exts:
        for s in summaries or []:
            exts += [e for e in s.extractors(m) if e not in exts]
    scale = display_scale(m, exts)[1]
    if scale:
        label += f" {scale}"
    eight_bit = metric_unit(m, kind) == "bits/dim"  # bits/dim is on the 8-bit [0, 256) scale, not [0, 1]
    feats = [("pixels" if eight_bit and kind == "image" else RAW_FEATURES.get(kind, e)) if e == "raw" else e
             for e in exts]
    unit = metric_unit(m, kind)
    own = record_units(m, summaries or [], extractor)
    if spec is not None and own and own != [spec.unit]:  # e.g. bits/dim of a 17-level grid
        unit = " or ".join(u or "no unit" for u in own) + ("; not comparable" if len(own) > 1 else "")
    parts = [p for p in (", ".join(feats), unit) if p]
    head = label + (f" ({', '.join(parts)})" if parts else "")
    if spec is not None and arrow:
        head += " ↑" if spec.higher_is_better else " ↓"
    return head


def metrics_markdown(summaries: list[ModelSummary], kind: str | None = None) -> str:
    """The metrics tables (one per part of ``column_parts``, each under a bold title)."""
    kind = kind or dataset_kind([r for s in summaries for r in s.records])
    out: list[str] = []
    for title, cols in column_parts(summaries):
        if out:
            out.append("")
        out += [f"**{title}**", "",
                "| family | likelihood | finished/runs | "
                + " | ".join(metric_header(m, summaries, kind, e) for m, e in cols) + " |",
                "|---" * (3 + len(cols)) + "|"]
        for s in summaries:
            cells = [marked_cell(s, m, e, summaries) for m, e in cols]
            out.append(f"| {s.family} | {s.likelihood_kind} | {s.n_runs - s.n_diverged}/{s.n_runs} | "
                       + " | ".join(cells) + " |")
        notes = part_notes(summaries, cols, kind)
        if notes:
            out += ["", "Notes (†):", "", *(f"- {line}" for line in notes)]
    return "\n".join(out)


def provenance_lines(records: list[Record]) -> list[str]:
    """Extractors with their weights' sha256, device and package versions (from the Records)."""
    extractors: dict[str, str | None] = {}
    for r in records:
        for mv in r.metrics.values():
            if mv.extractor:
                extractors.setdefault(mv.extractor, mv.extractor_sha256)
    lines = []
    if extractors:
        lines.append("Features: " + ", ".join(f"{k} (sha256 {v[:12] if v else 'n/a'})" for k, v in sorted(extractors.items())) + ".")
    if records:
        devices = sorted({r.device for r in records})
        v = records[0].versions or {}
        lines.append("Device: " + ", ".join(devices) + ". Versions: " + ", ".join(f"{k} {v[k]}" for k in sorted(v)) + ".")
    samplers = sorted({(r.family or "", format_sampling_options(t["sampling"])) for r in records
                       if (t := (r.config or {}).get("table", {})).get("sampling")})
    if samplers:
        lines.append("Sampler options (scored with them; training is not affected): "
                     + ", ".join(f"{fam} {opts}" for fam, opts in samplers) + ".")
    adopted = sorted((r.family or "", r.seed or 0, t["adopted_from"]) for r in records
                     if (t := (r.config or {}).get("table", {})).get("adopted_from"))
    if adopted:
        lines.append("Adopted checkpoints (trained outside this table with the same preset config and seed; the "
                     "command above trains them itself): "
                     + ", ".join(f"{fam} seed {seed} from `{os.path.basename(src)}`" for fam, seed, src in adopted) + ".")
    return lines


METRICS_NOTE = ("KID is shown with its subset std (x10^3 on Inception features, as papers print it); MMD² with its permutation-test p-value in brackets; KDE is "
                "the Parzen-window log-likelihood (Goodfellow et al. 2014 protocol, bandwidth chosen on a validation "
                "split) on the [0,1] pixel scale with its standard error; IS uses the named extractor's class "
                "logits; conditional accuracy is the classifier's agreement with the requested class (`-` for "
                "unconditional models); FID-inf is shown where n allows it (its smallest subset at least the "
                "feature dimension). Where one seed dominates the mean (the mean's gap to the median over seeds "
                f"exceeds {TAIL_MAD_FACTOR:g} x the larger of the seeds' median absolute deviation and "
                f"{TAIL_REL_FLOOR:.0%} of the median), the median over seeds follows in brackets.")


def real_data_lines(records: list[Record]) -> list[str]:
    """A line saying what the real-data row is (none when the table has none)."""
    for r in records:
        t = table_info(r)
        if t.get("real_data"):
            return [f"The `real data` row scores held-out training items as if they were a model (same n and "
                    f"protocol): {t.get('subset', 'train split')}. It is the floor of FID/KID, the ceiling of IS "
                    "and precision/recall, and the anchor of the quality stars."]
    return []


def leaderboard_markdown(records: list[Record], meta: LeaderboardMeta) -> str:
    summaries = summarize(records)
    kind = dataset_kind(records) if records else "image"
    seeds = ", ".join(str(s) for s in meta.seeds) if meta.seeds else "-"
    out = [
        f"<!-- generated by: {meta.command} -->",
        f"# dgmbench leaderboard: {meta.name}",
        "",
        f"Generated by `{meta.command}` (dataset `{meta.dataset}`, preset `{meta.preset or meta.dataset}`, "
        f"seeds {seeds}, n = {meta.n if meta.n else 'default'}, split {meta.split or 'test'}).",
        "",
    ]
    out += provenance_lines(records)
    out += ["", "## Metrics", "",
            "Mean ± std over finished seeds (one seed: the value with its own interval). ↑ higher is better, ↓ lower.",
            "Each header names the features and unit.", METRICS_NOTE, *real_data_lines(records),
            "", metrics_markdown(summaries, kind), ""]
    notes = [f"- {s.family}: " + "; ".join(s.notes()) for s in summaries if s.notes()]
    if notes:
        out += ["Runs without metrics:", "", *notes, ""]
    rows = comparison_table(summaries, kind)
    out += ["## Comparison", "", comparison_markdown(rows, kind), ""]
    out += ["## Textbook vs measured", "", textbook_markdown(rows, meta.name), ""]
    out += published_markdown(meta.dataset, summaries)
    if meta.missing:
        out += ["## Not in this table", ""]
        out += [f"- {fam}: {why}" for fam, why in meta.missing.items()]
        out.append("")
    return "\n".join(out)


def write_leaderboard(out_dir: str, records: list[Record], meta: LeaderboardMeta) -> dict[str, str]:
    """Write ``<out_dir>/<name>.csv``, ``.md`` and ``.jsonl`` atomically; return their paths."""
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.join(out_dir, meta.name)
    records = sorted(records, key=record_order)
    frame = leaderboard_frame(summarize(records))
    csv = f"# generated by: {meta.command}\n" + frame.to_csv(index=False, float_format="%.10g")
    paths = {"csv": base + ".csv", "md": base + ".md", "jsonl": base + ".jsonl"}
    atomic_write_text(paths["csv"], csv)
    atomic_write_text(paths["md"], leaderboard_markdown(records, meta))
    atomic_write_text(paths["jsonl"], "".join(r.to_json() + "\n" for r in records))
    for p in paths.values():
        os.chmod(p, 0o644)  # mkstemp creates 0600; leaderboards are published files
    return paths


def read_leaderboard_csv(path: str):
    """Read a leaderboard CSV back (skipping the command header line)."""
    import pandas as pd

    return pd.read_csv(path, comment="#")
