"""The ``GenerativeModel`` protocol and adapters that turn anything into one.

A model samples float tensors in the dataset's convention ([0, 1] images (N, C, H, W) or
(N, 2) points). Optionally it reports ``log_likelihood(x) -> (nats per sample, kind)``
with kind in ``exact`` / ``bound`` / ``estimate`` (see :mod:`dgmbench.units` for the 8-bit
convention; a model scoring a coarser grid says so in ``likelihood_levels``). ``nfe_per_sample`` counts network evaluations per sample.

Adapters:
- :class:`CallableModel`: a plain function ``z -> x`` with a Gaussian latent.
- :func:`load_model`: an import string ``package.module:factory`` (+ optional checkpoint),
  or a checkpoint file that a registered :class:`ModelLoader` recognises.
- :class:`SamplesModel`: replays a fixed sample set (npz/pt file or image folder).
- :func:`resolve_model`: anything a user hands ``evaluate`` -> a model.

Loaders. dgmbench knows no model zoo: packages register checkpoint loaders, either with
:func:`register_loader` or through the entry-point group ``dgmbench.loaders`` (dgmbench's
own ``baselines`` package registers ``baselines.loader:LOADER`` there). A loader's
``load(path, device)`` returns a model, or None when the file is not in its format.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from .data.base import DataSplit
from .data.files import load_samples_path
from .errors import DataError, DgmbenchError, ModelError, UsageError, first_line, model_boundary
from .units import EIGHT_BIT_LEVELS
from .validation import as_image_tensor, as_tensor

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
LOADER_GROUP = "dgmbench.loaders"


@runtime_checkable
class GenerativeModel(Protocol):
    """What dgmbench needs from a model. ``log_likelihood`` is optional."""

    data_shape: tuple[int, ...]
    num_classes: int | None
    nfe_per_sample: float

    def sample(self, n: int, *, generator: torch.Generator | None = None, labels: torch.Tensor | None = None) -> torch.Tensor:
        ...


def likelihood_kind(model: Any) -> str:
    """'exact', 'bound', 'estimate' or 'none' (the model has no likelihood)."""
    if not callable(getattr(model, "log_likelihood", None)):
        return "none"
    return getattr(model, "likelihood_kind", "estimate")


def likelihood_levels(model: Any) -> int:
    """Values per sub-pixel of the discrete image ``log_likelihood`` scores: the model's
    ``likelihood_levels`` (e.g. a PixelCNN over 17 grey levels), else 256 (8-bit data, see
    :mod:`dgmbench.units`)."""
    levels = getattr(model, "likelihood_levels", EIGHT_BIT_LEVELS)
    if isinstance(levels, bool) or not isinstance(levels, int | np.integer) or levels < 2:
        raise ModelError(f"{model_name(model)}.likelihood_levels must be an integer >= 2, got {levels!r}")
    return int(levels)


def model_name(model: Any) -> str:
    return getattr(model, "name", None) or type(model).__name__


class CallableModel:
    """Wrap ``fn(z) -> x`` (or ``fn(z, labels)`` when ``num_classes`` is set).

    z ~ N(0, I) with shape (n, *latent_shape), drawn from ``generator``. ``batch_size``
    bounds the calls' size. Outputs are returned as is; the harness validates them.
    """

    def __init__(
        self,
        fn: Callable[..., torch.Tensor],
        latent_shape: tuple[int, ...],
        data_shape: tuple[int, ...],
        *,
        num_classes: int | None = None,
        nfe_per_sample: float = 1.0,
        batch_size: int = 500,
        device: str | torch.device = "cpu",
        name: str | None = None,
    ):
        self.fn = fn
        self.latent_shape = tuple(latent_shape)
        self.data_shape = tuple(data_shape)
        self.num_classes = num_classes
        self.nfe_per_sample = nfe_per_sample
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.name = name or getattr(fn, "__name__", "callable")

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, labels: torch.Tensor | None = None) -> torch.Tensor:
        out = []
        for start in range(0, n, self.batch_size):
            m = min(self.batch_size, n - start)
            z = torch.randn((m, *self.latent_shape), generator=generator).to(self.device)
            if self.num_classes is not None and labels is not None:
                x = self.fn(z, labels[start:start + m].to(self.device))
            else:
                x = self.fn(z)
            out.append(x.detach().float().cpu())
        return torch.cat(out)


class SamplesModel:
    """A model that can only replay the samples it was given (in order).

    Asking for more samples than it holds is an error that says so.
    """

    nfe_per_sample = float("nan")

    def __init__(self, samples: torch.Tensor, labels: torch.Tensor | None = None, *, name: str = "samples", source: str | None = None):
        self.samples = samples
        self.labels = labels
        self.data_shape = tuple(samples.shape[1:])
        self.num_classes = None if labels is None or labels.numel() == 0 else int(labels.max()) + 1
        self.name = name
        self.source = source

    def __len__(self) -> int:
        return int(self.samples.shape[0])

    def sample(self, n: int, *, generator: torch.Generator | None = None, labels: torch.Tensor | None = None) -> torch.Tensor:
        if n > len(self):
            raise DataError(
                f"{self.source or self.name} holds only {len(self)} samples but {n} were requested; "
                f"pass -n {len(self)} or provide more samples"
            )
        if labels is not None:
            raise UsageError(f"{self.source or self.name} replays fixed samples and cannot condition on labels")
        return self.samples[:n]

    @classmethod
    def from_path(cls, path: str | os.PathLike) -> SamplesModel:
        """Load an ``.npz`` / ``.npy`` / ``.pt`` file or an image folder of samples."""
        split = load_samples_path(str(path))
        return cls(split.data, split.labels, name=os.path.basename(str(path).rstrip("/")), source=str(path))


def _import_object(spec: str) -> Any:
    if ":" not in spec:
        raise UsageError(f"model spec '{spec}' must look like 'package.module:factory'")
    mod_name, attr = spec.split(":", 1)
    try:
        mod = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        if e.name and mod_name.startswith(e.name):  # the module itself (or its package) is missing
            raise ModelError(f"cannot import module '{mod_name}' for model spec '{spec}': {e}") from e
        raise ModelError(f"importing module '{mod_name}' (model spec '{spec}') raised {first_line(e)}") from e
    except (DgmbenchError, KeyboardInterrupt):
        raise
    except (Exception, SystemExit) as e:  # noqa: BLE001 - the module's top-level code is the user's
        raise ModelError(f"importing module '{mod_name}' (model spec '{spec}') raised {first_line(e)}") from e
    obj = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ModelError(f"module '{mod_name}' has no attribute '{attr}' (model spec '{spec}')")
        obj = getattr(obj, part)
    return obj


def as_generative_model(obj: Any, *, data_shape: tuple[int, ...] | None = None, latent_shape: tuple[int, ...] | None = None) -> GenerativeModel:
    """Return ``obj`` if it already follows the protocol; wrap a ``z -> x`` module or function otherwise."""
    has_sample = callable(getattr(obj, "sample", None))
    if has_sample and not hasattr(obj, "data_shape"):
        raise ModelError(
            f"{type(obj).__name__} has sample() but no 'data_shape' attribute; set data_shape to the shape of one "
            "sample, e.g. (1, 28, 28) or (2,)"
        )
    if has_sample:
        for attr, default in (("num_classes", None), ("nfe_per_sample", 1.0)):
            if not hasattr(obj, attr):
                try:
                    setattr(obj, attr, default)
                except AttributeError:
                    pass
        return obj
    if callable(obj):
        latent_shape = latent_shape or getattr(obj, "latent_shape", None)
        data_shape = data_shape or getattr(obj, "data_shape", None)
        if latent_shape is None or data_shape is None:
            raise ModelError(
                f"{type(obj).__name__} has no sample() method; to use it as a generator z -> x give it "
                "'latent_shape' and 'data_shape' attributes (or pass them to as_generative_model)"
            )
        return CallableModel(obj, tuple(latent_shape), tuple(data_shape), name=type(obj).__name__)
    raise ModelError(f"cannot use a {type(obj).__name__} as a generative model: it has neither sample() nor __call__")


@dataclass(frozen=True)
class ModelLoader:
    """Recognises and loads one checkpoint format: ``load(path, device=...)`` -> model, or
    None when ``path`` is not in this format (without running code from the file)."""

    name: str
    load: Callable[..., Any]
    why_not: Callable[[str], str] | None = None  # one line: why a file is not in this format
    description: str = ""


_LOADERS: dict[str, ModelLoader] = {}
_ENTRY_POINTS_READ = False


def register_loader(loader: ModelLoader) -> ModelLoader:
    """Add a checkpoint loader (a later one with the same name replaces it)."""
    _LOADERS[loader.name] = loader
    return loader


def loaders() -> list[ModelLoader]:
    """Registered loaders, after reading the ``dgmbench.loaders`` entry points once."""
    global _ENTRY_POINTS_READ
    if not _ENTRY_POINTS_READ:
        _ENTRY_POINTS_READ = True
        for ep in entry_points(group=LOADER_GROUP):
            try:
                obj = ep.load()
            except Exception as e:  # noqa: BLE001 - a broken plug-in must not break scoring of other models
                raise ModelError(f"checkpoint loader '{ep.name}' ({ep.value}) failed to import: {e}") from e
            if isinstance(obj, ModelLoader) and obj.name not in _LOADERS:
                register_loader(obj)
    return list(_LOADERS.values())


def load_checkpoint(path: str, *, device: str | None = None) -> Any | None:
    """The model in checkpoint file ``path`` from the first loader that recognises it, or None."""
    for loader in loaders():
        model = loader.load(path, device=device)
        if model is not None:
            return model
    return None


def load_model(spec: str, checkpoint: str | None = None, *, device: str | None = None) -> GenerativeModel:
    """Load a model from ``package.module:factory`` (+ checkpoint) or a checkpoint file.

    - ``spec`` an existing file: a registered loader must recognise it (else ModelError).
    - ``package.module:factory``: ``factory(checkpoint)`` when a checkpoint is given, else ``factory()``.
    """
    if checkpoint is None and os.path.exists(spec) and not os.path.isdir(spec):
        model = load_checkpoint(spec, device=device)
        if model is not None:
            return model
        reasons = [lo.why_not(spec) for lo in loaders() if lo.why_not is not None]
        if len(reasons) == 1:
            raise ModelError(reasons[0])
        known = ", ".join(lo.name for lo in loaders()) or "none registered"
        raise ModelError(
            f"{spec} is not a checkpoint any dgmbench loader recognises ({known}); --model takes a dgmbench "
            "baseline checkpoint or 'package.module:factory' (with --checkpoint for your own weights); "
            "score a samples file with --samples"
        )
    if checkpoint is not None and not os.path.exists(checkpoint):
        raise ModelError(f"checkpoint {checkpoint} does not exist (model spec '{spec}')")
    factory = _import_object(spec)
    with model_boundary(f"model factory '{spec}'{' on checkpoint ' + checkpoint if checkpoint else ''}"):
        obj = factory(checkpoint) if checkpoint is not None else factory()
    return as_generative_model(obj)


def _is_import_string(spec: str) -> bool:
    return ":" in spec and not spec.startswith(("/", ".", "~")) and "/" not in spec.split(":", 1)[0]


def resolve_model(obj: Any, *, checkpoint: str | None = None, device: str | torch.device | None = None) -> tuple[Any, str]:
    """Turn a model, samples (tensor/array/DataSplit), a samples path, an import string or a
    checkpoint file into a model; returns it and a short description of its source.

    A path that a registered loader recognises is a model; any other existing path is read
    as samples.
    """
    if isinstance(obj, SamplesModel):
        return obj, obj.source or obj.name
    if isinstance(obj, DataSplit):
        return SamplesModel(obj.data, obj.labels, name=obj.name), f"DataSplit {obj.name}"
    if isinstance(obj, torch.Tensor | np.ndarray):
        t = as_tensor(obj)
        # images: uint8 -> [0, 1], (N, H, W) -> (N, 1, H, W), NHWC -> NCHW (and range-checked); points as given
        t = as_image_tensor(t, name="samples") if t.ndim in (3, 4) else (t.float() / 255.0 if t.dtype == torch.uint8 else t)
        return SamplesModel(t, name="tensor"), "tensor"
    if isinstance(obj, str | os.PathLike):
        spec = os.fspath(obj)
        dev = None if device is None else str(device)
        if os.path.isdir(spec):
            return SamplesModel.from_path(spec), spec
        if os.path.exists(spec):
            if checkpoint is None and spec.lower().endswith(CHECKPOINT_SUFFIXES):
                model = load_checkpoint(spec, device=dev)
                if model is not None:
                    return model, spec
            return SamplesModel.from_path(spec), spec
        if _is_import_string(spec):
            return load_model(spec, checkpoint, device=dev), spec + (f" + {checkpoint}" if checkpoint else "")
        raise DataError(f"{spec}: no such file or folder (and not a 'package.module:factory' import string)")
    return as_generative_model(obj), type(obj).__name__
