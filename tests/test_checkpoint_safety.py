"""Checkpoints load safely: a real baseline round-trips, the old format still loads, and no
file handed to dgmbench as a checkpoint can run code.

The hostile files carry a ``__reduce__`` payload that creates a marker file when
unpickled; a control test shows the payload does run under a plain (unsafe) unpickle, so
"the marker does not exist" is a test that can fail.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from baselines.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    MODEL_HINT,
    checkpoint_kind,
    checkpoint_sha256,
    is_baseline_checkpoint,
    load_baseline,
    read_checkpoint,
    save_checkpoint,
)
from dgmbench.errors import ModelError

pytestmark = pytest.mark.slow  # trains a tiny flow for a few steps

REPO_ROOT = Path(__file__).resolve().parents[1]


def save_checkpoint_v1(path: str | Path, state: dict) -> None:
    """Frozen copy of the format-1 writer (baselines/checkpoint.py at 340e0e2), minus the atomic rename."""
    state = {"format": "dgmbench-baseline", "version": 1, **state}
    with open(path, "wb") as f:
        torch.save(state, f)


class Payload:
    """Unpickling this creates ``marker`` (the stand-in for arbitrary code)."""

    def __init__(self, marker: Path, via: str = "system"):
        self.marker, self.via = str(marker), via

    def __reduce__(self):
        if self.via == "system":
            return (os.system, (f"touch '{self.marker}'",))
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real flow baseline (preset digits-tiny, 3 steps) written by today's trainer."""
    from baselines.train import train_preset

    folder = tmp_path_factory.mktemp("ckpt")
    path = folder / "flow.pt"
    res = train_preset("flow", "digits-tiny", checkpoint=str(path), overrides={"train": {"steps": 3}}, progress=False)
    return path, res


def _weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _samples(model, seed: int = 0) -> torch.Tensor:
    return model.sample(4, generator=torch.Generator().manual_seed(seed))


def test_round_trip_of_a_real_baseline(trained):
    path, res = trained
    state = read_checkpoint(str(path), family="flow")
    assert state["format"] == FORMAT and state["version"] == FORMAT_VERSION == 2 and state["step"] == 3
    model = load_baseline(str(path))
    want = _weights(res.model)
    got = _weights(model)
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    assert torch.equal(_samples(model), _samples(res.model.eval()))
    # the file is a plain weights_only archive: torch's own safe loader reads it with no allow-list
    assert torch.load(path, weights_only=True)["family"] == "flow"


def test_format_1_checkpoints_still_load_and_resume(trained, tmp_path):
    path, res = trained
    state = read_checkpoint(str(path))
    state = {k: v for k, v in state.items() if k not in ("format", "version")}  # what Trainer.state() returns
    old = tmp_path / "old.pt"
    save_checkpoint_v1(old, state)
    assert read_checkpoint(str(old))["version"] == 1 and checkpoint_kind(old) == "dgmbench"
    v1, v2 = load_baseline(str(old)), load_baseline(str(path))
    a, b = _weights(v1), _weights(v2)
    assert all(torch.equal(a[k], b[k]) for k in b)
    assert torch.equal(_samples(v1), _samples(v2))
    # the trainer resumes from a format-1 file and rewrites it in the current format
    from baselines.train import train_preset

    more = train_preset("flow", "digits-tiny", checkpoint=str(old), overrides={"train": {"steps": 4}}, progress=False)
    assert more.step == 4 and read_checkpoint(str(old))["version"] == FORMAT_VERSION


def test_writer_refuses_objects_the_safe_loader_would_refuse(tmp_path):
    path = tmp_path / "c.pt"
    for bad in ({"config": {"a": np.zeros(2)}}, {"config": {"s": {1, 2}}}, {"history": [Payload(tmp_path / "m")]}):
        with pytest.raises(TypeError, match="holds only tensors"):
            save_checkpoint(str(path), {"family": "flow", **bad})
    assert not path.exists() and not list(tmp_path.iterdir())  # nothing written, no temporary file left


def test_checkpoint_sha256_is_the_file_hash(trained, tmp_path):
    path, _ = trained
    assert checkpoint_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    copy = tmp_path / "copy.pt"
    data = bytearray(path.read_bytes())
    data[-30] ^= 1
    copy.write_bytes(bytes(data))
    assert checkpoint_sha256(copy) != checkpoint_sha256(path)
    with pytest.raises(ModelError, match="does not exist"):
        checkpoint_sha256(tmp_path / "missing.pt")


# --- hostile and foreign files --------------------------------------------------------------

