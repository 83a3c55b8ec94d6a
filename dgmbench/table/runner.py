"""The work behind ``dgmbench table``: train or load each family's preset per seed, score it,
draw its sample grid and write the leaderboard.

Caching and resume:

- A checkpoint's path holds a hash of (family, preset config, seed, device type, code
  version), the code version being a hash of the family's source files and the shared
  trainer: ``<runs>/<dataset>/<family>-<preset>-s<seed>-<hash>.pt``. Changing a preset or
  the family's code trains a new model; an unchanged one is loaded, never retrained.
- ``<runs>/table-state.jsonl`` is an append-only log (one JSON object per line, appended
  under an exclusive lock): ``train_start`` / ``train_done`` per model and ``eval_done``
  with the full Record per evaluation. An evaluation is keyed by the model's hash plus
  (dataset, metrics, n, seed, extractor) and a hash of the metric/feature code; a finished
  one is reused as is (its sample grid is drawn again when the file is missing or differs
  from the sha256 its Record names).
- Sample grids (:mod:`.grids`): each scored (family, seed) is sampled once more with the scored
  run's seed and sampler options and drawn to ``<out>/<name>.samples/<family>-s<seed>.png``;
  the Record's ``config.table`` names the file (``sample_grid``, relative to the leaderboard's
  folder) and its ``sample_grid_sha256``. Grid files no Record names are deleted.
- A run killed mid-training resumes from the model's last checkpoint (the shared trainer
  restores model, optimiser and RNG state, so the result equals an uninterrupted run on
  CPU); a run killed mid-evaluation redoes that evaluation only.

Every model is evaluated from its checkpoint file (EMA weights when present), whether it was
trained just now or earlier, so both paths give the same numbers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

# baselines' functions are called through their modules, so a test that patches them (the report test's
# no-model-loads guard, the trainer spy) patches what the runner calls
from baselines import checkpoint as baseline_checkpoint
from baselines import train as baseline_train
from baselines.registry import FAMILIES, family_module, get_preset

from ..data.registry import dataset_info, get_dataset
from ..devices import resolve_device
from ..errors import DgmbenchError, UsageError, suggest
from ..harness import DEFAULT_N_CAP, evaluate
from ..metrics.registry import GROUPS, resolve_metrics
from ..metrics.registry import default_metrics as registry_default_metrics
from ..options import EvalOptions
from ..protocol import likelihood_kind
from ..reference import KDE_VAL_MAX
from ..report.leaderboard import LeaderboardMeta, write_leaderboard
from ..report.summary import REAL_FAMILY
from ..results import Record, append_jsonl_line, sha256_file
from ..sampling import apply_sampling_options, format_sampling_options, parse_sampling_options
from .adopt import adopt_checkpoints
from .grids import grid_folder, grid_relpath, write_sample_grid

LIKELIHOOD_METRICS = ("nll", "bpd")
STATE_FILE = "table-state.jsonl"
# Options every table evaluation is scored with (part of the evaluation key): MMD's permutation-test
# p-value, and FID-inf (computed where n allows: see metrics.adapters.fid).
TABLE_EVAL_OPTIONS: dict[str, Any] = {"mmd_permutations": 100, "fid_inf": True}


# --- hashing ------------------------------------------------------------------------------
def _hash_files(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.name).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def family_code_version(family: str) -> str:
    """sha256 over the family package's .py files and the shared trainer/base/checkpoint code."""

    mod = family_module(family)
    src = Path(mod.__file__).resolve()
    own = sorted(src.parent.rglob("*.py")) if src.name == "__init__.py" else [src]
    shared = Path(__file__).resolve().parents[2] / "baselines"
    files = own + [shared / f for f in ("train.py", "base.py", "checkpoint.py") if (shared / f).exists()]
    return _hash_files(files)[:16]


# Harness modules whose code can change a metric value (missing ones are skipped, so a module
# that a later layout adds or drops counts as soon as it exists).
EVAL_CODE_FILES = ("harness.py", "sampling.py", "reference.py", "options.py", "devices.py", "protocol.py",
                   "units.py", "validation.py", "results.py")
