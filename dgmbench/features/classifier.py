"""Small CNN domain classifiers for 8x8 digits and 28x28 MNIST, as feature extractors.

Papers score MNIST-like models with a domain classifier instead of Inception (whose
ImageNet features say little about 8x8 or 28x28 digits). dgmbench trains its own with a
fixed seed and commits the weights with their metadata under ``dgmbench/assets/``:

- ``classifier-<dataset>.pt``: ``{"config": {...}, "state_dict": {...}}`` (weights_only-loadable)
- ``classifier-<dataset>.json``: held-out test accuracy, training command, seed, epochs,
  sha256 of the .pt, feature dimension, input convention, versions.

Train (reproducible on CPU with the same torch version)::

    python -m dgmbench.features.classifier train --dataset digits
    python -m dgmbench.features.classifier train --dataset mnist --data-dir /path/to/mnist

Extractor outputs: ``features`` (the penultimate layer, post-ReLU, ``feature_dim``-d),
used for FID/KID/PRDC-style scores, and ``logits`` (10 classes, with bias), used for
IS-style scores. Inputs: float [0, 1] (N, 1, H, W) at the training size (3-channel
input is converted to gray by the channel mean); no resize (``resize = "none"``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import get_dataset
from ..errors import DataError, WeightsMissingError
from ..results import atomic_write_text, atomic_writer, sha256_file

ASSETS = Path(__file__).resolve().parent.parent / "assets"

# per-dataset architecture and training recipe (the defaults of ``train``)
RECIPES: dict[str, dict] = {
    "digits": {"width": 32, "feature_dim": 64, "epochs": 40, "batch_size": 64, "lr": 2e-3, "weight_decay": 1e-4,
               "shift": 1},
    "mnist": {"width": 16, "feature_dim": 128, "epochs": 2, "batch_size": 64, "lr": 2e-3, "weight_decay": 1e-4,
              "shift": 1, "schedule": "warmup-cosine", "warmup_steps": 100, "bn": True, "pool2": True, "grid": 4},
}


class DomainCNN(nn.Module):
    """conv-conv-maxpool, conv-conv[-maxpool], adaptive grid x grid average pool, fc -> ReLU
    (features) -> fc (logits).

    ``bn`` adds batch norm after each convolution (it converges in far fewer steps; in eval
    mode it is a fixed affine map); ``pool2`` a second max pool; ``grid`` the pooled size.

    Input float [0, 1] (N, 1, H, W); scaled to [-1, 1] inside.
    """

    def __init__(self, in_channels: int = 1, width: int = 32, feature_dim: int = 64, num_classes: int = 10,
                 bn: bool = False, pool2: bool = False, grid: int = 2):
        super().__init__()
        w = width

        def block(cin: int, cout: int) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, bias=not bn)]
            if bn:
                layers.append(nn.BatchNorm2d(cout))
            return layers + [nn.ReLU(inplace=True)]

        self.body = nn.Sequential(
            *block(in_channels, w), *block(w, w),
            nn.MaxPool2d(2),
            *block(w, 2 * w), *block(2 * w, 2 * w),
            *([nn.MaxPool2d(2)] if pool2 else []),
            nn.AdaptiveAvgPool2d(grid),
        )
        self.fc = nn.Linear(2 * w * grid * grid, feature_dim)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x * 2 - 1).flatten(1)
        return F.relu(self.fc(h))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return f, self.head(self.dropout(f))


def weights_path(dataset: str, assets: str | os.PathLike | None = None) -> Path:
    return Path(assets or ASSETS) / f"classifier-{dataset}.pt"


def metadata_path(dataset: str, assets: str | os.PathLike | None = None) -> Path:
    return Path(assets or ASSETS) / f"classifier-{dataset}.json"


class ClassifierExtractor:
    """A dgmbench domain classifier as a FeatureExtractor: ``{"features", "logits"}``."""

    resize = "none"
    outputs = ("features", "logits")
    feature_output = "features"
    logits_output = "logits"
    config_id = "fp32"

    def __init__(self, dataset: str, *, weights: str | os.PathLike | None = None, device: str | torch.device = "cpu"):
        path = Path(weights) if weights is not None else weights_path(dataset)
        if not path.is_file():
            known = sorted(p.stem.removeprefix("classifier-") for p in ASSETS.glob("classifier-*.pt"))
            raise WeightsMissingError(
                f"no classifier weights for '{dataset}' at {path} (committed: {', '.join(known) or 'none'}); "
                f"train them with: python -m dgmbench.features.classifier train --dataset {dataset}"
            )
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            cfg = dict(blob["config"])
            self.model = DomainCNN(cfg["in_channels"], cfg["width"], cfg["feature_dim"], cfg["num_classes"],
                                   bn=bool(cfg.get("bn", False)), pool2=bool(cfg.get("pool2", False)),
                                   grid=int(cfg.get("grid", 2)))
            self.model.load_state_dict(blob["state_dict"])
        except Exception as e:  # noqa: BLE001 - any bad file gets one clear message
            raise WeightsMissingError(f"classifier weights {path} are unreadable ({type(e).__name__}: {e}); retrain them") from None
        self.dataset = dataset
        self.name = f"classifier-{dataset}"
        self.config = cfg
        self.input_shape = tuple(cfg["input_shape"])
        self.feature_dim = int(cfg["feature_dim"])
        self.weights_path = path
        self.sha256 = sha256_file(path)
        meta_file = path.with_suffix(".json")
        self.meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
        self.test_accuracy = self.meta.get("test_accuracy")
        self.device = torch.device(device)
        self.model.to(self.device).eval().requires_grad_(False)

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        x = images
        if x.ndim != 4:
            raise DataError(f"{self.name}: expected images (N, C, H, W), got shape {tuple(x.shape)}")
        if x.dtype == torch.uint8:
            x = x.float() / 255.0
        if x.shape[1] == 3 and self.input_shape[0] == 1:
            x = x.mean(1, keepdim=True)
        if tuple(x.shape[1:]) != self.input_shape:
            raise DataError(
                f"{self.name}: expects images of shape (N, {', '.join(map(str, self.input_shape))}) "
                f"(the {self.dataset} size it was trained on), got {tuple(x.shape)}; use --extractor inception "
                "or a classifier for this dataset"
            )
        return x.float()

    def extract(self, images: torch.Tensor, outputs: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        outs = list(self.outputs if outputs is None else outputs)
        bad = [o for o in outs if o not in self.outputs]
        if bad:
            raise ValueError(f"{self.name} has no output(s) {bad}; it provides {list(self.outputs)}")
        x = self._prepare(images).to(self.device)
        with torch.inference_mode():
            f = self.model.features(x)
            res = {"features": f, "logits": self.model.head(f)}
        return {o: res[o].float().cpu() for o in outs}

    def __repr__(self) -> str:
        return f"ClassifierExtractor({self.dataset}, acc={self.test_accuracy}, sha256={self.sha256[:12]})"


# -- training -----------------------------------------------------------------------------


def _augment(x: torch.Tensor, shift: int, g: torch.Generator) -> torch.Tensor:
    """Random integer translations by up to ``shift`` pixels (zero padding), seeded."""
    if shift <= 0:
        return x
    n, _, h, w = x.shape
    pad = F.pad(x, (shift, shift, shift, shift))
    dx = torch.randint(0, 2 * shift + 1, (n,), generator=g)
    dy = torch.randint(0, 2 * shift + 1, (n,), generator=g)
    rows = (dy[:, None] + torch.arange(h)[None, :])  # (n, h)
    cols = (dx[:, None] + torch.arange(w)[None, :])  # (n, w)
    idx_n = torch.arange(n)[:, None, None]
    return pad[:, 0][idx_n, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


@torch.no_grad()
def accuracy(model: DomainCNN, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        _, logits = model(x[i : i + batch_size])
        correct += int((logits.argmax(1) == y[i : i + batch_size]).sum())
    return correct / len(x)


def train_classifier(
    dataset: str,
    *,
    seed: int = 0,
    epochs: int | None = None,
    out_dir: str | os.PathLike | None = None,
    data_kw: dict | None = None,
    progress: bool = True,
    command: str | None = None,
    limit: int | None = None,
) -> dict:
    """Train the domain classifier for ``dataset`` with a fixed seed; write .pt and .json; return the metadata.

    ``limit`` trains on the first ``limit`` training images only (for quick tests).
    """

    if dataset not in RECIPES:
        raise DataError(f"no classifier recipe for '{dataset}' (known: {', '.join(RECIPES)})")
    r = dict(RECIPES[dataset])
    if epochs is not None:
        r["epochs"] = int(epochs)
    data_kw = data_kw or {}
    train = get_dataset(dataset, "train", **data_kw).subset(limit)
    test = get_dataset(dataset, "test", **data_kw)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    shape = tuple(train.data.shape[1:])
    arch = {"bn": bool(r.get("bn", False)), "pool2": bool(r.get("pool2", False)), "grid": int(r.get("grid", 2))}
    model = DomainCNN(shape[0], r["width"], r["feature_dim"], 10, **arch)
    opt = torch.optim.AdamW(model.parameters(), lr=r["lr"], weight_decay=r["weight_decay"])
    steps_per_epoch = (len(train) + r["batch_size"] - 1) // r["batch_size"]
    total_steps = r["epochs"] * steps_per_epoch
    if r.get("schedule", "onecycle") == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=r["lr"], total_steps=total_steps)
    else:  # "warmup-cosine": linear warm-up from lr/10, then cosine decay to 0
        import math

        wu = int(r.get("warmup_steps", 100))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.1 + 0.9 * s / wu if s < wu else 0.5 * (1 + math.cos(math.pi * (s - wu) / max(total_steps - wu, 1)))
        )
    x, y = train.data, train.labels
    t0 = time.time()
    for ep in range(r["epochs"]):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        total = 0.0
        for i in range(0, len(x), r["batch_size"]):
            idx = perm[i : i + r["batch_size"]]
            xb = _augment(x[idx], r["shift"], g)
            _, logits = model(xb)
            loss = F.cross_entropy(logits, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            step = i // r["batch_size"] + 1
            if progress and step % 100 == 0:
                print(f"  step {step}/{steps_per_epoch}: loss {loss.item():.4f} ({time.time() - t0:.0f}s)", file=sys.stderr)
        if progress:
            print(f"epoch {ep + 1}/{r['epochs']}: loss {total / len(x):.4f} ({time.time() - t0:.0f}s)", file=sys.stderr)
    acc = accuracy(model, test.data, test.labels)
    out = Path(out_dir or ASSETS)
    out.mkdir(parents=True, exist_ok=True)
    config = {"in_channels": shape[0], "width": r["width"], "feature_dim": r["feature_dim"], "num_classes": 10,
              "input_shape": list(shape), **arch}
    pt = weights_path(dataset, out)
    with atomic_writer(pt, "wb") as f:
        torch.save({"config": config, "state_dict": {k: v.contiguous() for k, v in model.state_dict().items()}}, f)
    meta = {
        "dataset": dataset,
        "test_accuracy": acc,
        "test_split": f"{dataset} test ({len(test)} images)",
        "train_size": len(train),
        "command": command or f"python -m dgmbench.features.classifier train --dataset {dataset} --seed {seed}",
        "seed": seed,
        "recipe": r,
        "config": config,
        "feature_dim": r["feature_dim"],
        "outputs": {"features": f"penultimate layer after ReLU, {r['feature_dim']}-d", "logits": "10 class logits"},
        "input": "float [0, 1] (N, 1, H, W) at the training size, no resize",
        "params": sum(p.numel() for p in model.parameters()),
        "sha256": sha256_file(pt),
        "torch": torch.__version__,
        "device": "cpu",
        "train_seconds": round(time.time() - t0, 1),
    }
    atomic_write_text(metadata_path(dataset, out), json.dumps(meta, indent=2) + "\n")
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dgmbench.features.classifier", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train a domain classifier and write it (with metadata) to the assets folder")
    t.add_argument("--dataset", required=True, choices=sorted(RECIPES))
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--out", default=None, help="output folder (default: dgmbench/assets)")
    t.add_argument("--data-dir", default=None, help="folder holding the dataset files (MNIST IDX .gz)")
    e = sub.add_parser("evaluate", help="held-out accuracy of the committed classifier")
    e.add_argument("--dataset", required=True, choices=sorted(RECIPES))
    e.add_argument("--data-dir", default=None)
    args = ap.parse_args(argv)
    data_kw = {"data_dir": args.data_dir} if args.data_dir else {}
    if args.cmd == "train":
        cmd = "python -m dgmbench.features.classifier " + " ".join(argv if argv is not None else sys.argv[1:])
        meta = train_classifier(args.dataset, seed=args.seed, epochs=args.epochs, out_dir=args.out, data_kw=data_kw,
                                command=cmd)
        print(json.dumps({k: meta[k] for k in ("dataset", "test_accuracy", "sha256", "params", "train_seconds")}))
    else:

        ext = ClassifierExtractor(args.dataset)
        test = get_dataset(args.dataset, "test", **data_kw)
        print(f"{ext.name}: test accuracy {accuracy(ext.model, test.data, test.labels):.4f} "
              f"(stored: {ext.test_accuracy})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
