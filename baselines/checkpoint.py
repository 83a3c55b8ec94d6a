"""Checkpoint format shared by every family: save atomically, load with clear errors."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import torch

from dgmbench.errors import ModelError

FORMAT = "dgmbench-baseline"
FORMAT_VERSION = 1


def save_checkpoint(path: str, state: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename: a kill never leaves half a file."""
    state = {"format": FORMAT, "version": FORMAT_VERSION, **state}
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".pt")
    try:
        # save through the file object: torch.save(state, PATH) names the zip's root folder after
        # the (random) temporary file name, so equal states would give different bytes and hashes
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_checkpoint(path: str, *, family: str | None = None) -> dict[str, Any]:
    """Load and check a checkpoint: format, version and (when given) family."""
    if not os.path.exists(path):
        raise ModelError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - torch raises many types for corrupt files
        raise ModelError(f"checkpoint {path} is corrupt or not a torch file ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ModelError(f"{path} is not a dgmbench baseline checkpoint (no '{FORMAT}' format tag)")
    if state.get("version") != FORMAT_VERSION:
        raise ModelError(
            f"{path} has checkpoint format version {state.get('version')}, this dgmbench reads version {FORMAT_VERSION}; "
            "retrain or convert it with the dgmbench version that wrote it"
        )
    if family is not None and state.get("family") != family:
        raise ModelError(f"{path} is a '{state.get('family')}' checkpoint, not '{family}'")
    return state


def is_baseline_checkpoint(path: str) -> bool:
    try:
        read_checkpoint(path)
    except ModelError:
        return False
    return True


def build_from_state(state: dict[str, Any]):
    from .registry import FAMILIES, family_module

    if state.get("family") not in FAMILIES:
        raise ModelError(f"checkpoint names an unknown baseline family {state.get('family')!r} "
                         f"(known: {', '.join(FAMILIES)})")
    try:
        mod = family_module(state["family"])
    except ImportError as e:
        raise ModelError(f"the '{state['family']}' baselines cannot be imported ({e}); "
                         "is this dgmbench version complete?") from e
    model = mod.build_model(state["config"], tuple(state["data_shape"]), state.get("num_classes"))
    return model


def load_baseline(path: str, *, device: str | None = None, use_ema: bool = True):
    """Rebuild the model from a checkpoint (EMA weights when present) in eval mode.

    A checkpoint of a diverged run (see :mod:`baselines.train`) loads with a warning and
    ``model.diverged`` set to ``{"step", "loss"}``; its weights are the last good checkpoint's.
    """
    state = read_checkpoint(path)
    if "family" not in state or "config" not in state or "model" not in state:
        raise ModelError(f"{path} is a dgmbench checkpoint without a model (keys: {sorted(state)})")
    model = build_from_state(state)
    weights = state.get("ema") if use_ema and state.get("ema") else state["model"]
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise ModelError(f"checkpoint {path} does not match the {state['family']} model it names: {e}") from e
    model.name = state.get("name") or f"{state['family']}-{state.get('preset', 'custom')}"
    model.checkpoint_path = path
    model.train_history = state.get("history", [])
    model.diverged = state.get("diverged")
    if model.diverged:
        import warnings

        warnings.warn(f"{path}: this run diverged at step {int(model.diverged['step'])} "
                      f"(loss {model.diverged['loss']}); loaded its last good checkpoint", stacklevel=2)
    if device:
        model.to(device)
    return model.eval()
