"""``dgmbench table``: leaderboard files, caching, resume after a kill, diverged runs, bad input.

Uses the baseline families' ``digits-tiny`` presets where they exist (filled up with the
stand-in ``fake`` family from test_table_fakefamily so the tests run whatever has landed),
the real metric engine, few samples and one seed per family to stay fast.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import test_table_fakefamily as fake

TESTS = str(Path(__file__).resolve().parent)
N = 120
STEPS = 40  # training steps per model (the presets' own are longer; a shared CPU is slow)
METRICS = "fid,prdc,nll,speed"
TIMING = ("samples_per_s", "samples_per_s_std", "samples_per_s_median")
REF_CODE: dict = {}  # code versions of the reference run (other developers may edit files meanwhile)


PREFERRED = ("flow", "vae", "gan", "autoregressive", "diffusion", "score", "ebm")  # cheapest evaluation first


def _families(k: int = 1) -> list[str]:
    """``fake`` first (fast, so a kill lands while the next model runs), then up to ``k`` real
    families with a digits-tiny preset."""
    from baselines.registry import family_module

    real = []
    for fam in PREFERRED:
        try:
            mod = family_module(fam)
        except ImportError:
            continue
        if "digits-tiny" in getattr(mod, "PRESETS", {}) and callable(getattr(mod, "build_model", None)):
            real.append(fam)
    return ["fake"] + real[:k]


def _args(out: Path, runs: Path, families: list[str], *extra: str) -> list[str]:
    return ["table", "--dataset", "digits", "--preset", "digits-tiny", "--families", ",".join(families), "--seeds", "1",
            "--steps", str(STEPS), "-n", str(N), "--metrics", METRICS, "--device", "cpu", "--out", str(out), "--runs-dir", str(runs),
            "--no-progress", *extra]


def _events(runs: Path) -> list[dict]:
    path = runs / "table-state.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def _reference_grid(checkpoint: str, seed: int, sampling: dict | None = None) -> np.ndarray:
    """The 8 x 8 grid a table run must draw, written out independently: 64 samples of the checkpoint
    (with the sampler options) from a CPU generator seeded by the run's seed, each pixel
    round(255 * clamp(x, 0, 1)), tiles of one digit image placed by hand on a white 1-pixel lattice."""
    import torch

    from baselines.checkpoint import load_baseline
    from dgmbench.sampling import apply_sampling_options

    model = load_baseline(checkpoint, device="cpu")
    apply_sampling_options(model, sampling or {})
    with torch.no_grad():
        x = model.sample(64, generator=torch.Generator().manual_seed(seed)).float()
    return _hand_grid(x)


def _hand_grid(x) -> np.ndarray:
    """64 grey images (N, 1, h, w) placed by hand on a white 1-pixel lattice, round(255 * clamp(x, 0, 1))."""
    x = x.float().clamp(0, 1).numpy()
    _, c, h, w = x.shape
    assert c == 1
    grid = np.full((8 * (h + 1) + 1, 8 * (w + 1) + 1), 255, dtype=np.uint8)
    for i in range(64):
        r, col = divmod(i, 8)
        grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + col * (w + 1):1 + col * (w + 1) + w] = np.rint(x[i, 0] * 255)
    return grid


def _grid_pixels(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        assert img.mode == "L"
        return np.asarray(img)


def _subprocess(args: list[str], env: dict) -> subprocess.Popen:
    code = fake.REGISTER_SNIPPET.format(tests=TESTS) + f"from dgmbench.cli import main; sys.exit(main({args!r}))"
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("dgmbench-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DGMBENCH_HOME", str(home))
        yield home


@pytest.fixture(scope="module")
def reference(tmp_path_factory, home):
    """One uninterrupted in-process run: the leaderboard every other run must reproduce."""
    from baselines import registry
    from dgmbench.cli import main
    from dgmbench.table import runner

    tmp = tmp_path_factory.mktemp("table-ref")
    families = _families()
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(registry.FAMILIES, "fake", fake.MODULE)
        REF_CODE["family"] = {f: runner.family_code_version(f) for f in families}
        REF_CODE["eval"] = runner.eval_code_version()
        mp.setattr(runner, "family_code_version", lambda fam: REF_CODE["family"][fam])
        mp.setattr(runner, "eval_code_version", lambda: REF_CODE["eval"])
        assert main(_args(tmp / "lb", tmp / "runs", families)) == 0
    return tmp, families


def test_leaderboard_files(reference):
    tmp, families = reference
    csv = tmp / "lb" / "digits-tiny.csv"
    first = csv.read_text().splitlines()[0]
    assert first.startswith("# generated by: dgmbench table --dataset digits --preset digits-tiny")
    assert f"--steps {STEPS}" in first
    md = (tmp / "lb" / "digits-tiny.md").read_text()
    assert "dgmbench table --dataset digits --preset digits-tiny" in md.splitlines()[0]
    assert "## Comparison" in md and "★" in md
    df = pd.read_csv(csv, comment="#")
    assert list(df["family"]) == ["real data"] + [f for f in ("autoregressive", "vae", "flow", "gan", "ebm", "score",
                                                              "diffusion", "fake") if f in families]
    records = [json.loads(line) for line in (tmp / "lb" / "digits-tiny.jsonl").read_text().splitlines()]
    assert len(records) == len(families) + 1
    # the real-data row: held-out training images scored like a model (same n and metrics, no NLL/speed),
    # first in the leaderboard, disjoint from KDE's 1000 validation items
    real = records[0]
    assert real["family"] == "real data" and real["config"]["table"]["real_data"] is True
    assert real["n_samples"] == N
    assert set(real["metrics"]) == {"fid", "fid_inf", "precision", "recall", "density", "coverage"}
    # FID-inf needs subsets of at least ceil(2.4 d) = 154 for the 64-d features plus a range above them
    # (Chong & Forsyth): 154 + 64 = 218 samples; with fewer it is not computed, and says why
    assert real["metrics"]["fid_inf"]["value"] is None
    assert "at least 218 generated samples" in real["metrics"]["fid_inf"]["note"]
    assert f"items 1000..{1000 + N - 1} of its seed-0 permutation" in real["config"]["table"]["subset"]
    assert 0 < real["metrics"]["fid"]["value"] < min(r["metrics"]["fid"]["value"] for r in records[1:])
    md = (tmp / "lb" / "digits-tiny.md").read_text()
    assert "## Textbook vs measured" in md and "rated cells agree with the textbook within one star" in md
    assert "FID (classifier-digits) ↓" in md
    records = records[1:]
    for rec in records:
        row = df[df["family"] == rec["family"]].iloc[0]
        assert rec["config"]["table"]["status"] == "ok", rec["config"]["table"]
        assert rec["n_samples"] in (None, N)
        # the CSV holds each Record's values (one seed: mean = value)
        for m in ("fid", "precision", "recall", "coverage"):
            assert math.isclose(row[m], rec["metrics"][m]["value"], rel_tol=1e-9)
        assert rec["metrics"]["fid"]["extractor"] == "classifier-digits"
        kind = rec["config"]["table"]["likelihood_kind"]
        assert row["likelihood_kind"] == kind
        if kind == "none":
            assert "bpd" not in rec["metrics"]
        else:
            assert rec["metrics"]["bpd"]["kind"] == kind
        assert row["nfe"] > 0
        history = rec["config"]["table"]["history"]
        assert history and history[-1]["step"] == rec["config"]["table"]["train_steps"]
    # the stand-in is a factorised Gaussian: exact likelihood, one network pass per sample
    fake_row = df[df["family"] == "fake"].iloc[0]
    assert fake_row["likelihood_kind"] == "exact" and fake_row["nfe"] == 1


def test_table_run_writes_the_sample_grid_files(reference, monkeypatch):
    """Every scored model's grid is a committed-size PNG next to the leaderboard, named with its
    sha256 in the Record, and holds exactly the samples its checkpoint gives with the run's seed."""
    from baselines import registry
    from dgmbench.results import sha256_file

    monkeypatch.setitem(registry.FAMILIES, "fake", fake.MODULE)
    tmp, families = reference
    records = [json.loads(line) for line in (tmp / "lb" / "digits-tiny.jsonl").read_text().splitlines()]
    assert sorted(p.name for p in (tmp / "lb" / "digits-tiny.samples").iterdir()) == sorted(
        [f"{f}-s0.png" for f in families] + ["real-data-s0.png"])
    # the real-data grid: the first 64 held-out images (items 1000.. of the seed-0 permutation of the train split)
    import torch

    from dgmbench.data.registry import get_dataset

    real, records = records[0], records[1:]
    train = get_dataset("digits", "train").data
    held_out = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[1000:1064]]
    assert real["config"]["table"]["sample_grid"] == "digits-tiny.samples/real-data-s0.png"
    np.testing.assert_array_equal(_grid_pixels(tmp / "lb" / real["config"]["table"]["sample_grid"]),
                                  _hand_grid(held_out))
    for rec in records:
        t = rec["config"]["table"]
        assert t["sample_grid"] == f"digits-tiny.samples/{rec['family']}-s0.png"
        path = tmp / "lb" / t["sample_grid"]
        assert sha256_file(path) == t["sample_grid_sha256"]
        assert path.stat().st_size < 20_000  # 73 x 73 grey pixels
        np.testing.assert_array_equal(_grid_pixels(path), _reference_grid(t["checkpoint"], rec["seed"]))


