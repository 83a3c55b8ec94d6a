"""dgmbench regress: directions, tolerance edges, missing metrics, formats, CLI exit codes."""

from __future__ import annotations

import json
import math

import pytest

from dgmbench.cli import main
from dgmbench.errors import DataError, UsageError
from dgmbench.metrics.speed import measure_speed_reference
from dgmbench.metrics.tolerance import Tolerance
from dgmbench.regress import (
    FORMAT_VERSION,
    IMPROVED,
    INCOMPARABLE,
    MISSING,
    NEW,
    OK,
    REGRESSED,
    UNCHECKED,
    Baseline,
    BaselineEntry,
    baseline_from_records,
    compare,
    observe,
    parse_tolerances,
)
from dgmbench.report.text import comparison_table
from dgmbench.results import MetricValue, Record, RecordStore, load_records


def rec(model="m", dataset="digits", split="test", seed=0, config=None, **metrics) -> Record:
    # versions={} skips package_versions(), which imports torch, open_clip, ... (slow, irrelevant here)
    r = Record(model=model, dataset=dataset, split=split, seed=seed, config=dict(config or {}), versions={})
    for name, v in metrics.items():
        r.add(v if isinstance(v, MetricValue) else MetricValue(name, v))
    return r


def entry(metric, value, hib, **kw) -> BaselineEntry:
    return BaselineEntry(model="m", dataset="digits", split="test", metric=metric, value=value,
                         higher_is_better=hib, **kw)


def verdicts(cmp) -> dict[str, str]:
    return {r.metric: r.verdict for r in cmp.rows}


# ---------------------------------------------------------------- direction
@pytest.mark.parametrize("metric,hib", [("fid", False), ("kid", False), ("bpd", False), ("nll", False),
                                        ("mmd", False), ("is", True), ("precision", True), ("recall", True),
                                        ("coverage", True), ("modes_captured", True)])
def test_direction_better_is_not_a_regression_worse_is(metric, hib):
    base = Baseline([entry(metric, 10.0, hib, tolerance=Tolerance(abs=1.0))])
    better, worse = (12.0, 8.0) if hib else (8.0, 12.0)
    assert verdicts(compare(base, [rec(**{metric: better})]))[metric] == IMPROVED
    assert verdicts(compare(base, [rec(**{metric: worse})]))[metric] == REGRESSED
    # within tolerance in either direction: ok
    assert verdicts(compare(base, [rec(**{metric: 10.5})]))[metric] == OK
    assert verdicts(compare(base, [rec(**{metric: 9.5})]))[metric] == OK


def test_update_takes_direction_from_the_names_table():
    b = baseline_from_records([rec(fid=3.0, precision=0.5, samples_per_s=10.0)])
    d = {e.metric: e.higher_is_better for e in b.entries}
    assert d == {"fid": False, "precision": True, "samples_per_s": True}


# ---------------------------------------------------------------- tolerance edges
def test_absolute_tolerance_edge_is_inclusive():
    base = Baseline([entry("fid", 10.0, False, tolerance=Tolerance(abs=0.5))])
    assert verdicts(compare(base, [rec(fid=10.5)]))["fid"] == OK  # exactly the tolerance
    assert verdicts(compare(base, [rec(fid=10.5 + 1e-6)]))["fid"] == REGRESSED
    assert verdicts(compare(base, [rec(fid=9.5)]))["fid"] == OK
    assert verdicts(compare(base, [rec(fid=9.5 - 1e-6)]))["fid"] == IMPROVED


def test_relative_tolerance_edge():
    base = Baseline([entry("precision", 0.8, True, tolerance=Tolerance(rel=0.1))])  # 0.08 allowed
    assert verdicts(compare(base, [rec(precision=0.721)]))["precision"] == OK
    assert verdicts(compare(base, [rec(precision=0.719)]))["precision"] == REGRESSED


