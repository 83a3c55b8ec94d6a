"""The baselines' checkpoint loader, registered with dgmbench through the entry point
``dgmbench.loaders: baselines = baselines.loader:LOADER`` (see pyproject.toml), so the
harness loads baseline checkpoints without importing this package by name."""

from __future__ import annotations

from typing import Any

from dgmbench.protocol import ModelLoader

from .checkpoint import is_baseline_checkpoint, load_baseline


def load(path: str, *, device: str | None = None) -> Any | None:
    """The baseline model in ``path`` (EMA weights when present), or None when it is no baseline checkpoint."""
    if not is_baseline_checkpoint(path):
        return None
    return load_baseline(path, device=device)


LOADER = ModelLoader(name="dgmbench-baseline", load=load,
                     description="checkpoints written by python -m baselines train / dgmbench table")
