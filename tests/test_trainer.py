"""The shared baseline trainer: seeded determinism, kill-and-resume, checkpoint errors, EMA,
learning-rate schedule and diverged-run detection.

A tiny model defined here (registered as family ``toy`` for the duration of a test) keeps
these tests fast and independent of the families; its loss draws noise from the global
torch RNG and uses dropout, so resuming must restore the RNG exactly.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from torch import nn

from baselines.__main__ import main as baselines_main
from baselines.base import BaselineModel
from baselines.checkpoint import (
    FORMAT_VERSION,
    load_baseline,
    read_checkpoint,
    save_checkpoint,
    strip_optimizer_state,
)
from baselines.registry import FAMILIES
from baselines.train import TrainConfig, Trainer, train_preset
from dgmbench.data import DataSplit
from dgmbench.errors import ModelError, UsageError


class Toy(BaselineModel):
    family = "toy"

    def __init__(self, config, data_shape, num_classes=None):
        super().__init__(config, data_shape, num_classes)
        h = int(config.get("hidden", 16))
        self.net = nn.Sequential(nn.Linear(2, h), nn.Tanh(), nn.Dropout(0.2), nn.Linear(h, 2))

    def forward(self, x, y=None):
        noisy = x + 0.1 * torch.randn_like(x)
        return ((self.net(noisy) - x) ** 2).mean()

    def train_step(self, x, y, optimizers, step, cfg):
        if cfg.extra.get("kill_at") == step + 1:
            raise KeyboardInterrupt("simulated kill")
        if cfg.extra.get("nan_at") == step + 1:
            # a real divergence: NaN loss, NaN gradients, NaN weights after the step
            opt = optimizers["model"]
            opt.zero_grad()
            (self(x) * float("nan")).backward()
            opt.step()
            return {"loss": float("nan")}
        if cfg.extra.get("poison_at") == step + 1:
            # finite loss but weights silently become NaN (caught when checkpointing)
            with torch.no_grad():
                self.net[0].weight.fill_(float("nan"))
            return {"loss": 1.0}
        logs = super().train_step(x, y, optimizers, step, cfg)
        logs["lr"] = optimizers["model"].param_groups[0]["lr"]
        logs["beta1"] = optimizers["model"].param_groups[0]["betas"][0]
        return logs

    @torch.no_grad()
    def sample(self, n, *, generator=None, labels=None):
        return self.net(torch.randn(n, 2, generator=generator))


def build_model(config, data_shape, num_classes=None):
    return Toy(config, data_shape, num_classes)


PRESETS = {}


@pytest.fixture
def toy_family(monkeypatch):
    """Register this module as the ``toy`` family so load_baseline can rebuild the model."""
    monkeypatch.setitem(FAMILIES, "toy", __name__)
    sys.modules.setdefault(__name__, sys.modules[__name__])


DATA = DataSplit("toydata", "train", torch.randn(200, 2, generator=torch.Generator().manual_seed(5)))


def make_trainer(ckpt=None, *, seed=0, steps=30, model_cfg=None, dataset_kwargs=None, **cfg):
    torch.manual_seed(seed)
    model = Toy(model_cfg or {"hidden": 16}, (2,))
    settings = {"steps": steps, "batch_size": 16, "lr": 1e-2, "ckpt_every": 10, "log_every": 5, "seed": seed,
                "device": "cpu", **cfg}
    tcfg = TrainConfig(**settings)
    return Trainer(model, DATA, tcfg, checkpoint=ckpt, dataset_kwargs=dataset_kwargs, progress=False)


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# --- determinism ------------------------------------------------------------------------

def test_same_seed_same_run_and_other_seed_differs():
    r1 = make_trainer(seed=3).fit()
    r2 = make_trainer(seed=3).fit()
    r3 = make_trainer(seed=4).fit()
    assert r1.history == r2.history
    assert [h["step"] for h in r1.history] == [5, 10, 15, 20, 25, 30]
    assert_same_weights(weights(r1.model), weights(r2.model))
    assert r1.history != r3.history
    assert r1.history[-1]["loss"] < r1.history[0]["loss"]  # it does learn


# --- resume -----------------------------------------------------------------------------

def test_stop_and_resume_matches_uninterrupted(tmp_path):
    full = make_trainer(steps=30).fit()
    ckpt = str(tmp_path / "run.pt")
    first = make_trainer(ckpt, steps=30).fit(max_steps=13)
    assert first.step == 13 and read_checkpoint(ckpt)["step"] == 13
    resumed = make_trainer(ckpt, steps=30).fit()  # a new trainer, a new model, same checkpoint
    assert resumed.step == 30
    assert resumed.history == full.history
    assert_same_weights(weights(resumed.model), weights(full.model))


def test_kill_loses_nothing_before_last_checkpoint(tmp_path):
    full = make_trainer(steps=30).fit()
    ckpt = str(tmp_path / "run.pt")
    with pytest.raises(KeyboardInterrupt):
        make_trainer(ckpt, steps=30, extra={"kill_at": 17}).fit()
    state = read_checkpoint(ckpt)
    assert state["step"] == 10  # the last checkpoint before the kill (ckpt_every=10)
    assert [h["step"] for h in state["history"]] == [5, 10]
    t = make_trainer(ckpt, steps=30)
    assert t.try_resume() and t.step == 10
    resumed = make_trainer(ckpt, steps=30).fit()
    assert resumed.history == full.history
    assert_same_weights(weights(resumed.model), weights(full.model))


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    import torch
    import test_trainer as t
    class Slow(t.Toy):
        def train_step(self, *a, **k):
            time.sleep(0.02)
            return super().train_step(*a, **k)
    torch.manual_seed(0)
    model = Slow({{"hidden": 16}}, (2,))
    cfg = t.TrainConfig(steps=100000, batch_size=16, lr=1e-2, ckpt_every=10, log_every=5, seed=0, device="cpu")
    t.Trainer(model, t.DATA, cfg, checkpoint={ckpt!r}, progress=False).fit()
""")