def test_zero_tolerance_any_worsening_fails():
    base = Baseline([entry("modes_captured", 8.0, True, tolerance=Tolerance(abs=0.0))])
    assert verdicts(compare(base, [rec(modes_captured=8.0)]))["modes_captured"] == OK
    assert verdicts(compare(base, [rec(modes_captured=7.0)]))["modes_captured"] == REGRESSED


def test_uncertainty_tolerance_uses_ci_half_widths_in_quadrature():
    # baseline CI half-width 0.3, current 0.4 -> combined 0.5, times 2 -> 1.0 allowed
    base = Baseline([entry("fid", 10.0, False, tolerance=Tolerance(unc=2.0), ci_low=9.7, ci_high=10.3)])
    cur_ok = MetricValue("fid", 10.99, ci_low=10.59, ci_high=11.39)
    cur_bad = MetricValue("fid", 11.01, ci_low=10.61, ci_high=11.41)
    c = compare(base, [rec(fid=cur_ok)])
    assert c.rows[0].allowed == pytest.approx(1.0)
    assert c.rows[0].verdict == OK
    assert verdicts(compare(base, [rec(fid=cur_bad)]))["fid"] == REGRESSED


def test_seed_spread_tolerance_predicts_a_new_run():
    # baseline: mean of three seeds 9, 10, 14 -> 11, spread s = sqrt(7); a new single run may land
    # s * sqrt(1 + 1/3) from the mean; with unc=2: allowed = 2 * sqrt(7) * sqrt(4/3) = 6.110...
    seeds = [rec(seed=s, fid=v) for s, v in zip([0, 1, 2], [9.0, 10.0, 14.0])]
    base = baseline_from_records(seeds, overrides=parse_tolerances("fid=2u"))
    e = base.entries[0]
    assert (e.value, e.seeds) == (pytest.approx(11.0), [0, 1, 2])
    allowed = 2 * math.sqrt(7.0) * math.sqrt(4.0 / 3.0)
    # the current run's own CI is not added: the seed spread already contains sampling noise
    ok = MetricValue("fid", 11.0 + allowed - 1e-3, ci_low=0.0, ci_high=100.0)
    bad = MetricValue("fid", 11.0 + allowed + 1e-3, ci_low=0.0, ci_high=100.0)
    c = compare(base, [rec(fid=ok)])
    assert c.rows[0].allowed == pytest.approx(allowed) and c.rows[0].verdict == OK
    assert compare(base, [rec(fid=bad)]).rows[0].verdict == REGRESSED
    # current also a mean over seeds: standard error of the difference of two means
    cur = [rec(seed=s, fid=v) for s, v in zip([0, 1, 2, 3], [11.0, 12.0, 13.0, 14.0])]  # mean 12.5, s^2 = 5/3
    c = compare(base, cur)
    assert c.rows[0].current == pytest.approx(12.5)
    assert c.rows[0].allowed == pytest.approx(2 * math.sqrt(7.0 / 3 + (5.0 / 3) / 4))


def test_largest_tolerance_part_wins():
    tol = Tolerance(abs=0.1, rel=0.05, unc=1.0)
    assert tol.allowed(10.0) == pytest.approx(0.5)  # rel
    assert tol.allowed(1.0) == pytest.approx(0.1)  # abs
    assert tol.allowed(10.0, 3.0, 4.0) == pytest.approx(5.0)  # unc x sqrt(9 + 16)
    assert tol.source(10.0) == "rel 5%"


def test_cli_tolerance_overrides_stored_ones():
    base = Baseline([entry("fid", 10.0, False, tolerance=Tolerance(abs=0.1)),
                     entry("kid", 0.01, False, tolerance=Tolerance(abs=0.0))])
    cur = [rec(fid=10.4, kid=0.0109)]
    assert verdicts(compare(base, cur)) == {"fid": REGRESSED, "kid": REGRESSED}
    assert verdicts(compare(base, cur, overrides=parse_tolerances("fid=0.5,kid=10%"))) == {"fid": OK, "kid": OK}
    assert verdicts(compare(base, cur, overrides=parse_tolerances("*=0.5"))) == {"fid": OK, "kid": OK}


