"""The ``dgmbench`` command line. Each sub-command lives in ``dgmbench/commands/<name>.py``.

Exit codes: 0 ok, 1 a check failed (``regress`` found a regression), 2 usage error,
3 data or model error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import traceback
import warnings

from .errors import EXIT_OK, DgmbenchError

COMMANDS = ("datasets", "models", "score", "sweep", "table", "report", "regress", "stats", "ref-stats")

DESCRIPTION = """\
dgmbench: evaluate and benchmark deep generative models.

Scores any model or sample set (FID, KID, IS, precision/recall, density/coverage,
MMD, KDE log-likelihood, NLL and bits/dim, CLIP alignment, sampling speed), trains
reference baselines of seven families, regenerates the comparison table and report,
and gates CI on metric regressions.
"""

EPILOG = """\
examples:
  dgmbench datasets list
  dgmbench score --samples gen.npz --dataset mnist --metrics fid,kid,mmd
  dgmbench score --model baselines/runs/vae-digits.pt --dataset digits --metrics fid,prdc,nll,speed
  dgmbench sweep --model runs/diffusion-digits-cond-s0.pt --dataset digits --sampling sampler=ddpm \
      --sampling sampler=ddim,steps=20 --sampling sampler=ddim,steps=100 --out leaderboards/digits-sweep
  dgmbench table --dataset digits && dgmbench report
  dgmbench ref-stats --dataset cifar10 --split train --out cifar10-train.npz
  dgmbench regress --baseline leaderboards/digits.baseline.json --current results.jsonl

exit codes: 0 ok, 1 a check failed (regression), 2 usage error, 3 data or model error; every error
is one line 'dgmbench COMMAND: error: ...' (--debug or DGMBENCH_DEBUG=1 adds the traceback)
environment: DGMBENCH_HOME (cache, default ~/.cache/dgmbench), DGMBENCH_DATA_DIR (local
dataset copies), DGMBENCH_MIRROR (URL base for dataset downloads)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dgmbench", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON instead of tables")
    parser.add_argument("--debug", action="store_true",
                        help="print the traceback of an error (also DGMBENCH_DEBUG=1)")
    parser.add_argument("--version", action="version", version="dgmbench 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"dgmbench.commands.{name.replace('-', '_')}").add_parser(sub)
    return parser


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def debug_enabled(args: argparse.Namespace | None = None) -> bool:
    """True with ``--debug`` or ``DGMBENCH_DEBUG`` set to anything but '', '0', 'false', 'no'."""
    env = os.environ.get("DGMBENCH_DEBUG", "").strip().lower() not in ("", "0", "false", "no")
    return env or bool(getattr(args, "debug", False))


def _one_line_warning(command: str):
    """A ``warnings.showwarning`` that prints ``dgmbench CMD: warning: message`` (one line, no source)."""
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split())
        print(f"dgmbench {command}: warning: {text}", file=file or sys.stderr)
    return show


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors are one line ``dgmbench CMD: error: ...`` and their exit code.

    Only :class:`DgmbenchError` is caught here: a user's model or data failing is turned into
    one at the boundary where it is called (``protocol``, ``sampling``), so a dgmbench bug
    still shows its traceback.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_OK
    try:
        with warnings.catch_warnings():
            if not debug_enabled(args) and warnings.showwarning is getattr(warnings, "_showwarning_orig", None):
                warnings.showwarning = _one_line_warning(args.command)  # not when a caller records warnings
            rc = args.func(args)
    except DgmbenchError as e:
        if debug_enabled(args):
            traceback.print_exception(e)
        message = " ".join(line.strip() for line in str(e).splitlines() if line.strip()) or type(e).__name__
        print(f"dgmbench {args.command}: error: {message}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"dgmbench {args.command}: interrupted; finished work is kept and a rerun resumes", file=sys.stderr)
        return 130
    return EXIT_OK if rc is None else int(rc)


if __name__ == "__main__":
    sys.exit(main())
