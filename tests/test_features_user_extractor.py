"""User-registered extractors: `dgmbench.register_extractor` and the `dgmbench.extractors` entry-point
group. A toy encoder (a fixed random projection) flows through the feature pass, the reference cache
(keyed by its .sha256), `evaluate`/`score` and the Record; its FID equals the FID computed here from
its features with pytorch-fid's formula."""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pytest
import torch
from scipy import linalg

import dgmbench
from dgmbench.errors import ModelError, UsageError
from dgmbench.features.base import state_dict_sha256
from dgmbench.features.registry import available_extractors, get_extractor, unregister_extractor


class ToyEncoder:
    """tanh of a seeded random projection of the flattened pixels: 'emb' (N, 16)."""

    outputs = ("emb",)
    feature_output = "emb"
    logits_output = None
    resize = "none"
    calls = 0  # images seen, over all instances

    def __init__(self, seed: int = 0, *, device=None, name: str = "lab-proj"):
        self.name = name
        self.proj = torch.nn.Linear(64, 16)
        with torch.no_grad():
            g = torch.Generator().manual_seed(seed)
            self.proj.weight.copy_(torch.randn(16, 64, generator=g) / 4)
            self.proj.bias.zero_()
        self.sha256 = state_dict_sha256(self.proj)
        self.device = torch.device("cpu") if device is None else device

    def extract(self, images, outputs=None):
        ToyEncoder.calls += int(images.shape[0])
        with torch.no_grad():
            return {"emb": torch.tanh(self.proj(images.reshape(images.shape[0], -1).float().cpu()))}


@pytest.fixture
def registered(monkeypatch, tmp_path):
    monkeypatch.setenv("DGMBENCH_HOME", str(tmp_path / "home"))
    dgmbench.register_extractor("lab-proj", lambda device, seed=0: ToyEncoder(seed, device=device),
                                description="toy random projection")
    yield
    unregister_extractor("lab-proj")


