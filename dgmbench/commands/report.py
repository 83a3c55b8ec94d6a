"""``dgmbench report``: a self-contained HTML report (and a Markdown summary) from leaderboards."""

from __future__ import annotations

import argparse
import glob
import os

from ..cli import print_json
from ..errors import DataError, UsageError
from ..report.html import DatasetSection, write_report
from ..results import RecordStore, check_writable_dir

HELP = "write a self-contained HTML report and a Markdown summary from leaderboard records"

EPILOG = """\
examples:
  dgmbench report                                  # every leaderboards/*.jsonl -> reports/report.html
  dgmbench report --dataset digits                 # leaderboards/digits.jsonl -> reports/digits.html
  dgmbench report --records my.jsonl --name mine   # any Records JSONL
"""


def add_parser(sub) -> None:
    p = sub.add_parser("report", help=HELP, description=HELP, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", help="comma-separated leaderboard names in --leaderboards (default: all found)")
    p.add_argument("--leaderboards", default="leaderboards", help="folder of NAME.jsonl records (default: leaderboards/)")
    p.add_argument("--records", action="append", help="a Records JSONL file to include (repeatable; instead of --dataset)")
    p.add_argument("--out", default="reports", help="output folder (default: reports/)")
    p.add_argument("--name", help="output file stem (default: the dataset's name, or 'report' for several)")
    p.add_argument("--title", default=None, help="report title")
    p.set_defaults(func=run)


def _load(path: str, name: str):

    records = RecordStore(path).load()
    if not records:
        raise DataError(f"{path} holds no records; run 'dgmbench table --dataset {name}' first")
    return DatasetSection(name=name, records=records, folder=os.path.dirname(os.path.abspath(path)))


def find_sections(args) -> list:
    if args.records:
        out = []
        for path in args.records:
            if not os.path.exists(path):
                raise UsageError(f"records file {path} does not exist")
            out.append(_load(path, os.path.splitext(os.path.basename(path))[0]))
        return out
    if args.dataset:
        names = [x.strip() for x in args.dataset.split(",") if x.strip()]
        paths = []
        for n in names:
            path = os.path.join(args.leaderboards, f"{n}.jsonl")
            if not os.path.exists(path):
                raise UsageError(f"no leaderboard records at {path}; run 'dgmbench table --dataset {n}' "
                                 f"(or pass --leaderboards DIR)")
            paths.append((path, n))
    else:
        paths = [(p, os.path.splitext(os.path.basename(p))[0])
                 for p in sorted(glob.glob(os.path.join(args.leaderboards, "*.jsonl")))]
        if not paths:
            raise UsageError(f"no leaderboard records (*.jsonl) in {args.leaderboards}/; run 'dgmbench table' first")
    return [_load(p, n) for p, n in paths]


def run(args) -> int:

    check_writable_dir(args.out, "--out")
    sections = find_sections(args)
    name = args.name or (sections[0].name if len(sections) == 1 else "report")
    title = args.title or f"dgmbench report: {', '.join(s.name for s in sections)}"
    paths = write_report(sections, args.out, name, title=title)
    if getattr(args, "json", False):

        print_json(paths)
        return 0
    with open(paths["md"]) as f:
        print(f.read())
    print(f"wrote {paths['html']}")
    print(f"wrote {paths['md']}")
    return 0
