"""An offline bundle for running the benchmarks on a machine with no internet (a GPU box, an air-gapped node).

It holds what such a machine lacks: the Inception weights (optionally stored as float16 to
halve their size), the offline CIFAR-10 images the benchmarks read, and wheels of packages
missing there. Every file is listed with its sha256 in ``MANIFEST.json``; ``unpack`` checks
them before it writes anything. Commands::

    python benchmarks/offline_bundle.py pack DEST [--weights-dtype fp16] [--train-images 2000]
                                              [--wheel torch-fidelity==0.4.0 ...] [--python 3.12]
    python benchmarks/offline_bundle.py unpack DEST --out DIR    # prints the environment to export

``unpack`` writes the weights back as a float32 torch-fidelity state dict, ``DIR/inception.pt``,
and prints ``DGMBENCH_BENCH_WEIGHTS``/``DGMBENCH_BENCH_DATA`` lines for the benchmarks. Stored as
float16 the weights are rounded once (relative error <= 2^-11 per weight): a fixed, slightly
different network, whose sha256 every Record names; speed is unaffected, and the change of
FID from TF32/bf16 arithmetic is measured against float32 arithmetic with the same weights.
The NaN placeholders of a classifier-less weights file (no logits layer) are not stored but
re-made on unpacking.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # dgmbench from this checkout when run as a script
sys.path.insert(0, str(HERE))

from dgmbench.results import sha256_file  # noqa: E402

MANIFEST = "MANIFEST.json"
WEIGHTS_FILE = "inception-{dtype}.pt"
PIP_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
                 "manylinux1_x86_64")


class BundleError(RuntimeError):
    """A bundle that cannot be made or used; the message says what to do."""


def _classifier_is_placeholder(sd: dict[str, torch.Tensor]) -> bool:
    return "fc.weight" in sd and not bool(torch.isfinite(sd["fc.weight"]).any())


def pack(dest: Path, *, weights: str | None = None, weights_dtype: str = "fp16", train_images: int = 2000,
         wheels: tuple[str, ...] = ("torch-fidelity==0.4.0",), python: str = "3.12") -> dict:
    """Write the bundle into ``dest`` (created; must be empty or absent) and return its manifest."""
    from bench_inputs import FOLDER, TEST_FILE, train_file

    from dgmbench.features.inception import _load_state_dict, resolve_weights

    if weights_dtype not in ("fp16", "fp32"):
        raise BundleError(f"--weights-dtype must be fp16 or fp32, not {weights_dtype!r}")
    if dest.exists() and any(dest.iterdir()):
        raise BundleError(f"{dest} is not empty; give a new folder")
    dest.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict] = {}

    src, origin = resolve_weights(weights, allow_download=False)
    sd = _load_state_dict(src)
    placeholder = _classifier_is_placeholder(sd)
    dtype = torch.float16 if weights_dtype == "fp16" else torch.float32
    stored = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items()
              if not (placeholder and k.startswith("fc."))}
    wname = WEIGHTS_FILE.format(dtype=weights_dtype)
    torch.save(stored, dest / wname)
    files[wname] = {"kind": "weights", "dtype": weights_dtype, "source": str(src), "source_origin": origin,
                    "source_sha256": sha256_file(src), "classifier": "placeholder" if placeholder else "stored",
                    "fc_shapes": {k: list(v.shape) for k, v in sd.items() if k.startswith("fc.")}}

    cifar = dest / "cifar"
    cifar.mkdir()
    if not (FOLDER / TEST_FILE).exists():
        raise BundleError(f"no offline CIFAR-10 at {FOLDER}; set DGMBENCH_BENCH_DATA to the cifar10-subset folder")
    with np.load(FOLDER / TEST_FILE) as z:
        np.savez_compressed(cifar / TEST_FILE, data=z["data"], labels=z["labels"])
    with np.load(train_file()) as z:
        if train_images > len(z["data"]):
            raise BundleError(f"--train-images {train_images}: only {len(z['data'])} offline training images")
        tname = f"cifar10_train_first{train_images}.npz"
        np.savez_compressed(cifar / tname, data=z["data"][:train_images], labels=z["labels"][:train_images])
    files[f"cifar/{TEST_FILE}"] = {"kind": "data", "images": 1000}
    files[f"cifar/{tname}"] = {"kind": "data", "images": train_images}

    if wheels:
        wdir = dest / "wheels"
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", python,
               "--implementation", "cp", "-d", str(wdir), *sum((["--platform", p] for p in PIP_PLATFORMS), []),
               *wheels]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BundleError(f"pip download of {', '.join(wheels)} failed:\n{proc.stderr[-2000:]}")
        for w in sorted(wdir.glob("*.whl")):
            files[f"wheels/{w.name}"] = {"kind": "wheel"}

    for rel, meta in files.items():
        meta["sha256"] = sha256_file(dest / rel)
        meta["bytes"] = (dest / rel).stat().st_size
    manifest = {"files": files, "total_bytes": sum(m["bytes"] for m in files.values()),
                "torch": torch.__version__}
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def verify(bundle: Path) -> dict:
    """The manifest, after checking every listed file's presence and sha256."""
    mpath = bundle / MANIFEST
    if not mpath.exists():
        raise BundleError(f"{bundle} has no {MANIFEST}: not a bundle made by 'pack'")
    manifest = json.loads(mpath.read_text())
    for rel, meta in manifest["files"].items():
        p = bundle / rel
        if not p.exists():
            raise BundleError(f"bundle file {rel} is missing; copy the whole bundle folder again")
        got = sha256_file(p)
        if got != meta["sha256"]:
            raise BundleError(f"bundle file {rel} is corrupt (sha256 {got[:12]}, expected {meta['sha256'][:12]}); "
                              "copy it again")
    return manifest


