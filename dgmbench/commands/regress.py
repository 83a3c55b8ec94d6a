"""`dgmbench regress`: compare fresh metrics with a stored baseline; exit 1 on a regression.

Exit codes: 0 no regression (or --update), 1 a metric regressed, went missing or became
incomparable, 2 usage error (bad option, missing file), 3 corrupt baseline or results.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

from ..errors import EXIT_CHECK_FAILED, EXIT_OK, DataError
from ..regress import Baseline, baseline_from_records, compare, parse_tolerances
from ..report.text import comparison_table
from ..results import check_writable_file, json_safe, load_records

EPILOG = """\
tolerances (--tolerance, comma-separated; a repeated metric combines, the largest part wins):
  fid=0.5        absolute: FID may grow by 0.5
  kid=10%        relative: KID may grow by 10 % of the baseline value
  precision=2u   2 x the recorded uncertainty (CI half-width, else std / seed spread)
  *=5%           every metric not named
verdicts: ok, improved, REGRESSED, missing (in the baseline but not in the current run),
INCOMPARABLE (n, likelihood kind or feature extractor changed), new, unchecked.
The gate fails (exit 1) on REGRESSED, missing and INCOMPARABLE.

examples:
  dgmbench regress --baseline leaderboards/digits.baseline.json --current results.jsonl
  dgmbench regress --baseline B.json --current results.jsonl --tolerance fid=0.5,kid=10%
  dgmbench regress --baseline B.json --current results.jsonl --update   # accept the current values
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "regress", help="compare metrics with a stored baseline (CI gate; exit 1 on a regression)",
        description="Compare the metrics of a fresh run with a stored baseline, metric by metric, "
                    "knowing each metric's direction, and exit 1 on any regression.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", required=True, metavar="B.json", help="baseline file (JSON, see docs/ci.md)")
    p.add_argument("--current", required=True, metavar="RESULTS.jsonl",
                   help="records of the current run: the JSONL store 'dgmbench score' writes, or a JSON record/list")
    p.add_argument("--tolerance", metavar="SPEC", default=None,
                   help="override tolerances, e.g. 'fid=0.5,kid=10%%,precision=2u' (see below)")
    p.add_argument("--update", action="store_true",
                   help="write a new baseline from the current records (atomically) instead of failing")
    # --json also exists on the main parser; SUPPRESS keeps 'dgmbench --json regress' working
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON instead of the table")
    p.set_defaults(func=run)


def run(args) -> int:

    as_json = bool(getattr(args, "json", False))
    overrides = parse_tolerances(args.tolerance)
    if args.update:
        check_writable_file(args.baseline, "--baseline")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = load_records(args.current)
        previous = None
        if not args.update:
            previous = Baseline.load(args.baseline)
        elif os.path.exists(args.baseline):
            try:
                previous = Baseline.load(args.baseline)
            except DataError as e:  # --update is the documented way to repair a corrupt baseline
                warnings.warn(f"{e}; replacing it", stacklevel=1)
        comparison = None
        if previous is not None:
            comparison = compare(previous, records, overrides=overrides,
                                 baseline_path=args.baseline, current_path=args.current)
        new = None
        if args.update:
            new = baseline_from_records(records, overrides=overrides, previous=previous, source=args.current)
            new.save(args.baseline)
    for w in caught:
        print(f"dgmbench regress: warning: {w.message}", file=sys.stderr)

    if as_json:
        out = comparison.to_dict() if comparison is not None else {"passed": True, "rows": []}
        if new is not None:
            out["updated"] = {"baseline": args.baseline, "entries": len(new.entries)}
        print(json.dumps(json_safe(out), indent=2, sort_keys=True, allow_nan=False))
    else:
        if comparison is not None:
            print(comparison_table(comparison))
        if new is not None:
            print(f"wrote {args.baseline}: {len(new.entries)} metric values accepted as the new baseline")
    if args.update:
        return EXIT_OK
    return EXIT_CHECK_FAILED if comparison.failed else EXIT_OK
