"""``dgmbench table``: train or load each family's preset, score it, write the leaderboard."""

from __future__ import annotations

import argparse
import shlex

from ..cli import print_json
from ..errors import UsageError
from ..metrics.registry import default_metrics
from ..report.leaderboard import metrics_markdown
from ..report.summary import summarize
from ..results import check_writable_dir
from ..table.runner import TableConfig, parse_table_sampling, run_table

HELP = "train/load the baselines of every family on a dataset, score them and write leaderboards/NAME.{csv,md,jsonl}"

EPILOG = """\
examples:
  dgmbench table --dataset digits --threads 1          # 7 families x 3 seeds, the published table
  dgmbench table --dataset ring8 --families gan,flow --seeds 1
  dgmbench table --dataset digits --preset digits-tiny --seeds 2 -n 200 --out /tmp/lb
  dgmbench table --dataset mnist --seeds 1 --sampling ebm:sample_steps=500 --sampling diffusion:steps=50

Checkpoints go to RUNS/DATASET/FAMILY-PRESET-sSEED-HASH.pt (the hash covers the preset and
the family's code); finished trainings and evaluations are logged in RUNS/table-state.jsonl
and reused, so an interrupted run restarts where it stopped.
"""


def _csv(s: str | None) -> list[str] | None:
    if s is None:
        return None
    items = [x.strip() for x in s.split(",") if x.strip()]
    if not items:
        raise UsageError("an empty list was given; name at least one item, e.g. --families vae,flow")
    return items


def add_parser(sub) -> None:
    p = sub.add_parser("table", help=HELP, description=HELP, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits", help="dataset name (default: digits)")
    p.add_argument("--preset", help="preset of every family to train (default: the dataset's name)")
    p.add_argument("--families", help="comma-separated families (default: all registered)")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds per family, 0..S-1 (default: 3)")
    p.add_argument("--steps", type=int, help="override every preset's training steps (quick runs; default: the preset's)")
    p.add_argument("--metrics", help="comma-separated metrics (default: " + "; ".join(
        f"{','.join(default_metrics(kind, table=True))} on {what}"
        for kind, what in (("image", "images"), ("points", "2-D points"))) + ")")
    p.add_argument("--no-real-data", action="store_true",
                   help="leave out the real-data row (held-out training items scored as if they were a model)")
    p.add_argument("-n", type=int, default=None, help="samples per evaluation (default: the metric engine's)")
    p.add_argument("--nll-n", type=int, metavar="N", help="NLL/bpd on a seeded subset of N test items (default: all; "
                                                        "a diffusion VLB costs T network passes per item)")
    p.add_argument("--split", default="test", help="reference split (default: test)")
    p.add_argument("--extractor", help="feature extractor (default: the dataset's, e.g. classifier-digits)")
    p.add_argument("--out", default="leaderboards", help="output folder (default: leaderboards/)")
    p.add_argument("--runs-dir", default="runs", help="checkpoints and the state log (default: runs/)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default: auto)")
    p.add_argument("--name", help="output file stem (default: the preset's name)")
    p.add_argument("--adopt", action="append", default=[], metavar="CKPT",
                   help="a checkpoint trained elsewhere (python -m baselines train) with this table's preset config "
                        "and a seed of it, used instead of training that model; repeatable")
    p.add_argument("--sampling", action="append", default=[], metavar="FAMILY:KEY=VALUE",
                   help="sampler options one family's models are scored with, e.g. --sampling ebm:sample_steps=500 "
                        "or --sampling diffusion:sampler=ddim,steps=50 (repeatable; part of the evaluation's cache "
                        "key, not of the training's: trained models are reused)")
    p.add_argument("--clip-model", metavar="NAME",
                   help="open_clip model (e.g. ViT-B-32): adds the CLIP score with prompts 'a photo of a {class}' "
                        "to the alignment column of class-conditional models (weights: --clip-pretrained)")
    p.add_argument("--clip-pretrained", metavar="TAG|FILE",
                   help="open_clip pretrained tag (downloaded once) or a local weights file for --clip-model")
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch CPU threads for training and scoring (default: torch's, one per core). CPU "
                        "training is bit-reproducible for a fixed count; the committed leaderboards use 1")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def command_line(args) -> str:
    """The canonical command that reproduces this table (defaults left out, except dataset and seeds)."""
    parts = ["dgmbench", "table", "--dataset", args.dataset]
    for opt, attr, default in (("--preset", "preset", None), ("--families", "families", None),
                               ("--seeds", "seeds", None), ("--steps", "steps", None), ("--metrics", "metrics", None),
                               ("-n", "n", None), ("--nll-n", "nll_n", None),
                               ("--split", "split", "test"), ("--extractor", "extractor", None),
                               ("--device", "device", "auto"), ("--threads", "threads", None),
                               ("--clip-model", "clip_model", None), ("--clip-pretrained", "clip_pretrained", None)):
        val = getattr(args, attr, None)
        if val is not None and val != default:
            parts += [opt, str(val)]
    for item in getattr(args, "sampling", None) or ():
        parts += ["--sampling", item]
    if getattr(args, "no_real_data", False):
        parts.append("--no-real-data")
    return shlex.join(parts)


def run(args) -> int:

    cfg = TableConfig(dataset=args.dataset, preset=args.preset, families=_csv(args.families), seeds=args.seeds, steps=args.steps,
                      metrics=_csv(args.metrics), n=args.n, nll_n=args.nll_n, split=args.split, extractor=args.extractor, out=args.out,
                      runs_dir=args.runs_dir, device=args.device, progress=not args.no_progress,
                      command=command_line(args), name=args.name, adopt=tuple(args.adopt), threads=args.threads,
                      sampling=parse_table_sampling(args.sampling), real_data=not args.no_real_data,
                      clip_model=args.clip_model, clip_pretrained=args.clip_pretrained)
    if args.n is not None and args.n < 2:
        raise UsageError(f"-n must be at least 2, got {args.n}")
    if args.nll_n is not None and args.nll_n < 1:
        raise UsageError(f"--nll-n must be at least 1, got {args.nll_n}")
    check_writable_dir(args.out, "--out")
    check_writable_dir(args.runs_dir, "--runs-dir")
    res = run_table(cfg)
    if getattr(args, "json", False):

        print_json({"paths": res.paths, "missing": res.missing, "trained": res.trained, "reused": res.reused,
                    "adopted": res.adopted,
                    "records": [r.to_dict() for r in res.records]})
        return 0
    print(metrics_markdown(summarize(res.records)))
    print()
    with open(res.paths["md"]) as f:
        md = f.read()
    if "## Comparison" in md:
        comp = md.split("## Comparison", 1)[1].split("## Not in this table", 1)[0]
        print("Comparison" + comp.rstrip())
    print()
    adopted = f", adopted {len(res.adopted)} checkpoint(s)" if res.adopted else ""
    print(f"trained {len(res.trained)} model(s){adopted}, reused {len(res.reused)} finished evaluation(s)")
    for fam, why in res.missing.items():
        print(f"not in the table: {fam} ({why})")
    for path in res.paths.values():
        print(f"wrote {path}")
    return 0