@pytest.mark.parametrize("spec,expected", [
    ("fid=0.5", {"fid": Tolerance(abs=0.5)}),
    ("kid=10%", {"kid": Tolerance(rel=0.1)}),
    ("precision=2u", {"precision": Tolerance(unc=2.0)}),
    ("fid=0.5,fid=2sigma", {"fid": Tolerance(abs=0.5, unc=2.0)}),
    ("*=5%", {"*": Tolerance(rel=0.05)}),
])
def test_parse_tolerances(spec, expected):
    assert parse_tolerances(spec) == expected


@pytest.mark.parametrize("spec", ["fid", "fod=1", "fid=abc", "fid=-1", "fid=inf%"])
def test_bad_tolerance_specs_are_usage_errors(spec):
    with pytest.raises(UsageError):
        parse_tolerances(spec)


# ---------------------------------------------------------------- missing / new / incomparable / non-finite
def test_metric_missing_from_current_run_is_a_failure():
    base = Baseline([entry("fid", 10.0, False, tolerance=Tolerance(abs=1)),
                     entry("precision", 0.8, True, tolerance=Tolerance(abs=0.1))])
    c = compare(base, [rec(fid=10.0)])
    assert verdicts(c) == {"fid": OK, "precision": MISSING}
    assert c.failed
    assert "precision" in comparison_table(c) and "missing" in comparison_table(c)


def test_whole_model_missing_and_na_value_fail():
    base = Baseline([entry("fid", 10.0, False)])
    assert compare(base, [rec(model="other", fid=10.0)]).rows[0].verdict == MISSING
    na = MetricValue("fid", None, note="weights missing")
    c = compare(base, [rec(fid=na)])
    assert c.rows[0].verdict == MISSING and "weights missing" in c.rows[0].note


def test_new_metric_is_reported_but_does_not_fail():
    base = Baseline([entry("fid", 10.0, False)])
    c = compare(base, [rec(fid=10.0, recall=0.5)])
    assert verdicts(c) == {"fid": OK, "recall": NEW}
    assert not c.failed


@pytest.mark.parametrize("field,b,c", [("n", 500, 1000), ("kind", "exact", "bound"),
                                       ("extractor_sha256", "a" * 64, "b" * 64),
                                       ("unit", "bits/dim", "bits/dim on a 17-level grid")])
def test_changed_protocol_is_incomparable(field, b, c):
    base = Baseline([entry("bpd", 1.0, False, **{field: b})])
    mv = MetricValue("bpd", 1.0, **{field: c})
    cmp = compare(base, [rec(bpd=mv)])
    assert cmp.rows[0].verdict == INCOMPARABLE and cmp.failed


def test_nan_current_value_regresses():
    base = Baseline([entry("fid", 10.0, False, tolerance=Tolerance(abs=100))])
    assert compare(base, [rec(fid=math.nan)]).rows[0].verdict == REGRESSED
    assert compare(base, [rec(fid=math.inf)]).rows[0].verdict == REGRESSED


# ---------------------------------------------------------------- speed
def test_speed_compares_ratios_to_the_reference():
    base = Baseline([entry("samples_per_s", 1000.0, True, tolerance=Tolerance(rel=0.2), speed_reference=100.0)])
    # a machine half as fast: half the samples/s and half the reference speed -> same ratio
    c = compare(base, [rec(samples_per_s=500.0, config={"speed_reference": 50.0})])
    assert c.rows[0].verdict == OK and c.rows[0].current == pytest.approx(10.0)
    # same machine speed, model 30 % slower -> regression even though samples/s looks similar
    # to the fast machine's
    c = compare(base, [rec(samples_per_s=700.0, config={"speed_reference": 100.0})])
    assert c.rows[0].verdict == REGRESSED
    # the reference can also ride on the metric value itself
    mv = MetricValue("samples_per_s", 1000.0, extra={"speed_reference": 100.0})
    assert compare(base, [rec(samples_per_s=mv)]).rows[0].verdict == OK


