"""Sampling: seeded chunked sampling of a model, and its sampler options.

Seeded chunks. ``n`` samples are drawn in chunks of :data:`SAMPLE_CHUNK`; chunk i uses its
own generator seeded from (seed, i) (:func:`dgmbench.distributed.chunk_generator`) and is
drawn in calls of at most ``batch_size``, so the samples do not depend on how many processes
share the work. Batches stay on the model's device (the evaluator validates each batch once
and the feature pass takes it from there). A :class:`~dgmbench.protocol.SamplesModel` is
replayed by index.

Sampler options (``--sampling key=value``). A model takes them when it has
``configure_sampling(**options)`` (the diffusion baseline: sampler, steps, eta, guidance;
the score baseline: levels, steps_per_level, step_lr, denoise; the EBM: sample_init,
sample_steps). Values are parsed as JSON scalars where they can be (``50`` -> int, ``0.5``
-> float, ``true`` -> bool, ``null`` -> None), otherwise kept as strings (``sampler=ddim``).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .devices import model_device
from .distributed import Chunk, chunk_generator
from .errors import ModelError, UsageError, model_boundary
from .protocol import SamplesModel, model_name
from .validation import as_tensor

SAMPLE_CHUNK = 1000  # samples per seeded chunk: chunk i uses distributed.chunk_generator(seed, i)


def _scalar(text: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    if isinstance(value, dict | list):
        raise UsageError(f"sampling option values must be numbers, true/false or words, got '{text}'")
    return value


def parse_sampling_options(items: Iterable[str] | None) -> dict[str, Any]:
    """``["sampler=ddim", "steps=50", "eta=0"]`` (or comma-joined ``"sampler=ddim,steps=50"``) -> a dict."""
    out: dict[str, Any] = {}
    for item in items or ():
        for part in str(item).split(","):
            part = part.strip()
            if not part:
                continue
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or not key or not value.strip():
                raise UsageError(f"--sampling takes key=value pairs (e.g. --sampling sampler=ddim,steps=50), got '{part}'")
            if key in out:
                raise UsageError(f"sampling option '{key}' was given twice")
            out[key] = _scalar(value.strip())
    return out


def format_sampling_options(options: dict[str, Any]) -> str:
    """The inverse of :func:`parse_sampling_options`: ``{"sampler": "ddim", "steps": 50}`` ->
    ``"sampler=ddim,steps=50"`` (booleans and None as JSON, so the text parses back to the same dict)."""
    return ",".join(f"{k}={json.dumps(v) if v is None or isinstance(v, bool) else v}" for k, v in options.items())


def sampling_option_names(model: Any) -> list[str]:
    """The keyword options ``model.configure_sampling`` accepts (empty when it has none)."""
    fn = getattr(model, "configure_sampling", None)
    if fn is None:
        return []
    params = inspect.signature(fn).parameters.values()
    return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def apply_sampling_options(model: Any, options: dict[str, Any]) -> Any:
    """Configure ``model``'s sampler with ``options`` (in place) and return it.

    Raises UsageError when the model takes no sampling options or an option is unknown; the
    model's own checks (e.g. DDIM steps within 1..T) raise theirs.
    """
    if not options:
        return model
    names = sampling_option_names(model)
    name = getattr(model, "name", None) or type(model).__name__
    if not names:
        raise UsageError(f"{name} takes no sampling options (it has no configure_sampling); "
                         f"drop --sampling {','.join(f'{k}=...' for k in options)}")
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise UsageError(f"unknown sampling option(s) {', '.join(unknown)} for {name}; it takes: {', '.join(names)}")
    try:
        model.configure_sampling(**options)
    except (ValueError, TypeError) as e:  # the model's own check of a value, e.g. steps=abc
        given = ",".join(f"{k}={v}" for k, v in options.items())
        raise UsageError(f"--sampling {given}: {name} rejects it ({type(e).__name__}: {e})") from e
    return model


def describe_sampler(model: Any) -> dict[str, Any]:
    """The sampling settings a model reports (those of its ``configure_sampling`` it exposes as attributes)."""
    out = {k: getattr(model, k) for k in sampling_option_names(model) if hasattr(model, k)}
    nfe = getattr(model, "nfe_per_sample", None)
    if nfe is not None:
        out["nfe_per_sample"] = float(nfe)
    return out


def sample_chunks(model: Any, chunks: list[Chunk], *, seed: int, batch_size: int, labels: torch.Tensor | None,
                  progress: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Yield (samples, labels) for this process's ``chunks``, in order (module docstring).

    Samples come back as the model made them (device and dtype); a non-tensor or a wrong
    count is a ModelError naming the model.
    """
    total = sum(len(c) for c in chunks)
    pbar = tqdm(total=total, desc="sampling + features", unit="sample", disable=not progress, leave=False)
    replay = isinstance(model, SamplesModel)
    dev = None if replay else model_device(model)
    try:
        for chunk in chunks:
            if replay and chunk.stop > len(model):
                model.sample(chunk.stop)  # raises the SamplesModel's clear error
            gen = chunk_generator(seed, chunk.index)
            for s in range(chunk.start, chunk.stop, batch_size):
                m = min(batch_size, chunk.stop - s)
                if replay:
                    lab = None if model.labels is None else model.labels[s:s + m]
                    pbar.update(m)
                    yield model.samples[s:s + m], lab
                    continue
                lab = None if labels is None else labels[s:s + m]
                with torch.no_grad(), model_boundary(f"model '{model_name(model)}': sample({m})"):
                    x = model.sample(m, generator=gen, labels=None if lab is None else lab.to(dev))
                if not isinstance(x, torch.Tensor | np.ndarray):
                    raise ModelError(f"{model_name(model)}.sample returned a {type(x).__name__}, not a tensor")
                if x.shape[0] != m:
                    raise ModelError(f"{model_name(model)}.sample({m}) returned {x.shape[0]} samples")
                pbar.update(m)
                yield as_tensor(x), lab
    finally:
        pbar.close()
