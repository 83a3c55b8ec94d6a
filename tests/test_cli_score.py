"""`dgmbench score` on a samples file, an image folder, an import string and a baseline checkpoint; `dgmbench stats`."""

import json
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from dgmbench.cli import main
from dgmbench.data.registry import get_dataset
from dgmbench.results import RecordStore


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("DGMBENCH_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def samples():
    x = get_dataset("digits", "train").data[:120]
    g = torch.Generator().manual_seed(0)
    return (x + 0.05 * torch.rand(x.shape, generator=g)).clamp(0, 1)


def test_score_npz_table_store_and_json(tmp_path, samples, capsys):
    path = tmp_path / "gen.npz"
    np.savez(path, images=samples.numpy())
    store = tmp_path / "results.jsonl"
    rc = main(["score", "--samples", str(path), "--dataset", "digits", "--extractor", "raw", "--metrics",
               "fid,kid,prdc", "--kid-subsets", "5", "--store", str(store), "--no-progress", "--name", "noisy"])
    out = capsys.readouterr().out
    assert rc == 0
    for word in ("fid", "kid", "precision", "coverage", "interval / std", "noisy on digits:test", "appended"):
        assert word in out
    recs = RecordStore(store).load()
    assert len(recs) == 1 and recs[0].model == "noisy" and recs[0].n_samples == 120
    fid_line = next(line for line in out.splitlines() if line.startswith("fid "))
    assert f"{recs[0].value('fid'):.5g}" in fid_line
    rc = main(["--json", "score", "--samples", str(path), "--dataset", "digits", "--extractor", "raw", "--metrics",
               "fid", "--fid-bootstrap", "0"])
    rec = json.loads(capsys.readouterr().out)
    assert rc == 0 and rec["metrics"]["fid"]["value"] == pytest.approx(recs[0].value("fid"), rel=1e-9)


def test_score_image_folder_equals_npz(tmp_path, samples, capsys):
    folder = tmp_path / "pngs"
    folder.mkdir()
    u8 = (samples * 255).round().to(torch.uint8)
    for i, img in enumerate(u8[:, 0].numpy()):
        Image.fromarray(img, mode="L").save(folder / f"{i}.png")
    np.savez(tmp_path / "u8.npz", images=u8.numpy())
    args = ["--dataset", "digits", "--extractor", "raw", "--metrics", "fid", "--fid-bootstrap", "0", "--no-progress"]
    assert main(["--json", "score", "--samples", str(folder), *args]) == 0
    from_folder = json.loads(capsys.readouterr().out)["metrics"]["fid"]["value"]
    assert main(["--json", "score", "--samples", str(tmp_path / "u8.npz"), *args]) == 0
    from_npz = json.loads(capsys.readouterr().out)["metrics"]["fid"]["value"]
    assert from_folder == pytest.approx(from_npz, rel=1e-9)


def test_score_import_string(tmp_path, monkeypatch, capsys):
    (tmp_path / "cligen.py").write_text(textwrap.dedent("""
        import torch
        from dgmbench.protocol import CallableModel

        def build(checkpoint=None):
            scale = 1.0 if checkpoint is None else float(open(checkpoint).read())
            return CallableModel(lambda z: torch.sigmoid(scale * z).reshape(-1, 1, 8, 8), (64,), (1, 8, 8), name="cligen")
    """))
    (tmp_path / "scale.txt").write_text("2.0")
    monkeypatch.syspath_prepend(str(tmp_path))
    base = ["--dataset", "digits", "--extractor", "raw", "--metrics", "fid,speed", "-n", "64", "--fid-bootstrap", "0",
            "--speed-batch-size", "16"]
    assert main(["--json", "score", "--model", "cligen:build", *base]) == 0
    a = json.loads(capsys.readouterr().out)
    assert main(["--json", "score", "--model", "cligen:build", "--checkpoint", str(tmp_path / "scale.txt"), *base]) == 0
    b = json.loads(capsys.readouterr().out)
    assert a["model"] == "cligen" and a["metrics"]["samples_per_s"]["value"] > 0
    assert a["metrics"]["fid"]["value"] != b["metrics"]["fid"]["value"]  # the checkpoint reached the factory



@pytest.mark.slow
def test_score_baseline_checkpoint(tmp_path, capsys):
    from baselines.checkpoint import read_checkpoint
    from baselines.train import train_preset

    ckpt = tmp_path / "flow.pt"
    train_preset("flow", "digits-tiny", checkpoint=str(ckpt), max_steps=2, progress=False)
    assert main(["--json", "score", "--model", str(ckpt), "--dataset", "digits", "--extractor", "raw",
                 "--metrics", "fid,nll", "-n", "80", "--fid-bootstrap", "0"]) == 0
    rec = json.loads(capsys.readouterr().out)
    from baselines.registry import family_module

    assert read_checkpoint(str(ckpt))["family"] == "flow"
    assert rec["metrics"]["bpd"]["kind"] == family_module("flow").LIKELIHOOD_KIND  # the model's kind is carried
    assert 0 < rec["metrics"]["bpd"]["value"] < 20 and rec["metrics"]["bpd"]["n"] == 360
    assert rec["metrics"]["fid"]["n"] == 80 and rec["model"].startswith("flow")


def test_score_errors_exit_codes(tmp_path, capsys):
    assert main(["score", "--samples", str(tmp_path / "missing.npz"), "--dataset", "digits"]) == 3
    assert "no such file" in capsys.readouterr().err
    np.savez(tmp_path / "g.npz", images=np.zeros((10, 1, 8, 8), np.float32))
    assert main(["score", "--samples", str(tmp_path / "g.npz"), "--dataset", "digits", "--metrics", "fdi"]) == 2
    assert "did you mean 'fid'" in capsys.readouterr().err
    assert main(["score", "--samples", str(tmp_path / "g.npz"), "--dataset", "digits", "--checkpoint", "x.pt"]) == 2
    assert main(["score", "--samples", str(tmp_path / "g.npz"), "--dataset", "digits", "--extractor", "raw",
                 "--metrics", "kid", "--kid-subset-size", "50", "--no-progress"]) == 3
    assert "subset size 50 is larger" in capsys.readouterr().err


def test_stats_summarises_seeds(tmp_path, capsys):
    store = tmp_path / "r.jsonl"
    model_values = []
    for seed in (0, 1, 2):
        x = torch.rand(60, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
        np.savez(tmp_path / f"s{seed}.npz", images=x.numpy())
        assert main(["score", "--samples", str(tmp_path / f"s{seed}.npz"), "--dataset", "digits", "--extractor", "raw",
                     "--metrics", "fid", "--fid-bootstrap", "0", "--seed", str(seed), "--name", "rand",
                     "--store", str(store), "--no-progress"]) == 0
    capsys.readouterr()
    model_values = [r.value("fid") for r in RecordStore(store).load()]
    assert main(["--json", "stats", str(store)]) == 0
    rows = json.loads(capsys.readouterr().out)
    row = next(r for r in rows if r["metric"] == "fid")
    assert row["count"] == 3 and row["model"] == "rand"
    assert row["mean"] == pytest.approx(np.mean(model_values)) and row["std"] == pytest.approx(np.std(model_values, ddof=1))
    assert main(["stats", str(store), "--metrics", "fid"]) == 0
    assert "rand" in capsys.readouterr().out
    assert main(["stats", str(tmp_path / "nope.jsonl")]) == 3


@pytest.mark.slow
def test_score_inception_end_to_end_tiny(tmp_path, monkeypatch, offline_dir, capsys):
    """The one Inception call of these tests: 4 real CIFAR-10 images against 4 others, offline weights."""
    import hashlib

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("DGMBENCH_OFFLINE", "1")
    with np.load(offline_dir / "cifar10-subset" / "cifar10_test_first1000.npz") as z:
        data = z["data"][:8].reshape(8, 3, 32, 32)
    np.savez(tmp_path / "gen.npz", images=data[:4])
    np.savez(tmp_path / "real.npz", images=data[4:])
    rc = main(["--json", "score", "--samples", str(tmp_path / "gen.npz"), "--dataset", f"npz:{tmp_path / 'real.npz'}",
               "--metrics", "fid,is", "--fid-bootstrap", "0", "--device", "cpu"])
    assert rc == 0
    rec = json.loads(capsys.readouterr().out)
    fid, isc = rec["metrics"]["fid"], rec["metrics"]["is"]
    from dgmbench.features.inception import converted_weights_path

    assert fid["extractor"] == "inception" and fid["value"] > 0 and fid["n"] == 4
    assert fid["extractor_sha256"] == hashlib.sha256(converted_weights_path().read_bytes()).hexdigest()
    assert fid["resize"] and "below the feature dimension" in fid["note"]
    assert isc["value"] is None and "Inception weights" in isc["note"]  # the offline weights have no logits
