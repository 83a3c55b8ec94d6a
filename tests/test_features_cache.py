"""Reference cache: keyed by everything that changes the features, atomic, robust to corrupt files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from dgmbench.features.cache import cache_key, cached_reference_features


class _Ext:
    def __init__(self, name="fake", sha256="abc", resize="none", outputs=("pool", "logits")):
        self.name, self.sha256, self.resize, self.outputs = name, sha256, resize, outputs


def _compute_counter(n=40, seed=0):
    calls = []

    def compute(outputs):
        calls.append(list(outputs))
        g = torch.Generator().manual_seed(seed)
        base = {"pool": torch.rand(n, 6, generator=g), "logits": torch.randn(n, 3, generator=g)}
        return {o: base[o] for o in outputs}

    return compute, calls


def test_miss_then_hit_and_stats_match_numpy(tmp_path):
    compute, calls = _compute_counter()
    ext = _Ext()
    a = cached_reference_features("digits", "test", ext, 40, compute, outputs=["pool"], cache_dir=tmp_path)
    assert not a.hit and calls == [["pool"]]
    b = cached_reference_features("digits", "test", ext, 40, compute, outputs=["pool"], cache_dir=tmp_path)
    assert b.hit and len(calls) == 1
    assert torch.equal(a.features["pool"], b.features["pool"])
    f = a.features["pool"].double().numpy()
    np.testing.assert_allclose(b.stats["pool"].mean.numpy(), f.mean(0), atol=1e-12)
    np.testing.assert_allclose(b.stats["pool"].cov.numpy(), np.cov(f, rowvar=False), atol=1e-12)
    # only the one entry file, no temporary files left behind
    assert [p.name for p in tmp_path.iterdir()] == [f"{a.key}.pt"]
    # an output not yet cached is computed alone and added to the same file
    c = cached_reference_features("digits", "test", ext, 40, compute, outputs=["pool", "logits"], cache_dir=tmp_path)
    assert calls[-1] == ["logits"] and not c.hit
    d = cached_reference_features("digits", "test", ext, 40, compute, outputs=["pool", "logits"], cache_dir=tmp_path)
    assert d.hit and len(calls) == 2 and d.features["logits"].shape == (40, 3)


def test_key_depends_on_every_field():
    base = dict(dataset="cifar10", split="train", extractor_name="inception", sha256="s", resize="r", n=100)
    k0 = cache_key(**base)
    for field, other in [("dataset", "mnist"), ("split", "test"), ("extractor_name", "clip"),
                         ("sha256", "t"), ("resize", "q"), ("n", 101)]:
        assert cache_key(**{**base, field: other}) != k0, field
    assert cache_key(**base, transform_id="subset-seed1") != k0
    assert cache_key(**base, extra={"model": "x"}) != k0
    assert cache_key(**base) == k0  # deterministic


@pytest.mark.parametrize("garbage", [b"", b"not a torch file", None])
def test_corrupt_file_is_recomputed_with_warning(tmp_path, garbage):
    compute, calls = _compute_counter()
    ext = _Ext()
    a = cached_reference_features("d", "s", ext, 40, compute, outputs=["pool"], cache_dir=tmp_path)
    if garbage is None:  # a torn file: the first half of a valid one
        data = a.path.read_bytes()
        garbage = data[: len(data) // 2]
    a.path.write_bytes(garbage)
    with pytest.warns(RuntimeWarning, match="unreadable"):
        b = cached_reference_features("d", "s", ext, 40, compute, outputs=["pool"], cache_dir=tmp_path)
    assert len(calls) == 2 and torch.equal(a.features["pool"], b.features["pool"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = cached_reference_features("d", "s", ext, 40, compute, outputs=["pool"], cache_dir=tmp_path)
    assert c.hit


def test_stats_only_and_disabled(tmp_path, monkeypatch):
    compute, calls = _compute_counter()
    ext = _Ext()
    a = cached_reference_features("d", "s", ext, 40, compute, outputs=["pool"], cache_dir=tmp_path, keep_features=False)
    assert a.features == {} and a.stats["pool"].n == 40
    b = cached_reference_features("d", "s", ext, 40, compute, outputs=["pool"], cache_dir=tmp_path, keep_features=False)
    assert b.hit and torch.equal(a.stats["pool"].cov, b.stats["pool"].cov)
    # asking for the features later recomputes them
    c = cached_reference_features("d", "s", ext, 40, compute, outputs=["pool"], cache_dir=tmp_path)
    assert not c.hit and c.features["pool"].shape == (40, 6)
    monkeypatch.setenv("DGMBENCH_CACHE", "0")
    n_before = len(calls)
    d = cached_reference_features("d", "s", ext, 40, compute, outputs=["pool"], cache_dir=tmp_path)
    assert d.path is None and len(calls) == n_before + 1


def test_default_location_uses_dgmbench_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DGMBENCH_HOME", str(tmp_path / "home"))
    compute, _ = _compute_counter()
    a = cached_reference_features("d", "s", _Ext(), 40, compute, outputs=["pool"])
    assert a.path.parent == tmp_path / "home" / "reference" and a.path.exists()


def test_unwritable_cache_dir_warns_and_still_returns(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    compute, calls = _compute_counter()
    with pytest.warns(RuntimeWarning, match="could not write"):
        a = cached_reference_features("d", "s", _Ext(), 40, compute, outputs=["pool"], cache_dir=blocker / "sub")
    assert a.features["pool"].shape == (40, 6) and len(calls) == 1


def _edit_features(obj):
    obj["outputs"]["pool"]["features"][3, 2] += 0.5


def _edit_stats(obj):
    obj["outputs"]["pool"]["stats"]["mean"][0] *= 1.0001


def _edit_key_json(obj):
    obj["key_json"] = obj["key_json"].replace('"n": 40', '"n": 41')


def _edit_meta(obj):
    obj["meta"]["dataset"] = "other"


def _drop_digest(obj):
    del obj["sha256"]


@pytest.mark.parametrize("edit", [_edit_features, _edit_stats, _edit_key_json, _edit_meta, _drop_digest])
def test_edited_file_is_recomputed_with_warning(tmp_path, edit):
    """A file whose tensors (or key, or metadata) were edited in place fails its sha256 and is recomputed."""
    compute, calls = _compute_counter()
    ext = _Ext()
    a = cached_reference_features("d", "s", ext, 40, compute, outputs=["pool"], cache_dir=tmp_path)
    obj = torch.load(a.path, weights_only=True)
    edit(obj)
    torch.save(obj, a.path)
    with pytest.warns(RuntimeWarning, match="unreadable or altered .*(sha256|key)"):
        b = cached_reference_features("d", "s", ext, 40, compute, outputs=["pool"], cache_dir=tmp_path)
    assert len(calls) == 2 and not b.hit
    fresh, _ = _compute_counter()  # an independent computation of the same features
    want = fresh(["pool"])["pool"]
    assert torch.equal(b.features["pool"], want)
    np.testing.assert_allclose(b.stats["pool"].mean.numpy(), want.double().numpy().mean(0), atol=1e-12)
    with warnings.catch_warnings():  # the recomputed file was written back and verifies again
        warnings.simplefilter("error")
        c = cached_reference_features("d", "s", ext, 40, compute, outputs=["pool"], cache_dir=tmp_path)
    assert c.hit and len(calls) == 2


def test_payload_digest_covers_values_dtype_and_shape():
    from dgmbench.features.cache import payload_digest

    x = torch.arange(12, dtype=torch.float32)
    base = payload_digest("k", "{}", {}, {"pool": {"features": x}})
    assert payload_digest("k", "{}", {}, {"pool": {"features": x.clone()}}) == base
    assert payload_digest("k", "{}", {}, {"pool": {"features": x.reshape(3, 4)}}) != base  # same bytes, other shape
    assert payload_digest("k", "{}", {}, {"pool": {"features": x.view(torch.int32)}}) != base  # same bytes, other dtype
    y = x.clone()
    y[5] = torch.nextafter(y[5], torch.tensor(100.0))  # one ulp
    assert payload_digest("k", "{}", {}, {"pool": {"features": y}}) != base
    assert payload_digest("k2", "{}", {}, {"pool": {"features": x}}) != base
