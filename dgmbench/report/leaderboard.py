"""Leaderboard files: ``NAME.csv`` (numbers), ``NAME.md`` (metrics + comparison table) and
``NAME.jsonl`` (the Records), each starting with the command that made it.

Values are means over the finished seeds with the sample std (ddof=1) beside them; with a
single seed the Record's own interval (bootstrap CI or subset std) is shown instead.
Files are written atomically (temporary file + rename).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..metrics.registry import METRICS
from ..results import Record, atomic_write_text
from ..sampling import format_sampling_options
from .comparison import comparison_markdown, comparison_table, fmt
from .summary import ModelSummary, dataset_kind, summarize, table_info


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
    ``<metric>`` (mean over finished seeds) and ``<metric>_std``."""
    import pandas as pd

    metrics = ordered_metrics(summaries)
    rows = []
    for s in summaries:
        row = {"family": s.family, "preset": s.preset, "model": s.model, "likelihood_kind": s.likelihood_kind,
               "seeds": " ".join(str(x) for x in s.seeds), "runs": s.n_runs, "diverged": s.n_diverged, "nfe": s.nfe}
        for m in metrics:
            row[m] = s.mean(m)
            row[f"{m}_std"] = s.std(m)
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(s: ModelSummary, m: str) -> str:
    mean = s.mean(m)
    if mean is None:
        return "-"
    if len(s.values(m)) >= 2:
        return f"{fmt(mean)} ± {fmt(s.std(m), 2)}"
    mv = s.metric(m)
    if mv is not None and mv.ci_low is not None and mv.ci_high is not None:
        return f"{fmt(mean)} [{fmt(mv.ci_low)}, {fmt(mv.ci_high)}]"
    if mv is not None and mv.std is not None:
        return f"{fmt(mean)} ± {fmt(mv.std, 2)}"
    return fmt(mean)


def metric_header(m: str) -> str:
    spec = METRICS.get(m)
    if spec is None:
        return m
    arrow = "↑" if spec.higher_is_better else "↓"
    return f"{m} {arrow}"


def metrics_markdown(summaries: list[ModelSummary]) -> str:
    metrics = ordered_metrics(summaries)
    lines = ["| family | likelihood | finished/runs | " + " | ".join(metric_header(m) for m in metrics) + " |",
             "|---" * (3 + len(metrics)) + "|"]
    for s in summaries:
        cells = [_cell(s, m) for m in metrics]
        lines.append(f"| {s.family} | {s.likelihood_kind} | {s.n_runs - s.n_diverged}/{s.n_runs} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
            "", metrics_markdown(summaries), ""]
    notes = [f"- {s.family}: " + "; ".join(s.notes()) for s in summaries if s.notes()]
    if notes:
        out += ["Runs without metrics:", "", *notes, ""]
    out += ["## Comparison", "", comparison_markdown(comparison_table(summaries, kind), kind), ""]
    if meta.missing:
        out += ["## Not in this table", ""]
        out += [f"- {fam}: {why}" for fam, why in meta.missing.items()]
        out.append("")
    return "\n".join(out)


def write_leaderboard(out_dir: str, records: list[Record], meta: LeaderboardMeta) -> dict[str, str]:
    """Write ``<out_dir>/<name>.csv``, ``.md`` and ``.jsonl`` atomically; return their paths."""
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.join(out_dir, meta.name)
    records = sorted(records, key=lambda r: (table_info(r).get("family") or r.family or "", r.seed))
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
