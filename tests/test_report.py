"""``dgmbench report``: a self-contained HTML page that a real headless Chromium renders with no
failed image or script error, plus the Markdown summary.

The records are made by hand (known numbers) around real checkpoints of a tiny stand-in
family, whose sample grid files are drawn with the table's own function; the checkpoints are
then deleted and every model loader raises, so the report reads records and grid files only.
"""

from __future__ import annotations

import base64
import contextlib
import io
import math
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import test_table_fakefamily as fake
import torch
from PIL import Image

from dgmbench.cli import build_parser
from dgmbench.cli import main as cli_main
from dgmbench.report.published import PUBLISHED, published_rows
from dgmbench.report.summary import summarize
from dgmbench.results import MetricValue, Record, load_records

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="headless chromium is not installed (make test installs Debian's chromium)",
)


FEATURE_METRICS = ("fid", "kid", "precision", "recall", "density", "coverage", "is", "mmd")


def _record(family, dataset, seed, ckpt, metrics, *, status="ok", kind="exact", history=None, real=False):
    r = Record(model=f"{family}-tiny", dataset=dataset, split="test", family=family, seed=seed)
    for name, (v, lo, hi) in metrics.items():
        r.add(MetricValue(name, v, n=200, ci_low=lo, ci_high=hi, kind=kind if name in ("bpd", "nll") else None,
                          extractor="classifier-digits" if dataset == "digits" and name in FEATURE_METRICS else None,
                          extractor_sha256="ab" * 32 if dataset == "digits" and name in FEATURE_METRICS else None))
    r.config = {"table": {"family": family, "preset": f"{dataset}-tiny", "seed": seed, "status": status,
                          "note": "training diverged at step 13" if status != "ok" else None, "checkpoint": ckpt,
                          "checkpoint_sha256": "cd" * 32, "history": history or [], "likelihood_kind": kind,
                          "nfe_per_sample": 1.0, "command": f"dgmbench table --dataset {dataset} --preset {dataset}-tiny",
                          **({"num_modes": 8} if dataset == "ring8" else {}), **({"real_data": True} if real else {})}}
    return r


def _with_grid(rec: Record, folder, name: str, model, kind: str) -> Record:
    """Draw the record's sample grid file as the table does, and name it in the record."""
    from dgmbench.table.grids import grid_relpath, write_sample_grid

    rel = grid_relpath(name, rec.family, rec.seed)
    sha = write_sample_grid(model, os.path.join(folder, rel), kind=kind, seed=rec.seed)
    rec.config["table"].update(sample_grid=rel, sample_grid_sha256=sha)
    return rec


