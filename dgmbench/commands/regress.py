"""`dgmbench regress` (placeholder until its issue lands)."""

from __future__ import annotations

from ..errors import UsageError


def add_parser(sub) -> None:
    p = sub.add_parser("regress", help="(regress: under construction)")
    p.set_defaults(func=run)


def run(args) -> int:
    raise UsageError("'dgmbench regress' is not available in this build yet")
