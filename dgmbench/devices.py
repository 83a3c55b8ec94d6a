"""Devices: the one place that turns 'auto'/'cpu'/'cuda:N' into a torch.device, finds the
device a model lives on, and synchronises a device before a timing."""

from __future__ import annotations

from typing import Any

import torch

from .errors import UsageError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' (or None) -> CUDA when available, else CPU; an unknown or unavailable device is a UsageError."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UsageError(f"unknown device '{device}'; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device '{device}' was asked for but CUDA is not available; use --device cpu")
    return dev


def model_device(model: Any, default: str | torch.device | None = None) -> torch.device:
    """Where ``model`` runs: its first parameter's device (nn.Module), its ``device``
    attribute, else ``default`` (else CPU)."""
    if isinstance(model, torch.nn.Module):
        try:
            return next(model.parameters()).device
        except StopIteration:
            pass
    d = getattr(model, "device", None)
    if isinstance(d, torch.device | str):
        return torch.device(d)
    return torch.device(default) if default not in (None, "auto") else torch.device("cpu")


def synchronize(dev: torch.device) -> None:
    """Wait for queued GPU work (a no-op on CPU), so a timer measures finished work."""
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
