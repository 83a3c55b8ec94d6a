"""``python -m dgmbench.demo`` (what ``make demo`` runs): the digits leaderboard, then the report.

By default the demo uses every family's ``digits-tiny`` preset (seconds of training each,
3 seeds), so the whole job fits in a few minutes on 2 CPU cores; ``--preset digits`` runs the
full digits presets (each a few minutes of training; 94 CPU-minutes measured for 7 families x 3 seeds).

Runs ``dgmbench table --dataset digits`` (trains or loads every family's preset,
scores it on the digits classifier's features, writes ``leaderboards/digits.{csv,md,jsonl}``)
and then ``dgmbench report --dataset digits`` (``reports/digits.html`` and ``.md``), printing
both commands' real output and the wall time. A second run reuses the cached checkpoints
and evaluations in ``runs/`` and takes seconds.

Options select less or other work (``--seeds``, ``--families``, ``--preset``, ``--steps``,
``--threads``: 1 by default, the committed leaderboards' count)
or other folders (``--out``, ``--runs-dir``, ``--reports``).
"""

from __future__ import annotations

import argparse
import sys
import time

DEFAULT_SEEDS = 3
DEFAULT_PRESET = "digits-tiny"
DEFAULT_THREADS = 1  # the committed leaderboards' count; tiny models gain little from more on 2 cores


def build_commands(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The two CLI invocations the demo runs."""
    table = ["table", "--dataset", "digits", "--seeds", str(args.seeds)]
    for opt, val in (("--preset", args.preset), ("--families", args.families), ("--steps", args.steps),
                     ("--out", args.out if args.out != "leaderboards" else None),
                     ("--runs-dir", args.runs_dir if args.runs_dir != "runs" else None),
                     ("--threads", args.threads)):
        if val is not None:
            table += [opt, str(val)]
    if args.no_progress:
        table.append("--no-progress")
    name = args.preset or "digits"
    report = ["report", "--dataset", name, "--leaderboards", args.out, "--out", args.reports]
    return table, report


def main(argv: list[str] | None = None) -> int:
    from .cli import main as cli_main

    p = argparse.ArgumentParser(prog="python -m dgmbench.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help=f"seeds per family (default: {DEFAULT_SEEDS})")
    p.add_argument("--families", help="comma-separated families (default: all)")
    p.add_argument("--preset", default=DEFAULT_PRESET,
                   help=f"preset of every family (default: {DEFAULT_PRESET}; 'digits' for the full presets)")
    p.add_argument("--steps", type=int, help="override the presets' training steps")
    p.add_argument("--out", default="leaderboards", help="leaderboard folder (default: leaderboards/)")
    p.add_argument("--runs-dir", default="runs", help="checkpoints and state (default: runs/)")
    p.add_argument("--reports", default="reports", help="report folder (default: reports/)")
    p.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                   help=f"torch CPU threads (default: {DEFAULT_THREADS}, as the committed leaderboards, whose numbers it "
                        "then reproduces exactly; 0: torch's default)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.threads == 0:
        args.threads = None
    t0 = time.perf_counter()
    for cmd in build_commands(args):
        print(f"$ dgmbench {' '.join(cmd)}", flush=True)
        t = time.perf_counter()
        rc = cli_main(cmd)
        print(f"[{time.perf_counter() - t:.0f} s]", flush=True)
        if rc:
            print(f"demo: 'dgmbench {' '.join(cmd)}' failed with exit code {rc}", file=sys.stderr)
            return rc
    name = args.preset or "digits"
    print(f"demo finished in {time.perf_counter() - t0:.0f} s: {args.out}/{name}.md, {args.reports}/{name}.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
