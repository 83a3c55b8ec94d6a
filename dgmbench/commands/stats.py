"""`dgmbench stats`: summary statistics of a Records JSONL (mean, std, min, max per model and metric)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

import pandas as pd

from ..errors import DataError
from ..report.text import summarise
from ..results import RecordStore

HELP = "summarise a Records JSONL: mean/std/min/max per (model, dataset, metric) over records (e.g. seeds)"


def add_parser(sub) -> None:
    p = sub.add_parser("stats", help=HELP, description=HELP)
    p.add_argument("store", metavar="RESULTS.jsonl", help="Records written by dgmbench score / table")
    p.add_argument("--metrics", help="comma-separated metrics to keep (default: all)")
    p.add_argument("--model", help="keep only this model")
    p.add_argument("--dataset", help="keep only this dataset")
    p.add_argument("--by", default="model,dataset,split", help="grouping columns (default model,dataset,split)")
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON rows")
    p.set_defaults(func=run)


def run(args) -> int:
    if not os.path.exists(args.store):
        raise DataError(f"{args.store}: no such file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = RecordStore(args.store).load()
    for w in caught:  # e.g. a torn last line: one line each, not Python's warning format
        print(f"dgmbench stats: warning: {w.message}", file=sys.stderr)
    if args.model:
        records = [r for r in records if r.model == args.model]
    if args.dataset:
        records = [r for r in records if r.dataset == args.dataset]
    if not records:
        raise DataError(f"{args.store}: no records" + (" match the filters" if args.model or args.dataset else ""))
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    by = tuple(c.strip() for c in args.by.split(",") if c.strip())
    df = summarise(records, metrics=metrics, by=by)
    if getattr(args, "json", False):
        print(json.dumps(json.loads(df.to_json(orient="records")), indent=2))
        return 0
    if df.empty:
        print("no metric values to summarise")
        return 0
    with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_columns", None):
        print(f"{len(records)} records in {args.store}")
        print(df.to_string(index=False, float_format=lambda v: f"{v:.5g}"))
    return 0
