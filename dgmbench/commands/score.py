"""`dgmbench score`: score a model or a sample set on a dataset and append a Record."""

from __future__ import annotations

import argparse
import json
import math

from ..errors import UsageError
from ..results import RecordStore
from ..sampling_options import (
    apply_sampling_options,
    describe_sampler,
    format_sampling_options,
    parse_sampling_options,
)

HELP = "score a model or sample set (FID, KID, IS, PRDC, MMD, KDE, NLL/bpd, CLIP, speed) and append a Record"

EPILOG = """\
metrics (comma-separated): fid, kid, is, prdc (precision, recall, density, coverage), mmd,
  kde, nll (nll and bpd), clip (clip_score, clip_fd), speed (samples_per_s, nfe),
  mode_coverage (2-D Gaussian-mixture toys); default: fid,kid,prdc for images,
  mode_coverage,mmd,kde for 2-D points
examples:
  dgmbench score --samples gen.npz --dataset mnist --metrics fid,kid,mmd
  dgmbench score --samples gen_folder/ --dataset cifar10 --ref folder:real/ -n 5000
  dgmbench score --model runs/vae-digits.pt --dataset digits --metrics fid,prdc,nll,speed
  dgmbench score --model runs/diffusion-digits.pt --dataset digits --metrics fid,speed --sampling sampler=ddim,steps=50
  dgmbench score --model mypkg.gen:build --checkpoint ckpt.pt --dataset cifar10 --metrics fid,kid,prdc,speed -n 10000
policies: n defaults to the sample set's size or min(reference size, 10000); the reference uses
  min(n, its size) items; KID's subset size defaults to min(1000, n // 2) (stated in the note).
"""


def add_parser(sub) -> None:
    p = sub.add_parser("score", help=HELP, description=HELP, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", metavar="SPEC", help="'package.module:factory' or a dgmbench baseline checkpoint (.pt)")
    src.add_argument("--samples", metavar="PATH", help="samples: .npz/.npy/.pt file or an image folder")
    p.add_argument("--checkpoint", metavar="CKPT", help="checkpoint passed to the --model factory")
    p.add_argument("--dataset", required=True, help="dataset name (dgmbench datasets list) or folder:/npz:/pt: PATH")
    p.add_argument("--split", default="test", help="dataset split to compare with (default: test)")
    p.add_argument("--ref", metavar="SRC", help="custom reference set, e.g. folder:real/ or npz:real.npz")
    p.add_argument("--n-ref", type=int, help="number of reference items (default: min(n, reference size))")
    p.add_argument("--metrics", help="comma-separated metrics (see below)")
    p.add_argument("-n", type=int, dest="n", help="number of samples")
    p.add_argument("--seed", type=int, default=0, help="seed of sampling and of every random choice (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--batch-size", type=int, default=128, help="sampling / feature batch size (default 128)")
    p.add_argument("--extractor", help="feature extractor: inception, classifier-digits, classifier-mnist, raw, clip "
                                       "(default: by dataset)")
    p.add_argument("--inception-weights", metavar="PATH", help="torch-fidelity Inception weights file (needed for IS)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp32-strict", "tf32", "bf16", "fp16"),
                   help="Inception arithmetic (default fp32, as torch-fidelity; fp32-strict turns TF32 off on GPUs; "
                        "tf32/bf16/fp16 are faster and change FID slightly: see benchmarks/RESULTS.md)")
    p.add_argument("--data-dir", metavar="DIR", help="local copy of a downloadable dataset's files")
    p.add_argument("--store", metavar="RESULTS.jsonl", help="append the Record to this JSONL file")
    p.add_argument("--name", help="model name written into the Record")
    p.add_argument("--family", help="model family written into the Record")
    p.add_argument("--kid-subsets", type=int, default=100)
    p.add_argument("--kid-subset-size", type=int, help="default: min(1000, n // 2)")
    p.add_argument("--fid-bootstrap", type=int, default=10, help="bootstrap replicates for FID's interval (0: none)")
    p.add_argument("--fid-inf", action="store_true", help="also report FID-infinity (1/N extrapolation) as fid_inf")
    p.add_argument("--prdc-k", type=int, default=3, help="k of the k-NN manifolds (default 3)")
    p.add_argument("--mmd-bandwidth", type=float, help="RBF sigma (default: median heuristic)")
    p.add_argument("--mmd-permutations", type=int, default=0, help="permutation-test p-value with this many permutations")
    p.add_argument("--mmd-on", choices=("features", "raw"), default="features")
    p.add_argument("--nll-n", type=int, metavar="N", help="NLL/bpd on a seeded subset of N split items "
                                                        "(default: all; for slow likelihoods such as a VLB or an ODE)")
    p.add_argument("--clip-model", help="open_clip model name (e.g. ViT-B-32)")
    p.add_argument("--clip-pretrained", help="open_clip pretrained tag or a local checkpoint file")
    p.add_argument("--clip-w", type=float, default=1.0, help="CLIP score weight w (2.5 for CLIP-S; default 1)")
    p.add_argument("--sampling", action="append", metavar="KEY=VALUE",
                   help="sampler option of the model, repeatable or comma-separated, e.g. --sampling sampler=ddim,steps=50 "
                        "(diffusion: sampler, steps, eta, guidance; score: levels, steps_per_level, step_lr, denoise; "
                        "ebm: sample_init=noise|buffer, sample_steps)")
    p.add_argument("--speed-batch-size", type=int, help="batch size of the speed measurement (default --batch-size)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the reference-feature cache")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the Record as JSON")
    p.set_defaults(func=run)


