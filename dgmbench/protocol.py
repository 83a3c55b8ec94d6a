"""The ``GenerativeModel`` protocol and adapters that turn anything into one.

A model samples float tensors in the dataset's convention ([0, 1] images (N, C, H, W) or
(N, 2) points). Optionally it reports ``log_likelihood(x) -> (nats per sample, kind)``
with kind in ``exact`` / ``bound`` / ``estimate`` (see :mod:`dgmbench.units` for the 8-bit
convention). ``nfe_per_sample`` counts network evaluations per sample.

Adapters:
- :class:`CallableModel`: a plain function ``z -> x`` with a Gaussian latent.
- :func:`load_model`: an import string ``package.module:factory`` (+ optional checkpoint),
  or a dgmbench baseline checkpoint file.
- :class:`SamplesModel`: replays a fixed sample set (npz/pt file or image folder).
"""

from __future__ import annotations

import importlib
import os
import pickle
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch

from .errors import DataError, ModelError, UsageError


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
        from .data.files import load_samples_path

        split = load_samples_path(str(path))
        return cls(split.data, split.labels, name=os.path.basename(str(path).rstrip("/")), source=str(path))


def _import_object(spec: str) -> Any:
    if ":" not in spec:
        raise UsageError(f"model spec '{spec}' must look like 'package.module:factory'")
    mod_name, attr = spec.split(":", 1)
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise ModelError(f"cannot import module '{mod_name}' for model spec '{spec}': {e}") from e
    obj = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ModelError(f"module '{mod_name}' has no attribute '{attr}' (model spec '{spec}')")
        obj = getattr(obj, part)
    return obj


def as_generative_model(obj: Any, *, data_shape: tuple[int, ...] | None = None, latent_shape: tuple[int, ...] | None = None) -> GenerativeModel:
    """Return ``obj`` if it already follows the protocol; wrap a ``z -> x`` module or function otherwise."""
    if callable(getattr(obj, "sample", None)) and hasattr(obj, "data_shape"):
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


def load_model(spec: str, checkpoint: str | None = None, *, device: str | None = None) -> GenerativeModel:
    """Load a model from ``package.module:factory`` (+ checkpoint), a baseline checkpoint, or samples.

    - ``spec`` ending in ``.pt``/``.ckpt`` that is a dgmbench baseline checkpoint: loaded by baselines.
    - ``package.module:factory``: ``factory(checkpoint)`` when a checkpoint is given, else ``factory()``.
    """
    if checkpoint is None and os.path.exists(spec) and not os.path.isdir(spec):
        from baselines.checkpoint import is_baseline_checkpoint, load_baseline

        if is_baseline_checkpoint(spec):
            return load_baseline(spec, device=device)
        raise ModelError(
            f"{spec} is not a dgmbench baseline checkpoint; for your own model give 'package.module:factory' "
            "and the checkpoint separately, or score a samples file with --samples"
        )
    if checkpoint is not None and not os.path.exists(checkpoint):
        raise ModelError(f"checkpoint {checkpoint} does not exist (model spec '{spec}')")
    factory = _import_object(spec)
    try:
        obj = factory(checkpoint) if checkpoint is not None else factory()
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, EOFError, pickle.UnpicklingError) as e:
        raise ModelError(f"model factory '{spec}' failed{' on checkpoint ' + checkpoint if checkpoint else ''}: {e}") from e
    return as_generative_model(obj)
