"""``python -m baselines train FAMILY --preset NAME [--checkpoint PATH] [--seed S]``."""

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
    args = p.parse_args(argv)
    try:
        if args.cmd == "list":
            from .registry import FAMILIES, family_module

            for fam in FAMILIES:
                try:
                    presets = family_module(fam).PRESETS
                except ImportError:
                    print(f"{fam:<15}(not installed)")
                    continue
                for name, spec in presets.items():
                    print(f"{fam:<15}{name:<12}{spec['dataset']:<14}{spec.get('description', '')}")
            return 0
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


if __name__ == "__main__":
    sys.exit(main())
