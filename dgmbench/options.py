"""Every setting of an evaluation, written once: :class:`EvalOptions`.

``evaluate(model, dataset, **kw)``, ``Evaluator(dataset, **kw)``, ``dgmbench score``'s flags
and ``dgmbench table`` all take these fields by name; every one is written into the Record's
``config.options`` (objects such as a custom extractor are written as their names). A
field's ``metadata`` holds its command-line flag and help, so ``score`` builds its parser
from this table (:func:`add_arguments`) instead of repeating it.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError, suggest
from .features.inception import PRECISIONS, RESIZE_MODES


def _opt(default: Any, help: str, *, flag: str | None = None, type: Any = None, cli: bool = True,
         choices: Sequence[str] | None = None, minimum: int | float | None = None, **kw: Any) -> Any:
    """A dataclass field with its command-line flag, help, choices and lower bound."""
    meta = {"help": help, "flag": flag, "type": type, "cli": cli, "choices": choices, "minimum": minimum}
    if isinstance(default, list | dict):
        factory = default.__class__
        return field(default_factory=lambda: factory(default), metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


@dataclass
class EvalOptions:
    """What to score and how. ``None`` means "the documented default policy"."""

    # --- what is scored against what
    split: str = _opt("test", "dataset split to compare with (default: test)")
    ref: Any = _opt(None, "custom reference set, e.g. folder:real/ or npz:real.npz", flag="--ref")
    n_ref: int | None = _opt(None, "number of reference items (default: min(n, reference size))", type=int, minimum=1)
    seed: int = _opt(0, "seed of sampling and of every random choice (default 0)", type=int)
    conditional: bool | None = _opt(None, "score a class-conditional model with balanced labels (default: when it "
                                    "has num_classes)", cli=False)
    # --- where and how
    device: Any = _opt("auto", "auto, cpu, cuda or cuda:N (default auto)")
    batch_size: int = _opt(128, "sampling / feature batch size (default 128)", type=int, minimum=1)
    extractor: Any = _opt(None, "feature extractor: inception, dinov2-vit-{s,b,l,g}-14, classifier-digits, "
                          "classifier-mnist, raw, clip, or a name given to register_extractor (default: by dataset)")
    inception_weights: str | None = _opt(None, "torch-fidelity Inception weights file (needed for IS)")
    weights: str | None = _opt(None, "weights file of the feature extractor (Inception, DINOv2, a classifier, a "
                               "registered extractor)")
    resize: str | None = _opt(None, "Inception resize to 299: tf-bilinear (torch-fidelity / TF1, the default) or "
                              "clean (clean-fid's PIL bicubic); named in the Record", choices=tuple(RESIZE_MODES))
    ref_stats: str | None = _opt(None, "compare with Gaussian statistics from a .npz (mu, sigma: pytorch-fid "
                                 "--save-stats, clean-fid, dgmbench ref-stats) instead of reference features; FID/IS only")
    precision: str = _opt("fp32", "Inception arithmetic (default fp32, as torch-fidelity; fp32-strict turns TF32 off "
                          "on GPUs; tf32/bf16/fp16 are faster and change FID slightly: see benchmarks/RESULTS.md)",
                          choices=tuple(PRECISIONS))
    clip_extractor: Any = _opt(None, "a CLIP extractor object (Python API only)", cli=False)
    clip_model: str | None = _opt(None, "open_clip model name (e.g. ViT-B-32)")
    clip_pretrained: str | None = _opt(None, "open_clip pretrained tag or a local checkpoint file")
    data_dir: str | None = _opt(None, "local copy of a downloadable dataset's files")
    cache: bool | None = _opt(None, "read/write the reference-feature cache (None: unless DGMBENCH_CACHE=0)", cli=False)
    progress: bool = _opt(True, "progress bars", cli=False)
    # --- metric options (each group lists the ones it reads in dgmbench.metrics.registry)
    kid_subsets: int = _opt(100, "KID: number of subsets (default 100)", type=int, minimum=1)
    kid_subset_size: int | None = _opt(None, "KID: subset size (default min(1000, n // 2))", type=int, minimum=2)
    fid_interval: str = _opt("delta", "FID's interval: delta (delta method, default: costs one eigendecomposition), "
                             "bootstrap (--fid-bootstrap replicates) or none", choices=("delta", "bootstrap", "none"))
    fid_bootstrap: int = _opt(0, "bootstrap replicates for FID's interval (> 1 selects the bootstrap interval)",
                              type=int, minimum=0)
    fid_device: str = _opt("cpu", "where FID's float64 linear algebra runs: cpu (default) or auto (the run's "
                           "device, e.g. the GPU; same value to round-off)", choices=("cpu", "auto"))
    fid_inf: bool = _opt(False, "also report FID-infinity (1/N extrapolation, subsets >= 2.4 d) as fid_inf", type=bool)
    pr_k: int = _opt(3, "k of precision/recall's k-NN balls (Kynkaanniemi et al. 2019: 3)", type=int, minimum=1)
    dc_k: int = _opt(5, "k of density/coverage's k-NN balls (Naeem et al. 2020: 5)", type=int, minimum=1)
    prdc_interval: bool = _opt(True, "intervals for precision/recall/density/coverage", cli=False)
    is_splits: int = _opt(10, "IS: number of splits (default 10)", type=int, minimum=1, cli=False)
    is_bootstrap: int = _opt(100, "IS: bootstrap resamples for its between-set interval (0: none)", type=int,
                             minimum=0, cli=False)
    mmd_bandwidth: float | None = _opt(None, "RBF sigma (default: median heuristic)", type=float)
    mmd_permutations: int = _opt(0, "permutation-test p-value with this many permutations", type=int, minimum=0)
    mmd_on: str = _opt("features", "MMD on the extractor's features or the raw pixels/points",
                       choices=("features", "raw"))
    mmd_max_n: int = _opt(5000, "MMD on at most this many points per set (seeded subset)", type=int, minimum=2,
                          cli=False)
    kde_grid: Sequence[float] | None = _opt(None, "KDE bandwidth grid (default: the kernel's)", cli=False)
    kde_max_test: int = _opt(10_000, "KDE on at most this many test points", type=int, minimum=1, cli=False)
    clip_w: float = _opt(1.0, "CLIP score weight w (2.5 for CLIP-S; default 1)", type=float)
    clip_template: str | None = _opt(None, "CLIP prompt template with {} for the class name", cli=False)
    speed_batch_size: int | None = _opt(None, "batch size of the speed measurement (default --batch-size)", type=int,
                                        minimum=1)
    speed_repeats: int = _opt(3, "timed repeats of the speed measurement", type=int, minimum=1, cli=False)
    speed_warmup: int = _opt(1, "untimed warm-up calls of the speed measurement", type=int, minimum=0, cli=False)
    likelihood_batch_size: int | None = _opt(None, "batch size of the likelihood pass (default --batch-size)",
                                             type=int, minimum=1, cli=False)
    nll_max_n: int | None = _opt(None, "NLL/bpd on a seeded subset of N split items (default: all; for slow "
                                 "likelihoods such as a VLB or an ODE)", flag="--nll-n", type=int, minimum=1)
    extra: dict[str, Any] = _opt({}, "options of metrics registered outside dgmbench", cli=False)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Bounds and choices from the fields' metadata; a bad value is a UsageError naming the flag."""
        for f in dataclasses.fields(self):
            value, meta = getattr(self, f.name), f.metadata
            flag = meta.get("flag") or "--" + f.name.replace("_", "-")
            name = f"{f.name} ({flag})" if meta.get("cli", True) else f.name
            if value is None:
                continue
            if meta.get("choices") and value not in meta["choices"]:
                raise UsageError(f"{name} must be one of {', '.join(meta['choices'])}, got {value!r}")
            lo = meta.get("minimum")
            if lo is not None:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise UsageError(f"{name} must be a number, got {value!r}")
                if value < lo:
                    raise UsageError(f"{name} must be at least {lo}, got {value}")

    @classmethod
    def from_kwargs(cls, base: EvalOptions | None = None, **kw: Any) -> EvalOptions:
        """``base`` (or the defaults) with ``kw`` replacing fields; an unknown name is a UsageError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = [k for k in kw if k not in names]
        if unknown:
            raise UsageError(suggest(unknown[0], names, "option"))
        return dataclasses.replace(base, **kw) if base is not None else cls(**kw)

    def to_config(self) -> dict[str, Any]:
        """JSON-safe settings for the Record (objects become their names)."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is not None and not isinstance(v, str | int | float | bool | list | tuple | dict):
                v = getattr(v, "name", None) or type(v).__name__
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out


