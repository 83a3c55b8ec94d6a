"""`dgmbench report` (placeholder until its issue lands)."""

from __future__ import annotations

from ..errors import UsageError


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="(report: under construction)")
    p.set_defaults(func=run)


def run(args) -> int:
    raise UsageError("'dgmbench report' is not available in this build yet")
