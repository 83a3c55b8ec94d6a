"""The benchmark tooling: the offline bundle for GPU/air-gapped machines, the summary tables, the image sets."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_inputs  # noqa: E402
import offline_bundle  # noqa: E402
import summarize  # noqa: E402


# --- image sets ---------------------------------------------------------------------------------
def test_distinct_images_are_the_sets_the_cpu_figures_used(offline_dir):
    with np.load(offline_dir / "cifar10-subset" / "cifar10_train_first4000.npz") as z:
        train = torch.from_numpy(z["data"].reshape(-1, 3, 32, 32).copy())
    shifted = torch.cat([train[:2000, :, :, :1].expand(-1, -1, -1, 2), train[:2000, :, :, :-2]], dim=3)
    assert torch.equal(bench_inputs.distinct_images(train, 10_000), torch.cat([train, train.flip(-1), shifted]))
    assert torch.equal(bench_inputs.distinct_images(train, 5000), torch.cat([train, train[:1000].flip(-1)]))


def test_distinct_images_from_fewer_images_has_no_repeats():
    g = torch.Generator().manual_seed(0)
    u8 = torch.randint(0, 256, (20, 3, 8, 8), dtype=torch.uint8, generator=g)
    out = bench_inputs.distinct_images(u8, 100)
    assert out.shape == (100, 3, 8, 8)
    assert len({x.numpy().tobytes() for x in out}) == 100
    with pytest.raises(ValueError, match="at most 100"):
        bench_inputs.distinct_images(u8, 101)


# --- offline bundle -----------------------------------------------------------------------------
@pytest.fixture
def bundle_inputs(tmp_path, monkeypatch):
    """A fake Inception state dict (torch-fidelity key layout, NaN classifier) and a small CIFAR folder."""
    g = torch.Generator().manual_seed(0)
    sd = {
        "Mixed_7c.branch_pool.conv.weight": torch.randn(4, 3, 1, 1, generator=g),
        "Mixed_7c.branch_pool.bn.running_var": torch.rand(4, generator=g) + 1e-3,
        "Mixed_7c.branch_pool.bn.num_batches_tracked": torch.tensor(0),
        "fc.weight": torch.full((6, 4), float("nan")),
        "fc.bias": torch.full((6,), float("nan")),
    }
    weights = tmp_path / "weights.pt"
    torch.save(sd, weights)
    data = tmp_path / "cifar"
    data.mkdir()
    rng = np.random.default_rng(0)
    np.savez(data / bench_inputs.TEST_FILE, data=rng.integers(0, 256, (10, 3072), dtype=np.uint8),
             labels=np.arange(10))
    np.savez(data / "cifar10_train_first30.npz", data=rng.integers(0, 256, (30, 3072), dtype=np.uint8),
             labels=np.arange(30))
    monkeypatch.setattr(bench_inputs, "FOLDER", data)
    return weights, sd, data


def test_bundle_round_trip(bundle_inputs, tmp_path, monkeypatch):
    weights, sd, data = bundle_inputs
    m = offline_bundle.pack(tmp_path / "b", weights=str(weights), train_images=20, wheels=())
    assert set(m["files"]) == {"inception-fp16.pt", "cifar/cifar10_test_first1000.npz",
                               "cifar/cifar10_train_first20.npz"}
    stored = torch.load(tmp_path / "b" / "inception-fp16.pt", weights_only=True)
    assert "fc.weight" not in stored  # NaN placeholders are not carried
    env = offline_bundle.unpack(tmp_path / "b", tmp_path / "w")
    back = torch.load(env["DGMBENCH_BENCH_WEIGHTS"], weights_only=True)
    assert set(back) == set(sd)
    for k, v in sd.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        if v.is_floating_point() and not k.startswith("fc."):
            assert torch.allclose(back[k], v, rtol=2.0**-11, atol=0)  # one rounding to float16
            assert not torch.equal(back[k], v)
    assert torch.isnan(back["fc.weight"]).all()
    monkeypatch.setattr(bench_inputs, "FOLDER", Path(env["DGMBENCH_BENCH_DATA"]))
    assert bench_inputs.cifar_train_u8().shape == (20, 3, 32, 32)
    with np.load(data / "cifar10_train_first30.npz") as z:
        assert torch.equal(bench_inputs.cifar_train_u8().reshape(20, -1), torch.from_numpy(z["data"][:20]))
    assert bench_inputs.cifar_test_u8().shape == (10, 3, 32, 32)


def test_fp32_bundle_is_exact(bundle_inputs, tmp_path):
    weights, sd, _ = bundle_inputs
    offline_bundle.pack(tmp_path / "b", weights=str(weights), weights_dtype="fp32", train_images=5, wheels=())
    back = torch.load(offline_bundle.unpack(tmp_path / "b", tmp_path / "w")["DGMBENCH_BENCH_WEIGHTS"],
                      weights_only=True)
    assert torch.equal(back["Mixed_7c.branch_pool.conv.weight"], sd["Mixed_7c.branch_pool.conv.weight"])


def test_bundle_errors_say_what_to_do(bundle_inputs, tmp_path):
    weights, _, _ = bundle_inputs
    b = tmp_path / "b"
    offline_bundle.pack(b, weights=str(weights), train_images=5, wheels=())
    with pytest.raises(offline_bundle.BundleError, match="not empty"):
        offline_bundle.pack(b, weights=str(weights), wheels=())
    with pytest.raises(offline_bundle.BundleError, match="only 30 offline training images"):
        offline_bundle.pack(tmp_path / "c", weights=str(weights), train_images=31, wheels=())
    target = b / "cifar" / "cifar10_train_first5.npz"
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    target.write_bytes(bytes(raw))
    with pytest.raises(offline_bundle.BundleError, match="cifar10_train_first5.npz is corrupt"):
        offline_bundle.unpack(b, tmp_path / "w")
    target.unlink()
    with pytest.raises(offline_bundle.BundleError, match="missing"):
        offline_bundle.verify(b)
    assert offline_bundle.main(["unpack", str(tmp_path / "nothing"), "--out", str(tmp_path / "w")]) == 2


# --- summary tables -----------------------------------------------------------------------------
def _case(name: str, group: str, **extra) -> dict:
    return {"name": name, "group": group, "extra_info": extra, "stats": {"median": 1.5}}


def test_summary_puts_the_peers_side_by_side_with_ratios(tmp_path):
    feats = dict(size=299, batch_size=250, opts=[], arithmetic="tf32", device="cuda", device_name="NVIDIA H100")
    cases = [
        _case("test_extract[dgmbench-bs250-299px]", "g", impl="dgmbench", images_per_s=3000.0, achieved_tflops=34.3,
              fraction_of_peak=0.0693, **feats),
        _case("test_extract[torch-fidelity-bs250-299px]", "g", impl="torch-fidelity", images_per_s=1200.0, **feats),
        _case("test_fid_kid_end_to_end[dgmbench]", "e2e", impl="dgmbench", wall_s=10.0, cpu_s=9.0, images_per_s=5.0,
              fid=30.0, kid=1e-3),
        _case("test_fid_kid_end_to_end[torch-fidelity]", "e2e", impl="torch-fidelity", wall_s=25.0, cpu_s=20.0,
              images_per_s=2.0, fid=30.0, kid=1e-3),
        _case("test_something_new[x]", "other"),
    ]
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"benchmarks": cases, "datetime": "now", "commit_info": {"id": "abcdef0123456789"}}))
    md = summarize.summarize([path], "NVIDIA H100 80GB HBM3")
    row = next(line for line in md.splitlines() if line.startswith("| NVIDIA H100 | 299x299"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[5:10] == ["3,000", "1,200", "2.50x", "34.3", "6.9%"]
    e2e = next(line for line in md.splitlines() if line.startswith("| e2e | dgmbench"))
    assert "2.50x" in e2e
    assert "## Other cases" in md and "test_something_new[x]" in md
    assert "abcdef0123" in md and "NVIDIA H100 80GB HBM3" in md


# --- the GPU suite, run small on the CPU --------------------------------------------------------
@pytest.mark.slow
def test_gpu_suite_runs_and_summarises_on_cpu(offline_dir, tmp_path):
    """benchmarks/gpu_suite.sh end to end at toy sizes on the CPU: the feature run (both implementations, two
    input sizes) and the sampling run (ring8) finish, and summary.md holds their tables with ratios."""
    import os
    import shutil
    import subprocess

    if shutil.which("bash") is None or shutil.which("timeout") is None:
        pytest.skip("needs bash and coreutils' timeout")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable, "DGMBENCH_BENCH_DEVICE": "cpu", "DGMBENCH_BENCH_N": "2",
           "BATCHES": "2", "ROUNDS": "1", "PRESETS": "ring8", "SAMPLING_BS": "8",
           "SKIP": "features-tf32 features-bf16 precision cli10k", "OMP_NUM_THREADS": "1",
           "DGMBENCH_BENCH_DATA": str(offline_dir / "cifar10-subset")}
    proc = subprocess.run(["bash", str(BENCH / "gpu_suite.sh"), "all", str(out)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert {p.name for p in out.glob("*.json")} == {"features.json", "sampling.json"}
    md = (out / "summary.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| cpu | ")]
    assert {r.split("|")[2].strip() for r in rows} == {"32x32", "299x299"}
    for r in rows:
        cells = [c.strip() for c in r.strip("|").split("|")]
        assert cells[5] != "-" and cells[6] != "-" and cells[7].endswith("x")  # both sides measured, a ratio
    assert "## Sampling speed of every baseline" in md and "| ring8 | diffusion |" in md