def test_speed_without_reference_is_unchecked_not_passed():
    base = Baseline([entry("samples_per_s", 1000.0, True, speed_reference=100.0)])
    c = compare(base, [rec(samples_per_s=10.0)])
    assert c.rows[0].verdict == UNCHECKED and "speed_reference" in c.rows[0].note


def test_measure_speed_reference_is_positive_and_finite():
    r = measure_speed_reference(min_time_s=0.02, repeats=1)
    assert math.isfinite(r) and r > 0


# ---------------------------------------------------------------- seeds
def test_several_seeds_aggregate_to_mean_and_seed_spread():
    recs = [rec(seed=s, fid=v) for s, v in zip([0, 1, 2], [9.0, 10.0, 14.0])]
    obs = observe(recs)[("m", "digits", "test", "fid")]
    assert obs.value == pytest.approx(11.0)
    assert obs.std == pytest.approx(math.sqrt(((2 ** 2) + 1 + 9) / 2))  # sample std
    assert obs.seeds == [0, 1, 2]


def test_later_record_of_same_seed_wins_metric_by_metric():
    recs = [rec(fid=20.0, precision=0.5), rec(fid=10.0)]
    obs = observe(recs)
    assert obs[("m", "digits", "test", "fid")].value == 10.0
    assert obs[("m", "digits", "test", "precision")].value == 0.5


# ---------------------------------------------------------------- file format
def test_round_trip_keeps_every_field(tmp_path):
    b = baseline_from_records([rec(fid=MetricValue("fid", 3.5, n=100, ci_low=3.0, ci_high=4.0, extractor_sha256="ab"),
                                   samples_per_s=42.0, config={"speed_reference": 7.0})])
    p = tmp_path / "b.json"
    b.save(p)
    d = json.loads(p.read_text())
    assert d["format_version"] == FORMAT_VERSION
    b2 = Baseline.load(p)
    assert [e.to_dict() for e in b2.entries] == [e.to_dict() for e in b.entries]
    fid = b2.get("m", "digits", "test", "fid")
    assert (fid.value, fid.n, fid.ci_low, fid.ci_high, fid.extractor_sha256) == (3.5, 100, 3.0, 4.0, "ab")
    assert b2.get("m", "digits", "test", "samples_per_s").speed_reference == 7.0


def test_older_format_version_1_is_migrated(tmp_path):
    p = tmp_path / "v1.json"
    p.write_text(json.dumps({"format_version": 1, "metrics": [
        {"model": "m", "dataset": "digits", "split": "test", "metric": "fid", "value": 10.0, "tolerance": 0.5},
        {"model": "m", "dataset": "digits", "metric": "recall", "value": 0.6},
    ]}))
    b = Baseline.load(p)
    fid, recall = b.get("m", "digits", "test", "fid"), b.get("m", "digits", "test", "recall")
    assert fid.higher_is_better is False and fid.tolerance == Tolerance(abs=0.5)
    assert recall.higher_is_better is True
    assert verdicts(compare(b, [rec(fid=10.6, recall=0.6)])) == {"fid": REGRESSED, "recall": OK}


def test_version_1_with_unknown_metric_is_refused_clearly(tmp_path):
    p = tmp_path / "v1.json"
    p.write_text(json.dumps({"format_version": 1, "metrics": [{"model": "m", "dataset": "d", "metric": "foo",
                                                                 "value": 1.0}]}))
    with pytest.raises(DataError, match="cannot migrate.*'foo'.*--update"):
        Baseline.load(p)


