"""pytest plugin (``pytest11`` entry point ``dgmbench``): the ``dgmbench_regression`` fixture.

In a test::

    def test_my_checkpoint_has_not_regressed(dgmbench_regression):
        record = dgmbench.evaluate(model, "digits", metrics=["fid", "precision"], n=500, seed=0)
        dgmbench_regression.check(record, baseline="baselines/my_model.json")

``check`` fails the test with the comparison table when a metric regressed, went missing or
became incomparable (see :mod:`dgmbench.regress`). A relative ``baseline`` path is resolved
against the test file's folder. ``pytest --dgmbench-update-baselines`` rewrites the baseline
files from the current records instead (and the test passes with a warning).

This module is imported at every pytest start-up: it imports nothing beyond pytest and the
standard library at module level (dgmbench.regress is imported when a test uses the fixture).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import pytest

UPDATE_OPTION = "--dgmbench-update-baselines"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dgmbench", "dgmbench metric regression gate")
    group.addoption(UPDATE_OPTION, action="store_true", default=False,
                    help="rewrite the baseline files that dgmbench_regression.check() compares against, "
                         "accepting the current metric values")


class DgmbenchRegressionUpdated(UserWarning):
    """A baseline file was rewritten because of --dgmbench-update-baselines."""


class RegressionChecker:
    """What the ``dgmbench_regression`` fixture returns."""

    def __init__(self, update: bool, test_dir: str):
        self.update = update
        self.test_dir = test_dir
        self.last = None  # the last Comparison, for tests that want to inspect it

    def resolve(self, baseline: str | os.PathLike) -> str:
        path = os.fspath(baseline)
        return path if os.path.isabs(path) else os.path.join(self.test_dir, path)

    def check(self, records: Any, baseline: str | os.PathLike, *, tolerance: str | dict | None = None):
        """Compare ``records`` (a Record, a list of them, or a results-file path) with ``baseline``.

        ``tolerance`` overrides stored tolerances: a spec string like ``'fid=0.5,kid=10%'`` or
        a dict {metric: spec}. Returns the :class:`dgmbench.regress.Comparison`; fails the test
        on a regression, a missing metric or an incomparable one.
        """
        import importlib

        # through sys.modules (not package attributes), so pytester's module snapshots stay consistent
        regress = importlib.import_module("dgmbench.regress")
        results = importlib.import_module("dgmbench.results")
        text = importlib.import_module("dgmbench.report.text")
        DgmbenchError = importlib.import_module("dgmbench.errors").DgmbenchError  # noqa: N806

        path = self.resolve(baseline)
        try:
            if isinstance(tolerance, dict):
                tolerance = ",".join(f"{k}={v}" for k, v in tolerance.items())
            overrides = regress.parse_tolerances(tolerance)
            recs = results.as_records(records)
            if self.update:
                previous = None
                if os.path.exists(path):
                    try:
                        previous = regress.Baseline.load(path)
                    except DgmbenchError:
                        previous = None
                new = regress.baseline_from_records(recs, overrides=overrides, previous=previous)
                new.save(path)
                warnings.warn(DgmbenchRegressionUpdated(
                    f"dgmbench: wrote baseline {path} ({len(new.entries)} metric values)"), stacklevel=2)
                return None
            if not os.path.exists(path):
                pytest.fail(f"dgmbench: no baseline at {path}; create it with 'pytest {UPDATE_OPTION}'",
                            pytrace=False)
            base = regress.Baseline.load(path)
            self.last = comparison = regress.compare(base, recs, overrides=overrides, baseline_path=path)
        except DgmbenchError as e:
            pytest.fail(f"dgmbench: {e}", pytrace=False)
        if comparison.failed:
            pytest.fail(f"dgmbench: metrics regressed against {path}\n{text.comparison_table(comparison)}\n"
                        f"(if the change is intended, accept it with 'pytest {UPDATE_OPTION}')", pytrace=False)
        return comparison


@pytest.fixture
def dgmbench_regression(request: pytest.FixtureRequest) -> RegressionChecker:
    """Assert that a model's metrics have not regressed against a stored baseline file."""
    update = bool(request.config.getoption(UPDATE_OPTION, default=False))
    return RegressionChecker(update, str(request.path.parent))