@contextlib.contextmanager
def _no_model_loads():
    """Every way to load a model or a checkpoint raises inside the block."""
    import baselines.checkpoint
    from dgmbench import protocol

    def refuse(*a, **k):
        raise AssertionError(f"the report loaded a model: {a!r}")

    # import what binds these functions by name now (the loader entry points, the CLI's command
    # modules): imported inside the block, they would keep the patched ones and refuse every model
    # in later tests (inside the block torch.load still refuses)
    protocol.loaders()
    build_parser()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch, "load", refuse)
        mp.setattr(baselines.checkpoint, "load_baseline", refuse)
        mp.setattr(baselines.checkpoint, "read_checkpoint", refuse)
        mp.setattr(protocol, "load_model", refuse)
        yield


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Records with grid files drawn from real checkpoints; the checkpoints are then deleted and
    loading a model raises, so the report can only read the records and the grid files."""
    from baselines import registry
    from baselines.checkpoint import load_baseline
    from baselines.train import train_preset
    from dgmbench.report.html import DatasetSection, write_report

    tmp = tmp_path_factory.mktemp("report")
    lb = tmp / "lb"
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(registry.FAMILIES, "fake", fake.MODULE)
        mp.setitem(registry.FAMILIES, "fake2", fake.MODULE)
        ck = {}
        for fam in ("fake", "fake2"):
            for ds in ("digits", "ring8"):
                path = str(tmp / f"{fam}-{ds}.pt")
                res = train_preset(fam, f"{ds}-tiny", checkpoint=path, seed=0, progress=False)
                ck[fam, ds] = (path, res.history, load_baseline(path))
        digits = [
            _record("fake", "digits", 0, ck["fake", "digits"][0], {
                "fid": (10.0, 9.0, 11.0), "precision": (0.9, None, None), "recall": (0.7, None, None),
                "coverage": (0.5, None, None), "bpd": (2.0, 1.9, 2.1), "samples_per_s": (1e5, None, None)},
                history=ck["fake", "digits"][1]),
            _record("fake", "digits", 1, ck["fake", "digits"][0], {
                "fid": (12.0, 11.0, 13.0), "precision": (0.9, None, None), "recall": (0.7, None, None),
                "coverage": (0.5, None, None), "bpd": (2.0, 1.9, 2.1), "samples_per_s": (1e5, None, None)},
                history=ck["fake", "digits"][1]),
            _record("fake2", "digits", 0, ck["fake2", "digits"][0], {
                "fid": (44.0, 40.0, 48.0), "precision": (0.3, None, None), "recall": (0.2, None, None),
                "coverage": (0.1, None, None), "samples_per_s": (50.0, None, None)}, kind="none",
                history=ck["fake2", "digits"][1]),
            _record("fake2", "digits", 1, ck["fake2", "digits"][0], {}, status="diverged", kind="none"),
            # the real-data row: held-out images scored as a model (FID floor 5, KID with its subset std)
            _record("real data", "digits", 0, None, {
                "fid": (5.0, 4.0, 6.0), "precision": (0.95, None, None), "recall": (0.95, None, None),
                "coverage": (0.9, None, None)}, kind="none", real=True),
        ]
        # ring8: two textbook families (labels only: the models are the stand-in's checkpoints)
        ring = [
            _record("diffusion", "ring8", 0, ck["fake", "ring8"][0], {
                "modes_captured": (8, None, None), "hq_fraction": (0.95, None, None), "mode_rkl": (0.01, None, None),
                "nll": (-1.5, None, None), "samples_per_s": (2e5, None, None)}, history=ck["fake", "ring8"][1]),
            _record("gan", "ring8", 0, ck["fake2", "ring8"][0], {
                "modes_captured": (3, None, None), "hq_fraction": (0.5, None, None), "mode_rkl": (0.9, None, None),
                "samples_per_s": (1e3, None, None)}, kind="none", history=ck["fake2", "ring8"][1]),
        ]
        ring_model = {"diffusion": "fake", "gan": "fake2"}
        for recs, name, ds, kind in ((digits, "digits-tiny", "digits", "image"), (ring, "ring8-tiny", "ring8", "points")):
            for r in recs:
                if r.config["table"]["status"] != "ok":
                    continue
                if r.family == "real data":
                    from dgmbench.data.registry import get_dataset

                    _with_grid(r, lb, name, get_dataset("digits", "train").data[:64], kind)
                else:
                    _with_grid(r, lb, name, ck[ring_model.get(r.family, r.family), ds][2], kind)
        digits[4].metrics["kid"] = MetricValue("kid", 2e-3, n=200, std=5e-4, extractor="classifier-digits")
    for path, _, _ in ck.values():
        os.unlink(path)  # no checkpoint left to load
    sections = [DatasetSection("digits-tiny", digits, folder=str(lb)), DatasetSection("ring8-tiny", ring, folder=str(lb))]
    with _no_model_loads():
        paths = write_report(sections, str(tmp / "reports"), "report", title="test report")
    return {**paths, "lb": lb, "sections": sections}


def _imgs(html_text):
    return re.findall(r'<img [^>]*src="([^"]+)"', html_text)


def test_html_is_self_contained_and_images_are_pngs(built):
    text = open(built["html"]).read()
    assert not re.search(r'(src|href)="(https?:)?//', text), "the report must not load anything from outside"
    assert "<link" not in text
    srcs = _imgs(text)
    # sample grids of the finished runs (digits 3 + the real-data row, ring8 2) + per section: metric
    # bars, quality-vs-speed and loss curves; the textbook plot of ring8 (digits has no textbook family)
    assert len(srcs) == 13
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        img = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        img.load()
        assert img.width > 50 and img.height > 50
    assert "Environment" in text and "cd" * 32 in text and "ab" * 32 in text  # checkpoint + extractor sha256
    assert "torch" in text and "seeds" in text


def _embedded(html_text: str, alt: str) -> bytes | None:
    m = re.search(rf'<img alt="{re.escape(alt)}" src="data:image/png;base64,([^"]+)"', html_text)
    return None if m is None else base64.b64decode(m.group(1))


def test_sample_grids_are_the_table_files_of_every_seed(built):
    """Each finished (family, seed) shows its grid file byte for byte; a diverged seed says so."""
    text = open(built["html"]).read()
    for section in built["sections"]:
        for r in section.records:
            t = r.config["table"]
            got = _embedded(text, f"samples of {r.family} on {section.name}, seed {r.seed}")
            if t["status"] != "ok":
                assert got is None
                continue
            assert got == (built["lb"] / t["sample_grid"]).read_bytes()
            assert t["sample_grid"] == f"{section.name}.samples/{r.family.replace(' ', '-')}-s{r.seed}.png"
    assert "diverged: no samples" in text
    # two seeds of one model: two different grids (each drawn with its run's seed)
    assert _embedded(text, "samples of fake on digits-tiny, seed 0") != _embedded(text, "samples of fake on digits-tiny, seed 1")
    # the real-data row has its own grid file, drawn from the held-out images, shown first
    assert built["sections"][0].records[4].config["table"]["sample_grid"] == "digits-tiny.samples/real-data-s0.png"
    assert text.index("samples of real data on digits-tiny") < text.index("samples of fake on digits-tiny")
    # digits: 8 x 8 tiles of 8 x 8 pixels with a 1-pixel border, grey, shown at an integer zoom
    img = Image.open(io.BytesIO(_embedded(text, "samples of fake on digits-tiny, seed 0")))
    assert img.size == (73, 73) and img.mode == "L"
    assert re.search(r'alt="samples of fake on digits-tiny, seed 0" src="[^"]+" width="219"', text)


def test_report_cli_renders_grid_files_with_no_model_loadable(built, tmp_path, capsys):
    """``dgmbench report`` on a leaderboard folder: the grids come from ``<name>.samples/`` (the
    checkpoints are gone and every loader raises); a missing or changed grid file, or a Record
    without one, shows the placeholder instead of loading a model."""
    import copy
    import shutil

    from dgmbench.cli import main
    from dgmbench.results import RecordStore

    lb = tmp_path / "lb"
    shutil.copytree(built["lb"], lb)
    digits = copy.deepcopy(built["sections"][0].records)
    for r in digits:
        RecordStore(str(lb / "digits-tiny.jsonl")).append(r)
    assert all(not os.path.exists(r.config["table"]["checkpoint"]) for r in digits if r.config["table"]["checkpoint"])
    with _no_model_loads():
        assert main(["report", "--leaderboards", str(lb), "--dataset", "digits-tiny", "--out", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "digits-tiny.html").read_text()
    assert _embedded(text, "samples of fake on digits-tiny, seed 1") == (lb / "digits-tiny.samples" / "fake-s1.png").read_bytes()
    assert "no sample grid" not in text

    (lb / "digits-tiny.samples" / "fake-s0.png").unlink()                      # missing file
    (lb / "digits-tiny.samples" / "fake-s1.png").write_bytes(_png_bytes())     # not the table's file
    del digits[2].config["table"]["sample_grid"]                                # a Record without a grid
    (lb / "digits-tiny.jsonl").unlink()
    for r in digits:
        RecordStore(str(lb / "digits-tiny.jsonl")).append(r)
    capsys.readouterr()
    with _no_model_loads():
        assert main(["report", "--leaderboards", str(lb), "--dataset", "digits-tiny", "--out", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "digits-tiny.html").read_text()
    assert text.count("no sample grid: re-run dgmbench table") == 3
    assert "digits-tiny.samples/fake-s0.png not found" in text and "sha256 differs" in text
    assert all(_embedded(text, f"samples of {f} on digits-tiny, seed {s}") is None for f, s in (("fake", 0), ("fake", 1), ("fake2", 0)))


def test_report_tables_show_stars_numbers_and_kinds(built):
    md = open(built["md"]).read()
    # hand-made numbers: fake FID mean 11 (best; 2.2x the real-data FID 5: anchored 5) -> 5, precision 0.9 -> 5;
    # fake2 FID 44 = 4x best -> 3 (anchored 8.8x -> 4; the lower counts), precision 0.3 -> 2
    assert "★★★★★ FID 11, 2.2x real, precision 0.9" in md
    assert "★★★☆☆ FID 44, 8.8x real, precision 0.3" in md  # (3 + 2) / 2 = 2.5 rounds half up to 3
    # stability: fake2 has one finished and one diverged seed: half the runs failed -> capped at 2
    assert "★★☆☆☆ FID 44, 1/2 diverged" in md
    # density: exact 2.0 bpd, none
    assert "★★★★★ exact, 2 bits/dim" in md
    assert "| fake2 | ★☆☆☆☆ none |" in md
    # ring8: 8/8 modes -> 5; 3/8 with rKL 0.9 -> 2 - 1 = 1
    assert "★★★★★ 8/8 modes" in md
    assert "★☆☆☆☆ 3/8 modes, rKL 0.9" in md
    for rule_word in ("coefficient of variation", "log4(FID / real-data FID)", "factor of 10", "reverse KL",
                      "uniform model", "collapsed"):
        assert rule_word in open(built["html"]).read()


def test_report_shows_real_data_textbook_and_labelled_columns(built):
    """The new sections: the real-data row first in every table, headers naming features and units,
    the textbook table beside the measured one with its summary line and reasons, and its plot."""
    md = open(built["md"]).read()
    text = open(built["html"]).read()
    for doc in (md, text):
        assert "Textbook vs measured" in doc
        # KID is scaled x10^3 only on Inception features (the papers' convention)
        assert "FID (classifier-digits) ↓" in doc and "KID (classifier-digits) ↓" in doc
        assert "bpd (bits/dim) ↓" in doc and "speed (samples/s) ↑" in doc
        assert "NLL (nats/point) ↓" in doc  # ring8: a 2-D density is per point
        assert "row scores held-out training items as if they were a model" in doc
        # ring8: diffusion 8/8 modes (5) vs textbook 5; gan 3/8 modes with rKL 0.9 -> 1 vs textbook 2
        assert "ring8-tiny: " in doc and "rated cells agree with the textbook within one star" in doc
    # KID on the classifier's features shown as it is, with its own subset std (one seed)
    assert "| 0.002 ± 0.0005 |" in md
    # the real-data row is the first row of the metrics and comparison tables of digits
    digits_md = md.split("## ring8-tiny")[0]
    first_rows = [line for line in digits_md.splitlines() if line.startswith("| ") and not line.startswith("| family")]
    assert first_rows[0].startswith("| real data |")
    metrics_rows = digits_md.split("### Metrics")[1].splitlines()
    assert next(line for line in metrics_rows if line.startswith("| ") and "family" not in line).startswith("| real data")
    # the disagreement reason names both ratings and the numbers
    assert "- diffusion speed 2 vs 5: 200,000 samples/s, NFE 1" in md
    assert "textbook-summary" in text and _embedded(text, "textbook vs measured stars") is not None
    assert "textbook 5 · measured 5 ✓" in text


def test_error_bars_are_clipped_to_the_valid_range():
    from dgmbench.report.plots import clipped_errors, valid_range

    assert valid_range("fid") == (0.0, math.inf)
    assert valid_range("recall") == (0.0, 1.0) and valid_range("coverage") == (0.0, 1.0)
    assert valid_range("samples_per_s")[0] > 0 and valid_range("is") == (1.0, math.inf)
    assert valid_range("kde_ll") == (-math.inf, math.inf)
    # density (a mean count of k-NN balls over k) and a KL divergence are never negative
    assert valid_range("density") == (0.0, math.inf) and valid_range("mode_rkl") == (0.0, math.inf)
    assert clipped_errors(0.13, (-0.75, 1.0), "density") == pytest.approx((0.13, 0.87))
    # FID 34 with a bootstrap interval [-11.5, 80.3]: the bar goes down to 0, not below
    assert clipped_errors(34.4, (-11.5, 80.3), "fid") == pytest.approx((34.4, 45.9))
    # recall 0.95 +- 0.1 -> [0.85, 1.0]
    assert clipped_errors(0.95, (0.85, 1.05), "recall") == pytest.approx((0.1, 0.05))
    # speed 0.5 with [-1, 2]: stays above 0
    below, above = clipped_errors(0.5, (-1.0, 2.0), "samples_per_s")
    assert 0.5 - below > 0 and above == pytest.approx(1.5)
    assert clipped_errors(3.0, None, "fid") == (0.0, 0.0)
    # grid25: 24 +- 2.5 modes of 25 -> [21.5, 25], never above the mixture's mode count
    assert valid_range("modes_captured", 25) == (0.0, 25.0) and valid_range("modes_captured")[1] == math.inf
    assert clipped_errors(24.0, (21.5, 26.5), "modes_captured", 25) == pytest.approx((2.5, 1.0))


def test_kid_is_scaled_x1000_only_on_inception_features():
    from dgmbench.report.leaderboard import display_scale

    assert display_scale("kid", ["inception"]) == (1e3, "x10^3")
    assert display_scale("kid", ["classifier-mnist"]) == (1.0, "")
    assert display_scale("kid", ["inception", "classifier-mnist"]) == (1.0, "")  # mixed: never scaled
    assert display_scale("fid", ["inception"]) == (1.0, "")


def test_outlier_switches_to_a_log_axis_and_titles_wrap():
    from dgmbench.report.plots import TITLE_WIDTH, panel_title, wants_log_axis

    # 20-30 and one at 400: 20x the range (< 30x) but 16x the median of the others -> log
    assert wants_log_axis([20.0, 25.0, 30.0, 400.0])
    assert not wants_log_axis([20.0, 25.0, 30.0, 200.0])  # 8x the median: linear
    title = panel_title("high-quality samples (within 3 std) (higher is better), log scale")
    assert all(len(line) <= TITLE_WIDTH for line in title.splitlines()) and title.count("\n") >= 1


def test_mixed_extractors_never_share_a_column():
    from dgmbench.report.leaderboard import metric_header, metrics_markdown, ordered_columns
    from dgmbench.report.summary import summarize

    a = Record(model="a", dataset="cifar10", split="test", family="gan", seed=0)
    a.add(MetricValue("is", 6.0, extractor="inception"))
    b = Record(model="b", dataset="cifar10", split="test", family="vae", seed=0)
    b.add(MetricValue("is", 9.0, extractor="classifier-cifar10"))
    sums = summarize([a, b])
    assert ordered_columns(sums) == [("is", "classifier-cifar10"), ("is", "inception")]  # vae first
    md = metrics_markdown(sums, "image")
    assert "IS (classifier-cifar10) ↑ | IS (inception) ↑" in md
    assert "| vae | none | 1/1 | 9 | - |" in md and "| gan | none | 1/1 | - | 6 |" in md
    assert metric_header("nll", sums, "image") == "NLL (nats/image) ↓"
    assert metric_header("kde_ll", sums, "points", "raw") == "KDE log-likelihood (raw points, nats/point) ↑"


def test_bits_per_dim_on_another_grid_state_it_in_header_and_cells():
    from dgmbench.report.leaderboard import metric_header, metrics_markdown
    from dgmbench.report.summary import summarize

    def rec(family, v, unit):
        r = Record(model=family, dataset="digits", split="test", family=family, seed=0)
        r.add(MetricValue("bpd", v, kind="exact", unit=unit))
        return r

    grid = "bits/dim on a 17-level grid"
    assert metric_header("bpd", summarize([rec("autoregressive", 1.2, grid)]), "image") == f"bpd ({grid}) ↓"
    assert metric_header("bpd", summarize([rec("vae", 1.5, "bits/dim")]), "image") == "bpd (bits/dim) ↓"
    mixed = summarize([rec("autoregressive", 1.2, grid), rec("vae", 1.5, "bits/dim")])
    assert metric_header("bpd", mixed, "image") == f"bpd ({grid} or bits/dim; not comparable) ↓"
    md = metrics_markdown(mixed, "image")
    assert f"1.2 ({grid})" in md and "1.5 (bits/dim)" in md


def _chromium(args, tmp_path, timeout=120):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _dom_flags(dom: str) -> dict[str, str]:
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    return dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', body.group(1)))


@pytest.mark.browser
@needs_chromium
def test_report_renders_in_headless_chromium(built, tmp_path):
    url = "file://" + os.path.abspath(built["html"])
    out = _chromium(["--virtual-time-budget=10000", "--dump-dom", url], tmp_path)
    flags = _dom_flags(out.stdout)
    assert flags.get("data-checked") == "1", out.stderr[-2000:]
    assert flags["data-images"] == "13"
    assert flags["data-failed-images"] == "0", flags.get("data-failed-list")
    assert flags["data-script-errors"] == "0"
    assert "Comparison" in out.stdout and "★" in out.stdout
    assert "Textbook vs measured" in out.stdout and "textbook vs measured stars" in out.stdout
    shot = tmp_path / "shot.png"
    out = _chromium(["--hide-scrollbars", "--window-size=1200,3000", f"--screenshot={shot}", url], tmp_path)
    assert shot.exists(), out.stderr[-2000:]
    img = torch.from_numpy(np.asarray(Image.open(shot).convert("L"), dtype=np.float32))
    assert img.shape == (3000, 1200)
    # a rendered page: mostly white background, with dark text and plots (not a blank or error page)
    assert img.mean() > 150
    assert (img < 100).float().mean() > 0.005
    # the plots are there: rows far down the page are not blank
    assert img[1500:2500].std() > 10


@pytest.mark.browser
@needs_chromium
def test_broken_image_is_caught_by_the_page_check(tmp_path):
    """The in-page check can fail: a corrupt embedded image is reported in the DOM."""
    from dgmbench.report.html import CHECK_SCRIPT

    page = tmp_path / "broken.html"
    page.write_text(f"<!DOCTYPE html><html><head><script>{CHECK_SCRIPT}</script></head><body>"
                    f'<img alt="bad" src="data:image/png;base64,aGVsbG8="><img alt="ok" src="data:image/png;base64,'
                    f'{base64.b64encode(_png_bytes()).decode()}"></body></html>')
    out = _chromium(["--virtual-time-budget=5000", "--dump-dom", "file://" + str(page)], tmp_path)
    flags = _dom_flags(out.stdout)
    assert flags["data-images"] == "2"
    assert flags["data-failed-images"] == "1"
    assert flags["data-failed-list"] == "bad"


def _png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (255, 0, 0)).save(buf, format="PNG")
    return buf.getvalue()


def test_report_cli_from_records_file(built, tmp_path, capsys):
    from dgmbench.cli import main
    from dgmbench.results import RecordStore

    recs = tmp_path / "lb" / "toy.jsonl"
    store = RecordStore(str(recs))
    r = Record(model="m", dataset="digits", split="test", family="vae", seed=0)
    r.add(MetricValue("fid", 3.0))
    store.append(r)
    assert main(["report", "--leaderboards", str(tmp_path / "lb"), "--out", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "toy.html").exists() and (tmp_path / "rep" / "toy.md").exists()
    assert "vae" in capsys.readouterr().out
    # unknown leaderboard: a usage error (exit 2) that says what to run
    assert main(["report", "--leaderboards", str(tmp_path / "lb"), "--dataset", "nope"]) == 2
    assert "dgmbench table --dataset nope" in capsys.readouterr().err


def test_each_family_keeps_its_colour_in_every_plot():
    from baselines.registry import FAMILIES
    from dgmbench.report.plots import FAMILY_ORDER, series_colors

    assert FAMILY_ORDER == tuple(FAMILIES)  # the registry's built-ins, in its order
    every = series_colors(list(FAMILY_ORDER))
    assert len(set(every.values())) == 7
    # a subset, in another order, gives each family the same colour as the full table
    sub = series_colors(["diffusion", "gan", "ebm"])
    assert all(sub[f] == every[f] for f in sub)
    # a user's models take colours that no family present uses, one each
    mixed = series_colors(["mine", "gan", "theirs", "mine"])
    assert mixed["gan"] == every["gan"]
    assert len({mixed["mine"], mixed["theirs"], mixed["gan"]}) == 3


def test_log_axis_when_values_span_more_than_the_limit():
    from dgmbench.report.plots import LOG_SPAN, wants_log_axis

    assert wants_log_axis([1.19, 188.0, 1048.0])          # samples/s on mnist: 880x
    assert wants_log_axis([18.2, 28.6, 1554.0])           # one FID far above the rest
    assert not wants_log_axis([10.0, 12.0, 44.0])         # 4.4x: linear
    assert not wants_log_axis([1.0, LOG_SPAN])            # at the limit: linear
    assert not wants_log_axis([0.0, 5.0, 500.0])          # zero cannot go on a log axis
    assert not wants_log_axis([-3.7, 91.7])               # NLL in nats can be negative
    assert not wants_log_axis([])


def test_environment_names_checkpoints_by_file_name_not_by_the_machine_folder():
    from dgmbench.report.html import environment_rows

    rec = _record("gan", "grid25", 1, "/home/someone/runs/grid25/gan-grid25-s1-0123456789.pt", {})
    rows = {k: v for k, v in environment_rows([rec])}
    assert rows["checkpoint gan seed 1 (sha256)"] == "cd" * 32 + "  gan-grid25-s1-0123456789.pt"


def test_symmetric_log_axis_when_wide_values_cross_zero():
    import warnings

    from dgmbench.report.plots import metric_bars_png, symlog_threshold
    from dgmbench.report.summary import summarize

    # grid25's MMD² column: the real-data row's unbiased estimate is below zero, the GAN's 2,000x the smallest
    mmd = [-2.14e-05, 2.7e-05, 4.95e-05, 8.25e-4, 0.0436, 9.45e-4, 5.5e-4, 2.04e-5]
    assert symlog_threshold(mmd) == 1e-5                  # the decade below the smallest magnitude, 2.04e-5
    assert symlog_threshold([-0.5, 0.03, 40.0]) == 0.01
    assert symlog_threshold([0.0, 3e-3, 9.0]) == 1e-3     # a zero bar sits in the linear part
    assert symlog_threshold([2e-5, 0.04]) is None         # all positive: a plain log axis serves
    assert symlog_threshold([-1.0, 2.0, 3.0]) is None
    # wide spans without one dominating value stay linear: digits' KID x10^3 (392 is 1.4x the next)
    # and mnist's KDE log-likelihoods, whose differences are what the panel shows
    assert symlog_threshold([-56.1, 392.0, 129.0, 284.0, 33.3, 145.0, -19.6, 9.61]) is None
    assert symlog_threshold([126.0, -123.0, 11.9, -48.4, 2.94, -36.3, 41.2, 81.6]) is None
    assert symlog_threshold([-3.7, 91.7]) == 1.0          # 25x: one value dominates
    assert symlog_threshold([-2.0, -1.0]) is None and symlog_threshold([]) is None
    recs = [_record(fam, "grid25", 0, None, {"mmd": (v, v - 1e-4, v + 1e-4)})
            for fam, v in zip(("real", "gan", "vae"), (-2.14e-05, 0.0436, 4.95e-05))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png = metric_bars_png(summarize(recs), ["mmd"])
    assert png is not None and Image.open(io.BytesIO(png)).size[0] > 100


def test_log_panel_with_an_interval_through_zero_renders_without_warnings():
    import warnings

    from dgmbench.report.plots import metric_bars_png, quality_speed_png
    from dgmbench.report.summary import summarize

    recs = [_record("gan", "digits", 0, None, {"samples_per_s": (1000.0, 900.0, 1100.0), "fid": (20.0, 18.0, 22.0)}),
            _record("ebm", "digits", 0, None, {"samples_per_s": (0.5, -1.0, 2.0), "fid": (1500.0, 1400.0, 1600.0)})]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for png in (metric_bars_png(summarize(recs), ["samples_per_s", "fid"]), quality_speed_png(summarize(recs))):
            assert png is not None and Image.open(io.BytesIO(png)).size[0] > 100


def test_loss_series_picks_gan_players_ebm_energies_or_the_loss():
    from dgmbench.report.plots import loss_series

    gan = [{"step": s, "loss": 1.0, "d_loss": 1.0 + s, "g_loss": 2.0 - s} for s in (1, 2)]
    assert [(lab, vals) for lab, _, vals in loss_series(gan)] == [("D loss", [2.0, 3.0]), ("G loss", [1.0, 0.0])]
    ebm = [{"step": s, "loss": -s, "e_pos": -5.0, "e_neg": 5.0, "cd": -10.0} for s in (1, 2)]
    assert [lab for lab, _, _ in loss_series(ebm)] == ["loss", "E(data)", "E(samples)"]
    # a series missing from one row falls back to the plain loss; non-finite values are dropped
    plain = [{"step": 1, "loss": 3.0, "e_pos": 1.0}, {"step": 2, "loss": float("nan")}, {"step": 3, "loss": 2.0}]
    assert loss_series(plain) == [("loss", [1.0, 3.0], [3.0, 2.0])]
    assert loss_series([{"loss": 1.0}]) == [] and loss_series([]) == []


def test_metrics_table_is_split_by_the_registry_sections_so_it_fits_a_page():
    """Quality metrics in one table; alignment, likelihood and speed in a second (each column where the
    registry's group section puts it); a metric of an unknown section is refused at registration."""
    from dgmbench.errors import UsageError
    from dgmbench.metrics.registry import REPORT_TABLES, MetricGroup, MetricSpec, metric_section, register
    from dgmbench.report.leaderboard import column_parts, metrics_markdown
    from dgmbench.report.summary import summarize

    r = Record(model="m", dataset="digits", split="test", family="diffusion", seed=0)
    for name, v in (("fid", 10.0), ("precision", 0.5), ("cond_acc", 0.9), ("nll", 100.0), ("samples_per_s", 3.0),
                    ("kde_ll", -5.0)):
        r.add(MetricValue(name, v))
    parts = column_parts(summarize([r]))
    assert [t for t, _ in parts] == [t for t, _ in REPORT_TABLES]
    assert [m for m, _ in parts[0][1]] == ["fid", "precision"]
    assert {m for m, _ in parts[1][1]} == {"cond_acc", "nll", "samples_per_s", "kde_ll"}
    assert metric_section("clip_score") == "alignment" and metric_section("kid") == "quality"
    md = metrics_markdown(summarize([r]), "image")
    assert md.count("| family | likelihood |") == 2 and "**Alignment, likelihood and speed**" in md
    # quality-only records: one table, no empty second one
    q = Record(model="q", dataset="digits", split="test", family="gan", seed=0)
    q.add(MetricValue("fid", 3.0))
    assert len(column_parts(summarize([q]))) == 1
    with pytest.raises(UsageError, match="unknown section"):
        register(MetricGroup("toy_section", (MetricSpec("toy_section", True, "", "toy"),), lambda ctx: [],
                             section="nowhere"))


def test_a_value_is_never_shown_without_its_note():
    """A note on one row's value marks that cell (†) and is listed under its table; a note every row
    shares is listed once ("every row") without marking the cells; a '-' cell is not marked."""
    from dgmbench.report.leaderboard import NOTE_MARK, metrics_markdown
    from dgmbench.report.summary import summarize

    recs = []
    for fam, fid_inf, note in (("real data", -1.5, "negative FID-infinity -1.5: overshot"), ("vae", 40.0, None),
                               ("gan", None, "too few samples")):
        r = Record(model=fam, dataset="digits", split="test", family=fam, seed=0)
        r.add(MetricValue("fid_inf", fid_inf, note=note))
        r.add(MetricValue("kid", 0.01, std=0.001, note="KID subset size 180"))
        recs.append(r)
    md = metrics_markdown(summarize(recs), "image")
    rows = {line.split(" | ")[0][2:]: line for line in md.splitlines() if line.startswith("| ") and "family" not in line}
    assert f"-1.5{NOTE_MARK} |" in rows["real data"] and NOTE_MARK not in rows["vae"]
    assert NOTE_MARK not in rows["gan"]  # its FID-inf is '-' (the note says why elsewhere); KID's note is shared
    assert "- FID-inf, real data: negative FID-infinity -1.5: overshot" in md
    assert "- KID, every row: KID subset size 180" in md
    assert "too few samples" not in md


def _seed_records(values, family="flow", metric="nll"):
    out = []
    for seed, v in enumerate(values):
        r = Record(model=f"{family}-ring8", dataset="ring8", split="test", family=family, seed=seed)
        r.add(MetricValue(metric, v, unit="nats"))
        r.config = {"table": {"family": family, "preset": "ring8", "status": "ok"}}
        out.append(r)
    return out


def test_leaderboard_shows_the_median_over_seeds_when_one_seed_dominates_the_mean():
    """Three seeds with one far off (an NLL of 281.8 next to -3.53 and -3.17): the cell shows mean ±
    std and numpy's median; evenly spread seeds, or a spread small against the value, show no median."""
    from dgmbench.report.leaderboard import leaderboard_frame, metrics_markdown
    from dgmbench.report.summary import summarize

    vals = [281.8, -3.53, -3.17]
    sums = summarize(_seed_records(vals))
    md = metrics_markdown(sums, "points")
    assert "| flow | none | 3/3 | 91.7 ± 165 (median -3.17) |" in md  # numpy: mean 91.70, std 164.6, median -3.17
    assert (np.mean(vals), np.std(vals, ddof=1), np.median(vals)) == pytest.approx((91.70, 164.63, -3.17), abs=0.01)
    df = leaderboard_frame(sums)
    assert df.loc[0, "nll_median"] == pytest.approx(np.median(vals), rel=1e-12)
    for calm in ([-3.5, -3.2, -3.9], [8.0, 8.0, 7.0], [2.67, 3.54, 3.76]):
        assert "median" not in metrics_markdown(summarize(_seed_records(calm)), "points"), calm
    # an even number of seeds: numpy's median, the mean of the two middle values
    four = [349.3, 28.1, 30.0, 29.0]
    assert np.median(four) == pytest.approx(29.5)
    assert "(median 29.5)" in metrics_markdown(summarize(_seed_records(four)), "points")


def test_per_seed_notes_of_one_row_share_a_line():
    from dgmbench.report.leaderboard import metrics_markdown
    from dgmbench.report.summary import summarize

    recs = []
    for seed, sigma in enumerate((0.263, 0.265)):
        r = Record(model="gan", dataset="digits", split="test", family="gan", seed=seed)
        r.add(MetricValue("kde_ll", -40.0 - seed, std=0.5, note=f"the chosen bandwidth {sigma} is at the edge"))
        recs.append(r)
    v = Record(model="vae", dataset="digits", split="test", family="vae", seed=0)
    v.add(MetricValue("kde_ll", -17.0, std=0.2))
    md = metrics_markdown(summarize(recs + [v]), "image")
    line = next(x for x in md.splitlines() if x.startswith("- KDE"))
    assert line.endswith("gan (per seed): the chosen bandwidth 0.263 is at the edge; the chosen bandwidth 0.265 is at the edge")
    assert sum(x.startswith("- KDE") for x in md.splitlines()) == 1


def test_published_vs_measured_section_on_the_2d_benchmarks(tmp_path):
    """ring8: PacGAN's published rows beside the measured gan row, whose mean is recomputed here
    from the committed records; the HTML and Markdown reports carry the section, image tables do not."""
    records = load_records(os.path.join(os.path.dirname(__file__), "..", "leaderboards", "ring8.jsonl"))
    rows = published_rows("ring8", summarize(records))
    assert [r[1] for r in rows[:3]] == ["GAN", "PacGAN2", "GAN"] and rows[1][2] == "7.9 ± 0.1 (s.e.)"
    assert rows[2][2:4] == ["1", "0.993"]  # VEEGAN's single values carry no spread
    measured = [r for r in rows if r[0].startswith("measured here")]
    assert len(measured) == 1 and measured[0][1].startswith("gan")
    modes = [r.value("modes_captured") for r in records if r.family == "gan" and r.value("modes_captured") is not None]
    assert measured[0][0] == f"measured here ({len(modes)} seeds)"
    assert measured[0][2].startswith(f"{np.mean(modes):.3g} ± ")
    assert published_rows("digits", summarize(records)) == [] and "digits" not in PUBLISHED
    out = tmp_path / "rep"
    assert cli_main(["report", "--records", os.path.join(os.path.dirname(__file__), "..", "leaderboards", "ring8.jsonl"),
                     "--out", str(out), "--name", "r8"]) == 0
    assert "Published vs measured" in (out / "r8.html").read_text() and "PacGAN2" in (out / "r8.md").read_text()
