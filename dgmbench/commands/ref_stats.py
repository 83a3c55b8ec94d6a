"""`dgmbench ref-stats`: write a dataset's reference feature statistics (mu, sigma) to an .npz file.

The file has ``mu`` and ``sigma`` as float64, exactly as pytorch-fid's ``--save-stats`` and
clean-fid's custom statistics store them, so those tools read it; dgmbench's provenance
(dataset, split, n, extractor, weights sha256, resize mode) is an extra key
(:mod:`dgmbench.features.stats_file`). ``dgmbench score --ref-stats FILE`` reads such files
from any of those tools.

The reference items are chosen as ``score`` chooses them: the whole split, or with ``-n`` a
seed-0 random subset (``DataSplit.subset(n, seed=0)``); features of registered datasets go
through (and fill) the same reference cache as ``score``.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path
from typing import Any

from .. import __version__
from ..data.registry import DATASETS, get_dataset
from ..errors import UsageError
from ..features.cache import cached_reference_features
from ..features.registry import default_extractor, extractor_options, feature_pass, get_extractor
from ..features.stats_file import save_ref_stats
from ..metrics.fid import as_stats
from ..results import check_writable_file

HELP = "write a dataset's reference feature statistics (mu, sigma) as .npz, readable by pytorch-fid and clean-fid"

EPILOG = """\
examples:
  dgmbench ref-stats --dataset cifar10 --split train --out cifar10-train-inception.npz
  dgmbench ref-stats --dataset cifar10 --extractor dinov2-vit-l-14 --weights dinov2_vitl14_pretrain.pth --out fd-dinov2.npz
  dgmbench ref-stats --dataset mnist -n 10000 --out mnist-10k.npz
  dgmbench score --samples gen.npz --dataset cifar10 --ref-stats cifar10-train-inception.npz --metrics fid
"""


def add_parser(sub) -> None:
    p = sub.add_parser("ref-stats", help=HELP, description=HELP, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, help="dataset name (dgmbench datasets list) or folder:/npz:/pt: PATH")
    p.add_argument("--split", default="test", help="split (default: test, the split score compares with by default)")
    p.add_argument("-n", type=int, dest="n", help="use a seed-0 random subset of n items (default: the whole split)")
    p.add_argument("--extractor", help="feature extractor (default: the dataset's, as in score)")
    p.add_argument("--weights", metavar="PATH", help="weights file of the extractor (Inception, DINOv2, classifier)")
    p.add_argument("--resize", choices=("tf-bilinear", "clean"), help="Inception resize mode (default tf-bilinear)")
    p.add_argument("--out", required=True, metavar="STATS.npz", help="output file")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--batch-size", type=int, default=128, help="feature batch size (default 128)")
    p.add_argument("--data-dir", metavar="DIR", help="local copy of a downloadable dataset's files")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the reference-feature cache")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the provenance as JSON")
    p.set_defaults(func=run)


def compute_ref_stats(
    dataset: str,
    *,
    split: str = "test",
    n: int | None = None,
    extractor: str | None = None,
    weights: str | None = None,
    resize: str | None = None,
    extractor_kw: dict[str, Any] | None = None,
    device: str = "auto",
    batch_size: int = 128,
    data_dir: str | None = None,
    progress: bool = False,
    cache: bool | None = None,
):
    """(GaussianStats of the reference features, provenance dict) for ``dataset``/``split``.

    The items are the whole split or its seed-0 random subset of ``n`` (as ``score`` picks
    reference items); the features are the extractor's ``feature_output``. ``weights`` /
    ``resize`` are checked against the extractor (:func:`~dgmbench.features.registry.extractor_options`); ``extractor_kw``
    goes to ``get_extractor`` as is.
    """

    if n is not None and n < 2:
        raise UsageError(f"-n must be at least 2 (a covariance needs 2 items), got {n}")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be positive, got {batch_size}")
    registered = dataset in DATASETS
    kw = {"data_dir": data_dir} if data_dir and registered and DATASETS[dataset].downloads else {}
    full = get_dataset(dataset, split, **kw)
    items = full.subset(n, seed=0) if n is not None else full
    subset = n is not None and n < len(full)
    name = extractor or (default_extractor(dataset) if registered else ("inception" if full.data.ndim == 4 else "raw"))
    ext = get_extractor(name, device=device, **extractor_options(name, weights, resize), **(extractor_kw or {}))
    out = ext.feature_output

    def compute(missing: list[str]):
        fp = feature_pass({ext: missing}, items.data, batch_size=batch_size, progress=progress,
                          desc=f"reference {ext.name}")
        return {o: fp.features[(ext.name, o)] for o in missing}

    # registered datasets share score's cache entries; custom folders/files are not cached (no content key)
    ref = cached_reference_features(dataset, split, ext, len(items), compute, outputs=[out],
                                    transform_id="subset-perm-seed0" if subset else None, keep_features=False,
                                    enabled=cache if registered else False)
    stats = as_stats(ref.stats[out])
    prov = {
        "dataset": dataset, "split": split, "n": len(items), "subset": "seed-0 random subset" if subset else None,
        "extractor": ext.name, "extractor_sha256": getattr(ext, "sha256", None),
        "resize": getattr(ext, "resize", None), "feature_output": out,
        "config": getattr(ext, "config_id", None), "dgmbench_version": __version__,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return stats, prov


def run(args) -> int:

    out = Path(args.out)
    check_writable_file(out, "--out")
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; pass --force to overwrite it")
    as_json = getattr(args, "json", False)
    stats, prov = compute_ref_stats(
        args.dataset, split=args.split, n=args.n, extractor=args.extractor, weights=args.weights,
        resize=args.resize, device=args.device,
        batch_size=args.batch_size, data_dir=args.data_dir, progress=not args.no_progress and not as_json,
        cache=False if args.no_cache else None,
    )
    save_ref_stats(out, stats, provenance=prov)
    if as_json:
        print(json.dumps({"out": str(out), **prov, "dim": int(stats.mean.shape[0])}, indent=2, sort_keys=True))
        return 0
    d = int(stats.mean.shape[0])
    sha = (prov["extractor_sha256"] or "none")[:12]
    print(f"wrote {out}: mu ({d},), sigma ({d}, {d}) float64 from {prov['n']} items of {prov['dataset']}:{prov['split']}"
          f"{' (' + prov['subset'] + ')' if prov['subset'] else ''}; extractor {prov['extractor']} "
          f"(weights sha256 {sha}, resize {prov['resize']}, output {prov['feature_output']})")
    return 0
