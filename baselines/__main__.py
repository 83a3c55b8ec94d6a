"""``python -m baselines train FAMILY --preset NAME [--checkpoint PATH] [--seed S]``;
``python -m baselines eval CHECKPOINT [--split test] [--k K]`` (NLL and bits/dim with their kind);
``python -m baselines strip CHECKPOINT OUT`` (a finished model without its optimiser state)."""

from __future__ import annotations

import argparse
import sys

from dgmbench.errors import DgmbenchError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m baselines", description="Train dgmbench's reference baselines.")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train one family with a preset (resumes from --checkpoint when it exists)")
    t.add_argument("family")
    t.add_argument("--preset", default="digits")
    t.add_argument("--checkpoint", help="checkpoint path (default runs/FAMILY-PRESET-sSEED.pt)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default=None, help="cpu, cuda, or auto (default: the preset's)")
    t.add_argument("--steps", type=int, help="override the preset's number of steps")
    sub.add_parser("list", help="families and their presets")
    e = sub.add_parser("eval", help="NLL (nats) and bits/dim of a checkpoint on its dataset, with the likelihood kind")
    e.add_argument("checkpoint")
    e.add_argument("--split", default="test")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--k", type=int, help="importance samples (VAE IWAE-k) or dequantisation draws (flow)")
    e.add_argument("--n", type=int, help="evaluate on the first N items of the split")
    e.add_argument("--batch-size", type=int, default=256)
    s = sub.add_parser("strip", help="copy a finished checkpoint without its optimiser state (for distribution; "
                                      "evaluation and table --adopt read it, training cannot resume from it)")
    s.add_argument("checkpoint")
    s.add_argument("out")
    args = p.parse_args(argv)
    try:
        if args.cmd == "strip":
            from .checkpoint import strip_optimizer_state

            before, after = strip_optimizer_state(args.checkpoint, args.out)
            print(f"{args.out}: {after / 1e6:.1f} MB ({args.checkpoint}: {before / 1e6:.1f} MB)")
            return 0
        if args.cmd == "list":
            from .registry import FAMILIES, family_module

            for fam in FAMILIES:
                try:
                    presets = family_module(fam).PRESETS
                except ImportError:
                    print(f"{fam:<15}(not installed)")
                    continue
                width = max(12, *(len(n) + 2 for n in presets))
                for name, spec in presets.items():
                    print(f"{fam:<15}{name:<{width}}{spec['dataset']:<14}{spec.get('description', '')}")
            return 0
        if args.cmd == "eval":
            return _eval(args)
        from .train import train_preset

        ckpt = args.checkpoint or f"runs/{args.family}-{args.preset}-s{args.seed}.pt"
        overrides = {"train": {"steps": args.steps}} if args.steps else None
        res = train_preset(args.family, args.preset, checkpoint=ckpt, seed=args.seed, overrides=overrides, device=args.device)
        last = res.history[-1] if res.history else {}
        print(f"{args.family}/{args.preset}: {res.step} steps in {res.wall_time_s:.1f}s, last loss {last.get('loss', float('nan')):.4g}"
              f"{' (DIVERGED)' if res.diverged else ''}; checkpoint {ckpt}")
        return 0
    except DgmbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code


def _eval(args) -> int:
    import time

    from dgmbench.data import get_dataset
    from dgmbench.errors import ModelError
    from dgmbench.metrics.likelihood import likelihood_metrics

    from .checkpoint import load_baseline, read_checkpoint

    state = read_checkpoint(args.checkpoint)
    model = load_baseline(args.checkpoint)
    if not callable(getattr(model, "log_likelihood", None)):
        raise ModelError(f"the {state['family']} baseline has no likelihood")
    if args.k is not None:
        if not hasattr(model, "eval_k"):
            raise ModelError(f"--k does not apply to the {state['family']} baseline")
        model.eval_k = args.k
    data = get_dataset(state["dataset"], args.split).subset(args.n)
    t0 = time.perf_counter()
    values = likelihood_metrics(model, data.data, batch_size=args.batch_size, seed=args.seed)
    wall = time.perf_counter() - t0
    k = f", k={model.eval_k}" if hasattr(model, "eval_k") else ""
    for v in values:
        print(f"{state['family']}/{state.get('preset')} {state['dataset']}:{args.split} n={v.n}{k}: {v.name} = {v.value:.4f} "
              f"+- {v.std:.4f} {v.unit} ({v.kind})")
    print(f"step {state['step']}, eval {wall:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
