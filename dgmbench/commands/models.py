"""``dgmbench models``: the baseline families, their presets and likelihood kinds."""

from __future__ import annotations

from baselines.registry import FAMILIES, family_module

from ..cli import print_json


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list baseline families and presets",
                       description="List the seven baseline families, their presets and the likelihood each reports.")
    p.set_defaults(func=run)


def run(args) -> int:


    rows = []
    for fam in FAMILIES:
        try:
            mod = family_module(fam)
        except ImportError:
            rows.append({"family": fam, "preset": "-", "dataset": "-", "likelihood": "-", "description": "not installed"})
            continue
        for name, spec in mod.PRESETS.items():
            rows.append({"family": fam, "preset": name, "dataset": spec["dataset"],
                         "likelihood": getattr(mod, "LIKELIHOOD_KIND", "none"), "description": spec.get("description", "")})
    if args.json:
        print_json(rows)
        return 0
    print(f"{'family':<15}{'preset':<12}{'dataset':<14}{'likelihood':<11}description")
    for r in rows:
        print(f"{r['family']:<15}{r['preset']:<12}{r['dataset']:<14}{r['likelihood']:<11}{r['description']}")
    return 0