def _default_metrics(dataset: str) -> str:
    from ..data.registry import DATASETS

    info = DATASETS.get(dataset)
    return "mode_coverage,mmd,kde" if info is not None and info.kind == "points" else "fid,kid,prdc"


def _fmt(v: float | None) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return f"{v:.5g}"


def format_record_table(rec) -> str:
    """A plain-text table of a Record's metrics: value, interval or std, n, kind, extractor, note."""
    rows = [("metric", "value", "interval / std", "n", "kind", "extractor", "note")]
    for name, mv in rec.metrics.items():
        if mv.ci_low is not None:
            spread = f"[{_fmt(mv.ci_low)}, {_fmt(mv.ci_high)}]"
        elif mv.std is not None:
            spread = f"± {_fmt(mv.std)}"
        else:
            spread = ""
        unit = f" {mv.unit}" if mv.unit and mv.unit not in ("fraction",) else ""
        rows.append((name, _fmt(mv.value) + (unit if mv.value is not None else ""), spread,
                     "" if mv.n is None else str(mv.n), mv.kind or "", mv.extractor or "", mv.note or ""))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r[:6], widths)) + ("  " + r[6] if r[6] else ""))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run(args) -> int:
    from ..evaluate import evaluate

    if args.checkpoint and not args.model:
        raise UsageError("--checkpoint goes with --model")
    if args.n is not None and args.n < 1:
        raise UsageError(f"-n must be positive, got {args.n}")
    metrics = args.metrics or _default_metrics(args.dataset)
    options = {"fid_bootstrap": args.fid_bootstrap, "fid_inf": args.fid_inf, "prdc_k": args.prdc_k, "mmd_bandwidth": args.mmd_bandwidth,
               "mmd_permutations": args.mmd_permutations, "mmd_on": args.mmd_on, "clip_w": args.clip_w,
               "speed_batch_size": args.speed_batch_size, "precision": args.precision, "nll_max_n": args.nll_n}
    sampling = parse_sampling_options(args.sampling)
    if args.samples:
        from ..protocol import SamplesModel

        if sampling:
            raise UsageError("--sampling configures a model's sampler; it does not apply to --samples")
        source = SamplesModel.from_path(args.samples)
    else:
        source = args.model
    # under torchrun: join the process group; every rank samples and extracts its share,
    # rank 0 computes the metrics, prints and stores the one Record
    import torch

    from .. import distributed as D

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    distributed = D.init_from_env(device)
    checkpoint, name, sampler_config = args.checkpoint, args.name, {}
    try:
        if sampling:  # load the model here, so its sampler can be configured before scoring
            from ..evaluate import resolve_model

            model, described = resolve_model(source, checkpoint=checkpoint, device=D.local_device(device))
            source, checkpoint = apply_sampling_options(model, sampling), None
            name = name or f"{getattr(model, 'name', None) or type(model).__name__} [{format_sampling_options(sampling)}]"
            sampler_config = {"source": described, "sampling_options": sampling, "sampler": describe_sampler(model)}
        _score_and_print(evaluate, source, args, metrics, options, D.local_device(device), checkpoint=checkpoint,
                         name=name, sampler_config=sampler_config)
    finally:
        if distributed:
            D.shutdown()
    return 0


def _score_and_print(evaluate, source, args, metrics, options, device, *, checkpoint: str | None, name: str | None,
                     sampler_config: dict) -> None:
    from .. import distributed as D

    rec = evaluate(
        source, args.dataset, metrics=metrics, n=args.n, split=args.split, ref=args.ref,
        n_ref=args.n_ref, seed=args.seed, device=device, batch_size=args.batch_size, extractor=args.extractor,
        inception_weights=args.inception_weights, store=None, model_name=name, family=args.family,
        progress=not args.no_progress and not getattr(args, "json", False), kid_subsets=args.kid_subsets,
        kid_subset_size=args.kid_subset_size, checkpoint=checkpoint, data_dir=args.data_dir,
        cache=False if args.no_cache else None, clip_model=args.clip_model, clip_pretrained=args.clip_pretrained,
        **options,
    )
    if not D.is_main():
        return
    rec.config["cli_args"] = {k: v for k, v in vars(args).items() if k != "func"}
    rec.config.update(sampler_config)
    if args.store:
        RecordStore(args.store).append(rec)
    if getattr(args, "json", False):
        print(json.dumps(rec.to_dict(), indent=2, sort_keys=True, default=str, allow_nan=True))
        return
    head = (f"{rec.model} on {rec.dataset}:{rec.split}  n={rec.n_samples}  seed={rec.seed}  device={rec.device}  "
            f"wall {rec.wall_time_s:.1f} s")
    print(head)
    print(format_record_table(rec))
    for note in rec.config.get("notes") or []:
        print(f"note: {note}")
    if args.store:
        print(f"record {rec.record_id} appended to {args.store}")
