"""Checkpoint format shared by every family: save atomically, load safely with clear errors.

Safety: a checkpoint is only ever read with ``torch.load(..., weights_only=True)``, PyTorch's
restricted unpickler, which rebuilds tensors and plain containers (dict, list, tuple, str,
int, float, bool, None) and refuses every other Python object. dgmbench adds nothing to its
allow-list: a file that needs any other global (a ``__reduce__`` payload, a numpy array, a
dataclass) is refused before anything in it runs, and reported in one line as not a
dgmbench checkpoint (:class:`~dgmbench.errors.ModelError`, exit 3).

Format versions: 1 (dgmbench before the safe loader) and 2 hold the same keys. Version 2
is checked at write time to hold only tensors and plain containers, so every file written
here loads under ``weights_only=True``. Version-1 files written by the trainer hold only
such values too and load unchanged (``tests/test_checkpoint_safety.py`` keeps a frozen copy
of the version-1 writer); a version-1 file with any other object is refused like any other
unsafe pickle.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
import zipfile
from collections import OrderedDict
from typing import Any, Literal

import torch

from dgmbench.errors import ModelError
from dgmbench.results import atomic_writer, sha256_file

from .registry import FAMILIES, family_module

FORMAT = "dgmbench-baseline"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
MODEL_HINT = ("--model takes a checkpoint written by 'python -m baselines train' or 'dgmbench table', or "
              "'package.module:factory' (with --checkpoint for your own model's weights); sample files go to --samples")

CheckpointKind = Literal["dgmbench", "other", "unreadable"]
_SCALARS = (str, int, float, bool, type(None), torch.Tensor, torch.dtype, torch.device, torch.Size)


def _check_plain(obj: Any, where: str) -> None:
    """TypeError unless ``obj`` is tensors and plain containers only (what ``weights_only=True`` loads)."""
    if isinstance(obj, _SCALARS):
        return
    if type(obj) in (dict, OrderedDict):
        for k, v in obj.items():
            if type(k) not in (str, int):
                raise TypeError(f"checkpoint key {k!r} at {where} is a {type(k).__name__}; use str or int keys")
            _check_plain(v, f"{where}[{k!r}]")
        return
    if type(obj) in (list, tuple):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    raise TypeError(f"checkpoint value {where} is a {type(obj).__module__}.{type(obj).__qualname__}; a dgmbench "
                    "checkpoint holds only tensors, dicts, lists, tuples, str, int, float, bool and None")


def save_checkpoint(path: str, state: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename: a kill never leaves half a file.

    The state must hold only tensors and plain containers (TypeError otherwise, before writing).
    """
    state = {"format": FORMAT, "version": FORMAT_VERSION, **state}
    _check_plain(state, "state")
    # save through the file object: torch.save(state, PATH) names the zip's root folder after
    # the (random) temporary file name, so equal states would give different bytes and hashes
    with atomic_writer(path, "wb") as f:
        torch.save(state, f)


def strip_optimizer_state(src: str, dst: str) -> tuple[int, int]:
    """Write ``dst``: the checkpoint ``src`` without its optimiser state, for distributing a
    *finished* model (the state is about 2/3 of an Adam-trained file). Evaluation, sampling and
    ``dgmbench table --adopt`` read it as before; resuming training from it is refused. An
    unfinished checkpoint is a ModelError. Returns the two file sizes in bytes."""
    state = read_checkpoint(src)
    steps = int((state.get("train_config") or {}).get("steps", 0))
    if int(state.get("step", 0)) < steps:
        raise ModelError(f"{src} stopped at step {state.get('step')} of {steps}: only a finished model can be "
                         "stripped of its optimiser state (it could not resume)")
    state = {k: v for k, v in state.items() if k not in ("format", "version")}
    state["optimizers"] = {}
    save_checkpoint(dst, state)
    return os.path.getsize(src), os.path.getsize(dst)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _is_pickle(path: str) -> bool:
    """A torch zip archive or a raw pickle stream (PROTO opcode first), judged from the bytes only."""
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as f:
        return f.read(1) == b"\x80"


def _safe_load(path: str) -> tuple[str, Any]:
    """``("ok", object)``, ``("unsafe", reason)`` or ``("unreadable", reason)``; never unpickles an object."""
    try:
        with warnings.catch_warnings():  # torch's note on an unusual pickle protocol: the verdict below says it
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return "ok", torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for corrupt files
        text = str(e)
        refused = isinstance(e, pickle.UnpicklingError) or "Weights only load failed" in text
        glob = re.search(r"GLOBAL ([\w.]+)", text)
        if refused and glob:
            return "unsafe", (f"it is a pickle that needs the Python object '{glob.group(1)}' to load, and dgmbench "
                              "never unpickles objects from a file (nothing in it ran)")
        if refused and _is_pickle(path):
            return "unsafe", (f"it is a pickle that the safe loader refuses ({_reason(e)}); dgmbench never unpickles "
                              "objects from a file (nothing in it ran)")
        if os.path.getsize(path) == 0:
            return "unreadable", "it is corrupt, truncated or not a torch file (the file is empty)"
        return "unreadable", f"it is corrupt, truncated or not a torch file ({type(e).__name__}: {_reason(e)})"


