"""Extractor registry, default extractors per dataset, and the one-pass feature extraction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dgmbench.data.base import DataSplit
from dgmbench.errors import DataError, UsageError
from dgmbench.features import RawPixels, StreamingStats, default_extractor, feature_pass, get_extractor
from dgmbench.features.registry import extract_features


class Counting:
    """A fake two-output extractor that counts calls and images seen."""

    def __init__(self, name="count"):
        self.name, self.sha256, self.resize = name, "0" * 64, "none"
        self.outputs, self.feature_output, self.logits_output = ("mean", "sq"), "mean", None
        self.device = torch.device("cpu")
        self.calls, self.seen, self.asked = 0, 0, []

    def extract(self, images, outputs=None):
        self.calls += 1
        self.seen += images.shape[0]
        self.asked.append(list(outputs))
        flat = images.flatten(1)
        res = {"mean": flat.mean(1, keepdim=True).repeat(1, 3) * torch.tensor([1.0, 2.0, 3.0]), "sq": flat**2}
        return {o: res[o] for o in outputs}


def _imgs(n=23, seed=0):
    return torch.rand(n, 1, 4, 4, generator=torch.Generator().manual_seed(seed))


def test_one_pass_feeds_every_extractor_and_output():
    a, b = Counting("a"), Counting("b")
    x = _imgs()
    res = feature_pass({a: ["mean", "sq"], b: ["sq"], RawPixels(): None}, x, batch_size=5,
                       stats=[("a", "mean"), ("raw", "raw")])
    assert res.n == 23 and a.calls == b.calls == 5 and a.seen == b.seen == 23
    assert b.asked[0] == ["sq"]  # only what was asked for is computed
    assert set(res.features) == {("a", "mean"), ("a", "sq"), ("b", "sq"), ("raw", "raw")}
    torch.testing.assert_close(res.features[("raw", "raw")], x.flatten(1))
    torch.testing.assert_close(res.features[("b", "sq")], x.flatten(1) ** 2)
    f = res.features[("a", "mean")].double().numpy()
    st = res.stats[("a", "mean")]
    assert isinstance(st, StreamingStats) and st.n == 23
    np.testing.assert_allclose(st.mean.numpy(), f.mean(0), atol=1e-7)
    np.testing.assert_allclose(st.cov.numpy(), np.cov(f, rowvar=False), atol=1e-7)


def test_stats_without_keeping_features_and_iterables():
    a = Counting("a")
    x = _imgs(30)
    batches = ((x[i : i + 8], torch.zeros(8)) for i in range(0, 30, 8))  # DataLoader-style (images, labels)
    res = feature_pass([a], batches, batch_size=3, keep=[], stats=[("a", "sq")], n=20)
    assert res.features == {} and res.n == 20 and a.seen == 20
    want = StreamingStats.from_features(x[:20].flatten(1) ** 2)
    torch.testing.assert_close(res.stats[("a", "sq")].cov, want.cov, rtol=0, atol=1e-12)
    # DataSplit, numpy and uint8 input
    ds = DataSplit("t", "test", x)
    assert torch.equal(extract_features("raw", ds, batch_size=7)[("raw", "raw")], x.flatten(1))
    u8 = (x * 255).round().to(torch.uint8)
    got = extract_features("raw", u8.numpy(), batch_size=64)[("raw", "raw")]
    torch.testing.assert_close(got, u8.flatten(1).float() / 255)


def test_points_only_with_raw():
    pts = torch.randn(10, 2)
    assert torch.equal(extract_features(["raw"], pts)[("raw", "raw")], pts)
    with pytest.raises(DataError):
        extract_features([Counting()], pts)


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.full((3, 1, 4, 4), float("nan")), "NaN"),
        (torch.full((3, 1, 4, 4), 2.0), r"\[0, 1\]"),
        (torch.rand(3, 5, 4, 4), "channels"),
        (torch.zeros(0, 1, 4, 4), "no images"),
    ],
)
def test_bad_images_are_clear_errors(bad, match):
    with pytest.raises(DataError, match=match):
        extract_features([Counting()], bad)


def test_request_errors():
    a = Counting("a")
    with pytest.raises(UsageError, match="no output"):
        feature_pass({a: ["nope"]}, _imgs())
    with pytest.raises(UsageError, match="given twice"):
        feature_pass([a, Counting("a")], _imgs())
    with pytest.raises(UsageError, match="not requested"):
        feature_pass({a: ["mean"]}, _imgs(), stats=[("a", "sq")])
    with pytest.raises(UsageError, match="did you mean 'inception'"):
        get_extractor("inceptoin")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="CUDA is not available"):
            get_extractor("raw", device="cuda")


def test_default_extractor_per_dataset():
    from dgmbench.features.registry import classifier_weights_path

    assert default_extractor("ring8") == "raw" and default_extractor("moons") == "raw"
    assert default_extractor("digits") == "classifier-digits"
    assert default_extractor("cifar10") == "inception"
    assert default_extractor("folder:/some/where") == "inception"
    mnist_has = classifier_weights_path("mnist").exists()
    assert default_extractor("mnist") == ("classifier-mnist" if mnist_has else "inception")
    assert default_extractor("fashion-mnist") == "inception"  # no fashion classifier is committed
    ext = get_extractor("classifier-digits", device="cpu")
    assert ext.name == "classifier-digits" and ext.outputs == ("features", "logits")
