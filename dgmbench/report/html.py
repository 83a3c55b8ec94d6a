"""The self-contained HTML report and its Markdown summary.

One HTML file, every image embedded as a base64 ``data:image/png`` URI, no external
resource (no CSS, font or script is fetched). A small inline script marks the page after
load with ``data-images`` / ``data-failed-images`` (images that did not decode) and
``data-script-errors`` so a headless browser can check the page from its DOM.

Per dataset: the comparison table with its star rules, the textbook table beside the measured
one (per cell both ratings, agreement within one star, a reason where they disagree; a
summary line; a plot), the metrics table (the real-data row first), the likelihood
table with kinds, the sample grid of every model and seed (PNG files that ``dgmbench table``
drew when it scored the model, read from the leaderboard's ``<name>.samples/`` folder: the
report never loads a model; a missing file shows a placeholder), metric bars with 95%
intervals, quality vs speed (log x), training-loss curves; then an environment section (versions, device, seeds, git revision,
feature-extractor and checkpoint sha256). A sampler sweep's records (``dgmbench sweep``, in
leaderboards/ beside the tables) get their own section: the sweep table and its plot
(:mod:`.sweep`).
"""

from __future__ import annotations

import base64
import html
import os
import platform
from dataclasses import dataclass, field

from ..results import Record, atomic_write_text, sha256_file
from ..sampling import format_sampling_options
from .comparison import COLUMNS, comparison_markdown, comparison_table, fmt, rules_for
from .leaderboard import (
    METRICS_NOTE,
    column_parts,
    display_scale,
    marked_cell,
    metric_header,
    metrics_markdown,
    ordered_metrics,
    part_notes,
    real_data_lines,
)
from .plots import loss_curves_png, metric_bars_png, quality_speed_png, textbook_png
from .published import MODE_HEADERS, PUBLISHED_NOTE, published_markdown, published_rows
from .stars import star_string
from .summary import DENSITY_METRIC, STABILITY_METRIC, ModelSummary, dataset_kind, summarize, table_info
from .sweep import NFE, SWEEP_NOTE, is_sweep, sweep_info, sweep_png, sweep_rows, sweep_table
from .textbook import FAMILY_TITLES, cell_text, summary_line, textbook_markdown, textbook_rows

