"""Domain classifiers: committed weights + metadata are consistent, outputs are what they claim,
training is seeded and reproducible, bad input gets a clear error."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from dgmbench.data import get_dataset
from dgmbench.errors import DataError, WeightsMissingError
from dgmbench.features import classifier as clf


@pytest.fixture(scope="module")
def digits_ext():
    return clf.ClassifierExtractor("digits")


def test_committed_digits_weights_and_metadata(digits_ext):
    pt, meta_path = clf.weights_path("digits"), clf.metadata_path("digits")
    meta = json.loads(meta_path.read_text())
    assert pt.stat().st_size < 1_000_000
    assert meta["sha256"] == hashlib.sha256(pt.read_bytes()).hexdigest() == digits_ext.sha256
    assert meta["command"].startswith("python -m dgmbench.features.classifier train --dataset digits")
    assert meta["feature_dim"] == digits_ext.feature_dim == 64
    assert digits_ext.resize == "none" and digits_ext.logits_output == "logits"
    # the stored held-out accuracy is what the weights actually score on the test split
    test = get_dataset("digits", "test")
    logits = digits_ext.extract(test.data, outputs=["logits"])["logits"]
    acc = int((logits.argmax(1) == test.labels).sum()) / len(test)
    assert acc == pytest.approx(meta["test_accuracy"], abs=1e-9)
    assert acc > 0.95


def test_outputs_match_the_network_layers(digits_ext):
    x = get_dataset("digits", "test").data[:50]
    out = digits_ext.extract(x)
    f, lo = out["features"], out["logits"]
    assert f.shape == (50, 64) and lo.shape == (50, 10) and f.dtype == torch.float32
    assert bool((f >= 0).all())  # penultimate layer is post-ReLU
    head = digits_ext.model.head
    torch.testing.assert_close(lo, f @ head.weight.T + head.bias, rtol=1e-5, atol=1e-5)
    # batch-size independent, and 3-channel input is reduced to gray by the channel mean
    torch.testing.assert_close(torch.cat([digits_ext.extract(x[:7])["features"], digits_ext.extract(x[7:])["features"]]), f)
    torch.testing.assert_close(digits_ext.extract(x.expand(-1, 3, -1, -1))["features"], f)


def test_bad_input_and_missing_weights(digits_ext, tmp_path):
    with pytest.raises(DataError, match=r"expects images of shape \(N, 1, 8, 8\)"):
        digits_ext.extract(torch.rand(2, 1, 28, 28))
    with pytest.raises(WeightsMissingError, match="train them with: python -m dgmbench.features.classifier"):
        clf.ClassifierExtractor("fashion-mnist", weights=tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(WeightsMissingError, match="unreadable"):
        clf.ClassifierExtractor("digits", weights=bad)


def test_training_is_seeded_and_writes_metadata(tmp_path):
    a = clf.train_classifier("digits", epochs=1, out_dir=tmp_path / "a", progress=False, limit=192)
    b = clf.train_classifier("digits", epochs=1, out_dir=tmp_path / "b", progress=False, limit=192)
    pa, pb = clf.weights_path("digits", tmp_path / "a"), clf.weights_path("digits", tmp_path / "b")
    sa = torch.load(pa, weights_only=True)["state_dict"]
    sb = torch.load(pb, weights_only=True)["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a["test_accuracy"] == b["test_accuracy"] and a["train_size"] == 192
    assert a["sha256"] == hashlib.sha256(pa.read_bytes()).hexdigest()
    ext = clf.ClassifierExtractor("digits", weights=pa)
    assert ext.test_accuracy == a["test_accuracy"]


@pytest.mark.skipif(not clf.weights_path("mnist").exists(), reason="MNIST classifier weights not committed yet")
def test_committed_mnist_classifier(mnist_home):
    ext = clf.ClassifierExtractor("mnist")
    meta = json.loads(clf.metadata_path("mnist").read_text())
    assert meta["sha256"] == ext.sha256 and clf.weights_path("mnist").stat().st_size < 1_000_000
    test = get_dataset("mnist", "test").subset(2000)
    acc = float((ext.extract(test.data, outputs=["logits"])["logits"].argmax(1) == test.labels).float().mean())
    assert acc > 0.97 and meta["test_accuracy"] > 0.97
    assert ext.extract(test.data[:3])["features"].shape == (3, meta["feature_dim"])
