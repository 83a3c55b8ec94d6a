"""The shared trainer: seed, optimiser(s), EMA, gradient clipping, checkpoints with
resume after a kill, tqdm progress, CPU/GPU selection, deterministic on CPU.

Resuming restores model, EMA, optimisers, the global torch RNG and the data-order
generator, so a run killed after a checkpoint and resumed follows exactly the loss
trajectory of an uninterrupted run (on CPU); ``history`` is logged at the same steps
either way (every ``log_every`` steps and at ``steps``).

Divergence: a non-finite loss, or non-finite weights when a checkpoint is about to be
written, stops the run with ``TrainResult.diverged = True``. The checkpoint file then keeps
the weights of the last good checkpoint (never NaN weights over good ones) and records
``diverged = {"step", "loss"}``; calling ``fit`` again on it returns at once, still
diverged, instead of training on (delete the file, or lower ``lr``, to retry).

With ``ema_decay`` the returned ``TrainResult.model`` is the EMA copy; the trainer keeps
training its own (non-averaged) weights, so ``fit`` can be called again.
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
from tqdm.auto import tqdm

from dgmbench.data import DataSplit, get_dataset
from dgmbench.devices import resolve_device
from dgmbench.errors import ModelError, UsageError

from .base import BaselineModel
from .checkpoint import read_checkpoint, save_checkpoint
from .registry import family_module, get_preset

STAGE_KEYS = ("steps", "lr", "betas", "lr_decay")


def _check_lr_decay(value: Any, where: str = "") -> None:
    """UsageError unless ``value`` is a known learning-rate decay ('none' or 'cosine')."""
    if value not in ("none", "cosine"):
        raise UsageError(f"{where}lr_decay must be 'none' or 'cosine', not {value!r}")


def _check_stage(i: int, stage: dict[str, Any]) -> dict[str, Any]:
    """A copy of schedule stage ``i`` with its keys checked (UsageError names the problem)."""
    if not isinstance(stage, dict):
        raise UsageError(f"stage {i} must be a dict of {list(STAGE_KEYS)}, got {stage!r}")
    unknown = set(stage) - set(STAGE_KEYS)
    if unknown:
        raise UsageError(f"stage {i}: unknown settings {sorted(unknown)}; known: {list(STAGE_KEYS)}")
    if not isinstance(stage.get("steps"), int) or stage["steps"] < 1:
        raise UsageError(f"stage {i}: steps must be a positive integer, got {stage.get('steps')!r}")
    _check_lr_decay(stage.get("lr_decay", "none"), f"stage {i}: ")
    out = dict(stage)
    if "betas" in out:
        out["betas"] = tuple(out["betas"])
    return out


def _fit_stages(stages: list[dict[str, Any]], steps: int) -> list[dict[str, Any]]:
    """``stages`` with their lengths rescaled in proportion to sum to ``steps`` (unchanged when they do)."""
    if not stages:
        raise UsageError("stages must hold at least one stage")
    total = sum(st["steps"] for st in stages)
    if total == steps:
        return stages
    if steps < len(stages):
        raise UsageError(f"steps = {steps} cannot be split into {len(stages)} stages")
    ends = [round(steps * sum(st["steps"] for st in stages[:i + 1]) / total) for i in range(len(stages))]
    out, start = [], 0
    for st, end in zip(stages, ends):
        end = max(end, start + 1)
        out.append({**st, "steps": end - start})
        start = end
    out[-1]["steps"] += steps - start
    return out


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
    warmup_steps: int = 0  # linear learning-rate warm-up from lr / warmup_steps to lr
    lr_decay: str = "none"  # "none" or "cosine" (to 0 at ``steps``, after warm-up)
    # Piecewise schedule: consecutive stages {"steps": n, "lr": x, "betas": (b1, b2), "lr_decay": "none" |
    # "cosine"} whose steps sum to ``steps`` (another ``steps``, e.g. --steps, rescales them in proportion);
    # a stage's missing keys take the values above (lr_decay: "none").
    # Within a stage, lr_decay "cosine" goes from the stage's lr to 0 at its end; optimiser state carries over.
    # Every optimiser's lr is scaled by stage lr / ``lr`` (so ``extra`` lr_g / lr_d keep their ratio).
    stages: list[dict[str, Any]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise UsageError(f"unknown train settings {sorted(unknown)}; known: {sorted(known)}")
        d = dict(d)
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        _check_lr_decay(d.get("lr_decay", "none"))
        if d.get("stages") is not None:
            d["stages"] = _fit_stages([_check_stage(i, st) for i, st in enumerate(d["stages"])],
                                      d.get("steps", cls.steps))
            if d.get("warmup_steps") or d.get("lr_decay", "none") != "none":
                raise UsageError("stages replace warmup_steps and lr_decay; set lr_decay inside each stage")
        return cls(**d)

    def stage_at(self, step: int) -> tuple[dict[str, Any], int, int]:
        """The stage that optimisation step ``step`` (0-based) belongs to, its first step and its length."""
        start = 0
        for st in self.stages or []:
            if step < start + st["steps"]:
                return st, start, st["steps"]
            start += st["steps"]
        last = (self.stages or [{}])[-1]
        return last, start - last.get("steps", 0), last.get("steps", 0)

    def lr_factor(self, step: int) -> float:
        """Multiplier of ``lr`` for optimisation step ``step`` (0-based)."""
        if self.stages:
            st, start, span = self.stage_at(step)
            f = st.get("lr", self.lr) / self.lr
            if st.get("lr_decay", "none") == "cosine":
                f *= 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - start) / max(1, span))))
            return f
        f = 1.0
        if self.warmup_steps > 0 and step < self.warmup_steps:
            f = (step + 1) / self.warmup_steps
        if self.lr_decay == "cosine":
            span = max(1, self.steps - self.warmup_steps)
            t = min(1.0, max(0.0, (step - self.warmup_steps) / span))
            f *= 0.5 * (1.0 + math.cos(math.pi * t))
        return f


@dataclass
class TrainResult:
    model: BaselineModel
    history: list[dict[str, float]]
    checkpoint: str | None
    step: int
    diverged: bool
    wall_time_s: float


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
                 dataset_kwargs: dict[str, Any] | None = None, progress: bool = True):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.model = model.to(self.device)
        self.data = data
        self.checkpoint = checkpoint
        self.family = family or model.family
        self.preset = preset
        self.dataset = dataset or data.name
        self.dataset_kwargs = dict(dataset_kwargs or {})  # the preset's get_dataset options, checked by --adopt
        self.progress = progress
        self.history: list[dict[str, float]] = []
        self.step = 0
        self.diverged: dict[str, float] | None = None
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
            "diverged": self.diverged,
            "name": f"{self.family}-{self.preset or 'custom'}",
            # only when set, so a checkpoint of a preset without them keeps its bytes
            **({"dataset_kwargs": self.dataset_kwargs} if self.dataset_kwargs else {}),
        }

    def weights_finite(self) -> bool:
        return all(bool(torch.isfinite(p).all()) for p in self.model.parameters())

    def save(self) -> None:
        if self.checkpoint:
            save_checkpoint(self.checkpoint, self.state())

    def save_diverged(self) -> None:
        """Mark the checkpoint diverged, keeping the last good checkpoint's weights when there is one."""
        if not self.checkpoint:
            return
        if os.path.exists(self.checkpoint):
            state = read_checkpoint(self.checkpoint, family=self.family)
            state.pop("format", None)
            state.pop("version", None)
            state["diverged"] = self.diverged
            state["history"] = self.history
            save_checkpoint(self.checkpoint, state)
        else:
            self.save()

    def try_resume(self) -> bool:
        """Load ``self.checkpoint`` if it exists; return whether training resumed."""
        if not self.checkpoint or not os.path.exists(self.checkpoint):
            return False
        state = read_checkpoint(self.checkpoint, family=self.family)
        if state["config"] != self.model.config:
            raise ModelError(f"{self.checkpoint} was trained with a different model config; delete it or pick another path")
        if (state.get("dataset_kwargs") or {}) != self.dataset_kwargs:
            raise ModelError(f"{self.checkpoint} was trained with dataset options {state.get('dataset_kwargs') or {}}, "
                             f"not {self.dataset_kwargs}; delete it or pick another path")
        self.model.load_state_dict(state["model"])
        if self.ema and state.get("ema"):
            self.ema.shadow.load_state_dict(state["ema"])
        opt_states = state.get("optimizers") or {}
        if opt_states:
            for k, o in self.optimizers.items():
                o.load_state_dict(opt_states[k])
        elif int(state["step"]) < self.cfg.steps:
            raise ModelError(f"{self.checkpoint} holds no optimiser state (a finished model stripped with "
                             f"`python -m baselines strip`): it cannot resume training from step {state['step']} "
                             f"to {self.cfg.steps}; delete it to train from scratch")
        torch.set_rng_state(state["rng"]["torch"])
        self.data_gen.set_state(state["rng"]["data"])
        if state["rng"].get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.step = int(state["step"])
        self.history = list(state["history"])
        self.diverged = state.get("diverged")
        return True

    def apply_lr(self) -> None:
        if not self.cfg.warmup_steps and self.cfg.lr_decay == "none" and not self.cfg.stages:
            return
        factor = self.cfg.lr_factor(self.step)
        betas = tuple(self.cfg.stage_at(self.step)[0].get("betas", self.cfg.betas)) if self.cfg.stages else None
        for opt in self.optimizers.values():
            for g in opt.param_groups:
                g.setdefault("initial_lr", g["lr"])
                g["lr"] = g["initial_lr"] * factor
                if betas is not None:
                    g["betas"] = betas

    # --- loop --------------------------------------------------------------------
    def batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = torch.randint(0, self.x.shape[0], (self.cfg.batch_size,), generator=self.data_gen)
        x = self.x[idx].to(self.device)
        y = None if self.y is None else self.y[idx].to(self.device)
        return x, y

    def fit(self, max_steps: int | None = None) -> TrainResult:
        """Train until ``cfg.steps`` (or stop after ``max_steps`` more steps, for tests of resume)."""
        t0 = time.perf_counter()
        self.try_resume()
        if self.diverged:
            self.model.eval()
            return TrainResult(self.model, self.history, self.checkpoint, self.step, True, time.perf_counter() - t0)
        stop_at = self.cfg.steps if max_steps is None else min(self.cfg.steps, self.step + max_steps)
        self.model.train()
        bar = tqdm(total=self.cfg.steps, initial=self.step, disable=not self.progress, desc=f"train {self.family}",
                   leave=False, dynamic_ncols=True)
        while self.step < stop_at:
            x, y = self.batch()
            self.apply_lr()
            logs = self.model.train_step(x, y, self.optimizers, self.step, self.cfg)
            self.step += 1
            if self.ema:
                self.ema.update(self.model)
            loss = float(logs["loss"])
            if not math.isfinite(loss):
                self.diverged = {"step": float(self.step), "loss": loss}
                self.history.append({"step": self.step, **{k: float(v) for k, v in logs.items()}, "diverged": 1.0})
                break
            if self.step % self.cfg.log_every == 0 or self.step == self.cfg.steps:
                self.history.append({"step": self.step, **{k: float(v) for k, v in logs.items()}})
                bar.set_postfix(loss=f"{loss:.4g}")
            if self.checkpoint and (self.step % self.cfg.ckpt_every == 0 or self.step == stop_at):
                if not self.weights_finite():
                    self.diverged = {"step": float(self.step), "loss": loss}
                    self.history.append({"step": self.step, "loss": loss, "diverged": 1.0})
                    break
                self.save()
            bar.update(1)
        bar.close()
        if self.diverged:
            self.save_diverged()
        self.model.eval()
        model = self.model
        if self.ema:
            model = self.ema.shadow.eval()
        return TrainResult(model, self.history, self.checkpoint, self.step, self.diverged is not None,
                           time.perf_counter() - t0)