def test_rerun_reuses_everything(reference, monkeypatch, capsys):
    from baselines import registry
    from dgmbench.cli import main

    tmp, families = reference
    monkeypatch.setitem(registry.FAMILIES, "fake", fake.MODULE)
    # the cache keys hash the code; pin them to the reference run's, in case a file changed since
    from dgmbench.table import runner

    ref_events = _events(tmp / "runs")
    monkeypatch.setattr(runner, "family_code_version", lambda fam: REF_CODE["family"][fam])
    monkeypatch.setattr(runner, "eval_code_version", lambda: REF_CODE["eval"])
    assert sum(e["event"] == "train_done" for e in ref_events) == len(families)
    before = (tmp / "lb" / "digits-tiny.csv").read_text()
    assert main(["--json"] + _args(tmp / "lb", tmp / "runs", families)) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["trained"] == [] and len(out["reused"]) == len(families)
    assert (tmp / "lb" / "digits-tiny.csv").read_text() == before
    assert sum(e["event"] == "train_done" for e in _events(tmp / "runs")) == len(families)
    # a deleted grid is drawn again from the checkpoint (no training, no new evaluation), the same
    # bytes; a grid file no Record names is removed
    grids = tmp / "lb" / "digits-tiny.samples"
    want = {p.name: p.read_bytes() for p in grids.iterdir()}
    (grids / "fake-s0.png").unlink()
    (grids / "gone-s0.png").write_bytes(b"stale")
    assert main(["--json"] + _args(tmp / "lb", tmp / "runs", families)) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["trained"] == [] and len(out["reused"]) == len(families)
    assert {p.name: p.read_bytes() for p in grids.iterdir()} == want
    assert (tmp / "lb" / "digits-tiny.csv").read_text() == before


