"""The baselines' checkpoint loader, registered with dgmbench through the entry point
``dgmbench.loaders: baselines = baselines.loader:LOADER`` (see pyproject.toml), so the
harness loads baseline checkpoints without importing this package by name."""

from __future__ import annotations

from typing import Any

from dgmbench.errors import ModelError
from dgmbench.protocol import ModelLoader

from .checkpoint import model_from_state, read_checkpoint, read_if_checkpoint


def load(path: str, *, device: str | None = None) -> Any | None:
    """The baseline model in ``path`` (EMA weights when present), or None when it is no baseline
    checkpoint. A file that needs Python objects to unpickle is refused (ModelError), never run."""
    state = read_if_checkpoint(path)
    return None if state is None else model_from_state(state, path, device=device)


def why_not(path: str) -> str:
    """Why ``path`` is not a baseline checkpoint (one line, with what --model accepts)."""
    try:
        read_checkpoint(path)
    except ModelError as e:
        return str(e)
    return f"{path} is a dgmbench baseline checkpoint"


LOADER = ModelLoader(name="dgmbench-baseline", load=load, why_not=why_not,
                     description="checkpoints written by python -m baselines train / dgmbench table")