def train_preset(family: str, preset: str, *, checkpoint: str | None = None, seed: int | None = None,
                 overrides: dict[str, Any] | None = None, progress: bool = True, max_steps: int | None = None,
                 device: str | None = None) -> TrainResult:
    """Build a family's model from a preset and train it on the preset's dataset (train split)."""
    spec = get_preset(family, preset)
    tcfg = dict(spec.get("train", {}))
    tcfg.update((overrides or {}).get("train", {}))
    if seed is not None:
        tcfg["seed"] = seed
    if device is not None:
        tcfg["device"] = device
    cfg = TrainConfig.from_dict(tcfg)
    mcfg = {**spec.get("model", {}), **(overrides or {}).get("model", {})}
    dataset_kwargs = spec.get("dataset_kwargs", {})
    data = get_dataset(spec["dataset"], "train", **dataset_kwargs)
    torch.manual_seed(cfg.seed)  # model init is part of the seeded run
    model = family_module(family).build_model(mcfg, data.data_shape, data.num_classes if mcfg.get("conditional") else None)
    trainer = Trainer(model, data, cfg, checkpoint=checkpoint, family=family, preset=preset, dataset=spec["dataset"],
                      dataset_kwargs=dataset_kwargs, progress=progress)
    return trainer.fit(max_steps=max_steps)