STARS_CSS = "color:#d4a017;letter-spacing:1px;white-space:nowrap"
GRID_DISPLAY_PX = 220  # about this wide on the page, at an integer zoom

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px}
h1{font-size:26px}h2{font-size:21px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:36px}h3{font-size:16px}
table{border-collapse:collapse;margin:8px 0 16px 0;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f4f4f4}
code{background:#f4f4f4;padding:1px 4px;border-radius:3px}
.grid{display:flex;flex-wrap:wrap;gap:12px}.grid figure{margin:0;text-align:center;font-size:12px}
.samples{margin-bottom:12px}.nogrid{width:200px;padding:24px 8px;border:1px dashed #bbb;color:#666;font-size:12px}
.note{color:#666;font-size:12px}.rules li{font-size:12px;margin-bottom:4px}
img{max-width:100%}.wide{overflow-x:auto}h4{font-size:14px;margin:12px 0 4px 0}
"""

CHECK_SCRIPT = """
(function(){
  var errors = [];
  window.addEventListener('error', function(e){ errors.push(String(e.message || e)); mark(); }, true);
  function mark(){
    var imgs = document.images, failed = [];
    for (var i = 0; i < imgs.length; i++) {
      if (!imgs[i].complete || imgs[i].naturalWidth === 0) failed.push(imgs[i].alt || ('image ' + i));
    }
    var b = document.body;
    b.setAttribute('data-images', String(imgs.length));
    b.setAttribute('data-failed-images', String(failed.length));
    b.setAttribute('data-failed-list', failed.join('|'));
    b.setAttribute('data-script-errors', String(errors.length));
    b.setAttribute('data-checked', '1');
  }
  window.addEventListener('load', mark);
})();
"""


@dataclass
class DatasetSection:
    name: str  # leaderboard name
    records: list[Record]
    folder: str | None = None  # the leaderboard's folder: sample grid paths are relative to it
    summaries: list[ModelSummary] = field(default_factory=list)
    kind: str = "image"

    def __post_init__(self):
        self.summaries = summarize(self.records)
        self.kind = dataset_kind(self.records)

    @property
    def dataset(self) -> str:
        return self.records[0].dataset if self.records else self.name

    @property
    def commands(self) -> list[str]:
        cmds = []
        for r in self.records:
            c = table_info(r).get("command") or sweep_info(r).get("command")
            if c and c not in cmds:
                cmds.append(c)
        return cmds


def _img(png: bytes, alt: str, width: int | None = None) -> str:
    b64 = base64.b64encode(png).decode("ascii")
    w = f' width="{width}"' if width else ""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}"{w}>'


def _table(headers: list[str], rows: list[list[str]], raw: bool = False) -> str:
    """HTML table; cells are escaped unless ``raw``."""
    esc = (lambda x: x) if raw else html.escape
    out = ["<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _stars_html(stars: int | None) -> str:

    if stars is None:
        return '<span class="note">not rated</span>'
    return f'<span style="{STARS_CSS}" title="{stars} of 5">{star_string(stars)}</span>'


def comparison_html(section: DatasetSection) -> str:
    rows = comparison_table(section.summaries, section.kind)
    body = []
    for row in rows:
        cells = [html.escape(row.family)]
        for c, _ in COLUMNS:
            cell = row.cells[c]
            cells.append(f"{_stars_html(cell.stars)}<br><span>{html.escape(cell.text)}</span>")
        body.append(cells)
    rules = rules_for(section.kind)
    rule_items = "".join(f"<li><b>{html.escape(t)}</b>: {html.escape(rules[c])}</li>" for c, t in COLUMNS)
    return (_table(["family"] + [t for _, t in COLUMNS], body, raw=True)
            + f'<p class="note">Numbers are means over finished seeds.</p><ul class="rules">{rule_items}</ul>')


def metrics_html(section: DatasetSection) -> str:
    """One table per part of ``column_parts`` (no table wider than the page; a scroll box as a last resort)."""
    out = []
    for title, cols in column_parts(section.summaries):
        rows = [[s.family, s.likelihood_kind, f"{s.n_runs - s.n_diverged}/{s.n_runs}"]
                + [marked_cell(s, m, e, section.summaries) for m, e in cols] for s in section.summaries]
        out.append(f'<h4>{html.escape(title)}</h4><div class="wide">'
                   + _table(["family", "likelihood", "finished/runs"]
                            + [metric_header(m, section.summaries, section.kind, e) for m, e in cols], rows)
                   + "</div>")
        notes = part_notes(section.summaries, cols, section.kind)
        if notes:
            out.append('<p class="note">Notes (†):</p><ul class="rules value-notes">'
                       + "".join(f"<li>{html.escape(x)}</li>" for x in notes) + "</ul>")
    return "\n".join(out)


def textbook_html(section: DatasetSection) -> str:
    """The textbook table beside the measured one: per cell both ratings and agreement, the summary
    line, one reason per disagreement."""
    tb = textbook_rows(comparison_table(section.summaries, section.kind))
    if not tb:
        return '<p class="note">No family of this table is in the textbook table.</p>'
    body = []
    for r in tb:
        cells = [html.escape(FAMILY_TITLES.get(r.family, r.family))]
        for c, _ in COLUMNS:
            cell = r.cells[c]
            colour = "#888" if cell.agree is None else ("#2a7d2a" if cell.agree else "#b22222")
            cells.append(f'<span style="color:{colour}">{html.escape(cell_text(cell))}</span>')
        body.append(cells)
    reasons = [c.reason(r.family) for r in tb for c in r.cells.values() if c.reason(r.family)]
    out = [_table(["family"] + [t for _, t in COLUMNS], body, raw=True),
           f'<p class="textbook-summary"><b>{html.escape(summary_line(tb, section.name))}</b></p>']
    if reasons:
        out.append('<p>Where they disagree (measured numbers):</p><ul class="rules">'
                   + "".join(f"<li>{html.escape(x)}</li>" for x in reasons) + "</ul>")
    png = textbook_png(tb)
    if png:
        out.append(_img(png, "textbook vs measured stars"))
    return "\n".join(out)


KIND_TEXT = {
    "exact": "exact log-likelihood",
    "bound": "upper bound on NLL (ELBO / IWAE / VLB): the true NLL is at most this",
    "estimate": "estimate (AIS, probability-flow ODE with a trace estimator): neither a bound nor exact",
    "none": "no likelihood (implicit model)",
}


def published_html(section: DatasetSection) -> list[str]:
    """The papers' numbers beside the measured rows of the same family (nothing when none are published)."""
    rows = published_rows(section.dataset, section.summaries)
    if not rows:
        return []
    return ['<h3 id="published-' + html.escape(section.name) + '">Published vs measured</h3>',
            f'<p class="note">{html.escape(PUBLISHED_NOTE)}</p>',
            _table(["source", "model", *MODE_HEADERS], rows)]


def likelihood_html(section: DatasetSection) -> str:
    name = DENSITY_METRIC[section.kind]
    unit = "bits/dim" if name == "bpd" else "nats per sample"
    rows = []
    for s in section.summaries:
        mean, sd = s.mean(name), s.std(name)
        val = "-" if mean is None else fmt(mean, 4) + (f" ± {fmt(sd, 2)}" if sd is not None else "")
        mv = s.metric(name)
        rows.append([s.family, s.likelihood_kind, val, KIND_TEXT.get(s.likelihood_kind, ""),
                     (mv.note or "") if mv is not None else ""])
    return _table(["family", "kind", f"{name} ({unit})", "what the number is", "note"], rows)


NO_GRID = "no sample grid: re-run dgmbench table"


def read_grid(section: DatasetSection, record: Record) -> tuple[bytes | None, str]:
    """(PNG bytes, note) of a Record's sample grid file (``config.table.sample_grid``, relative to
    the leaderboard's folder); None with the reason when it is missing or not the file the table
    wrote (its sha256 differs)."""
    info = table_info(record)
    status = info.get("status", "ok")
    if status != "ok":
        return None, f"{status}: no samples"
    rel = info.get("sample_grid")
    if not rel or section.folder is None:
        return None, info.get("sample_grid_note") or NO_GRID
    path = os.path.join(section.folder, rel)
    try:
        with open(path, "rb") as f:
            png = f.read()
    except OSError:
        return None, f"{NO_GRID} ({rel} not found)"
    want = info.get("sample_grid_sha256")
    if want and sha256_file(path) != want:
        return None, f"{NO_GRID} ({rel} is not the file the table drew: sha256 differs)"
    sampling = info.get("sampling") or {}
    how = f", sampler {format_sampling_options(sampling)}" if sampling else ""
    return png, f"seed {record.seed}{how}"


def _png_width(png: bytes) -> int:
    """Pixel width from a PNG's IHDR chunk (bytes 16-19, big-endian)."""
    return int.from_bytes(png[16:20], "big") if png[:8] == b"\x89PNG\r\n\x1a\n" else 0


def _grid_img(png: bytes, alt: str) -> str:
    """A grid at an integer zoom of about 220 px (8 x 8 digits: 73 px, shown 3x), pixels kept sharp."""
    w = _png_width(png)
    shown = w * max(1, round(GRID_DISPLAY_PX / w)) if w else GRID_DISPLAY_PX
    b64 = base64.b64encode(png).decode("ascii")
    return (f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}" width="{shown}" '
            'style="image-rendering:pixelated">')


def samples_html(section: DatasetSection) -> str:
    """Per model, its sample grid of every seed side by side (files the table drew; never a model)."""
    rows = []
    for s in section.summaries:
        figs = []
        for r in sorted(s.records, key=lambda r: r.seed):
            png, note = read_grid(section, r)
            if png is None:
                figs.append(f'<figure><div class="nogrid">{html.escape(note)}</div>'
                            f"<figcaption>seed {r.seed}</figcaption></figure>")
            else:
                figs.append(f"<figure>{_grid_img(png, f'samples of {s.family} on {section.name}, seed {r.seed}')}"
                            f'<figcaption><span class="note">{html.escape(note)}</span></figcaption></figure>')
        rows.append(f'<div class="samples"><b>{html.escape(s.family)}</b><div class="grid">' + "\n".join(figs)
                    + "</div></div>")
    return "\n".join(rows)


def environment_rows(records: list[Record]) -> list[list[str]]:
    rows = []
    versions: dict[str, set[str]] = {}
    for r in records:
        for k, v in (r.versions or {}).items():
            versions.setdefault(k, set()).add(str(v))
    for k in sorted(versions):
        rows.append([f"version: {k}", ", ".join(sorted(versions[k]))])
    rows.append(["device", ", ".join(sorted({r.device for r in records})) or "-"])
    rows.append(["seeds", ", ".join(str(s) for s in sorted({r.seed for r in records})) or "-"])
    revs = sorted({r.git_rev for r in records if r.git_rev})
    rows.append(["git revision", ", ".join(revs) or "-"])
    ext: dict[str, str] = {}
    for r in records:
        for mv in r.metrics.values():
            if mv.extractor:
                ext.setdefault(mv.extractor, mv.extractor_sha256 or "-")
    for name, sha in sorted(ext.items()):
        rows.append([f"feature extractor {name} (sha256)", sha])
    for r in sorted(records, key=lambda r: (r.family or "", r.seed)):
        info = table_info(r)
        if info.get("checkpoint_sha256"):
            # the file name only: the folder is the machine's runs dir, which says nothing to a reader
            name = os.path.basename(info.get("checkpoint") or "")
            rows.append([f"checkpoint {r.family} seed {r.seed} (sha256)", f"{info['checkpoint_sha256']}  {name}"])
    return rows


def sweep_section_html(section: DatasetSection) -> str:
    """A sampler sweep (``dgmbench sweep``): its table and its plot against NFE (or the sweep's x setting)."""
    recs = section.records
    x = sweep_info(recs[0]).get("x", NFE)
    parts = [f'<h2 id="{html.escape(section.name)}">{html.escape(section.name)} '
             f'<span class="note">(sampler sweep, dataset {html.escape(section.dataset)}, n = {recs[0].n_samples}, '
             f"seed {recs[0].seed})</span></h2>"]
    parts += [f"<p>Generated by <code>{html.escape(c)}</code></p>" for c in section.commands]
    heads, rows = sweep_rows(recs)
    parts += [f'<p class="note">{html.escape(SWEEP_NOTE)}</p>', _table(heads, rows)]
    png = sweep_png(recs, x=x)
    if png:
        parts.append(_img(png, f"{section.name}: metrics against {'NFE' if x == NFE else x}"))
    return "\n".join(parts)


def section_html(section: DatasetSection) -> str:
    if is_sweep(section.records):
        return sweep_section_html(section)
    parts = [f'<h2 id="{html.escape(section.name)}">{html.escape(section.name)} '
             f'<span class="note">(dataset {html.escape(section.dataset)}, {section.kind})</span></h2>']
    for c in section.commands:
        parts.append(f"<p>Generated by <code>{html.escape(c)}</code></p>")
    parts += ["<h3>Comparison</h3>", comparison_html(section),
              '<h3 id="textbook-' + html.escape(section.name) + '">Textbook vs measured</h3>', textbook_html(section),
              *published_html(section),
              "<h3>Metrics</h3>",
              '<p class="note">Mean ± std over finished seeds; with one seed, the value with its own interval. '
              + html.escape(METRICS_NOTE) + "</p>"]
    parts += [f'<p class="note real-data">{html.escape(line)}</p>' for line in real_data_lines(section.records)]
    parts.append(metrics_html(section))
    notes = [f"{s.family}: " + "; ".join(s.notes()) for s in section.summaries if s.notes()]
    if notes:
        parts.append("<p>Runs without metrics:</p><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    parts += ["<h3>Likelihood</h3>", likelihood_html(section), "<h3>Samples</h3>",
              '<p class="note">Drawn by <code>dgmbench table</code> when it scored each run: 64 samples (images) or '
              "1,000 (2-D points) with the run's seed and sampler options.</p>", samples_html(section)]
    shown = [m for m in ordered_metrics(section.summaries) if m != "nfe"]
    bars = metric_bars_png(section.summaries, shown,
                           headers={m: metric_header(m, section.summaries, section.kind, arrow=False) for m in shown},
                           scales={m: display_scale(m, [e for s in section.summaries for e in s.extractors(m)])[0]
                                   for m in shown})
    if bars:
        parts += ["<h3>Metrics with 95% intervals</h3>",
                  '<p class="note">Bars: mean over finished seeds; error bars: t-interval of that mean (two or more '
                  "seeds) or the record's own bootstrap interval (one seed).</p>", _img(bars, "metric bars")]
    quality = STABILITY_METRIC[section.kind] if section.kind == "points" else "fid"
    qs = quality_speed_png(section.summaries, quality)
    if qs:
        parts += ["<h3>Quality vs speed</h3>", _img(qs, "quality vs speed")]
    lc = loss_curves_png(section.summaries)
    if lc:
        parts += ["<h3>Training loss</h3>", ('<p class="note">The shared trainer\'s log per seed (colour): the training loss; for a GAN '
                  'the discriminator and generator losses; for an EBM also the mean energy of data and of its '
                  'SGLD samples (line style). Units are each family\'s own (see its loss).</p>'),
                  _img(lc, "training loss curves")]
    return "\n".join(parts)


def build_html(sections: list[DatasetSection], *, title: str = "dgmbench report") -> str:
    all_records = [r for s in sections for r in s.records]
    toc = " · ".join(f'<a href="#{html.escape(s.name)}">{html.escape(s.name)}</a>' for s in sections)
    env = environment_rows(all_records) + [["report generated with", f"python {platform.python_version()} on "
                                                                      f"{platform.machine()} {platform.system()}"]]
    body = [f"<h1>{html.escape(title)}</h1>", f"<p>Datasets: {toc}</p>"]
    body += [section_html(s) for s in sections]
    body += ['<h2 id="environment">Environment</h2>', _table(["what", "value"], env)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style>"
            f"<script>{CHECK_SCRIPT}</script></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")


def build_markdown(sections: list[DatasetSection], *, title: str = "dgmbench report", html_name: str | None = None) -> str:
    out = [f"# {title}", ""]
    if html_name:
        out += [f"Full report with sample grids and plots: `{html_name}`.", ""]
    for s in sections:
        out += [f"## {s.name} (dataset `{s.dataset}`)", ""]
        out += [f"Generated by `{c}`" for c in s.commands]
        if is_sweep(s.records):
            out += ["", SWEEP_NOTE, "", sweep_table(s.records), ""]
            continue
        rows = comparison_table(s.summaries, s.kind)
        out += ["", "### Comparison", "", comparison_markdown(rows, s.kind), "",
                "### Textbook vs measured", "", textbook_markdown(rows, s.name), "",
                *published_markdown(s.dataset, s.summaries, heading="###"),
                "### Metrics", "", METRICS_NOTE, *real_data_lines(s.records), "", metrics_markdown(s.summaries, s.kind),
                ""]
        name = DENSITY_METRIC[s.kind]
        out += ["### Likelihood", "", f"| family | kind | {name} |", "|---|---|---|"]
        for m in s.summaries:
            mean = m.mean(name)
            out.append(f"| {m.family} | {m.likelihood_kind} | {fmt(mean, 4) if mean is not None else '-'} |")
        out.append("")
    return "\n".join(out)


def write_report(sections: list[DatasetSection], out_dir: str, name: str, *, title: str = "dgmbench report") -> dict[str, str]:
    """Write ``<out_dir>/<name>.html`` and ``<out_dir>/<name>.md`` atomically; return the paths."""
    paths = {"html": os.path.join(out_dir, f"{name}.html"), "md": os.path.join(out_dir, f"{name}.md")}
    atomic_write_text(paths["html"], build_html(sections, title=title))
    atomic_write_text(paths["md"], build_markdown(sections, title=title, html_name=os.path.basename(paths["html"])))
    for p in paths.values():
        os.chmod(p, 0o644)  # mkstemp creates 0600; reports are for reading
    return paths