def cli_fields() -> list[dataclasses.Field]:
    """The EvalOptions fields that are command-line flags."""
    return [f for f in dataclasses.fields(EvalOptions) if f.metadata.get("cli", True)]


def add_arguments(parser: argparse.ArgumentParser, *, skip: Sequence[str] = ()) -> None:
    """Add one flag per EvalOptions field (help, type, choices and default from the field)."""
    for f in cli_fields():
        if f.name in skip:
            continue
        meta = f.metadata
        flag = meta.get("flag") or "--" + f.name.replace("_", "-")
        if meta.get("type") is bool:
            parser.add_argument(flag, dest=f.name, action="store_true", help=meta["help"])
            continue
        kw: dict[str, Any] = {"dest": f.name, "default": f.default, "help": meta["help"]}
        if meta.get("type") is not None:
            kw["type"] = meta["type"]
        if meta.get("choices"):
            kw["choices"] = meta["choices"]
        parser.add_argument(flag, **kw)


def from_args(args: argparse.Namespace, **overrides: Any) -> EvalOptions:
    """EvalOptions from parsed ``add_arguments`` flags (plus ``overrides``)."""
    kw = {f.name: getattr(args, f.name) for f in cli_fields() if hasattr(args, f.name)}
    kw.update(overrides)
    return EvalOptions.from_kwargs(**kw)
