"""`dgmbench score`: score a model or a sample set on a dataset and append a Record."""

from __future__ import annotations

import argparse
import json
import os

from .. import distributed as D
from ..devices import resolve_device
from ..errors import UsageError
from ..harness import evaluate
from ..metrics.registry import metrics_help
from ..options import add_arguments, from_args
from ..protocol import SamplesModel, load_model, model_name
from ..report.text import format_record_table
from ..results import RecordStore, check_writable_file, sha256_file
from ..sampling import (
    apply_sampling_options,
    describe_sampler,
    format_sampling_options,
    parse_sampling_options,
)

HELP = "score a model or sample set (FID, KID, IS, PRDC, MMD, KDE, NLL/bpd, CLIP, speed) and append a Record"

EPILOG = """\
metrics (comma-separated groups or metric names):
{metrics}
examples:
  dgmbench score --samples gen.npz --dataset mnist --metrics fid,kid,mmd
  dgmbench score --samples gen_folder/ --dataset cifar10 --ref folder:real/ -n 5000
  dgmbench score --model runs/vae-digits.pt --dataset digits --metrics fid,prdc,nll,speed
  dgmbench score --model runs/diffusion-digits.pt --dataset digits --metrics fid,speed --sampling sampler=ddim,steps=50
  dgmbench score --model mypkg.gen:build --checkpoint ckpt.pt --dataset cifar10 --metrics fid,kid,prdc,speed -n 10000
  dgmbench score --samples gen.npz --ref-stats cifar10_train_stats.npz --metrics fid   # pytorch-fid/clean-fid stats
  dgmbench score --samples gen.npz --dataset cifar10 --extractor dinov2-vit-l-14 --weights dinov2_vitl14.pth
  dgmbench score --samples gen.npz --dataset cifar10 --resize clean --metrics fid      # clean-fid's resize
policies: n defaults to the sample set's size or min(reference size, 10000); the reference uses
  min(n, its size) items; KID's subset size defaults to min(1000, n // 2) (stated in the note).
"""


def add_parser(sub) -> None:
    p = sub.add_parser("score", help=HELP, description=HELP, epilog=EPILOG.format(metrics=metrics_help()),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", metavar="SPEC", help="'package.module:factory' or a dgmbench baseline checkpoint (.pt)")
    src.add_argument("--samples", metavar="PATH", help="samples: .npz/.npy/.pt file or an image folder")
    p.add_argument("--checkpoint", metavar="CKPT", help="checkpoint passed to the --model factory")
    p.add_argument("--dataset", help="dataset name (dgmbench datasets list) or folder:/npz:/pt: PATH (optional with "
                                     "--ref-stats)")
    p.add_argument("--metrics", help="comma-separated metrics (see below; default by data kind)")
    p.add_argument("-n", type=int, dest="n", help="number of samples")
    p.add_argument("--store", metavar="RESULTS.jsonl", help="append the Record to this JSONL file")
    p.add_argument("--name", help="model name written into the Record")
    p.add_argument("--family", help="model family written into the Record")
    p.add_argument("--sampling", action="append", metavar="KEY=VALUE",
                   help="sampler option of the model, repeatable or comma-separated, e.g. --sampling sampler=ddim,steps=50 "
                        "(diffusion: sampler, steps, eta, guidance; score: levels, steps_per_level, step_lr, denoise; "
                        "ebm: sample_init=noise|buffer, sample_steps)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the reference-feature cache")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the Record as JSON")
    add_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.checkpoint and not args.model:
        raise UsageError("--checkpoint goes with --model")
    if not args.dataset and not args.ref_stats:
        raise UsageError("--dataset is required (or --ref-stats FILE to compute FID against saved statistics)")
    if args.n is not None and args.n < 1:
        raise UsageError(f"-n must be positive, got {args.n}")
    if args.store:
        check_writable_file(args.store, "--store")
    as_json = getattr(args, "json", False)
    device = resolve_device(args.device)
    options = from_args(args, device=str(device), cache=False if args.no_cache else None,
                        progress=not args.no_progress and not as_json)
    sampling = parse_sampling_options(args.sampling)
    if args.samples and sampling:
        raise UsageError("--sampling configures a model's sampler; it does not apply to --samples")
    # under torchrun: join the process group; every rank samples and extracts its share,
    # rank 0 computes the metrics, prints and stores the one Record
    distributed = D.init_from_env(device)
    options.device = str(D.local_device(device))
    try:
        digest = None
        if args.samples:
            source, checkpoint, described = SamplesModel.from_path(args.samples), None, args.samples
        else:
            weights = args.checkpoint or args.model
            digest = sha256_file(weights) if os.path.isfile(weights) else None  # the bytes that are scored
            source = load_model(args.model, args.checkpoint, device=options.device)
            checkpoint, described = None, args.model + (f" + {args.checkpoint}" if args.checkpoint else "")
        name, sampler_config = args.name, {}
        if sampling:
            apply_sampling_options(source, sampling)
            name = name or f"{model_name(source)} [{format_sampling_options(sampling)}]"
            sampler_config = {"sampling_options": sampling, "sampler": describe_sampler(source)}
        rec = evaluate(source, args.dataset, metrics=args.metrics, n=args.n, checkpoint=checkpoint, model_name=name,
                       family=args.family, options=options)
        if not D.is_main():
            return 0
        rec.config["source"] = described
        if digest:
            rec.config["checkpoint_sha256"] = digest
        rec.config["cli_args"] = {k: v for k, v in vars(args).items() if k != "func"}
        rec.config.update(sampler_config)
        _print(rec, args, as_json)
    finally:
        if distributed:
            D.shutdown()
    return 0


def _print(rec, args, as_json: bool) -> None:
    """Print the Record (table or JSON) before storing it, so a failing store never loses the result."""
    if as_json:
        print(json.dumps(rec.to_dict(), indent=2, sort_keys=True, default=str, allow_nan=False))
    else:
        print(f"{rec.model} on {rec.dataset}:{rec.split}  n={rec.n_samples}  seed={rec.seed}  device={rec.device}  "
              f"wall {rec.wall_time_s:.1f} s")
        print(format_record_table(rec))
        for note in rec.config.get("notes") or []:
            print(f"note: {note}")
    if args.store:
        RecordStore(args.store).append(rec)
        if not as_json:
            print(f"record {rec.record_id} appended to {args.store}")