EVAL_CODE_DIRS = ("metrics", "features", "data")  # every .py file directly in each


def eval_code_version(pkg: Path | None = None) -> str:
    """sha256 over the harness code and weights that can change a metric value: ``EVAL_CODE_FILES``,
    the .py files of ``EVAL_CODE_DIRS`` and every file under ``assets/`` (classifier weights) of
    the ``dgmbench`` package folder ``pkg`` (default: this one)."""
    pkg = Path(__file__).resolve().parents[1] if pkg is None else Path(pkg)
    files = [pkg / f for f in EVAL_CODE_FILES]
    for sub in EVAL_CODE_DIRS:
        files += sorted((pkg / sub).glob("*.py"))
    files += sorted(f for f in (pkg / "assets").rglob("*") if f.is_file())
    return _hash_files([f for f in files if f.is_file()])[:16]


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


# --- state log ------------------------------------------------------------------------------
class StateLog:
    """Append-only JSONL of table events; a torn last line (killed writer) is skipped."""

    def __init__(self, path: str):
        self.path = path

    def append(self, event: dict[str, Any]) -> None:
        append_jsonl_line(self.path, json.dumps(event, sort_keys=True, default=str))

    def events(self) -> list[dict[str, Any]]:
        if not os.path.exists(self.path):
            return []
        out = []
        with open(self.path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out

    def find(self, event: str, key: str) -> dict[str, Any] | None:
        """The last ``event`` logged with ``key``."""
        found = None
        for e in self.events():
            if e.get("event") == event and e.get("key") == key:
                found = e
        return found


# --- configuration ------------------------------------------------------------------------------
@dataclass
class TableConfig:
    dataset: str = "digits"
    preset: str | None = None  # default: the dataset's name
    families: list[str] | None = None  # default: every registered family
    seeds: int = 3  # seeds 0 .. seeds-1
    steps: int | None = None  # override the preset's training steps (quick runs; part of the model key)
    metrics: list[str] | None = None  # default: default_metrics(dataset) (the registry's table defaults)
    n: int | None = None
    nll_n: int | None = None  # NLL/bpd on a seeded subset of this many test items (default: all)
    split: str = "test"
    extractor: str | None = None
    out: str = "leaderboards"
    runs_dir: str = "runs"
    device: str = "auto"
    progress: bool = True
    command: str = "dgmbench table"
    name: str | None = None  # output file stem; default: the preset's name
    adopt: tuple[str, ...] = ()  # checkpoints trained elsewhere that stand in for jobs (see adopt.py)
    threads: int | None = None  # torch CPU threads while training and scoring; None: torch's default
    sampling: dict[str, dict[str, Any]] = field(default_factory=dict)  # family -> sampler options (scoring only)
    real_data: bool = True  # score held-out training items as the "real data" row (see real_data_row)
    clip_model: str | None = None  # open_clip model name: adds the CLIP score (alignment) of conditional models
    clip_pretrained: str | None = None  # open_clip pretrained tag or a local weights file

    def eval_options(self) -> dict[str, Any]:
        """Options every evaluation of this table is scored with (part of the evaluation key):
        TABLE_EVAL_OPTIONS plus the CLIP model when one is given (a local weights file by its sha256)."""
        opts: dict[str, Any] = dict(TABLE_EVAL_OPTIONS)
        if self.clip_model or self.clip_pretrained:
            opts.update({k: v for k, v in (("clip_model", self.clip_model), ("clip_pretrained", self.clip_pretrained))
                         if v})
        return opts

    def eval_key_options(self) -> dict[str, Any]:
        """``eval_options()`` as it enters the evaluation key: a local CLIP weights file by its sha256,
        so other weights under the same path are scored again."""
        opts = self.eval_options()
        pre = opts.get("clip_pretrained")
        if pre and os.path.isfile(pre):
            opts["clip_pretrained_sha256"] = sha256_file(pre)
        return opts

    @property
    def preset_name(self) -> str:
        return self.preset or self.dataset

    @property
    def out_name(self) -> str:
        return self.name or self.preset_name


@dataclass
class Job:
    family: str
    seed: int
    spec: dict[str, Any]
    key: str  # model key
    checkpoint: str


@dataclass
class TableResult:
    records: list[Record]
    paths: dict[str, str]
    missing: dict[str, str]
    trained: list[tuple[str, int]] = field(default_factory=list)  # (family, seed) trained in this call
    reused: list[tuple[str, int]] = field(default_factory=list)  # evaluations taken from the state log
    adopted: list[tuple[str, int]] = field(default_factory=list)  # (family, seed) whose checkpoint was --adopt-ed


def resolve_families(cfg: TableConfig) -> tuple[list[str], dict[str, str]]:
    """Families that can run this preset, and the others with the reason they cannot."""

    wanted = cfg.families or list(FAMILIES)
    ok, missing = [], {}
    for fam in wanted:
        if fam not in FAMILIES:

            raise UsageError(suggest(fam, FAMILIES, "family"))
        try:
            mod = family_module(fam)
        except ImportError as e:
            missing[fam] = f"not installed ({e})"
            continue
        if not hasattr(mod, "PRESETS") or not callable(getattr(mod, "build_model", None)):
            missing[fam] = f"not installed ({mod.__name__} has no PRESETS/build_model yet)"
            continue
        presets = mod.PRESETS
        if cfg.preset_name not in presets:
            missing[fam] = f"no '{cfg.preset_name}' preset"
            continue
        spec = presets[cfg.preset_name]
        if spec.get("dataset") != cfg.dataset:
            raise UsageError(f"preset '{cfg.preset_name}' of {fam} trains on '{spec.get('dataset')}', not on "
                             f"'{cfg.dataset}'; pick a preset of {cfg.dataset}")
        ok.append(fam)
    return ok, missing


def _device_type(device: str) -> str:

    return resolve_device(device).type


def plan_jobs(cfg: TableConfig, families: list[str]) -> list[Job]:

    dev = _device_type(cfg.device)
    jobs = []
    for fam in families:
        spec = get_preset(fam, cfg.preset_name)
        if cfg.steps is not None:
            spec = {**spec, "train": {**spec.get("train", {}), "steps": cfg.steps}}
        code = family_code_version(fam)
        for seed in range(cfg.seeds):
            key = _digest({"family": fam, "preset": cfg.preset_name, "spec": spec, "seed": seed, "device": dev,
                           "code": code})
            ckpt = os.path.join(cfg.runs_dir, cfg.dataset, f"{fam}-{cfg.preset_name}-s{seed}-{key[:10]}.pt")
            jobs.append(Job(fam, seed, spec, key, ckpt))
    return jobs


def metrics_for(model: Any, requested: list[str]) -> list[str]:
    """Drop likelihood metrics for a model without ``log_likelihood``."""

    if likelihood_kind(model) == "none":
        return [m for m in requested if m not in LIKELIHOOD_METRICS]
    return list(requested)


def default_metrics(dataset: str) -> list[str]:
    """The table's default metric groups for ``dataset`` (the registry's ``table_default``)."""
    return registry_default_metrics(dataset_info(dataset).kind, table=True)


def _train(job: Job, cfg: TableConfig, log: StateLog) -> dict[str, Any]:
    """Train (or resume) one model to its checkpoint; returns the logged ``train_done`` event."""

    from_step, adopted_from = 0, None
    if os.path.exists(job.checkpoint):
        adopted = log.find("adopt", job.key)
        if adopted is not None and adopted.get("source_sha256") == sha256_file(job.checkpoint):
            adopted_from = adopted["source"]
        try:

            from_step = int(baseline_checkpoint.read_checkpoint(job.checkpoint).get("step", 0))
        except DgmbenchError:
            os.unlink(job.checkpoint)  # corrupt: start over
    log.append({"event": "train_start", "key": job.key, "family": job.family, "seed": job.seed,
                "preset": cfg.preset_name, "from_step": from_step, "checkpoint": job.checkpoint, "time": time.time()})
    overrides = {"train": {"steps": cfg.steps}} if cfg.steps is not None else None
    res = baseline_train.train_preset(job.family, cfg.preset_name, checkpoint=job.checkpoint, seed=job.seed, overrides=overrides,
                       progress=cfg.progress, device=cfg.device)
    event = {"event": "train_done", "key": job.key, "family": job.family, "seed": job.seed, "preset": cfg.preset_name,
             "from_step": from_step, "step": res.step, "diverged": bool(res.diverged), "wall_time_s": res.wall_time_s,
             "checkpoint": job.checkpoint, "checkpoint_sha256": sha256_file(job.checkpoint)}
    if adopted_from is not None:
        event["adopted_from"] = adopted_from
    log.append(event)
    return event


@contextlib.contextmanager
def torch_threads(n: int | None):
    """``torch.set_num_threads(n)`` inside the block, the previous count restored after (None: no
    change). CPU training is bit-reproducible for a fixed thread count; another count changes the
    weights at float rounding, so a table's numbers move in their last digits."""
    if n is None:
        yield
        return
    if n < 1:
        raise UsageError(f"--threads must be at least 1, got {n}")
    prev = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def run_table(cfg: TableConfig, *, evaluate_fn: Callable[..., Record] | None = None) -> TableResult:
    """Train/load, score and tabulate every (family, seed) of ``cfg`` (with ``cfg.threads`` torch
    threads when set); see the module docstring."""
    with torch_threads(cfg.threads):
        return _run_table(cfg, evaluate_fn)


def _run_table(cfg: TableConfig, evaluate_fn: Callable[..., Record] | None) -> TableResult:
    from tqdm.auto import tqdm

    info = dataset_info(cfg.dataset)
    if cfg.seeds < 1:
        raise UsageError(f"--seeds must be at least 1, got {cfg.seeds}")
    if cfg.steps is not None and cfg.steps < 1:
        raise UsageError(f"--steps must be at least 1, got {cfg.steps}")
    families, missing = resolve_families(cfg)
    for fam, why in missing.items():
        print(f"dgmbench table: skipping {fam}: {why}", file=sys.stderr)
    if not families:
        raise UsageError(f"no family can run the '{cfg.preset_name}' preset of {cfg.dataset} "
                         f"({'; '.join(f'{k}: {v}' for k, v in missing.items())})")
    requested = list(cfg.metrics) if cfg.metrics else default_metrics(cfg.dataset)
    if (cfg.clip_model or cfg.clip_pretrained) and "clip_score" not in resolve_metrics(requested):
        requested.append("clip_score")  # the alignment column of class-conditional models
    requested = resolve_metrics(requested)  # unknown names: UsageError before any training
    check_table_sampling(cfg, families, info)
    jobs = plan_jobs(cfg, families)
    log = StateLog(os.path.join(cfg.runs_dir, STATE_FILE))
    adopted: dict[str, str] = {}
    if cfg.adopt:

        adopted = adopt_checkpoints(list(cfg.adopt), jobs, log, cfg.preset_name)
    evaluate_fn = evaluate_fn or evaluate
    ecode = eval_code_version()
    key_options = cfg.eval_key_options()
    modes = _dataset_modes(cfg) if info.kind == "points" else None
    records: list[Record] = []
    result = TableResult(records=records, paths={}, missing=missing)
    bar = tqdm(total=len(jobs), desc=f"table {cfg.out_name}", unit="model", disable=not cfg.progress, dynamic_ncols=True)
    for job in jobs:
        bar.set_postfix_str(f"{job.family} seed {job.seed}")
        sampling = cfg.sampling.get(job.family) or {}
        eval_key = _digest({"model": job.key, "dataset": cfg.dataset, "split": cfg.split, "metrics": requested,
                            "n": cfg.n, "seed": job.seed, "extractor": cfg.extractor, "code": ecode,
                            "options": key_options,
                            **({"nll_n": cfg.nll_n} if cfg.nll_n is not None else {}),
                            **({"sampling": sampling} if sampling else {})})
        sha = sha256_file(job.checkpoint) if os.path.exists(job.checkpoint) else None
        done = log.find("eval_done", eval_key)
        scored_sha = ((done or {}).get("record", {}).get("config") or {}).get("table", {}).get("checkpoint_sha256")
        if done is not None and sha is not None and sha == scored_sha:
            rec = Record.from_dict(done["record"])
            table = rec.config.setdefault("table", {})
            table["command"] = cfg.command  # the command of this table
            if table.get("status", "ok") == "ok" and not _grid_is_current(cfg, table):
                # e.g. another --out, or a deleted grid file: draw it again from the checkpoint
                _clear_grid(table)
                table.update(_draw_grid(_load_model(job, cfg), job, cfg, info.kind, modes))
                log.append({"event": "eval_done", "key": eval_key, "family": job.family, "seed": job.seed,
                            "record": rec.to_dict()})
            records.append(rec)
            result.reused.append((job.family, job.seed))
            bar.update(1)
            continue
        train = log.find("train_done", job.key)
        adopt = log.find("adopt", job.key)
        if train is not None and sha is not None and sha != train.get("checkpoint_sha256") and \
                (adopt is None or adopt.get("source_sha256") != sha):
            print(f"dgmbench table: {job.checkpoint} changed since it was trained (sha256 {sha[:12]}, trained "
                  f"{str(train.get('checkpoint_sha256'))[:12]}); training it again", file=sys.stderr)
            os.unlink(job.checkpoint)
            train = None
        if train is None or sha is None or sha != train.get("checkpoint_sha256"):  # sha: hashed once, above
            train = _train(job, cfg, log)
            (result.adopted if job.key in adopted else result.trained).append((job.family, job.seed))
        record = _evaluate_job(job, cfg, train, requested, evaluate_fn, info.kind, modes)
        log.append({"event": "eval_done", "key": eval_key, "family": job.family, "seed": job.seed,
                    "record": record.to_dict()})
        records.append(record)
        bar.update(1)
    bar.close()
    if cfg.real_data:
        real = real_data_row(cfg, requested, evaluate_fn, log, ecode, info.kind, modes)
        if real is not None:
            records.insert(0, real)
    meta = LeaderboardMeta(name=cfg.out_name, dataset=cfg.dataset, command=cfg.command, preset=cfg.preset_name,
                           seeds=list(range(cfg.seeds)), n=cfg.n, split=cfg.split, missing=missing)
    result.paths = write_leaderboard(cfg.out, records, meta)
    _remove_stale_grids(cfg, records)
    return result


def parse_table_sampling(items: list[str] | tuple[str, ...] | None) -> dict[str, dict[str, Any]]:
    """``["ebm:sample_steps=500", "diffusion:sampler=ddim,steps=50"]`` -> {family: options}: the
    sampler options each family's models are scored with (training is not affected)."""


    out: dict[str, dict[str, Any]] = {}
    for item in items or ():
        fam, sep, rest = str(item).partition(":")
        fam = fam.strip()
        if not sep or not fam or "=" in fam:
            raise UsageError(f"table --sampling takes FAMILY:KEY=VALUE[,KEY=VALUE] (e.g. --sampling "
                             f"ebm:sample_steps=500), got '{item}'")
        if fam not in FAMILIES:
            raise UsageError(suggest(fam, FAMILIES, "family"))
        opts = parse_sampling_options([rest])
        if not opts:
            raise UsageError(f"--sampling {item}: no KEY=VALUE after '{fam}:'")
        clash = sorted(set(opts) & set(out.get(fam, {})))
        if clash:
            raise UsageError(f"sampling option(s) {', '.join(clash)} of {fam} given twice")
        out.setdefault(fam, {}).update(opts)
    return out


def check_table_sampling(cfg: TableConfig, families: list[str], info: Any) -> None:
    """Before any training: every ``--sampling`` family is in this table and takes those options
    (checked on an untrained model of its preset config)."""

    for fam, opts in cfg.sampling.items():
        if fam not in families:
            raise UsageError(f"--sampling {fam}:... names a family that is not in this table "
                             f"(it has: {', '.join(families)})")
        spec = get_preset(fam, cfg.preset_name)
        mcfg = dict(spec.get("model", {}))
        try:
            probe = family_module(fam).build_model(mcfg, tuple(info.shape),
                                                   info.num_classes if mcfg.get("conditional") else None)
        except Exception:  # noqa: BLE001 - a model that cannot be probed is checked when it is scored
            continue
        apply_sampling_options(probe, opts)


def _compact_history(history: list[dict[str, Any]]) -> list[dict[str, float]]:
    out = []
    for h in history or []:
        out.append({k: float(v) for k, v in h.items() if isinstance(v, (int, float))})
    return out


def _dataset_modes(cfg: TableConfig) -> Any:
    """The mixture modes of a 2-D dataset (None when it has none or cannot be loaded)."""

    try:
        return get_dataset(cfg.dataset, cfg.split).modes
    except DgmbenchError:
        return None


def _load_model(job: Job, cfg: TableConfig) -> Any:
    """The job's model from its checkpoint (EMA weights when present) on ``cfg.device``, with the
    family's ``--sampling`` options applied."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a diverged checkpoint warns; the table reports it instead
        model = baseline_checkpoint.load_baseline(job.checkpoint, device=None if cfg.device == "auto" else cfg.device)
    apply_sampling_options(model, cfg.sampling.get(job.family) or {})  # no-op when empty
    return model


GRID_KEYS = ("sample_grid", "sample_grid_sha256", "sample_grid_note")


def _draw_grid(model: Any, job: Job, cfg: TableConfig, kind: str, modes: Any) -> dict[str, Any]:
    """Draw the job's sample grid to ``<out>/<name>.samples/<family>-s<seed>.png``; returns the
    ``config.table`` fields naming it (path relative to the leaderboard's folder, sha256), or a
    note when the model could not be sampled (the table goes on; the report says so)."""
    rel = grid_relpath(cfg.out_name, job.family, job.seed)
    try:
        sha = write_sample_grid(model, os.path.join(cfg.out, rel), kind=kind, seed=job.seed, modes=modes)
    except (DgmbenchError, RuntimeError, ValueError) as e:
        note = f"could not draw the sample grid ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})"
        print(f"dgmbench table: {job.family} seed {job.seed}: {note}", file=sys.stderr)
        return {"sample_grid_note": note}
    return {"sample_grid": rel, "sample_grid_sha256": sha}


def _clear_grid(table: dict[str, Any]) -> None:
    for k in GRID_KEYS:
        table.pop(k, None)


def _grid_is_current(cfg: TableConfig, table: dict[str, Any]) -> bool:
    """True when the Record names this table's grid file and that file holds the bytes it names."""
    rel = table.get("sample_grid")
    if rel != grid_relpath(cfg.out_name, table.get("family", ""), table.get("seed", -1)):
        return False
    path = os.path.join(cfg.out, rel)
    return os.path.isfile(path) and sha256_file(path) == table.get("sample_grid_sha256")


def _remove_stale_grids(cfg: TableConfig, records: list[Record]) -> None:
    """Delete grid files in ``<out>/<name>.samples/`` that no Record of this table names (a family
    or seed no longer in it), so the committed folder matches the leaderboard."""
    folder = os.path.join(cfg.out, grid_folder(cfg.out_name))
    if not os.path.isdir(folder):
        return
    keep = {os.path.normpath(os.path.join(cfg.out, t["sample_grid"])) for r in records
            if (t := (r.config or {}).get("table", {})).get("sample_grid")}
    for f in os.listdir(folder):
        path = os.path.normpath(os.path.join(folder, f))
        if f.endswith(".png") and path not in keep:
            os.unlink(path)


def _evaluate_job(job: Job, cfg: TableConfig, train: dict[str, Any], requested: list[str],
                  evaluate_fn: Callable[..., Record], kind: str, modes: Any) -> Record:
    """Score the job's checkpoint (or record why it has no metrics) and draw its sample grid."""

    model = _load_model(job, cfg)  # sampler options before nfe_per_sample is read: it depends on them
    sampling = cfg.sampling.get(job.family) or {}
    diverged = bool(train.get("diverged")) or bool(getattr(model, "diverged", None))
    table = {
        "family": job.family, "preset": cfg.preset_name, "seed": job.seed, "status": "ok", "note": None,
        "checkpoint": job.checkpoint, "checkpoint_sha256": train.get("checkpoint_sha256"),
        "model_key": job.key, "train_steps": train.get("step"), "train_wall_time_s": train.get("wall_time_s"),
        "adopted_from": train.get("adopted_from"),
        "diverged": diverged, "history": _compact_history(getattr(model, "train_history", [])),
        "likelihood_kind": likelihood_kind(model), "nfe_per_sample": float(getattr(model, "nfe_per_sample", 1.0)),
        "command": cfg.command, **({"sampling": dict(sampling)} if sampling else {}),
    }
    if modes is not None:
        table["num_modes"] = int(modes.shape[0])
    name = f"{job.family}-{cfg.preset_name}" + (f" [{format_sampling_options(sampling)}]" if sampling else "")
    if diverged:
        table["status"] = "diverged"
        div = getattr(model, "diverged", None)
        table["note"] = f"training diverged at step {int(div['step'])}" if isinstance(div, dict) and "step" in div \
            else "training diverged"
        return Record(model=name, dataset=cfg.dataset, split=cfg.split, family=job.family, seed=job.seed,
                      config={"table": table})
    kwargs = {"metrics": metrics_for(model, requested), "n": cfg.n, "seed": job.seed, "split": cfg.split,
              "device": cfg.device, "model_name": name, "family": job.family, "progress": cfg.progress,
              **cfg.eval_options()}
    if cfg.extractor:
        kwargs["extractor"] = cfg.extractor
    if cfg.nll_n is not None:
        kwargs["nll_max_n"] = cfg.nll_n
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    try:
        record = evaluate_fn(model, cfg.dataset, **kwargs)
    except UsageError:
        raise  # a bad option is the user's to fix, not a failed run to record
    except DgmbenchError as e:  # e.g. NaN samples: the run failed, and says why
        table["status"] = "failed"
        table["note"] = str(e).splitlines()[0][:300]
        return Record(model=name, dataset=cfg.dataset, split=cfg.split, family=job.family, seed=job.seed,
                      config={"table": table})
    table.update(_draw_grid(model, job, cfg, kind, modes))
    record.model = name
    record.family = job.family
    record.seed = job.seed
    record.config = {**(record.config or {}), "table": table}
    return record


# --- the real-data row ----------------------------------------------------------------------------
def real_data_subset(dataset: str, n: int) -> tuple[Any, str]:
    """``n`` held-out training items of ``dataset`` scored as if they were a model's samples: the
    seed-0 permutation of the train split, skipping its first ``KDE_VAL_MAX`` items when the dataset
    has no ``val`` split (those are KDE's bandwidth-validation items, see reference.kde_validation),
    so the Parzen estimate of the real row is not fitted on its own validation points. Returns
    (tensor (n, ...), description); fewer than ``n`` + skip items: the first ``n`` of the permutation,
    and the description says that they overlap KDE's validation items."""
    tr = get_dataset(dataset, "train")
    total = len(tr)
    if total < 2:
        raise UsageError(f"{dataset}:train has {total} items; the real-data row needs at least 2")
    perm = torch.randperm(total, generator=torch.Generator().manual_seed(0))
    skip = 0 if "val" in dataset_info(dataset).splits else min(KDE_VAL_MAX, total)
    if total - skip >= n:
        idx = perm[skip: skip + n]
        desc = f"{dataset}:train, items {skip}..{skip + n - 1} of its seed-0 permutation"
        if skip:
            desc += f" (the first {skip} are KDE's validation items)"
    else:
        idx = perm[:n]
        desc = (f"{dataset}:train, the first {len(idx)} items of its seed-0 permutation (overlapping KDE's "
                "validation items: too few training items to keep them apart)")
    return tr.data[idx], desc


def real_data_n(cfg: TableConfig) -> int:
    """The real-data row's n: the models' n (``-n``, else the harness default min(split size, cap))."""
    if cfg.n is not None:
        return int(cfg.n)
    return min(len(get_dataset(cfg.dataset, cfg.split)), DEFAULT_N_CAP)


def real_data_row(cfg: TableConfig, requested: list[str], evaluate_fn: Callable[..., Record], log: StateLog,
                  ecode: str, kind: str, modes: Any) -> Record | None:
    """Score held-out training items as if they were a model (same n, metrics and options as the
    models; groups that need a model, NLL and speed, are left out): the floor of FID/KID, the
    ceiling of IS and precision/recall, what KDE gives on real data. Seed 0; one row; reused from
    the state log like a model's evaluation; its grid is ``<name>.samples/real-data-s0.png``.
    None (with a message) when the dataset has no train split or the table scores the train split."""
    info = dataset_info(cfg.dataset)
    if "train" not in info.splits or cfg.split == "train":
        why = "the table scores the train split" if cfg.split == "train" else f"{cfg.dataset} has no train split"
        print(f"dgmbench table: no real-data row: {why}", file=sys.stderr)
        return None
    defaults = EvalOptions()
    metrics = [m for m in requested if GROUPS[m].uses_samples(defaults)]
    if not metrics:
        return None
    n = real_data_n(cfg)
    samples, desc = real_data_subset(cfg.dataset, n)
    key = _digest({"real": cfg.dataset, "split": cfg.split, "metrics": metrics, "n": n, "extractor": cfg.extractor,
                   "code": ecode, "options": cfg.eval_key_options(), "subset": desc})
    rel = grid_relpath(cfg.out_name, REAL_FAMILY, 0)
    done = log.find("eval_done", key)
    if done is not None:
        rec = Record.from_dict(done["record"])
        table = rec.config.setdefault("table", {})
        table["command"] = cfg.command
        if not _grid_is_current(cfg, table):
            _clear_grid(table)
            table.update({"sample_grid": rel, "sample_grid_sha256": write_sample_grid(
                samples, os.path.join(cfg.out, rel), kind=kind, modes=modes)})
            log.append({"event": "eval_done", "key": key, "family": REAL_FAMILY, "seed": 0, "record": rec.to_dict()})
        return rec
    kwargs = {"metrics": metrics, "n": n, "seed": 0, "split": cfg.split, "device": cfg.device,
              "model_name": "real data (held-out train items)", "family": REAL_FAMILY, "progress": cfg.progress,
              **cfg.eval_options()}
    if cfg.extractor:
        kwargs["extractor"] = cfg.extractor
    rec = evaluate_fn(samples, cfg.dataset, **kwargs)
    rec.family, rec.seed = REAL_FAMILY, 0
    table = {"family": REAL_FAMILY, "preset": None, "seed": 0, "status": "ok", "note": None, "real_data": True,
             "subset": desc, "likelihood_kind": "none", "command": cfg.command,
             "sample_grid": rel, "sample_grid_sha256": write_sample_grid(samples, os.path.join(cfg.out, rel), kind=kind,
                                                                         modes=modes)}
    if modes is not None:
        table["num_modes"] = int(modes.shape[0])
    rec.config = {**(rec.config or {}), "table": table}
    log.append({"event": "eval_done", "key": key, "family": REAL_FAMILY, "seed": 0, "record": rec.to_dict()})
    return rec
