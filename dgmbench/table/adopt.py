"""``dgmbench table --adopt CKPT``: let a checkpoint trained elsewhere stand in for a table job.

A model trained with ``python -m baselines train FAMILY --preset P --seed S`` (or on another
machine) is the model ``dgmbench table`` would train for (FAMILY, P, S) when its dataset and
dataset options, its model config and its optimisation settings equal the preset's. Adoption
checks exactly that, copies the file to the job's cache path and logs an ``adopt`` event; the
table then treats it as its own checkpoint (a finished one is not retrained; an unfinished one
is resumed to the preset's steps). What the checkpoint cannot prove is the code it was trained with, so the Record and
the leaderboard name the adopted file, and the table's command (which omits ``--adopt``)
retrains it from scratch on a machine without it.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

import torch

from baselines import checkpoint as baseline_checkpoint
from baselines.registry import family_module
from baselines.train import TrainConfig

from ..errors import UsageError
from ..results import sha256_file

# Settings that change neither the weights nor the optimiser's path.
IGNORED_TRAIN_KEYS = ("ckpt_every", "log_every", "device")


def model_config(state: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """The config a model built from the preset holds (families fill in their defaults), as the
    trainer compares it on resume."""
    mcfg = spec.get("model", {})
    shape = tuple(state.get("data_shape") or ())
    if not shape:
        return dict(mcfg)
    build = family_module(state["family"]).build_model
    classes = state.get("num_classes") if mcfg.get("conditional") else None
    try:
        with torch.device("meta"):  # the config only: no memory for the weights
            return dict(build(mcfg, shape, classes).config)
    except Exception:  # a family whose constructor computes on tensors: build it for real
        return dict(build(mcfg, shape, classes).config)


def train_differences(state: dict[str, Any], spec: dict[str, Any], seed: int) -> list[str]:
    """What differs between a checkpoint and the (preset ``spec``, ``seed``) a table job trains."""
    diffs = []
    if state.get("dataset") != spec.get("dataset"):
        diffs.append(f"dataset {state.get('dataset')!r} != {spec.get('dataset')!r}")
    have_options, want_options = state.get("dataset_kwargs") or {}, spec.get("dataset_kwargs") or {}
    if have_options != want_options:
        diffs.append(f"dataset options {have_options!r} != {want_options!r}")
    have_cfg, want_cfg = state.get("config") or {}, model_config(state, spec)
    if have_cfg != want_cfg:
        changed = [k for k in sorted(set(have_cfg) | set(want_cfg)) if have_cfg.get(k) != want_cfg.get(k)]
        diffs.append(f"model config differs in {', '.join(changed)}")
    want = vars(TrainConfig.from_dict({**spec.get("train", {}), "seed": seed}))
    have = dict(state.get("train_config") or {})
    if "betas" in have:
        have["betas"] = tuple(have["betas"])
    for k, v in want.items():
        if k not in IGNORED_TRAIN_KEYS and have.get(k) != v:
            diffs.append(f"train {k} {have.get(k)!r} != {v!r}")
    return diffs


def adopt_checkpoints(paths: list[str], jobs: list[Any], log: Any, preset: str) -> dict[str, str]:
    """Copy each checkpoint in ``paths`` to the cache path of the job it matches.

    A checkpoint matches the job of its family and training seed; any other difference from
    that job's preset is a :class:`UsageError` naming it. Returns ``{job key: source path}``
    for the checkpoints copied (a job that already has a finished model keeps it).
    """
    adopted: dict[str, str] = {}
    for path in paths:
        if not os.path.isfile(path):
            raise UsageError(f"--adopt {path}: no such file")
        state = baseline_checkpoint.read_checkpoint(path)  # a corrupt file is a clear CheckpointError
        family, seed = state.get("family"), int((state.get("train_config") or {}).get("seed", 0))
        job = next((j for j in jobs if j.family == family and j.seed == seed), None)
        if job is None:
            have = sorted({(j.family, j.seed) for j in jobs})
            raise UsageError(f"--adopt {path}: a {family} checkpoint of seed {seed}, but this table runs "
                             f"{', '.join(f'{f} seed {s}' for f, s in have)}; pick --families/--seeds to include it")
        diffs = train_differences(state, job.spec, job.seed)
        if diffs:
            raise UsageError(f"--adopt {path} cannot stand in for {family} seed {seed} of preset '{preset}': "
                             + "; ".join(diffs))
        if job.key in adopted:
            raise UsageError(f"--adopt: {adopted[job.key]} and {path} are both {family} seed {seed}; give one")
        if log.find("train_done", job.key) is not None and os.path.exists(job.checkpoint):
            print(f"dgmbench table: {family} seed {seed} is already trained ({job.checkpoint}); not adopting {path}",
                  file=sys.stderr)
            continue
        os.makedirs(os.path.dirname(os.path.abspath(job.checkpoint)), exist_ok=True)
        tmp = job.checkpoint + ".adopt.tmp"
        shutil.copyfile(path, tmp)
        os.replace(tmp, job.checkpoint)
        log.append({"event": "adopt", "key": job.key, "family": family, "seed": seed, "source": os.path.abspath(path),
                    "source_sha256": sha256_file(path), "source_step": int(state.get("step", 0)),
                    "checkpoint": job.checkpoint})
        adopted[job.key] = path
    return adopted
