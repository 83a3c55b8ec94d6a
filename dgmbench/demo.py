"""``python -m dgmbench.demo`` (what ``make demo`` runs): the digits leaderboard, then the report.

Runs ``dgmbench table --dataset digits`` (trains or loads the seven families' ``digits``
presets, scores them on the digits classifier's features, writes ``leaderboards/digits.*``)
and then ``dgmbench report --dataset digits`` (``reports/digits.html`` and ``.md``),
printing both commands' real output and the wall time. Extra arguments go to
``dgmbench table`` (e.g. ``--seeds 1``). A second run reuses the cached checkpoints and
evaluations in ``runs/`` and takes seconds.
"""

from __future__ import annotations

import sys
import time

TABLE = ["table", "--dataset", "digits"]
REPORT = ["report", "--dataset", "digits"]


def main(argv: list[str] | None = None) -> int:
    from .cli import main as cli_main

    extra = list(sys.argv[1:] if argv is None else argv)
    t0 = time.perf_counter()
    for cmd in (TABLE + extra, REPORT):
        print(f"$ dgmbench {' '.join(cmd)}", flush=True)
        t = time.perf_counter()
        rc = cli_main(cmd)
        print(f"[{time.perf_counter() - t:.0f} s]", flush=True)
        if rc:
            print(f"demo: 'dgmbench {' '.join(cmd)}' failed with exit code {rc}", file=sys.stderr)
            return rc
    print(f"demo finished in {time.perf_counter() - t0:.0f} s: leaderboards/digits.md, reports/digits.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