@pytest.mark.slow
def test_sigkill_during_training_leaves_a_readable_checkpoint(tmp_path):
    """A real SIGKILL of a training process: the checkpoint on disk is whole and resumable."""
    ckpt = str(tmp_path / "killed.pt")
    script = KILL_SCRIPT.format(tests=os.path.dirname(__file__), ckpt=ckpt)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            if os.path.exists(ckpt):
                try:
                    if read_checkpoint(ckpt)["step"] >= 20:
                        break
                except ModelError:
                    pass  # cannot happen with atomic writes; the assertion below checks it
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    state = read_checkpoint(ckpt)
    assert state["step"] % 10 == 0 and state["step"] >= 20
    # the resumed run continues exactly where the uninterrupted one would be
    k = state["step"]
    resumed = make_trainer(ckpt, steps=k + 10).fit()
    full = make_trainer(steps=k + 10).fit()
    assert resumed.history == full.history
    assert_same_weights(weights(resumed.model), weights(full.model))


def test_resume_with_another_model_config_is_an_error(tmp_path):
    ckpt = str(tmp_path / "run.pt")
    make_trainer(ckpt, steps=10).fit()
    with pytest.raises(ModelError, match="different model config"):
        make_trainer(ckpt, steps=20, model_cfg={"hidden": 8}).fit()


def test_finished_run_is_not_trained_again(tmp_path):
    ckpt = str(tmp_path / "run.pt")
    first = make_trainer(ckpt, steps=10).fit()
    again = make_trainer(ckpt, steps=10).fit()
    assert again.step == 10 and again.history == first.history
    assert_same_weights(weights(again.model), weights(first.model))


# --- checkpoint errors --------------------------------------------------------------------

def test_checkpoint_of_another_family_is_a_clear_error(tmp_path):
    ckpt = str(tmp_path / "run.pt")
    make_trainer(ckpt, steps=5).fit()
    state = torch.load(ckpt, weights_only=True)
    state["family"] = "vae"
    torch.save(state, ckpt)
    with pytest.raises(ModelError, match="'vae' checkpoint, not 'toy'"):
        make_trainer(ckpt, steps=10).fit()
    with pytest.raises(ModelError, match="'vae' checkpoint, not 'flow'"):
        read_checkpoint(ckpt, family="flow")


