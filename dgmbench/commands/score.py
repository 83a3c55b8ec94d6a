"""`dgmbench score` (placeholder until its issue lands)."""

from __future__ import annotations

from ..errors import UsageError


def add_parser(sub) -> None:
    p = sub.add_parser("score", help="(score: under construction)")
    p.set_defaults(func=run)


def run(args) -> int:
    raise UsageError("'dgmbench score' is not available in this build yet")
