"""The pytest plugin: a sample user test suite using the ``dgmbench_regression`` fixture."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

pytest_plugins = ["pytester"]

# A user's test module: "my model" is a fixed set of metric values (chosen by the env vars
# MODEL_QUALITY and DROP_PRECISION), as if a checkpoint had been evaluated.
USER_TEST = textwrap.dedent('''
    import os
    from dgmbench.results import MetricValue, Record

    def evaluate_my_model():
        worse = os.environ.get("MODEL_QUALITY") == "worse"
        r = Record(model="my-vae", dataset="digits", split="test", seed=0, versions={})
        r.add(MetricValue("fid", 14.0 if worse else 10.0, n=500))
        if os.environ.get("DROP_PRECISION") != "1":
            r.add(MetricValue("precision", 0.80, n=500))
        return r

    def test_my_model_has_not_regressed(dgmbench_regression):
        cmp = dgmbench_regression.check(evaluate_my_model(), baseline="baselines/my-vae.json")
        if cmp is not None:
            assert not cmp.failed
''')


# other installed plugins are switched off in the inner runs: hypothesis's alone costs ~2 s a run
QUIET = ("-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:anyio", "-p", "no:cacheprovider")


def _setup(pytester):
    pytester.makepyfile(test_user=USER_TEST)


def _run(pytester, *args):
    return pytester.runpytest_inprocess(*QUIET, *args)


def test_plugin_is_registered_by_entry_point_and_option_listed(pytester):
    result = _run(pytester, "--help")
    result.stdout.fnmatch_lines(["*--dgmbench-update-baselines*"])
    result = _run(pytester, "--fixtures")
    result.stdout.fnmatch_lines(["*dgmbench_regression*"])


def test_missing_baseline_fails_with_hint_then_update_creates_it_then_passes(pytester, monkeypatch):
    _setup(pytester)
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no baseline at*my-vae.json*--dgmbench-update-baselines*"])

    result = _run(pytester, "--dgmbench-update-baselines")
    result.assert_outcomes(passed=1, warnings=1)
    path = pytester.path / "baselines" / "my-vae.json"  # relative to the test file's folder
    d = json.loads(path.read_text())
    assert {e["metric"]: e["value"] for e in d["entries"]} == {"fid": 10.0, "precision": 0.8}

    result = _run(pytester)
    result.assert_outcomes(passed=1)


def test_worsened_model_fails_with_the_readable_table(pytester, monkeypatch):
    _setup(pytester)
    _run(pytester, "--dgmbench-update-baselines").assert_outcomes(passed=1, warnings=1)
    monkeypatch.setenv("MODEL_QUALITY", "worse")
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*metrics regressed against*my-vae.json*",
        "*model*dataset*metric*baseline*current*delta*tolerance*verdict*",
        "*my-vae*digits:test*fid*10*14*+4*REGRESSED*",
        "*FAIL*",
    ])
    assert "Traceback" not in result.stdout.str()  # pytrace=False: the table, not a stack


def test_missing_metric_fails_the_user_test(pytester, monkeypatch):
    _setup(pytester)
    _run(pytester, "--dgmbench-update-baselines")
    monkeypatch.setenv("DROP_PRECISION", "1")
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*precision*missing*"])


def test_plugin_import_does_not_import_torch():
    code = "import sys, dgmbench.pytest_plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
