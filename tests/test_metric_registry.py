"""The metric registry is the one place a metric is defined: a toy metric registered here, in a
test module, flows through `dgmbench score`, the Record, `regress` and the leaderboard without
any other file knowing it; built-in entries agree with their kernels' conventions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dgmbench.cli import main as cli_main
from dgmbench.data import get_dataset
from dgmbench.errors import UsageError
from dgmbench.harness import Evaluator
from dgmbench.metrics.registry import (
    GROUPS,
    METRICS,
    MetricGroup,
    MetricSpec,
    default_metrics,
    default_tolerance,
    register,
    resolve_metrics,
    unregister,
)
from dgmbench.metrics.tolerance import Tolerance
from dgmbench.regress import Baseline, baseline_from_records, compare
from dgmbench.report.leaderboard import LeaderboardMeta, leaderboard_markdown
from dgmbench.results import MetricValue, Record, RecordStore


def _mean_pixel(ctx) -> list[MetricValue]:
    """Toy metric: mean intensity of the raw samples minus the reference's (lower |.| is better)."""
    gap = abs(float(ctx.raw.mean()) - float(ctx.reference.split().data.mean()))
    return [MetricValue(name="pixel_gap", value=gap, n=ctx.n, extractor="raw", std=0.0)]


@pytest.fixture
def toy_metric():
    group = register(MetricGroup(
        "pixel_gap", (MetricSpec("pixel_gap", False, "", "mean-pixel gap", Tolerance(abs=0.01)),), _mean_pixel,
        frozenset({"raw"}), description="|mean pixel of samples - of reference|"))
    yield group
    unregister("pixel_gap")
    assert "pixel_gap" not in METRICS and "pixel_gap" not in GROUPS


def test_a_toy_metric_flows_through_score_record_regress_and_leaderboard(toy_metric, tmp_path, capsys):
    x = torch.rand(64, 1, 8, 8)
    samples, store = tmp_path / "s.npz", tmp_path / "r.jsonl"
    np.savez(samples, images=(x.numpy() * 255).round().astype("uint8"))
    rc = cli_main(["--json", "score", "--samples", str(samples), "--dataset", "digits", "--metrics", "pixel_gap,fid",
                   "--extractor", "raw", "--store", str(store), "--no-progress", "--fid-bootstrap", "0"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    mv = printed["metrics"]["pixel_gap"]
    # the harness filled direction and unit from the registry entry, not from the adapter
    assert mv["higher_is_better"] is False
    # independent check of the value: uint8 round trip of the samples vs the reference (the documented
    # policy: a seed-0 random subset of the test split of n = 64 items)
    real = get_dataset("digits", "test").subset(64, seed=0).data
    expect = abs(float(torch.from_numpy(np.load(samples)["images"]).float().div(255).mean()) - float(real.mean()))
    assert mv["value"] == pytest.approx(expect, abs=1e-6)
    records = RecordStore(str(store)).load()
    assert records[0].metrics["pixel_gap"].higher_is_better is False
    # regress: the default tolerance comes from the entry (abs 0.01)
    base = baseline_from_records(records)
    entry = base.get(records[0].model, "digits", "test", "pixel_gap")
    assert entry.tolerance.abs == 0.01 and entry.higher_is_better is False
    worse = Record.from_dict(records[0].to_dict())
    worse.metrics["pixel_gap"].value = entry.value + 0.05
    verdicts = {r.metric: r.verdict for r in compare(Baseline(entries=base.entries), [worse]).rows}
    assert verdicts["pixel_gap"] == "REGRESSED"
    # the leaderboard has a column for it: its registry label, the features it was computed on and its direction
    worse.config = {"table": {"family": "toy", "seed": 0, "status": "ok"}}
    md = leaderboard_markdown([worse], LeaderboardMeta(name="t", dataset="digits", command="test"))
    assert "mean-pixel gap (pixels in [0,1]) ↓" in md


def test_registering_twice_or_stealing_a_metric_is_refused(toy_metric):
    with pytest.raises(UsageError, match="already registered"):
        register(toy_metric)
    with pytest.raises(UsageError, match="already belongs to group 'fid'"):
        register(MetricGroup("thief", (MetricSpec("fid", True, "", "fid"),), _mean_pixel))


def test_names_groups_and_aliases_resolve_in_registry_order():
    assert resolve_metrics("precision,fid") == ["prdc", "fid"]
    assert resolve_metrics(["clip"]) == ["clip_score", "clip_fd"]
    assert resolve_metrics("bpd, samples-per-s") == ["nll", "speed"]
    with pytest.raises(UsageError, match="did you mean 'fid'"):
        resolve_metrics("fdi")
    with pytest.raises(UsageError, match="no metrics"):
        resolve_metrics(" , ")


def test_defaults_are_one_policy_for_score_evaluate_and_the_evaluator():
    assert default_metrics("image") == ["fid", "kid", "prdc"]
    assert default_metrics("points") == ["mmd", "kde", "mode_coverage"]
    assert default_metrics("image", table=True) == ["fid", "kid", "prdc", "is", "mmd", "kde", "cond_acc", "nll",
                                                    "speed"]
    assert default_metrics("points", table=True) == ["mmd", "kde", "mode_coverage", "nll", "speed"]
    ev = Evaluator("ring8", device="cpu", progress=False)
    assert ev.group_names == default_metrics("points")


def test_every_builtin_metric_has_a_direction_tolerance_and_group():
    for name, spec in METRICS.items():
        assert spec.group in GROUPS and name in [s.name for s in GROUPS[spec.group].metrics]
        assert default_tolerance(name) is spec.tolerance
    # the papers' directions (lower FID/KID/MMD/NLL is better; higher IS/precision/recall is better)
    assert [METRICS[m].higher_is_better for m in ("fid", "kid", "mmd", "nll", "bpd")] == [False] * 5
    assert [METRICS[m].higher_is_better for m in ("is", "precision", "recall", "coverage")] == [True] * 4