def _reason(e: Exception) -> str:
    """The informative first sentence of torch's error (never its advice to turn the safe loader off)."""
    text = str(e)
    detail = re.search(r"WeightsUnpickler error:\s*(.+)", text)
    line = _first_line(detail.group(1) if detail else text)
    return line.split(". ")[0].rstrip(".")[:200] or type(e).__name__


def _describe(obj: Any) -> str:
    if isinstance(obj, torch.Tensor):
        return f"a tensor of shape {tuple(obj.shape)}"
    if isinstance(obj, dict):
        keys = [str(k) for k in list(obj)[:5]]
        return f"a dict with keys {keys}{' ...' if len(obj) > 5 else ''}"
    return f"a {type(obj).__name__}"


def checkpoint_kind(path: str | os.PathLike) -> CheckpointKind:
    """What a file is, read safely: ``"dgmbench"`` (has the format tag; any version),
    ``"other"`` (tensors/containers but not a dgmbench checkpoint: a state dict, maybe samples),
    ``"unreadable"`` (corrupt, truncated, empty or not a torch file).

    A pickle that needs Python objects to load is never unpickled: :class:`ModelError`.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelError(f"checkpoint {path} does not exist" if not os.path.exists(path) else f"{path} is not a file")
    status, obj = _safe_load(path)
    if status == "unsafe":
        raise ModelError(f"{path} is not a dgmbench baseline checkpoint: {obj}. {MODEL_HINT}")
    if status == "unreadable":
        return "unreadable"
    return "dgmbench" if isinstance(obj, dict) and obj.get("format") == FORMAT else "other"


def is_baseline_checkpoint(path: str | os.PathLike) -> bool:
    """True for a dgmbench checkpoint, False for another safe torch file or a non-torch file;
    :class:`ModelError` for a pickle that needs Python objects (see :func:`checkpoint_kind`)."""
    return checkpoint_kind(path) == "dgmbench"


def checkpoint_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of the checkpoint file's bytes (for Records: which exact weights were scored)."""
    if not os.path.isfile(path):
        raise ModelError(f"checkpoint {os.fspath(path)} does not exist")
    return sha256_file(path)


def read_checkpoint(path: str, *, family: str | None = None) -> dict[str, Any]:
    """Load and check a checkpoint safely: format, version and (when given) family.

    Anything else (a plain state dict, a tensor, random bytes, a pickle with code) is a
    one-line :class:`ModelError` saying it is not a dgmbench checkpoint; nothing in it runs.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelError(f"checkpoint {path} does not exist")
    if not os.path.isfile(path):
        raise ModelError(f"{path} is not a dgmbench baseline checkpoint: it is a folder. {MODEL_HINT}")
    status, state = _safe_load(path)
    if status != "ok":
        raise ModelError(f"{path} is not a dgmbench baseline checkpoint: {state}. {MODEL_HINT}")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ModelError(f"{path} is not a dgmbench baseline checkpoint: it holds {_describe(state)} without the "
                         f"'{FORMAT}' format tag. {MODEL_HINT}")
    if state.get("version") not in READABLE_VERSIONS:
        raise ModelError(
            f"{path} has checkpoint format version {state.get('version')}, this dgmbench reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}; retrain it, or use the dgmbench version that wrote it"
        )
    if family is not None and state.get("family") != family:
        raise ModelError(f"{path} is a '{state.get('family')}' checkpoint, not '{family}'")
    return state


def read_if_checkpoint(path: str) -> dict[str, Any] | None:
    """The checked state of a dgmbench checkpoint, or None for another safe torch file or a
    non-torch file; a pickle that needs Python objects is a ModelError (never unpickled)."""
    if checkpoint_kind(path) != "dgmbench":
        return None
    return read_checkpoint(path)


def build_from_state(state: dict[str, Any]):
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
    return model_from_state(read_checkpoint(path), path, device=device, use_ema=use_ema)


def model_from_state(state: dict[str, Any], path: str, *, device: str | None = None, use_ema: bool = True):
    """The model of a checked checkpoint ``state`` (from :func:`read_checkpoint`) read from ``path``."""
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
        warnings.warn(f"{path}: this run diverged at step {int(model.diverged['step'])} "
                      f"(loss {model.diverged['loss']}); loaded its last good checkpoint", stacklevel=2)
    if device:
        model.to(device)
    return model.eval()
