"""Distributed primitives on CPU with the gloo backend: 2 processes launched by torchrun.

Checks: the chunk plan covers every sample once whatever the world size; features gathered
from 2 ranks come back in single-process order; all-reduced float64 statistics give the
single-process FID to 1e-9 relative.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

from dgmbench.distributed import chunk_generator, plan_chunks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(script: str, nproc: int, tmp_path, *args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    path = tmp_path / "worker.py"
    path.write_text(textwrap.dedent(script))
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--nnodes=1",
           "--master_addr=127.0.0.1", f"--master_port={free_port()}", str(path), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.parametrize("n,chunk,world", [(10, 3, 1), (10, 3, 2), (10, 3, 4), (7, 10, 3), (1000, 64, 2)])
def test_chunk_plan_covers_every_sample_once(n, chunk, world):
    seen = []
    for r in range(world):
        for c in plan_chunks(n, chunk, r, world):
            seen.extend(range(c.start, c.stop))
    assert sorted(seen) == list(range(n))


def test_chunk_generators_independent_of_world_size():
    a = torch.rand(5, generator=chunk_generator(3, 2))
    b = torch.rand(5, generator=chunk_generator(3, 2))
    c = torch.rand(5, generator=chunk_generator(3, 1))
    assert torch.equal(a, b) and not torch.equal(a, c)


WORKER = """
import json, sys, torch
from dgmbench import distributed as D
from dgmbench.features.stats import StreamingStats

assert D.init_from_env("cpu")
n, chunk, dim = 103, 16, 5
local = [torch.randn(len(c), dim, generator=D.chunk_generator(0, c.index)) for c in D.plan_chunks(n, chunk, D.rank(), D.world_size())]
local = torch.cat(local) if local else torch.zeros(0, dim)
stats = StreamingStats(dim).update(local).all_reduce()
full = D.gather_rows(local, n, chunk)
if D.is_main():
    json.dump({"full": full.tolist(), "n": stats.n, "mean": stats.mean.tolist(), "cov": stats.cov.tolist()}, open(sys.argv[1], "w"))
D.shutdown()
"""


@pytest.mark.slow
def test_two_gloo_ranks_match_single_process(tmp_path):
    out = tmp_path / "out.json"
    res = torchrun(WORKER, 2, tmp_path, str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(out.read_text())
    single = torch.cat([torch.randn(len(c), 5, generator=chunk_generator(0, c.index)) for c in plan_chunks(103, 16)])
    assert torch.equal(torch.tensor(got["full"]), single)
    from dgmbench.features.stats import StreamingStats
    from dgmbench.metrics.fid import frechet_distance

    ref = StreamingStats(5).update(single)
    other = StreamingStats(5).update(single[:50] * 1.1 + 0.2)
    assert got["n"] == 103
    mean = torch.tensor(got["mean"], dtype=torch.float64)
    cov = torch.tensor(got["cov"], dtype=torch.float64)
    fid_single = frechet_distance(ref.mean, ref.cov, other.mean, other.cov).value
    fid_dist = frechet_distance(mean, cov, other.mean, other.cov).value
    assert abs(fid_single - fid_dist) <= 1e-9 * abs(fid_single)


MODEL_MODULE = """
import torch
from dgmbench.protocol import CallableModel


def factory():
    w = torch.randn(16, 64, generator=torch.Generator().manual_seed(7))
    return CallableModel(lambda z: torch.sigmoid(z @ w).reshape(-1, 1, 8, 8), (16,), (1, 8, 8), name="toy-gen")
"""


@pytest.mark.slow
def test_torchrun_score_equals_single_process(tmp_path):
    """`torchrun --nproc_per_node=2 -m dgmbench score` gives the single-process Record:
    FID to 1e-9 relative, KID and precision/recall exactly (same seed, same samples)."""
    (tmp_path / "toymodel.py").write_text(MODEL_MODULE)
    store = tmp_path / "dist.jsonl"
    args = ["score", "--model", "toymodel:factory", "--dataset", "digits", "--metrics", "fid,kid,prdc",
            "-n", "2500", "--extractor", "raw", "--kid-subsets", "10", "--fid-bootstrap", "0", "--seed", "3",
            "--device", "cpu", "--no-progress", "--store", str(store)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{tmp_path}:{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
           "--master_addr=127.0.0.1", f"--master_port={free_port()}", "-m", "dgmbench", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    from dgmbench.harness import evaluate
    from dgmbench.results import RecordStore

    recs = RecordStore(store).load()
    assert len(recs) == 1, "exactly one Record, written by rank 0"
    dist_rec = recs[0]
    assert dist_rec.config["processes"] == 2
    sys.path.insert(0, str(tmp_path))
    try:
        import toymodel
    finally:
        sys.path.remove(str(tmp_path))
    single = evaluate(toymodel.factory(), "digits", metrics="fid,kid,prdc", n=2500, extractor="raw", kid_subsets=10,
                      fid_bootstrap=0, seed=3, device="cpu", progress=False)
    assert single.config["processes"] == 1
    assert dist_rec.value("fid") == pytest.approx(single.value("fid"), rel=1e-9)
    for name in ("kid", "precision", "recall", "density", "coverage"):
        assert dist_rec.value(name) == single.value(name), name