def unpack(bundle: Path, out: Path) -> dict[str, str]:
    """Check the bundle, write ``out/inception.pt`` (float32) and return the environment for the benchmarks."""
    manifest = verify(bundle)
    out.mkdir(parents=True, exist_ok=True)
    env = {"DGMBENCH_BENCH_DATA": str((bundle / "cifar").resolve())}
    for rel, meta in manifest["files"].items():
        if meta["kind"] != "weights":
            continue
        sd = torch.load(bundle / rel, map_location="cpu", weights_only=True)
        sd = {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}
        for k, shape in meta.get("fc_shapes", {}).items():
            if k not in sd:
                sd[k] = torch.full(shape, float("nan"))
        torch.save(sd, out / "inception.pt")
        env["DGMBENCH_BENCH_WEIGHTS"] = str((out / "inception.pt").resolve())
    return env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="make a bundle in DEST")
    p.add_argument("dest", type=Path)
    p.add_argument("--weights", help="Inception weights file (default: dgmbench's resolution)")
    p.add_argument("--weights-dtype", default="fp16", choices=("fp16", "fp32"))
    p.add_argument("--train-images", type=int, default=2000)
    p.add_argument("--wheel", action="append", help="a requirement to download as a wheel (repeatable; "
                   "default torch-fidelity==0.4.0; --wheel '' for none)")
    p.add_argument("--python", default="3.12", help="the target machine's Python version for the wheels")
    u = sub.add_parser("unpack", help="check a bundle and write the float32 weights; prints the environment")
    u.add_argument("bundle", type=Path)
    u.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "pack":
            wheels = tuple(w for w in (args.wheel if args.wheel is not None else ["torch-fidelity==0.4.0"]) if w)
            m = pack(args.dest, weights=args.weights, weights_dtype=args.weights_dtype,
                     train_images=args.train_images, wheels=wheels, python=args.python)
            for rel, meta in sorted(m["files"].items()):
                print(f"{meta['bytes'] / 2**20:8.2f} MiB  {rel}")
            print(f"{m['total_bytes'] / 2**20:8.2f} MiB  total in {args.dest}")
        else:
            for k, v in unpack(args.bundle, args.out).items():
                print(f"export {k}={v}")
    except BundleError as e:
        print(f"offline_bundle: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
