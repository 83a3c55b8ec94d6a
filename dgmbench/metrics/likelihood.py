"""Negative log-likelihood (nats) and bits per dimension from a model's ``log_likelihood``.

A model reports ``log_likelihood(x) -> (log p per sample in nats, kind)`` with kind in
``exact`` / ``bound`` / ``estimate`` (see :mod:`dgmbench.units`: for 8-bit images the value
is the log-probability of the discrete image, i.e. the log-density on the [0, 256)^D
scale). This module averages it over a data split:

- ``nll``: mean negative log-likelihood in nats per sample;
- ``bpd``: nll / (D ln 2) (images only - bits/dim is defined on 8-bit data; a model whose
  likelihood is that of a coarser grid (``likelihood_levels``, e.g. a 17-level PixelCNN)
  gets bits/dim of that grid, with the grid in the unit, the note and ``extra['grid_levels']``);

each with its standard error (std / sqrt(n)) and a normal 95% interval, and the model's
kind carried into the MetricValue. ``extra["median"]`` is the median over the data items of
the per-item value (numpy's median: the mean of the two middle values for an even n): a
model that puts near-zero density on a few items has a mean dominated by them, the median
is not. A ``bound`` (ELBO, VLB) is an upper bound on the NLL and
is labelled as such; it is never reported as ``exact``. Randomness inside
``log_likelihood`` (dequantisation noise, importance samples, trace estimators) is seeded
from ``seed`` through ``torch.random.fork_rng``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch

from ..errors import DataError, ModelError, model_boundary
from ..protocol import likelihood_levels
from ..results import MetricValue
from ..units import EIGHT_BIT_LEVELS, LIKELIHOOD_KINDS, bits_per_dim, bpd_unit
from .shared_stderr import add_shared_stderr, model_shared_stderr


def _call(model, x: torch.Tensor) -> tuple[torch.Tensor, str]:
    with model_boundary(f"model '{getattr(model, 'name', None) or type(model).__name__}': log_likelihood()"):
        out = model.log_likelihood(x)
    if isinstance(out, tuple):
        if len(out) != 2:
            raise ModelError(f"{type(model).__name__}.log_likelihood must return (nats per sample, kind), got a {len(out)}-tuple")
        ll, kind = out
    else:
        ll, kind = out, getattr(model, "likelihood_kind", None)
    if kind not in LIKELIHOOD_KINDS:
        raise ModelError(f"{type(model).__name__}.log_likelihood returned kind {kind!r}; expected one of {LIKELIHOOD_KINDS}")
    ll = torch.as_tensor(ll).detach().to("cpu", torch.float64).reshape(-1)
    if ll.shape[0] != x.shape[0]:
        raise ModelError(f"{type(model).__name__}.log_likelihood returned {ll.shape[0]} values for {x.shape[0]} inputs; "
                         "it must return one log-likelihood per sample")
    return ll, kind


def log_likelihoods(model, data: torch.Tensor, *, batch_size: int = 256, seed: int = 0,
                    device: str | torch.device | None = None, progress: bool = False) -> tuple[torch.Tensor, str]:
    """Per-sample log-likelihoods (nats, float64) of ``data`` under ``model`` and their kind."""
    if not callable(getattr(model, "log_likelihood", None)):
        raise ModelError(f"{getattr(model, 'name', type(model).__name__)} has no log_likelihood(); NLL/bpd need one")
    if device is None:
        device = getattr(model, "device", None)
        device = device if isinstance(device, torch.device | str) else "cpu"
    vals, kinds = [], set()
    from tqdm.auto import tqdm

    devices = [torch.device(device).index] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed)
        for blk in tqdm(data.split(batch_size), desc="log-likelihood", disable=not progress, leave=False):
            ll, kind = _call(model, blk.to(device))
            vals.append(ll)
            kinds.add(kind)
    if len(kinds) != 1:
        raise ModelError(f"log_likelihood returned different kinds across batches: {sorted(kinds)}")
    ll = torch.cat(vals)
    if not bool(torch.isfinite(ll).all()):
        bad = int((~torch.isfinite(ll)).sum())
        raise ModelError(f"log_likelihood returned {bad} non-finite values of {ll.shape[0]}; check the model")
    return ll, kinds.pop()


def likelihood_metric_values(ll: torch.Tensor, kind: str, *, num_dims: int | None, z: float = 1.96,
                             grid_levels: int = EIGHT_BIT_LEVELS, **mv_kwargs) -> list[MetricValue]:
    """``nll`` (nats) and, when ``num_dims`` is given (images), ``bpd`` from log-likelihoods of images
    on a grid of ``grid_levels`` values per sub-pixel (256: 8-bit bits/dim)."""
    ll = torch.as_tensor(ll, dtype=torch.float64).reshape(-1)
    n = ll.shape[0]
    if n == 0:
        raise DataError("no data to compute a likelihood on")
    nll = float(-ll.mean())
    se = float(ll.std() / math.sqrt(n)) if n > 1 else float("nan")
    med = float(np.median(-ll.numpy()))
    out = [MetricValue(name="nll", value=nll, n=n, std=se, ci_low=nll - z * se, ci_high=nll + z * se, kind=kind,
                       unit="nats", higher_is_better=False,
                       extra={"std_is": "standard error of the mean", "median": med}, **mv_kwargs)]
    if num_dims:
        b, bse = bits_per_dim(nll, num_dims), bits_per_dim(se, num_dims)
        note = None
        if grid_levels != EIGHT_BIT_LEVELS:
            note = (f"bits/dim of the {grid_levels}-level image (data read as round(x * {grid_levels - 1})), not of "
                    f"the 8-bit image: not comparable with 8-bit bits/dim (uniform model: log2 {grid_levels})")
        out.append(MetricValue(name="bpd", value=b, n=n, std=bse, ci_low=b - z * bse, ci_high=b + z * bse, kind=kind,
                               unit=bpd_unit(grid_levels), higher_is_better=False, note=note,
                               extra={"num_dims": num_dims, "grid_levels": grid_levels,
                                      "std_is": "standard error of the mean",
                                      "median": bits_per_dim(med, num_dims)}, **mv_kwargs))
    return out


def likelihood_metrics(model, data: torch.Tensor, *, images: bool | None = None, batch_size: int = 256, seed: int = 0,
                       device: str | torch.device | None = None, progress: bool = False) -> list[MetricValue]:
    """NLL and (for images) bits/dim of ``model`` on ``data``; see the module docstring."""
    images = data.ndim == 4 if images is None else images
    ll, kind = log_likelihoods(model, data, batch_size=batch_size, seed=seed, device=device, progress=progress)
    num_dims = int(data[0].numel()) if images else None
    levels = likelihood_levels(model) if images else EIGHT_BIT_LEVELS
    # after log_likelihoods: an EBM estimates its log Z lazily; its error is shared by every item
    mvs = add_shared_stderr(likelihood_metric_values(ll, kind, num_dims=num_dims, grid_levels=levels),
                            model_shared_stderr(model))
    caveat = getattr(model, "likelihood_note", None)  # e.g. an EBM whose AIS weights were degenerate
    if caveat:
        mvs = [replace(mv, note="; ".join(x for x in (mv.note, str(caveat)) if x)) for mv in mvs]
    return mvs
