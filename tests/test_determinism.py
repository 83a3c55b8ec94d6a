"""Bit-identical reruns on CPU: `dgmbench score` and a tiny `dgmbench table`, same seed.

Two runs must give identical Records except for the fields that measure time or identify
the run (VOLATILE below). The comparison is over every leaf of the Record's JSON, so a new
field that is not deterministic fails here until it is either fixed or listed as volatile.
A run with another seed must differ, so the test cannot pass by replaying a cache.
"""

from __future__ import annotations

import fnmatch
import json
import os

import pytest

from dgmbench.cli import main

# Leaf paths ("a.b.c", fnmatch patterns) that may differ between two identical runs.
VOLATILE = (
    "created", "record_id", "wall_time_s",  # when / which run
    "git_rev",  # in a shared working tree a commit can land between the two runs (CI runs one revision)
    "config.run.*_time_s",  # timings of the feature pass and the metrics
    "config.run.reference_cache.*.hit",  # the first run fills the reference cache, the second reads it
    "config.table.train_wall_time_s",
    "metrics.samples_per_s.value", "metrics.samples_per_s.ci_low", "metrics.samples_per_s.ci_high",
    "metrics.samples_per_s.extra.rates.*", "metrics.samples_per_s.extra.seconds.*",  # speed is a measurement
    "metrics.samples_per_s.extra.speed_reference",
)


def _leaves(obj, prefix=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, f"{prefix}{k}.")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, f"{prefix}{i}.")
    else:
        yield prefix[:-1], obj


def differing_paths(a: dict, b: dict) -> list[str]:
    la, lb = dict(_leaves(a)), dict(_leaves(b))
    return sorted(k for k in la.keys() | lb.keys() if la.get(k, "<absent>") != lb.get(k, "<absent>")
                  or type(la.get(k)) is not type(lb.get(k)))


def non_volatile(paths: list[str]) -> list[str]:
    return [p for p in paths if not any(fnmatch.fnmatchcase(p, pat) for pat in VOLATILE)]


def _records(path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DGMBENCH_HOME", str(tmp_path / "home"))  # fresh reference cache
    return tmp_path


@pytest.fixture(scope="module")
def flow_checkpoint(tmp_path_factory, one_thread):
    """A briefly trained digits flow (a model with sampling noise and a likelihood)."""
    from baselines.train import train_preset

    path = tmp_path_factory.mktemp("ckpt") / "flow.pt"
    train_preset("flow", "digits-tiny", checkpoint=str(path), seed=0, progress=False, device="cpu", max_steps=20)
    return str(path)


def _score(ckpt: str, store: str, seed: int) -> int:
    return main(["score", "--model", ckpt, "--dataset", "digits", "--metrics", "fid,kid,prdc,mmd,nll,speed",
                 "-n", "200", "--kid-subsets", "20", "--seed", str(seed), "--device", "cpu", "--store", store,
                 "--no-progress"])


def test_score_twice_with_the_same_seed_gives_identical_records(home, flow_checkpoint, one_thread, capsys):
    store = str(home / "results.jsonl")
    assert _score(flow_checkpoint, store, seed=3) == 0
    assert _score(flow_checkpoint, store, seed=3) == 0
    assert _score(flow_checkpoint, store, seed=4) == 0
    a, b, other = _records(store)
    capsys.readouterr()
    # every metric family that draws random numbers is in the record
    assert {"fid", "kid", "precision", "mmd", "nll", "bpd", "samples_per_s"} <= set(a["metrics"])
    assert a["metrics"]["fid"]["ci_low"] is not None  # the bootstrap ran
    diff = differing_paths(a, b)
    assert non_volatile(diff) == [], f"non-deterministic fields: {non_volatile(diff)}"
    assert "created" in diff or "record_id" in diff  # the comparison does see the run's identity
    # another seed changes sampling, KID subsets, bootstrap and dequantisation noise
    changed = {p.split(".")[1] for p in non_volatile(differing_paths(a, other)) if p.startswith("metrics.")}
    assert {"fid", "kid", "nll", "mmd", "precision"} <= changed


def _table(folder, monkeypatch) -> list[dict]:
    os.makedirs(folder, exist_ok=True)
    monkeypatch.chdir(folder)  # same relative checkpoint paths in both runs
    rc = main(["table", "--dataset", "ring8", "--preset", "ring8-tiny", "--families", "autoregressive",
               "--seeds", "1", "-n", "300", "--metrics", "mode_coverage,mmd,nll,speed", "--out", "lb",
               "--runs-dir", "runs", "--device", "cpu", "--no-progress"])
    assert rc == 0
    # the model's records (the real-data row is scored too, and is checked by the table tests)
    return [r for r in _records(os.path.join(folder, "lb", "ring8-tiny.jsonl")) if r["family"] != "real data"]


@pytest.mark.slow
def test_table_twice_with_the_same_seed_gives_identical_records(home, monkeypatch, one_thread, capsys):
    # two separate folders: each run trains its own model from scratch
    (a,) = _table(str(home / "run1"), monkeypatch)
    (b,) = _table(str(home / "run2"), monkeypatch)
    capsys.readouterr()
    assert a["config"]["table"]["train_steps"] > 0 and a["config"]["table"]["status"] == "ok"
    assert {"modes_captured", "hq_fraction", "mmd", "nll"} <= set(a["metrics"])
    diff = differing_paths(a, b)
    assert non_volatile(diff) == [], f"non-deterministic fields: {non_volatile(diff)}"
    # the trained weights themselves are identical (same checkpoint hash), not just the metrics
    assert a["config"]["table"]["checkpoint_sha256"] == b["config"]["table"]["checkpoint_sha256"]
