"""The command-line side of a benchmark file: compute rows, print each as it comes, write a Markdown table."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from pathlib import Path


def markdown_table_main(description: str, header: list[str], rows: Callable[[], Iterable[list[str]]],
                        argv: list[str] | None = None) -> int:
    """Parse ``--out``, then print the table row by row (long cases show progress) and write it to ``--out``."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--out", help="also write the Markdown table to this file")
    args = ap.parse_args(argv)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    print("\n".join(lines), flush=True)
    for cells in rows():
        lines.append("| " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    return 0