def test_checkpoint_of_another_format_version_is_a_clear_error(tmp_path):
    ckpt = str(tmp_path / "run.pt")
    make_trainer(ckpt, steps=5).fit()
    state = torch.load(ckpt, weights_only=True)
    state["version"] = FORMAT_VERSION + 1
    torch.save(state, ckpt)
    with pytest.raises(ModelError, match=f"format version {FORMAT_VERSION + 1}, this dgmbench reads versions 1, {FORMAT_VERSION}"):
        make_trainer(ckpt, steps=10).fit()
    with pytest.raises(ModelError, match="format version"):
        load_baseline(ckpt)


def test_foreign_and_corrupt_files_are_clear_errors(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(ModelError, match="not a dgmbench baseline checkpoint"):
        read_checkpoint(str(other))
    ckpt = tmp_path / "run.pt"
    make_trainer(str(ckpt), steps=5).fit()
    data = ckpt.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint\n" * 10)
    for bad in (truncated, garbage):
        with pytest.raises(ModelError, match=f"{bad.name} is not a dgmbench baseline checkpoint: it is corrupt"):
            read_checkpoint(str(bad))
        with pytest.raises(ModelError, match="corrupt"):
            load_baseline(str(bad))
    with pytest.raises(ModelError, match="does not exist"):
        load_baseline(str(tmp_path / "missing.pt"))


def test_unknown_family_in_checkpoint_is_a_model_error(tmp_path):
    ckpt = str(tmp_path / "run.pt")
    save_checkpoint(ckpt, {"family": "nosuchfamily", "config": {}, "data_shape": [2], "model": {}})
    with pytest.raises(ModelError, match="unknown baseline family 'nosuchfamily'"):
        load_baseline(ckpt)


def test_load_baseline_round_trip(tmp_path, toy_family):
    ckpt = str(tmp_path / "run.pt")
    res = make_trainer(ckpt, steps=10).fit()
    model = load_baseline(ckpt)
    assert isinstance(model, Toy) and not model.training and model.diverged is None
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    assert torch.equal(model.sample(5, generator=g()), res.model.sample(5, generator=g()))
    assert [h["step"] for h in model.train_history] == [5, 10]


def test_checkpoint_records_the_dataset_options_only_when_set(tmp_path):
    """--adopt compares them with a preset's; a run without options keeps the key out (and its bytes)."""
    plain, subset = str(tmp_path / "plain.pt"), str(tmp_path / "subset.pt")
    make_trainer(plain, steps=5).fit()
    make_trainer(subset, steps=5, dataset_kwargs={"n": 200}).fit()
    assert "dataset_kwargs" not in read_checkpoint(plain)
    assert read_checkpoint(subset)["dataset_kwargs"] == {"n": 200}
    with pytest.raises(ModelError, match="dataset options"):  # resuming on other data is refused
        make_trainer(subset, steps=10).fit()


def test_atomic_save_never_leaves_temporary_files(tmp_path):
    ckpt = str(tmp_path / "run.pt")
    make_trainer(ckpt, steps=30).fit()
    assert sorted(os.listdir(tmp_path)) == ["run.pt"]


# --- EMA ----------------------------------------------------------------------------------

def test_ema_follows_its_recurrence_and_survives_resume(tmp_path):
    decay = 0.9
    t = make_trainer(steps=12, ema_decay=decay)
    expected = {k: v.clone() for k, v in t.model.named_parameters()}
    for _ in range(12):  # fit can be called again: the trainer keeps its own (non-EMA) weights
        res = t.fit(max_steps=1)
        for k, p in t.model.named_parameters():
            expected[k] = decay * expected[k] + (1 - decay) * p.detach()
    ema_params = dict(res.model.named_parameters())
    assert res.model is not t.model
    for k in expected:
        torch.testing.assert_close(ema_params[k], expected[k], rtol=1e-5, atol=1e-6)
        assert not torch.allclose(ema_params[k], dict(t.model.named_parameters())[k])
    # EMA state is checkpointed: stop at 5, resume, and get the uninterrupted EMA exactly
    ckpt = str(tmp_path / "ema.pt")
    make_trainer(ckpt, steps=12, ema_decay=decay).fit(max_steps=5)
    resumed = make_trainer(ckpt, steps=12, ema_decay=decay).fit()
    full = make_trainer(steps=12, ema_decay=decay).fit()
    assert_same_weights(weights(resumed.model), weights(full.model))


def test_load_baseline_prefers_ema_weights(tmp_path, toy_family):
    ckpt = str(tmp_path / "ema.pt")
    res = make_trainer(ckpt, steps=10, ema_decay=0.8).fit()
    assert_same_weights(weights(load_baseline(ckpt)), weights(res.model))
    raw = load_baseline(ckpt, use_ema=False)
    assert_same_weights(weights(raw), read_checkpoint(ckpt)["model"])
    assert not torch.equal(raw.net[0].weight, res.model.net[0].weight)


# --- learning-rate schedule ---------------------------------------------------------------

def test_warmup_and_cosine_schedule():
    cfg = TrainConfig(steps=20, lr=0.1, warmup_steps=4, lr_decay="cosine")
    assert [cfg.lr_factor(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert cfg.lr_factor(4) == pytest.approx(1.0)
    assert cfg.lr_factor(12) == pytest.approx(0.5 * (1 + math.cos(math.pi * 8 / 16)))
    assert cfg.lr_factor(20) == pytest.approx(0.0, abs=1e-12)
    res = make_trainer(steps=20, log_every=1, warmup_steps=4, lr_decay="cosine").fit()
    lrs = [h["lr"] for h in res.history]
    assert lrs == pytest.approx([1e-2 * cfg.lr_factor(s) for s in range(20)])
    with pytest.raises(UsageError, match="lr_decay"):
        TrainConfig.from_dict({"lr_decay": "linear"})
    with pytest.raises(UsageError, match="unknown train settings"):
        TrainConfig.from_dict({"stepz": 3})


STAGES = [{"steps": 8}, {"steps": 12, "lr": 0.05, "betas": (0.0, 0.9), "lr_decay": "cosine"}]


def test_stages_schedule_lr_and_betas_and_resume(tmp_path):
    """Two stages: lr 1e-2 with betas (0.9, 0.999) for 8 steps, then lr 5e-2 with betas (0, 0.9) on a
    cosine to 0 over 12 steps; the optimiser sees exactly those values and a resumed run follows them."""
    cfg = TrainConfig.from_dict({"steps": 20, "lr": 1e-2, "stages": STAGES})
    want_lr = [1e-2] * 8 + [5e-2 * 0.5 * (1 + math.cos(math.pi * k / 12)) for k in range(12)]
    assert [1e-2 * cfg.lr_factor(s) for s in range(20)] == pytest.approx(want_lr)
    kw = {"steps": 20, "log_every": 1, "stages": cfg.stages}
    full = make_trainer(**kw).fit()
    assert [h["lr"] for h in full.history] == pytest.approx(want_lr)
    assert [h["beta1"] for h in full.history] == [0.9] * 8 + [0.0] * 12
    ckpt = str(tmp_path / "staged.pt")
    make_trainer(ckpt, **kw).fit(max_steps=11)  # stopped inside the second stage
    resumed = make_trainer(ckpt, **kw).fit()
    assert resumed.history == full.history
    assert_same_weights(weights(resumed.model), weights(full.model))


def test_stages_rescale_to_another_length_and_reject_bad_settings():
    short = TrainConfig.from_dict({"steps": 10, "lr": 1e-2, "stages": STAGES})  # e.g. --steps 10
    assert [st["steps"] for st in short.stages] == [4, 6]
    assert short.stages[1]["lr"] == 0.05
    with pytest.raises(UsageError, match="unknown settings"):
        TrainConfig.from_dict({"steps": 4, "stages": [{"steps": 4, "momentum": 0.9}]})
    with pytest.raises(UsageError, match="positive integer"):
        TrainConfig.from_dict({"steps": 4, "stages": [{"steps": 0}, {"steps": 4}]})
    with pytest.raises(UsageError, match="lr_decay"):
        TrainConfig.from_dict({"steps": 4, "stages": [{"steps": 4, "lr_decay": "step"}]})
    with pytest.raises(UsageError, match="replace warmup_steps"):
        TrainConfig.from_dict({"steps": 4, "lr_decay": "cosine", "stages": [{"steps": 4}]})
    with pytest.raises(UsageError, match="cannot be split"):
        TrainConfig.from_dict({"steps": 1, "stages": STAGES})


# --- divergence ---------------------------------------------------------------------------

def test_diverged_run_is_detected_and_keeps_last_good_checkpoint(tmp_path, toy_family):
    ckpt = str(tmp_path / "div.pt")
    res = make_trainer(ckpt, steps=30, extra={"nan_at": 14}).fit()
    assert res.diverged and res.step == 14
    assert res.history[-1]["diverged"] == 1.0 and math.isnan(res.history[-1]["loss"])
    state = read_checkpoint(ckpt)
    assert state["diverged"]["step"] == 14 and math.isnan(state["diverged"]["loss"])
    assert state["step"] == 10  # the weights are the last good checkpoint's, not NaN
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    good = make_trainer(steps=10).fit()
    assert_same_weights(state["model"], weights(good.model))
    # fitting again does not train on from a diverged run
    again = make_trainer(ckpt, steps=30).fit()
    assert again.diverged and again.step == 10
    with pytest.warns(UserWarning, match="diverged at step 14"):
        model = load_baseline(ckpt)
    assert model.diverged["step"] == 14


def test_nan_weights_are_never_checkpointed(tmp_path):
    ckpt = str(tmp_path / "poison.pt")
    res = make_trainer(ckpt, steps=30, extra={"poison_at": 20}).fit()
    assert res.diverged and res.step == 20  # finite loss, but caught before writing the checkpoint
    state = read_checkpoint(ckpt)
    assert state["step"] == 10 and state["diverged"]["step"] == 20
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_cli_reports_unknown_family_with_usage_exit_code(capsys):
    from baselines.__main__ import main

    assert main(["train", "nosuch", "--preset", "digits"]) == 2
    assert "unknown family 'nosuch'" in capsys.readouterr().err


def test_stripped_checkpoint_evaluates_and_adopts_but_does_not_resume(tmp_path):
    """`python -m baselines strip`: a finished model without optimiser state (smaller) loads with the same
    weights and a finished run 'resumes' to itself; a longer run from it and stripping an unfinished
    checkpoint are one-line ModelErrors."""
    ckpt, out = str(tmp_path / "flow.pt"), str(tmp_path / "flow-stripped.pt")
    train_preset("flow", "ring8-tiny", checkpoint=ckpt, progress=False, overrides={"train": {"steps": 30}})
    assert baselines_main(["strip", ckpt, out]) == 0
    assert os.path.getsize(out) < 0.6 * os.path.getsize(ckpt)
    full, stripped = read_checkpoint(ckpt), read_checkpoint(out)
    assert stripped["optimizers"] == {} and stripped["step"] == full["step"] == 30
    assert all(torch.equal(full["model"][k], stripped["model"][k]) for k in full["model"])
    a, b = load_baseline(ckpt), load_baseline(out)
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a.log_likelihood(x)[0], b.log_likelihood(x)[0])
    res = train_preset("flow", "ring8-tiny", checkpoint=out, progress=False, overrides={"train": {"steps": 30}})
    assert res.step == 30  # finished: nothing to resume
    with pytest.raises(ModelError, match="holds no optimiser state .* cannot resume training from step 30 to 40"):
        train_preset("flow", "ring8-tiny", checkpoint=out, progress=False, overrides={"train": {"steps": 40}})
    half = dict(full, step=10)
    save_checkpoint(str(tmp_path / "half.pt"), {k: v for k, v in half.items() if k not in ("format", "version")})
    with pytest.raises(ModelError, match="stopped at step 10 of 30"):
        strip_optimizer_state(str(tmp_path / "half.pt"), str(tmp_path / "x.pt"))
