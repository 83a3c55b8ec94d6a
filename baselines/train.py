"""The shared trainer: seed, optimiser(s), EMA, gradient clipping, checkpoints with
resume after a kill, tqdm progress, CPU/GPU selection, deterministic on CPU.

Resuming restores model, EMA, optimisers, the global torch RNG and the data-order
generator, so a run killed after a checkpoint and resumed follows exactly the loss
trajectory of an uninterrupted run (on CPU).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from dgmbench.data import DataSplit, get_dataset

from .base import BaselineModel
from .checkpoint import read_checkpoint, save_checkpoint


@dataclass
class TrainConfig:
    """Optimisation settings shared by every family (a preset's ``train`` entry)."""

    steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    ema_decay: float | None = None
    ckpt_every: int = 250
    log_every: int = 25
    seed: int = 0
    device: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            from dgmbench.errors import UsageError

            raise UsageError(f"unknown train settings {sorted(unknown)}; known: {sorted(known)}")
        d = dict(d)
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)


@dataclass
class TrainResult:
    model: BaselineModel
    history: list[dict[str, float]]
    checkpoint: str | None
    step: int
    diverged: bool
    wall_time_s: float


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class EMA:
    """Exponential moving average of a model's parameters and buffers."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for s, p in zip(self.shadow.parameters(), model.parameters()):
            s.lerp_(p.detach(), 1.0 - self.decay)
        for s, b in zip(self.shadow.buffers(), model.buffers()):
            s.copy_(b)

    def state_dict(self) -> dict:
        return self.shadow.state_dict()


class Trainer:
    """Train ``model`` on ``data`` with ``cfg``; checkpoints go to ``checkpoint`` when given."""

    def __init__(self, model: BaselineModel, data: DataSplit, cfg: TrainConfig, *, checkpoint: str | None = None,
                 family: str | None = None, preset: str | None = None, dataset: str | None = None,
                 progress: bool = True):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.model = model.to(self.device)
        self.data = data
        self.checkpoint = checkpoint
        self.family = family or model.family
        self.preset = preset
        self.dataset = dataset or data.name
        self.progress = progress
        self.history: list[dict[str, float]] = []
        self.step = 0
        torch.manual_seed(cfg.seed)
        self.data_gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.optimizers = model.configure_optimizers(cfg)
        self.ema = EMA(model, cfg.ema_decay) if cfg.ema_decay else None
        self.x = data.data
        self.y = data.labels if model.num_classes else None

    # --- checkpoints ---------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "family": self.family, "preset": self.preset, "dataset": self.dataset,
            "config": self.model.config, "train_config": dataclasses.asdict(self.cfg),
            "data_shape": list(self.model.data_shape), "num_classes": self.model.num_classes,
            "step": self.step, "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema else None,
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "rng": {"torch": torch.get_rng_state(), "data": self.data_gen.get_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
            "history": self.history,
            "name": f"{self.family}-{self.preset or 'custom'}",
        }

    def save(self) -> None:
        if self.checkpoint:
            save_checkpoint(self.checkpoint, self.state())

    def try_resume(self) -> bool:
        """Load ``self.checkpoint`` if it exists; return whether training resumed."""
        if not self.checkpoint or not os.path.exists(self.checkpoint):
            return False
        state = read_checkpoint(self.checkpoint, family=self.family)
        if state["config"] != self.model.config:
            from dgmbench.errors import ModelError

            raise ModelError(f"{self.checkpoint} was trained with a different model config; delete it or pick another path")
        self.model.load_state_dict(state["model"])
        if self.ema and state.get("ema"):
            self.ema.shadow.load_state_dict(state["ema"])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        torch.set_rng_state(state["rng"]["torch"])
        self.data_gen.set_state(state["rng"]["data"])
        if state["rng"].get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.step = int(state["step"])
        self.history = list(state["history"])
        return True

    # --- loop --------------------------------------------------------------------
    def batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = torch.randint(0, self.x.shape[0], (self.cfg.batch_size,), generator=self.data_gen)
        x = self.x[idx].to(self.device)
        y = None if self.y is None else self.y[idx].to(self.device)
        return x, y

    def fit(self, max_steps: int | None = None) -> TrainResult:
        """Train until ``cfg.steps`` (or stop after ``max_steps`` more steps, for tests of resume)."""
        from tqdm.auto import tqdm

        t0 = time.perf_counter()
        self.try_resume()
        stop_at = self.cfg.steps if max_steps is None else min(self.cfg.steps, self.step + max_steps)
        diverged = False
        self.model.train()
        bar = tqdm(total=self.cfg.steps, initial=self.step, disable=not self.progress, desc=f"train {self.family}",
                   leave=False, dynamic_ncols=True)
        while self.step < stop_at:
            x, y = self.batch()
            logs = self.model.train_step(x, y, self.optimizers, self.step, self.cfg)
            self.step += 1
            if self.ema:
                self.ema.update(self.model)
            if not math.isfinite(logs["loss"]):
                diverged = True
                self.history.append({"step": self.step, **logs, "diverged": 1.0})
                break
            if self.step % self.cfg.log_every == 0 or self.step == stop_at:
                self.history.append({"step": self.step, **{k: float(v) for k, v in logs.items()}})
                bar.set_postfix(loss=f"{logs['loss']:.4g}")
            if self.checkpoint and (self.step % self.cfg.ckpt_every == 0 or self.step == stop_at):
                self.save()
            bar.update(1)
        bar.close()
        if diverged:
            self.save()
        if self.ema:
            self.model.load_state_dict(self.ema.shadow.state_dict())
        self.model.eval()
        return TrainResult(self.model, self.history, self.checkpoint, self.step, diverged, time.perf_counter() - t0)


def train_preset(family: str, preset: str, *, checkpoint: str | None = None, seed: int | None = None,
                 overrides: dict[str, Any] | None = None, progress: bool = True, max_steps: int | None = None,
                 device: str | None = None) -> TrainResult:
    """Build a family's model from a preset and train it on the preset's dataset (train split)."""
    from .registry import family_module, get_preset

    spec = get_preset(family, preset)
    tcfg = dict(spec.get("train", {}))
    tcfg.update((overrides or {}).get("train", {}))
    if seed is not None:
        tcfg["seed"] = seed
    if device is not None:
        tcfg["device"] = device
    cfg = TrainConfig.from_dict(tcfg)
    mcfg = {**spec.get("model", {}), **(overrides or {}).get("model", {})}
    data = get_dataset(spec["dataset"], "train", **spec.get("dataset_kwargs", {}))
    torch.manual_seed(cfg.seed)  # model init is part of the seeded run
    model = family_module(family).build_model(mcfg, data.data_shape, data.num_classes if mcfg.get("conditional") else None)
    trainer = Trainer(model, data, cfg, checkpoint=checkpoint, family=family, preset=preset, dataset=spec["dataset"],
                      progress=progress)
    return trainer.fit(max_steps=max_steps)