@pytest.mark.parametrize("content,match", [
    ('{"format_version": 0, "entries": []}', "older than any"),
    ('{"format_version": 99, "entries": []}', "newer dgmbench"),
    ('{"entries": []}', "no 'format_version'"),
    ('[1, 2]', "expected a JSON object"),
    ('{"format_version": 2, "entries": [{"model": "m"}]}', "entry 0 lacks"),
    ('{"format_version": 2, "entries": [{"model": "m", "dataset": "d", "split": "t", "metric": "fid", '
     '"value": "x", "higher_is_better": false}]}', "must be a number"),
    ('{"format_version": 2, "entries": [{"model": "m", "dataset": "d", "split": "t", "metric": "fid", '
     '"value": 1, "higher_is_better": false, "tolerance": {"abs": -1}}]}', "finite number >= 0"),
])
def test_bad_baselines_are_refused_with_a_clear_message(tmp_path, content, match):
    p = tmp_path / "b.json"
    p.write_text(content)
    with pytest.raises(DataError, match=match):
        Baseline.load(p)


def test_truncated_json_names_the_position(tmp_path):
    p = tmp_path / "b.json"
    good = baseline_from_records([rec(fid=1.0)]).to_json()
    p.write_text(good[: len(good) // 2])
    with pytest.raises(DataError, match=r"not valid JSON \(line \d+, column \d+"):
        Baseline.load(p)


def test_load_records_accepts_jsonl_a_json_list_and_one_record(tmp_path):
    r1, r2 = rec(fid=1.0), rec(model="n", fid=2.0)
    RecordStore(tmp_path / "a.jsonl").append(r1)
    RecordStore(tmp_path / "a.jsonl").append(r2)
    (tmp_path / "b.json").write_text(json.dumps([r1.to_dict(), r2.to_dict()], indent=2))
    (tmp_path / "c.json").write_text(json.dumps(r1.to_dict(), indent=2))
    assert [r.model for r in load_records(tmp_path / "a.jsonl")] == ["m", "n"]
    assert [r.model for r in load_records(tmp_path / "b.json")] == ["m", "n"]
    assert [r.model for r in load_records(tmp_path / "c.json")] == ["m"]
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match="holds no records"):
        load_records(tmp_path / "empty.jsonl")


def test_update_keeps_hand_tuned_tolerances_and_defaults_the_rest():
    prev = Baseline([entry("fid", 10.0, False, tolerance=Tolerance(abs=3.0))])
    b = baseline_from_records([rec(fid=9.0, recall=0.5)], previous=prev)
    assert b.get("m", "digits", "test", "fid").tolerance == Tolerance(abs=3.0)
    assert b.get("m", "digits", "test", "fid").value == 9.0
    assert not b.get("m", "digits", "test", "recall").tolerance.is_empty()


# ---------------------------------------------------------------- CLI
def _cli(capsys, *argv) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_exit_codes_and_table(tmp_path, capsys):
    good, worse, base = tmp_path / "good.jsonl", tmp_path / "worse.jsonl", tmp_path / "b.json"
    RecordStore(good).append(rec(fid=10.0, precision=0.8))
    RecordStore(worse).append(rec(fid=10.0, precision=0.5))
    rc, out, _ = _cli(capsys, "regress", "--baseline", str(base), "--current", str(good), "--update")
    assert rc == 0 and base.exists() and "wrote" in out
    rc, out, _ = _cli(capsys, "regress", "--baseline", str(base), "--current", str(good))
    assert rc == 0 and "PASS" in out
    rc, out, _ = _cli(capsys, "regress", "--baseline", str(base), "--current", str(worse))
    assert rc == 1
    line = next(ln for ln in out.splitlines() if "precision" in ln)
    assert "0.8" in line and "0.5" in line and "REGRESSED" in line
    for col in ("model", "baseline", "current", "delta", "tolerance", "verdict"):
        assert col in out.splitlines()[0]
    # a looser tolerance on the command line lets it pass
    rc, _, _ = _cli(capsys, "regress", "--baseline", str(base), "--current", str(worse), "--tolerance", "precision=0.4")
    assert rc == 0


def test_cli_json_output(tmp_path, capsys):
    cur, base = tmp_path / "c.jsonl", tmp_path / "b.json"
    RecordStore(cur).append(rec(fid=12.0))
    Baseline([entry("fid", 10.0, False, tolerance=Tolerance(abs=1.0))]).save(base)
    for argv in (["--json", "regress"], ["regress", "--json"]):
        rc, out, _ = _cli(capsys, *argv, "--baseline", str(base), "--current", str(cur))
        d = json.loads(out)
        assert rc == 1 and d["passed"] is False
        assert d["rows"][0]["verdict"] == REGRESSED and d["rows"][0]["delta"] == pytest.approx(2.0)


def test_cli_missing_metric_exits_1(tmp_path, capsys):
    cur, base = tmp_path / "c.jsonl", tmp_path / "b.json"
    RecordStore(cur).append(rec(fid=10.0))
    Baseline([entry("fid", 10.0, False), entry("recall", 0.5, True)]).save(base)
    rc, out, _ = _cli(capsys, "regress", "--baseline", str(base), "--current", str(cur))
    assert rc == 1 and "missing" in out


def test_cli_corrupt_baseline_exits_3_and_update_repairs_it(tmp_path, capsys):
    cur, base = tmp_path / "c.jsonl", tmp_path / "b.json"
    RecordStore(cur).append(rec(fid=10.0))
    base.write_text('{"format_version": 2, "entries": [')
    rc, _, err = _cli(capsys, "regress", "--baseline", str(base), "--current", str(cur))
    assert rc == 3 and "not valid JSON" in err and "Traceback" not in err
    assert err.count("\n") == 1  # one line
    rc, _, err = _cli(capsys, "regress", "--baseline", str(base), "--current", str(cur), "--update")
    assert rc == 0 and "replacing it" in err
    assert Baseline.load(base).get("m", "digits", "test", "fid").value == 10.0


def test_cli_usage_errors_exit_2(tmp_path, capsys):
    cur = tmp_path / "c.jsonl"
    RecordStore(cur).append(rec(fid=10.0))
    rc, _, err = _cli(capsys, "regress", "--baseline", str(tmp_path / "nope.json"), "--current", str(cur))
    assert rc == 2 and "does not exist" in err and "--update" in err
    rc, _, err = _cli(capsys, "regress", "--baseline", str(tmp_path / "b.json"), "--current", str(tmp_path / "x.jsonl"))
    assert rc == 2 and "does not exist" in err
    Baseline([entry("fid", 10.0, False)]).save(tmp_path / "b.json")
    rc, _, err = _cli(capsys, "regress", "--baseline", str(tmp_path / "b.json"), "--current", str(cur),
                      "--tolerance", "fod=1")
    assert rc == 2 and "did you mean 'fid'" in err


def test_update_is_atomic_no_partial_file_on_failure(tmp_path, monkeypatch):
    base = tmp_path / "b.json"
    Baseline([entry("fid", 10.0, False)]).save(base)
    before = base.read_text()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("os.fsync", boom)
    with pytest.raises(OSError):
        baseline_from_records([rec(fid=1.0)]).save(base)
    assert base.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["b.json"]  # no temporary left behind


# ---------------------------------------------------------------- fails closed (issue 19, section 2)
def _baseline_file(tmp_path, entries) -> str:
    p = tmp_path / "b.json"
    p.write_text(json.dumps({"format_version": FORMAT_VERSION, "entries": entries}))
    return str(p)


@pytest.mark.parametrize("field,bad", [("value", "NaN"), ("value", "Infinity"), ("std", "NaN"), ("ci_low", "-Infinity")])
def test_a_non_finite_baseline_value_is_an_invalid_baseline(tmp_path, field, bad, capsys):
    e = {"model": "m", "dataset": "digits", "split": "test", "metric": "fid", "value": 29.0,
         "higher_is_better": False, "tolerance": {"rel": 0.05}, "ci_high": 31.0, "ci_low": 27.0, "std": 1.5}
    path = tmp_path / "b.json"
    text = json.dumps({"format_version": FORMAT_VERSION, "entries": [e]}).replace(
        f'"{field}": {e[field]}', f'"{field}": {bad}')
    path.write_text(text)
    with pytest.raises(DataError, match=rf"entry 0 \(fid\): {field} must be a finite number"):
        Baseline.load(str(path))
    store = tmp_path / "r.jsonl"
    RecordStore(str(store)).append(rec(fid=200.0))
    rc = main(["regress", "--baseline", str(path), "--current", str(store)])
    err = capsys.readouterr().err
    assert rc == 3 and "finite" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_baseline_whose_direction_contradicts_the_metric_table_is_invalid(tmp_path, capsys):
    # FID 29 -> 200 must never read as "improved" because a baseline claims higher FID is better
    path = _baseline_file(tmp_path, [{"model": "m", "dataset": "digits", "split": "test", "metric": "fid",
                                      "value": 29.0, "higher_is_better": True, "tolerance": {"rel": 0.05}}])
    store = tmp_path / "r.jsonl"
    RecordStore(str(store)).append(rec(fid=200.0))
    rc = main(["regress", "--baseline", path, "--current", str(store)])
    err = capsys.readouterr().err
    assert rc == 3 and "higher_is_better is true, but for fid lower is better" in err


def test_a_baseline_with_no_entries_is_invalid_not_a_pass(tmp_path, capsys):
    path = _baseline_file(tmp_path, [])
    store = tmp_path / "r.jsonl"
    RecordStore(str(store)).append(rec(fid=20.0))
    assert main(["regress", "--baseline", path, "--current", str(store)]) == 3
    assert "no entries" in capsys.readouterr().err


def test_update_refuses_to_write_a_non_finite_value(tmp_path):
    with pytest.raises(DataError, match="value=nan is not finite"):
        baseline_from_records([rec(fid=float("nan"))])
    with pytest.raises(DataError, match="std=inf is not finite"):
        baseline_from_records([rec(fid=MetricValue("fid", 3.0, std=float("inf")))])


def test_a_nan_current_value_regresses():
    base = Baseline([entry("fid", 10.0, False, tolerance=Tolerance(rel=0.05, unc=2.0), ci_low=9.0, ci_high=11.0)])
    assert verdicts(compare(base, [rec(fid=float("nan"))]))["fid"] == REGRESSED


def test_a_huge_current_interval_cannot_pass_by_itself():
    # baseline FID 10 with CI half-width 0.5; the current run claims +-1000. Uncapped, 2u would allow
    # 2 * sqrt(0.5^2 + 1000^2) ~ 2000 and FID 300 would pass. Capped: u_cur <= max(0.5, 10 % of 10) = 1,
    # so allowed = 2 * sqrt(0.5^2 + 1^2) = 2.236...
    base = Baseline([entry("fid", 10.0, False, tolerance=Tolerance(unc=2.0), ci_low=9.5, ci_high=10.5)])
    c = compare(base, [rec(fid=MetricValue("fid", 300.0, ci_low=-700.0, ci_high=1300.0))])
    assert c.rows[0].verdict == REGRESSED
    assert c.rows[0].allowed == pytest.approx(2 * math.sqrt(0.25 + 1.0))
    assert "capped" in c.rows[0].note
    # a modest interval is not touched: half-width 0.8 < cap 1
    c2 = compare(base, [rec(fid=MetricValue("fid", 11.0, ci_low=10.2, ci_high=11.8))])
    assert c2.rows[0].allowed == pytest.approx(2 * math.sqrt(0.25 + 0.64)) and c2.rows[0].verdict == OK


def test_records_and_baselines_are_strict_json(tmp_path):
    r = rec(fid=MetricValue("fid", float("nan"), std=float("inf"), extra={"grid": [1.0, float("-inf")]}))
    text = r.to_json()
    d = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    mv = d["metrics"]["fid"]
    assert mv["value"] is None and mv["std"] is None and mv["extra"]["grid"] == [1.0, None]
    assert "value was nan" in mv["note"] and "std was inf" in mv["note"]
    base = baseline_from_records([rec(fid=3.0)])
    json.loads(base.to_json(), parse_constant=lambda c: pytest.fail(f"bare {c}"))