def _fid_direct(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2, s1, s2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_registered_extractor_flows_through_evaluate_cache_and_record(registered, tmp_path):
    from dgmbench.data.registry import get_dataset
    from dgmbench.protocol import SamplesModel

    assert "lab-proj" in available_extractors()
    ext = get_extractor("lab-proj", device="cpu")
    gen = get_dataset("digits", "train").data[:300]
    ref = get_dataset("digits", "test").subset(300, seed=0).data  # evaluate's reference: n_ref = n = 300
    want = _fid_direct(ext.extract(gen)["emb"].double().numpy(), ext.extract(ref)["emb"].double().numpy())

    ToyEncoder.calls = 0
    rec = dgmbench.evaluate(SamplesModel(gen), "digits", split="test", metrics="fid,kid", extractor="lab-proj",
                            fid_bootstrap=0, device="cpu", progress=False)
    fid = rec.metrics["fid"]
    assert fid.value == pytest.approx(want, abs=1e-6, rel=1e-6) and want > 0.01
    assert fid.extractor == "lab-proj" and fid.extractor_sha256 == ext.sha256 and fid.resize == "none"
    assert rec.metrics["kid"].extractor == "lab-proj"
    assert ToyEncoder.calls == 600  # generated + reference features
    cache_files = list((tmp_path / "home" / "reference").glob("*.pt"))
    assert len(cache_files) == 1
    # second run: the reference comes from the cache (keyed by the extractor's sha256)
    ToyEncoder.calls = 0
    rec2 = dgmbench.evaluate(SamplesModel(gen), "digits", split="test", metrics="fid", extractor="lab-proj",
                             fid_bootstrap=0, device="cpu", progress=False)
    assert ToyEncoder.calls == 300 and rec2.metrics["fid"].value == pytest.approx(fid.value, abs=1e-9)
    # other weights -> another sha256 -> another cache entry, another value
    dgmbench.register_extractor("lab-proj", lambda device: ToyEncoder(1, device=device), replace=True)
    rec3 = dgmbench.evaluate(SamplesModel(gen), "digits", split="test", metrics="fid", extractor="lab-proj",
                             fid_bootstrap=0, device="cpu", progress=False)
    assert len(list((tmp_path / "home" / "reference").glob("*.pt"))) == 2
    assert rec3.metrics["fid"].extractor_sha256 != ext.sha256
    assert rec3.metrics["fid"].value != pytest.approx(fid.value, rel=1e-3)


def test_score_cli_with_registered_extractor(registered, tmp_path, capsys):
    from dgmbench.cli import main
    from dgmbench.data.registry import get_dataset

    samples = tmp_path / "gen.npz"
    np.savez(samples, images=get_dataset("digits", "train").data[:200].numpy())
    store = tmp_path / "results.jsonl"
    rc = main(["score", "--samples", str(samples), "--dataset", "digits", "--metrics", "fid", "--extractor",
               "lab-proj", "--fid-bootstrap", "0", "--device", "cpu", "--no-progress", "--store", str(store)])
    assert rc == 0, capsys.readouterr().err
    rec = json.loads(store.read_text().splitlines()[-1])
    assert rec["metrics"]["fid"]["extractor"] == "lab-proj"
    assert rec["metrics"]["fid"]["extractor_sha256"] == ToyEncoder(0).sha256


def test_register_checks(registered):
    with pytest.raises(UsageError, match="built-in extractor name"):
        dgmbench.register_extractor("inception", lambda device: None)
    with pytest.raises(UsageError, match="built-in"):
        dgmbench.register_extractor("dinov2-vit-l-14", lambda device: None)
    with pytest.raises(UsageError, match="already registered"):
        dgmbench.register_extractor("lab-proj", lambda device: None)
    with pytest.raises(UsageError, match="without spaces"):
        dgmbench.register_extractor("my enc", lambda device: None)
    with pytest.raises(UsageError, match="callable"):
        dgmbench.register_extractor("x-enc", "not callable")

    def bad(**changes):
        def factory(device):
            e = ToyEncoder(device=device, name="bad-enc")
            for k, v in changes.items():
                setattr(e, k, v)
            return e
        dgmbench.register_extractor("bad-enc", factory, replace=True)
        try:
            get_extractor("bad-enc", device="cpu")
        finally:
            unregister_extractor("bad-enc")

    with pytest.raises(ModelError, match=r"\.sha256 must be a non-empty string"):
        bad(sha256=None)
    with pytest.raises(ModelError, match="must equal the registered name"):
        bad(name="other")
    with pytest.raises(ModelError, match="must be among its outputs"):
        bad(feature_output="pool")
    with pytest.raises(UsageError, match="unknown feature extractor 'lab-prj'.*lab-proj"):
        get_extractor("lab-prj")


def test_entry_point_group(tmp_path, monkeypatch):
    """A package declaring `[project.entry-points."dgmbench.extractors"]` is found without any import."""
    (tmp_path / "toy_dgm_plugin.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "def make(device, **kw):\n"
        "    from test_features_user_extractor import ToyEncoder\n"
        "    return ToyEncoder(2, device=device, name='toy-plugin')\n"
        "def broken(device):\n"
        "    raise AssertionError('never called')\n"
    )
    dist = tmp_path / "toy_dgm_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-dgm-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[dgmbench.extractors]\ntoy-plugin = toy_dgm_plugin:make\nbroken-plugin = toy_dgm_plugin_missing:make\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parent))
    assert "toy-plugin" in available_extractors()
    ext = get_extractor("toy-plugin", device="cpu")
    assert ext.name == "toy-plugin" and ext.sha256 == ToyEncoder(2).sha256
    with pytest.raises(ModelError, match="broken-plugin.*could not be imported.*ModuleNotFoundError"):
        get_extractor("broken-plugin", device="cpu")
    sys.modules.pop("toy_dgm_plugin", None)