def _without_timing(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, comment="#")
    return df.drop(columns=[c for c in TIMING if c in df.columns])


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_leaderboard(reference, tmp_path, home):
    """Kill ``dgmbench table`` (SIGKILL) after its first model is evaluated; a rerun finishes with
    the uninterrupted run's leaderboard and no model is trained twice."""
    ref_tmp, families = reference
    env = {**os.environ, "DGMBENCH_HOME": str(home), "PYTHONPATH": os.pathsep.join(sys.path)}
    args = _args(tmp_path / "lb", tmp_path / "runs", families)
    proc = _subprocess(args, env)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if any(e["event"] == "eval_done" for e in _events(tmp_path / "runs")):
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()[-2000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = _events(tmp_path / "runs")
    done_first = [e for e in first if e["event"] == "eval_done"]
    assert 1 <= len(done_first) < len(families), "the kill must land between the first and the last model"
    assert not (tmp_path / "lb" / "digits-tiny.csv").exists()

    proc = _subprocess(args, env)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    events = _events(tmp_path / "runs")
    # no model trained twice: one train_done per model, and the models finished before the kill never restarted
    done = [e["key"] for e in events if e["event"] == "train_done"]
    assert len(done) == len(set(done)) == len(families)
    finished_keys = {e["key"] for e in first if e["event"] == "train_done"}
    restarted = [e for e in events[len(first):] if e["event"] == "train_start" and e["key"] in finished_keys]
    assert restarted == []
    # the evaluations finished before the kill were reused, not redone
    evals = [e["key"] for e in events if e["event"] == "eval_done"]
    assert len(evals) == len(set(evals)) == len(families) + 1  # + the real-data row
    got = _without_timing(tmp_path / "lb" / "digits-tiny.csv")
    want = _without_timing(ref_tmp / "lb" / "digits-tiny.csv")
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert (tmp_path / "lb" / "digits-tiny.csv").read_text().splitlines()[0] == \
        (ref_tmp / "lb" / "digits-tiny.csv").read_text().splitlines()[0]


def test_diverged_runs_are_counted_not_scored(tmp_path, home, monkeypatch, capsys):
    from baselines import registry
    from dgmbench.cli import main

    monkeypatch.setitem(registry.FAMILIES, "fake", fake.MODULE)
    args = ["table", "--dataset", "digits", "--preset", "digits-nan", "--seeds", "2", "-n", str(N), "--metrics",
            METRICS, "--device", "cpu", "--out", str(tmp_path / "lb"), "--runs-dir", str(tmp_path / "runs"),
            "--no-progress"]
    assert main(args) == 0
    capsys.readouterr()
    df = pd.read_csv(tmp_path / "lb" / "digits-nan.csv", comment="#")
    # every registered family but fake lacks a 'digits-nan' preset: reported, not crashed on
    assert list(df["family"]) == ["real data", "fake"]
    row = df.iloc[1]
    assert row["runs"] == 2 and row["diverged"] == 2
    recs = [json.loads(x) for x in (tmp_path / "lb" / "digits-nan.jsonl").read_text().splitlines()][1:]
    assert [r["config"]["table"]["status"] for r in recs] == ["diverged", "diverged"]
    assert all(r["metrics"] == {} for r in recs)
    assert "diverged at step 13" in recs[0]["config"]["table"]["note"]
    md = (tmp_path / "lb" / "digits-nan.md").read_text()
    assert "★☆☆☆☆ 2/2 diverged" in md  # all runs diverged -> 1 star
    assert "## Not in this table" in md and "no 'digits-nan' preset" in md
    # a rerun does not train the diverged models again
    assert main(["--json"] + args) == 0
    assert json.loads(capsys.readouterr().out)["trained"] == []


def test_mixture_dataset_reports_mode_coverage(tmp_path, home, monkeypatch):
    from baselines import registry
    from dgmbench.cli import main

    monkeypatch.setitem(registry.FAMILIES, "fake", fake.MODULE)
    assert main(["table", "--dataset", "ring8", "--preset", "ring8-tiny", "--families", "fake", "--seeds", "1",
                 "-n", "500", "--device", "cpu", "--out", str(tmp_path), "--runs-dir", str(tmp_path / "runs"),
                 "--no-progress"]) == 0
    real, rec = [json.loads(x) for x in (tmp_path / "ring8-tiny.jsonl").read_text().splitlines()]
    # the real-data row: held-out ring points capture every mode, nearly all within 3 std
    assert real["family"] == "real data" and real["metrics"]["modes_captured"]["value"] == 8
    assert real["metrics"]["hq_fraction"]["value"] > 0.95
    m = rec["metrics"]
    # a single Gaussian fit to the ring: most samples lie between the modes, far more than 3 std (0.03) away
    assert m["hq_fraction"]["value"] < 0.2
    assert 0 <= m["modes_captured"]["value"] <= 8
    assert rec["config"]["table"]["num_modes"] == 8
    md = (tmp_path / "ring8-tiny.md").read_text()
    assert "/8 modes" in md and "% HQ" in md
    from PIL import Image  # the 2-D grid: a scatter image

    with Image.open(tmp_path / rec["config"]["table"]["sample_grid"]) as img:
        assert rec["config"]["table"]["sample_grid"] == "ring8-tiny.samples/fake-s0.png"
        assert img.format == "PNG" and img.width > 150 and img.height > 150


def test_nll_n_scores_a_subset_and_is_part_of_the_command_and_the_cache_key(tmp_path, home, monkeypatch, capsys):
    from baselines import registry
    from dgmbench.cli import main

    monkeypatch.setitem(registry.FAMILIES, "fake", fake.MODULE)
    args = ["table", "--dataset", "digits", "--preset", "digits-tiny", "--families", "fake", "--seeds", "1",
            "--metrics", "nll", "--device", "cpu", "--out", str(tmp_path), "--runs-dir", str(tmp_path / "runs"),
            "--no-progress"]
    assert main(args + ["--nll-n", "40"]) == 0
    rec = json.loads((tmp_path / "digits-tiny.jsonl").read_text())
    assert rec["metrics"]["nll"]["n"] == 40 and "seeded subset of 40" in rec["metrics"]["nll"]["note"]
    assert "--nll-n 40" in rec["config"]["table"]["command"]
    capsys.readouterr()
    assert main(["--json"] + args) == 0  # all items: a different evaluation, the same trained model
    out = json.loads(capsys.readouterr().out)
    assert out["trained"] == [] and out["reused"] == []
    assert json.loads((tmp_path / "digits-tiny.jsonl").read_text())["metrics"]["nll"]["n"] == 360


def test_adopted_checkpoint_stands_in_for_training_and_is_named(tmp_path, home, monkeypatch, capsys):
    """A model trained by ``baselines train`` with the preset's config and seed scores exactly as
    the table's own training does; the Record and the leaderboard name it; a mismatch is refused."""
    from baselines import registry
    from baselines.train import train_preset
    from dgmbench.cli import main

    monkeypatch.setitem(registry.FAMILIES, "fake", fake.MODULE)
    args = ["table", "--dataset", "digits", "--preset", "digits-tiny", "--families", "fake", "--seeds", "2",
            "--metrics", "fid,nll", "-n", "60", "--device", "cpu", "--no-progress"]
    own = ["--out", str(tmp_path / "own"), "--runs-dir", str(tmp_path / "own-runs")]
    assert main(["--json"] + args + own) == 0
    assert json.loads(capsys.readouterr().out)["trained"] == [["fake", 0], ["fake", 1]]

    ckpt = tmp_path / "elsewhere" / "fake-s1.pt"
    train_preset("fake", "digits-tiny", checkpoint=str(ckpt), seed=1, progress=False, device="cpu")
    mine = ["--out", str(tmp_path / "lb"), "--runs-dir", str(tmp_path / "runs")]
    assert main(["--json"] + args + mine + ["--adopt", str(ckpt)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["adopted"] == [["fake", 1]] and out["trained"] == [["fake", 0]]
    recs = [json.loads(line) for line in (tmp_path / "lb" / "digits-tiny.jsonl").read_text().splitlines()]
    recs = [r for r in recs if r["family"] != "real data"]
    assert [r["config"]["table"]["adopted_from"] for r in recs] == [None, str(ckpt.resolve())]
    refs = [json.loads(line) for line in (tmp_path / "own" / "digits-tiny.jsonl").read_text().splitlines()]
    refs = [r for r in refs if r["family"] != "real data"]
    assert len(refs) == len(recs) == 2
    for r, ref in zip(recs, refs):
        assert r["metrics"]["fid"]["value"] == ref["metrics"]["fid"]["value"]
        assert r["metrics"]["nll"]["value"] == ref["metrics"]["nll"]["value"]
    done = [e for e in _events(tmp_path / "runs") if e["event"] == "train_done" and e["seed"] == 1]
    assert done[-1]["from_step"] == done[-1]["step"] == fake.PRESETS["digits-tiny"]["train"]["steps"]
    md = (tmp_path / "lb" / "digits-tiny.md").read_text()
    assert "Adopted checkpoints" in md and "fake seed 1 from `fake-s1.pt`" in md
    assert "--adopt" not in recs[0]["config"]["table"]["command"]

    short = tmp_path / "elsewhere" / "fake-short.pt"
    train_preset("fake", "digits-tiny", checkpoint=str(short), seed=0, overrides={"train": {"steps": 12}},
                 progress=False, device="cpu")
    assert main(args + ["--out", str(tmp_path / "x"), "--runs-dir", str(tmp_path / "x-runs"), "--adopt", str(short)]) == 2
    assert "train steps 12 != 40" in capsys.readouterr().err
    assert main(args + ["--seeds", "1", "--out", str(tmp_path / "x"), "--runs-dir", str(tmp_path / "x-runs"),
                        "--adopt", str(ckpt)]) == 2
    assert "fake checkpoint of seed 1" in capsys.readouterr().err
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    assert main(args + ["--out", str(tmp_path / "x"), "--runs-dir", str(tmp_path / "x-runs"),
                        "--adopt", str(tmp_path / "bad.pt")]) == 3  # a checkpoint error, not a traceback
    err = capsys.readouterr().err
    assert "bad.pt" in err and "Traceback" not in err


def test_adoption_compares_the_config_a_family_fills_in():
    """A GAN holds its config with defaults filled in: a checkpoint of the preset matches, one of
    another preset names the keys that differ."""
    from baselines.gan import build_model
    from baselines.registry import get_preset
    from baselines.train import TrainConfig
    from dgmbench.table.adopt import train_differences

    spec = get_preset("gan", "digits")
    model = build_model(spec["model"], (1, 8, 8), 10 if spec["model"].get("conditional") else None)
    assert set(model.config) > set(spec["model"])  # defaults were added
    state = {"family": "gan", "dataset": "digits", "config": dict(model.config), "data_shape": [1, 8, 8],
             "num_classes": 10, "train_config": {**vars(TrainConfig.from_dict({**spec["train"], "seed": 2})),
                                                  "device": "cuda", "log_every": 1}}
    assert train_differences(state, spec, 2) == []  # device and logging do not matter
    assert train_differences(state, spec, 1) == ["train seed 2 != 1"]
    other = get_preset("gan", "digits-wgangp")
    assert any(d.startswith("model config differs in") and "loss" in d for d in train_differences(state, other, 2))
    subset = {**spec, "dataset_kwargs": {"n": 500}}  # a preset training on other data than the checkpoint's
    assert train_differences(state, subset, 2) == ["dataset options {} != {'n': 500}"]
    assert train_differences({**state, "dataset_kwargs": {"n": 500}}, subset, 2) == []


@pytest.mark.parametrize("argv, needle", [
    (["--seeds", "0"], "--seeds must be at least 1"),
    (["--dataset", "ring8", "--preset", "digits-tiny", "--families", "fake"], "trains on 'digits'"),
    (["--families", "vea"], "did you mean 'vae'"),
    (["--families", "fake", "--preset", "nope"], "no family can run"),
    (["--families", "fake", "--preset", "digits-tiny", "--metrics", "fid,precison"], "unknown metric 'precison'"),
])
def test_bad_input_is_a_usage_error(argv, needle, tmp_path, monkeypatch, capsys):
    from baselines import registry
    from dgmbench.cli import main

    monkeypatch.setitem(registry.FAMILIES, "fake", fake.MODULE)
    base = ["table", "--out", str(tmp_path), "--runs-dir", str(tmp_path / "runs"), "--no-progress"]
    assert main(base + argv) == 2
    assert needle in capsys.readouterr().err


def test_state_log_skips_a_torn_line(tmp_path):
    from dgmbench.table.runner import StateLog

    log = StateLog(str(tmp_path / "s.jsonl"))
    log.append({"event": "train_done", "key": "a"})
    with open(log.path, "a") as f:
        f.write('{"event": "eval_do')  # a writer killed mid-line
    log.append({"event": "eval_done", "key": "b"})
    assert [e["key"] for e in log.events()] == ["a", "b"]
    assert log.find("eval_done", "b") is not None and log.find("eval_done", "a") is None


def test_aggregates_match_numpy():
    """Leaderboard mean/std over seeds equal numpy's (ddof=1) on hand-made records."""
    from dgmbench.report.leaderboard import leaderboard_frame
    from dgmbench.report.summary import summarize
    from dgmbench.results import MetricValue, Record

    vals = [3.0, 4.5, 7.25]
    recs = []
    for seed, v in enumerate(vals):
        r = Record(model="vae-x", dataset="digits", split="test", family="vae", seed=seed)
        r.add(MetricValue("fid", v))
        r.config = {"table": {"family": "vae", "preset": "x", "status": "ok"}}
        recs.append(r)
    bad = Record(model="vae-x", dataset="digits", split="test", family="vae", seed=3)
    bad.config = {"table": {"family": "vae", "preset": "x", "status": "failed"}}
    df = leaderboard_frame(summarize(recs + [bad]))
    assert df.loc[0, "fid"] == pytest.approx(np.mean(vals), rel=1e-12)
    assert df.loc[0, "fid_std"] == pytest.approx(np.std(vals, ddof=1), rel=1e-12)
    assert df.loc[0, "runs"] == 4 and df.loc[0, "diverged"] == 1


def test_demo_runs_table_then_report(tmp_path, home, monkeypatch, capsys):
    from baselines import registry
    from dgmbench import demo

    monkeypatch.setitem(registry.FAMILIES, "fake", fake.MODULE)
    rc = demo.main(["--families", "fake", "--preset", "digits-tiny", "--seeds", "1", "--steps", "10",
                    "--out", str(tmp_path / "lb"), "--runs-dir", str(tmp_path / "runs"),
                    "--reports", str(tmp_path / "rep"), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "$ dgmbench table --dataset digits --seeds 1" in out and "--threads 1" in out and "$ dgmbench report --dataset digits-tiny" in out
    assert (tmp_path / "lb" / "digits-tiny.md").exists()
    html = (tmp_path / "rep" / "digits-tiny.html").read_text()
    assert "fake" in html and "data:image/png;base64," in html
    assert "demo finished" in out


def test_threads_option_sets_torch_threads_for_the_run_and_is_in_the_command(tmp_path, home, monkeypatch, capsys):
    """``--threads 1`` runs training and scoring with one torch thread (the committed leaderboards'
    count, which makes CPU training bit-reproducible), names it in the command and restores the count."""
    import torch

    import baselines.train as btrain
    from baselines import registry
    from dgmbench.cli import main
    monkeypatch.setitem(registry.FAMILIES, "fake", fake.MODULE)
    seen = []
    orig = btrain.train_preset

    def spy(*a, **k):  # the table imports train_preset from baselines.train when it trains
        seen.append(torch.get_num_threads())
        return orig(*a, **k)

    monkeypatch.setattr(btrain, "train_preset", spy)
    before = torch.get_num_threads()
    want = 1 if before != 1 else 2
    args = ["table", "--dataset", "digits", "--preset", "digits-tiny", "--families", "fake", "--seeds", "1",
            "--steps", "5", "--metrics", "nll", "--device", "cpu", "--out", str(tmp_path),
            "--runs-dir", str(tmp_path / "runs"), "--no-progress", "--threads", str(want)]
    assert main(args) == 0
    assert seen == [want] and torch.get_num_threads() == before
    assert f"--threads {want}" in (tmp_path / "digits-tiny.md").read_text().splitlines()[0]
    capsys.readouterr()
    assert main(args[:-1] + ["0"]) == 2
    assert "--threads must be at least 1" in capsys.readouterr().err


def test_sampling_option_rescoring_reuses_the_trained_model(tmp_path, home, capsys):
    """``--sampling ebm:sample_steps=K`` scores the EBM with K SGLD steps: the trained model is
    reused, the evaluation is redone, and the Record, the command and the header name the sampler."""
    from dgmbench.cli import main

    base = ["--json", "table", "--dataset", "digits", "--preset", "digits-tiny", "--families", "ebm", "--seeds", "1",
            "--steps", "3", "--metrics", "speed", "--device", "cpu", "--out", str(tmp_path),
            "--runs-dir", str(tmp_path / "runs"), "--no-progress"]
    assert main(base) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["trained"] == [["ebm", 0]]
    default_nfe = first["records"][0]["config"]["table"]["nfe_per_sample"]
    assert main(base + ["--sampling", "ebm:sample_steps=3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["trained"] == [] and out["reused"] == []  # same model, new evaluation
    table = out["records"][0]["config"]["table"]
    assert table["sampling"] == {"sample_steps": 3} and table["nfe_per_sample"] == 6.0 != default_nfe
    assert "--sampling ebm:sample_steps=3" in table["command"]
    assert out["records"][0]["model"] == "ebm-digits-tiny [sample_steps=3]"
    md = (tmp_path / "digits-tiny.md").read_text()
    assert "Sampler options (scored with them; training is not affected): ebm sample_steps=3." in md
    # the grid is drawn with the sampler the metrics used
    grid = _grid_pixels(tmp_path / table["sample_grid"])
    np.testing.assert_array_equal(grid, _reference_grid(table["checkpoint"], 0, {"sample_steps": 3}))
    assert not np.array_equal(grid, _reference_grid(table["checkpoint"], 0))
    assert main(base + ["--sampling", "ebm:sample_steps=3"]) == 0  # and that evaluation is cached in turn
    assert json.loads(capsys.readouterr().out)["reused"] == [["ebm", 0]]


@pytest.mark.parametrize("sampling, needle", [
    ("ebm:nope=1", "unknown sampling option(s) nope"),
    ("vae:sample_steps=3", "not in this table"),
    ("ebm", "takes FAMILY:KEY=VALUE"),
])
def test_bad_sampling_option_stops_before_any_training(sampling, needle, tmp_path, capsys):
    from dgmbench.cli import main

    argv = ["table", "--dataset", "digits", "--preset", "digits-tiny", "--families", "ebm", "--seeds", "1",
            "--steps", "3", "--out", str(tmp_path), "--runs-dir", str(tmp_path / "runs"), "--no-progress",
            "--sampling", sampling]
    assert main(argv) == 2
    assert needle in capsys.readouterr().err
    assert not list((tmp_path / "runs").rglob("*.pt"))


def test_eval_code_version_hashes_the_scoring_modules_only(tmp_path):
    """The evaluation key's code hash covers the modules that can change a metric (the new
    sampling/reference/options modules and metrics/registry.py included), skips missing ones, and
    ignores the CLI, the report and the table job."""
    import hashlib

    from dgmbench.table.runner import eval_code_version

    pkg = tmp_path / "dgmbench"
    counted = ["harness.py", "sampling.py", "reference.py", "options.py", "devices.py", "protocol.py", "units.py",
               "validation.py", "results.py", "metrics/registry.py", "metrics/fid.py", "features/inception.py",
               "data/registry.py", "assets/classifier/w.bin"]
    ignored = ["cli.py", "commands/score.py", "report/html.py", "table/runner.py", "metrics/sub/deep.py"]
    for rel in counted + ignored:
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(f"# {rel}\n")

    def reference() -> str:  # the hash written out again: sorted paths, each file's name then bytes
        h = hashlib.sha256()
        for p in sorted(pkg / rel for rel in counted):
            h.update(p.name.encode())
            h.update(p.read_bytes())
        return h.hexdigest()[:16]

    base = eval_code_version(pkg)
    assert base == reference()
    for rel in ignored:
        (pkg / rel).write_text("# edited\n")
        assert eval_code_version(pkg) == base, rel
    for rel in ("sampling.py", "options.py", "metrics/registry.py", "results.py", "assets/classifier/w.bin"):
        (pkg / rel).write_text("# edited\n")
        now = eval_code_version(pkg)
        assert now != base, rel
        base = now
    (pkg / "reference.py").unlink()  # a module that does not exist (yet) is skipped
    counted.remove("reference.py")
    assert eval_code_version(pkg) == reference()


def test_no_real_data_leaves_the_row_out_and_says_so_in_the_command(tmp_path, home, capsys):
    """`--no-real-data`: no real-data record, no real-data grid, and the header's command repeats the flag."""
    import baselines.registry as registry
    from dgmbench.cli import main

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(registry.FAMILIES, "fake", fake.MODULE)
        assert main(_args(tmp_path / "lb", tmp_path / "runs", ["fake"], "--no-real-data")) == 0
    capsys.readouterr()
    recs = [json.loads(line) for line in (tmp_path / "lb" / "digits-tiny.jsonl").read_text().splitlines()]
    assert [r["family"] for r in recs] == ["fake"]
    assert not any(p.name.startswith("real") for p in (tmp_path / "lb" / "digits-tiny.samples").iterdir())
    assert "--no-real-data" in recs[0]["config"]["table"]["command"]
    assert "--no-real-data" in (tmp_path / "lb" / "digits-tiny.md").read_text().splitlines()[0]


def test_a_changed_checkpoint_is_retrained_and_rescored_not_reused(tmp_path, home, capsys):
    """A finished model's checkpoint overwritten with another seed's weights (or random bytes) is not
    reused: the table retrains it from its own seed and scores that, the same numbers as the first run."""
    import baselines.registry as registry
    from baselines.train import train_preset
    from dgmbench.cli import main
    from dgmbench.results import sha256_file

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(registry.FAMILIES, "fake", fake.MODULE)
        args = ["--json"] + _args(tmp_path / "lb", tmp_path / "runs", ["fake"], "--no-real-data")
        assert main(args) == 0
        first = json.loads(capsys.readouterr().out)
        (rec,) = [json.loads(line) for line in (tmp_path / "lb" / "digits-tiny.jsonl").read_text().splitlines()]
        ckpt = rec["config"]["table"]["checkpoint"]
        original = sha256_file(ckpt)
        assert first["trained"] == [["fake", 0]] and rec["config"]["table"]["checkpoint_sha256"] == original
        for swap in ("other-seed", "random-bytes"):
            if swap == "other-seed":
                other = tmp_path / "other.pt"
                train_preset("fake", "digits-tiny", checkpoint=str(other), seed=7, progress=False, device="cpu")
                os.replace(other, ckpt)
            else:
                Path(ckpt).write_bytes(os.urandom(4096))
            assert sha256_file(ckpt) != original
            assert main(args) == 0
            out = json.loads(capsys.readouterr().out)
            assert out["trained"] == [["fake", 0]] and out["reused"] == [], swap
            (again,) = [json.loads(line) for line in (tmp_path / "lb" / "digits-tiny.jsonl").read_text().splitlines()]
            assert sha256_file(ckpt) == original  # retrained from seed 0: the same bytes as the first run
            assert again["config"]["table"]["checkpoint_sha256"] == original
            assert again["metrics"]["fid"]["value"] == rec["metrics"]["fid"]["value"]