def _make(kind: str, folder: Path, marker: Path, real: Path) -> Path:
    """Write one hostile or foreign file named after ``kind``."""
    p = folder / f"{kind}.pt"
    if kind == "evil-tagged":  # looks like a dgmbench checkpoint; the payload sits in its config
        torch.save({"format": FORMAT, "version": FORMAT_VERSION, "family": "flow", "config": Payload(marker)}, p)
    elif kind == "evil-zip":
        torch.save(Payload(marker), p)
    elif kind == "evil-raw-p2":
        p.write_bytes(pickle.dumps(Payload(marker, via="open"), protocol=2))
    elif kind == "evil-raw-p5":
        p.write_bytes(pickle.dumps({"format": FORMAT, "model": Payload(marker)}, protocol=5))
    elif kind == "numpy-inside":  # harmless, but an object the safe loader refuses
        torch.save({"format": FORMAT, "version": FORMAT_VERSION, "rng": np.random.RandomState(0).get_state()}, p)
    elif kind == "state-dict":
        torch.save({"weight": torch.zeros(3, 2), "bias": torch.zeros(3)}, p)
    elif kind == "tensor":
        torch.save(torch.zeros(4, 1, 8, 8), p)
    elif kind == "random-bytes":
        p.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "truncated":
        data = real.read_bytes()
        p.write_bytes(data[: len(data) // 2])
    else:
        raise AssertionError(kind)
    return p


UNSAFE = ["evil-tagged", "evil-zip", "evil-raw-p2", "evil-raw-p5", "numpy-inside"]
SAFE_OTHER = ["state-dict", "tensor"]
UNREADABLE = ["random-bytes", "empty", "truncated"]


def test_control_the_payload_runs_when_unpickled_unsafely(tmp_path):
    marker = tmp_path / "ran"
    p = _make("evil-zip", tmp_path, marker, Path())
    torch.load(p, weights_only=False)  # what read_checkpoint did before
    assert marker.exists()
    marker.unlink()
    pickle.loads(_make("evil-raw-p2", tmp_path, marker, Path()).read_bytes())
    assert marker.exists()


@pytest.mark.parametrize("kind", UNSAFE + SAFE_OTHER + UNREADABLE)
def test_foreign_file_is_one_clear_model_error_and_never_runs(kind, trained, tmp_path):
    marker = tmp_path / "ran"
    p = _make(kind, tmp_path, marker, trained[0])
    for load in (read_checkpoint, load_baseline):
        with pytest.raises(ModelError) as ei:
            load(str(p))
        msg = str(ei.value)
        assert msg.startswith(f"{p} is not a dgmbench baseline checkpoint: ") and "\n" not in msg, msg
        assert msg.endswith(MODEL_HINT)
        if kind in UNSAFE:
            assert "never unpickles" in msg and "nothing in it ran" in msg
        if kind in UNREADABLE:
            assert "corrupt, truncated or not a torch file" in msg
    # the tri-state: a dgmbench checkpoint / another safe torch file / unreadable; an unsafe pickle raises
    if kind in UNSAFE:
        with pytest.raises(ModelError, match="never unpickles"):
            checkpoint_kind(p)
        with pytest.raises(ModelError, match="never unpickles"):
            is_baseline_checkpoint(p)
    else:
        assert checkpoint_kind(p) == ("other" if kind in SAFE_OTHER else "unreadable")
        assert is_baseline_checkpoint(p) is False
    assert not marker.exists()


def test_tri_state_of_a_real_checkpoint(trained):
    assert checkpoint_kind(trained[0]) == "dgmbench" and is_baseline_checkpoint(trained[0]) is True


def test_dgmbench_score_model_evil_exits_3_without_running_it(tmp_path, capsys):
    """``dgmbench score --model evil.pt``: the model resolver asks is_baseline_checkpoint, which refuses."""
    from dgmbench.cli import main

    marker = tmp_path / "ran"
    for kind in ("evil-tagged", "evil-raw-p2"):
        p = _make(kind, tmp_path, marker, Path())
        assert main(["score", "--model", str(p), "--dataset", "digits", "--metrics", "fid", "-n", "10"]) == 3
        err = capsys.readouterr().err.strip()
        assert "never unpickles" in err and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert not marker.exists()


def _baselines_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "baselines", "eval", *args], capture_output=True, text=True,
                          env=env, cwd=REPO_ROOT, timeout=300)


def test_baselines_eval_cli_refuses_evil_file_and_still_evaluates_a_real_one(trained, tmp_path):
    marker = tmp_path / "ran"
    evil = _make("evil-tagged", tmp_path, marker, Path())
    r = _baselines_cli(str(evil))
    assert r.returncode == 3, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {evil} is not a dgmbench baseline checkpoint"), r.stderr
    assert "Traceback" not in r.stderr + r.stdout and not marker.exists()
    ok = _baselines_cli(str(trained[0]), "--n", "8")  # control: the same command on a real checkpoint
    assert ok.returncode == 0, ok.stderr
    assert "bits/dim" in ok.stdout or "bpd" in ok.stdout, ok.stdout
