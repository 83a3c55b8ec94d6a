"""``dgmbench datasets list | info NAME | prepare NAME``."""

from __future__ import annotations

import argparse

from ..cli import print_json
from ..data import dataset_info, get_dataset, list_datasets, prepare_dataset


def add_parser(sub) -> None:
    p = sub.add_parser(
        "datasets", help="list, describe and download datasets",
        description="List the registered datasets, describe one (shape, classes, splits, source, "
        "per-split sizes), or download and verify one into $DGMBENCH_HOME (default ~/.cache/dgmbench).\n\n"
        "Downloaded datasets (mnist, fashion-mnist, cifar10) are looked up first in --data-dir / "
        "$DGMBENCH_DATA_DIR (files as <dir>/<file> or <dir>/<dataset>/<file>), then in the cache, and "
        "only then downloaded from --mirror / $DGMBENCH_MIRROR (<url>/<dataset>/<file> or <url>/<file>) "
        "or the official URLs. Every file is checked against its official checksum; "
        "$DGMBENCH_CHECKSUMS names a JSON file {\"dataset/file\": \"md5:...\"} of replacements.",
    )
    dsub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    dsub.add_parser("list", help="one line per dataset")
    i = dsub.add_parser("info", help="details of one dataset (loads it to count items)")
    i.add_argument("name")
    i.add_argument("--data-dir", help="folder holding local copies of the dataset files")
    i.add_argument("--mirror", help="URL base to download from instead of the official one")
    pr = dsub.add_parser("prepare", help="download and verify a dataset's files")
    pr.add_argument("name")
    pr.add_argument("--data-dir", help="folder holding local copies of the dataset files")
    pr.add_argument("--mirror", help="URL base to download from instead of the official one")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    if args.action == "list":
        rows = [
            {"name": d.name, "kind": d.kind, "shape": "x".join(map(str, d.shape)), "classes": d.num_classes or "-",
             "source": d.source, "description": d.description}
            for d in list_datasets()
        ]
        if args.json:
            print_json(rows)
        else:
            print(f"{'name':<14}{'kind':<8}{'shape':<10}{'classes':<9}{'source':<11}description")
            for r in rows:
                print(f"{r['name']:<14}{r['kind']:<8}{r['shape']:<10}{r['classes']!s:<9}{r['source']:<11}{r['description']}")
            print("\ncustom sources: folder:PATH (PNG/JPEG/WebP images), npz:PATH, pt:PATH")
        return 0
    kwargs = {"data_dir": args.data_dir} if getattr(args, "data_dir", None) else {}
    if getattr(args, "mirror", None):
        kwargs["mirror"] = args.mirror
    if args.action == "prepare":
        paths = prepare_dataset(args.name, **kwargs)
        if args.json:
            print_json({"name": args.name, "files": paths})
        else:
            print(f"{args.name}: ready" + ("" if paths else " (embedded or generated; nothing to download)"))
            for path in paths:
                print(f"  {path}")
        return 0
    info = dataset_info(args.name)
    sizes = {}
    for split in info.splits:
        ds = get_dataset(args.name, split, **kwargs)
        sizes[split] = len(ds)
        class_names = ds.class_names
    out = {"name": info.name, "kind": info.kind, "shape": list(info.shape), "num_classes": info.num_classes,
           "class_names": class_names, "splits": sizes, "source": info.source, "description": info.description}
    if args.json:
        print_json(out)
    else:
        for k, v in out.items():
            print(f"{k:<12} {v}")
    return 0
