"""The harness: agreement with torch-fidelity on the same features, one feature pass, seeds, policies, bad input."""

import math
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric

import dgmbench
from dgmbench.data.registry import get_dataset
from dgmbench.errors import DataError, UsageError
from dgmbench.harness import Evaluator, evaluate
from dgmbench.metrics.registry import resolve_metrics
from dgmbench.protocol import CallableModel, SamplesModel
from dgmbench.results import RecordStore


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("DGMBENCH_HOME", str(tmp_path / "home"))


class LinearExtractor:
    """A fixed random projection of the pixels: 'features' (16-d, tanh) and 'logits' (10)."""

    name = "linear-test"
    sha256 = "0" * 64
    resize = "none"
    outputs = ("features", "logits")
    feature_output = "features"
    logits_output = "logits"
    device = torch.device("cpu")

    def __init__(self, in_dim=64):
        g = torch.Generator().manual_seed(123)
        self.w = torch.randn(in_dim, 16, generator=g)
        self.v = torch.randn(16, 10, generator=g)
        self.calls = 0
        self.images_seen = 0

    def extract(self, images, outputs=None):
        self.calls += 1
        self.images_seen += images.shape[0]
        f = torch.tanh(images.flatten(1) @ self.w)
        out = {"features": f, "logits": 3 * f @ self.v}
        return {k: out[k] for k in (outputs or self.outputs)}


def _digits(split="train"):
    return get_dataset("digits", split)


def _noisy(x, seed, amount=0.1):
    g = torch.Generator().manual_seed(seed)
    return (x + amount * torch.rand(x.shape, generator=g)).clamp(0, 1)


def test_metrics_equal_torch_fidelity_on_the_same_features():
    samples = _noisy(_digits().data[:300], 0)
    test = _digits("test").data  # 360 items: n_ref = n = 300 (a fixed seed-0 subset)
    ext = LinearExtractor()
    rec = evaluate(samples, "digits", metrics="fid,kid,prdc,is", extractor=ext, kid_subsets=10, fid_bootstrap=0,
                   seed=5, progress=False)
    ref = test[torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:300]]
    fg, fr = ext.extract(samples), ext.extract(ref)
    tf_fid = fid_statistics_to_metric(fid_features_to_statistics(fg["features"].double()),
                                      fid_features_to_statistics(fr["features"].double()), verbose=False)
    assert rec.value("fid") == pytest.approx(tf_fid["frechet_inception_distance"], rel=1e-6)
    tf_kid = kid_features_to_metric(fg["features"].double(), fr["features"].double(), kid_subsets=10,
                                    kid_subset_size=150, rng_seed=5, verbose=False)
    # float32 features: Gram in float32, sums in float64 (see dgmbench.metrics.kid) -> ~1e-6 of the float64 value
    assert rec.value("kid") == pytest.approx(tf_kid["kernel_inception_distance_mean"], rel=2e-5)
    assert rec.metrics["kid"].extra["subset_size"] == 150 and "half" in rec.metrics["kid"].note
    prc = prc_features_to_metric(fg["features"], fr["features"], prc_neighborhood=3, prc_batch_size=10000,
                                 save_cpu_ram=False, verbose=False)
    assert round(rec.value("precision") * 300) == round(prc["precision"] * 300)
    assert round(rec.value("recall") * 300) == round(prc["recall"] * 300)
    isc = isc_features_to_metric(fg["logits"], splits=10, rng_seed=5)
    assert rec.value("is") == pytest.approx(isc["inception_score_mean"], rel=1e-3)
    mv = rec.metrics["fid"]
    assert (mv.extractor, mv.extractor_sha256, mv.resize, mv.n) == ("linear-test", "0" * 64, "none", 300)
    assert rec.config["n_ref"] == 300 and rec.n_samples == 300 and rec.seed == 5


def test_one_feature_pass_feeds_every_metric():
    ext = LinearExtractor()
    samples = _noisy(_digits().data[:200], 1)
    evaluate(samples, "digits", metrics="fid,kid,prdc,is,mmd", extractor=ext, kid_subsets=2, fid_bootstrap=3,
             progress=False, batch_size=64)
    # one pass over the 200 samples and one over the 200 reference items (then cached)
    assert ext.images_seen == 400
    ext2 = LinearExtractor()
    evaluate(samples, "digits", metrics="fid,kid", extractor=ext2, kid_subsets=2, progress=False)
    assert ext2.images_seen == 200  # the reference came from the cache
    rec = evaluate(samples, "digits", metrics="fid", extractor=ext2, progress=False, fid_bootstrap=0)
    assert rec.config["run"]["reference_cache"]["linear-test"]["hit"] is True


def test_seeded_model_runs_are_identical_and_batch_size_does_not_matter():
    model = CallableModel(lambda z: torch.sigmoid(z).reshape(-1, 1, 8, 8), (64,), (1, 8, 8))
    kw = dict(metrics="fid,kid,prdc", extractor="raw", n=150, kid_subsets=5, progress=False, fid_bootstrap=0)
    a = evaluate(model, "digits", seed=1, **kw)
    b = evaluate(model, "digits", seed=1, **kw)
    c = evaluate(model, "digits", seed=2, **kw)
    assert {k: v.value for k, v in a.metrics.items()} == {k: v.value for k, v in b.metrics.items()}
    assert a.value("fid") != c.value("fid")
    # the streaming statistics make FID independent of the feature batch size
    samples = torch.sigmoid(torch.randn(300, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    f7 = evaluate(samples, "digits", metrics="fid", extractor="raw", batch_size=7, fid_bootstrap=0, progress=False)
    f500 = evaluate(samples, "digits", metrics="fid", extractor="raw", batch_size=500, fid_bootstrap=0, progress=False)
    assert f7.value("fid") == pytest.approx(f500.value("fid"), rel=1e-9)


def test_evaluator_update_compute_matches_evaluate():
    samples = _noisy(_digits().data[:240], 2)
    ev = Evaluator("digits", metrics="fid,prdc", extractor="raw", n_ref=240, fid_bootstrap=0)
    for chunk in samples.split(50):
        ev.update(chunk)
    rec = ev.compute(model_name="in-loop")
    direct = evaluate(samples, "digits", metrics="fid,prdc", extractor="raw", fid_bootstrap=0, progress=False)
    assert rec.value("fid") == pytest.approx(direct.value("fid"), rel=1e-7)  # batches of 50 vs 128: float64 rounding
    for name in ("precision", "recall", "density", "coverage"):
        assert rec.value(name) == direct.value(name)
    ev.reset()
    with pytest.raises(DataError, match="no samples"):
        ev.compute()


def test_toy_mode_coverage_mmd_kde():
    good = get_dataset("ring8", "train").data[:1000]
    collapsed = get_dataset("ring8", "train").data[:1000] * 0 + torch.tensor([1.0, 0.0])
    rg = evaluate(good, "ring8", metrics="mode_coverage,mmd,kde,fid", progress=False, fid_inf=True)
    rc = evaluate(collapsed, "ring8", metrics="mode_coverage,mmd", progress=False)
    assert rg.value("modes_captured") == 8 and rg.value("hq_fraction") > 0.99
    assert rc.value("modes_captured") == 1 and rc.value("mode_rkl") == pytest.approx(math.log(8))
    assert abs(rg.value("mmd")) < 3 * rg.metrics["mmd"].std and rc.value("mmd") > 0.1
    assert rg.metrics["kde_ll"].kind == "estimate" and "kde_bpd" not in rg.metrics  # no bits/dim for points
    assert rg.metrics["mmd"].extractor == "raw"
    # same distribution: FID-infinity extrapolates the finite-n bias away (|fid_inf| well below fid)
    assert abs(rg.value("fid_inf")) < rg.value("fid") and "slope" in rg.metrics["fid_inf"].extra


def test_likelihood_and_speed_with_a_model():
    class Uniform(CallableModel):
        likelihood_kind = "exact"

        def log_likelihood(self, x):
            return torch.full((x.shape[0],), -x[0].numel() * math.log(256.0), dtype=torch.float64), "exact"

    model = Uniform(lambda z: torch.sigmoid(z).reshape(-1, 1, 8, 8), (64,), (1, 8, 8), nfe_per_sample=1.0)
    rec = evaluate(model, "digits", metrics="nll,speed", progress=False, speed_batch_size=32, speed_repeats=2)
    assert rec.value("bpd") == pytest.approx(8.0, abs=1e-12) and rec.metrics["bpd"].kind == "exact"
    assert rec.metrics["nll"].n == 360  # the digits test split
    sp = rec.metrics["samples_per_s"]
    assert sp.value > 0 and sp.extra["batch_size"] == 32 and sp.extra["device"] == "cpu"
    assert rec.value("nfe") == 1.0
    plain = CallableModel(lambda z: torch.sigmoid(z).reshape(-1, 1, 8, 8), (64,), (1, 8, 8))
    rec2 = evaluate(plain, "digits", metrics="nll", progress=False)
    assert rec2.value("bpd") is None and "log_likelihood" in rec2.metrics["bpd"].note


def test_nll_on_a_seeded_subset_of_the_split():
    """``nll_max_n``: the likelihood runs on exactly that many distinct split items, chosen by the seed,
    and the metric says so; the mean over the subset equals the mean computed directly on it."""
    split = _digits("test").data
    seen: list[torch.Tensor] = []

    class PixelSum(CallableModel):
        likelihood_kind = "exact"

        def log_likelihood(self, x):
            seen.append(x.clone())
            return -x.flatten(1).sum(1).double(), "exact"

    model = PixelSum(lambda z: torch.sigmoid(z).reshape(-1, 1, 8, 8), (64,), (1, 8, 8))
    rec = evaluate(model, "digits", metrics="nll", progress=False, nll_max_n=50, seed=3)
    used = torch.cat(seen)
    assert used.shape[0] == 50 == rec.metrics["nll"].n
    idx = [int(torch.nonzero((split.flatten(1) == r.flatten()).all(1))[0]) for r in used]
    assert idx == sorted(idx) and len(set(idx)) == 50  # distinct items, in split order
    assert rec.value("nll") == pytest.approx(float(used.flatten(1).sum(1).double().mean()), rel=1e-12)
    assert "seeded subset of 50 of the 360 test items" in rec.metrics["nll"].note
    seen.clear()
    evaluate(model, "digits", metrics="nll", progress=False, nll_max_n=50, seed=4)
    assert not torch.equal(torch.cat(seen), used)  # another seed, another subset
    seen.clear()
    full = evaluate(model, "digits", metrics="nll", progress=False, nll_max_n=1000)
    assert full.metrics["nll"].n == 360 and not full.metrics["nll"].note
    with pytest.raises(UsageError, match=r"nll_max_n \(--nll-n\) must be at least 1"):
        evaluate(model, "digits", metrics="nll", progress=False, nll_max_n=0)


def test_is_unavailable_and_clip_with_stand_in_extractors():
    class NoLogits(LinearExtractor):
        name = "inception"
        outputs = ("features",)
        logits_output = None

    samples = _noisy(_digits().data[:100], 3)
    rec = evaluate(samples, "digits", metrics="is", extractor=NoLogits(), progress=False)
    assert rec.value("is") is None and "full Inception weights" in rec.metrics["is"].note

    class FakeClip:
        name, sha256, resize, outputs, feature_output, logits_output = "clip", None, "none", ("clip",), "clip", None
        device = torch.device("cpu")

        def __init__(self):
            self.w = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))

        def extract(self, images, outputs=None):
            e = images.flatten(1) @ self.w
            return {"clip": e / e.norm(dim=1, keepdim=True)}

        def encode_text(self, prompts):
            g = torch.Generator().manual_seed(len(prompts[0]))
            e = torch.stack([torch.randn(8, generator=g) + len(p) for p in prompts])
            return e / e.norm(dim=1, keepdim=True)

    clip = FakeClip()
    labels = torch.arange(100) % 10
    model = SamplesModel(samples, labels)
    rec = evaluate(model, "digits", metrics="clip", clip_extractor=clip, fid_bootstrap=0, progress=False)
    text = clip.encode_text([f"a handwritten digit {c}" for c in _digits().class_names])
    img = clip.extract(samples)["clip"]
    direct = (100 * (img * text[labels]).sum(1).clamp_min(0)).double().mean()
    assert rec.value("clip_score") == pytest.approx(float(direct), rel=1e-6)
    assert rec.value("clip_fd") > 0
    unlabelled = evaluate(samples, "digits", metrics="clip_score", clip_extractor=clip, progress=False)
    assert unlabelled.value("clip_score") is None and "class labels" in unlabelled.metrics["clip_score"].note


def test_sources_store_and_import_string(tmp_path, monkeypatch):
    samples = _noisy(_digits().data[:120], 4)
    np.savez(tmp_path / "gen.npz", images=samples.numpy())
    store = RecordStore(tmp_path / "results.jsonl")
    rec = evaluate(str(tmp_path / "gen.npz"), "digits", metrics="fid", extractor="raw", store=store, progress=False,
                   fid_bootstrap=0)
    rec_t = evaluate(samples, "digits", metrics="fid", extractor="raw", progress=False, fid_bootstrap=0)
    assert rec.value("fid") == pytest.approx(rec_t.value("fid"), rel=1e-6)
    u8 = (samples * 255).round().to(torch.uint8)
    nhwc = evaluate(u8.permute(0, 2, 3, 1).numpy(), "digits", metrics="fid", extractor="raw", progress=False,
                    fid_bootstrap=0)  # uint8 NHWC arrays are accepted (scaled by 1/255)
    assert nhwc.value("fid") == pytest.approx(evaluate(u8.float() / 255, "digits", metrics="fid", extractor="raw",
                                                       progress=False, fid_bootstrap=0).value("fid"), rel=1e-9)
    assert rec.n_samples == 120 and store.load()[0].value("fid") == rec.value("fid")
    (tmp_path / "mygen.py").write_text(textwrap.dedent("""
        import torch
        from dgmbench.protocol import CallableModel

        def make():
            return CallableModel(lambda z: torch.sigmoid(z).reshape(-1, 1, 8, 8), (64,), (1, 8, 8), name="mygen")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    rec2 = dgmbench.evaluate("mygen:make", "digits", metrics="fid", extractor="raw", n=100, progress=False)
    assert rec2.model == "mygen" and rec2.value("fid") > 0 and rec2.config["source"] == "mygen:make"
    sys.modules.pop("mygen", None)


def test_bad_input_is_a_clear_error_or_a_stated_policy():
    good = _digits().data[:100]
    with pytest.raises(DataError, match="NaN"):
        evaluate(torch.where(torch.arange(100)[:, None, None, None] == 3, float("nan"), good), "digits",
                 metrics="fid", extractor="raw", progress=False)
    with pytest.raises(DataError, match=r"values must lie in \[0, 1\]"):
        evaluate(good * 2 - 1, "digits", metrics="fid", extractor="raw", progress=False)
    with pytest.raises(DataError, match=r"shape \(1, 28, 28\) but digits items are \(1, 8, 8\)"):
        evaluate(torch.rand(50, 1, 28, 28), "digits", metrics="fid", extractor="raw", progress=False)
    liar = CallableModel(lambda z: torch.rand(z.shape[0], 1, 28, 28), (4,), (1, 8, 8))  # claims 8x8
    with pytest.raises(DataError, match=r"expected per-sample shape \(1, 8, 8\), got \(1, 28, 28\)"):
        evaluate(liar, "digits", metrics="fid", extractor="raw", n=20, progress=False)
    with pytest.raises(DataError, match="subset size 500 is larger"):
        evaluate(good, "digits", metrics="kid", extractor="raw", kid_subset_size=500, progress=False)
    with pytest.raises(DataError, match="holds only 100 samples"):
        evaluate(good, "digits", metrics="fid", extractor="raw", n=150, progress=False)
    with pytest.raises(UsageError, match="did you mean 'fid'"):
        resolve_metrics("fdi")
    with pytest.raises(UsageError, match="option"):
        evaluate(good, "digits", metrics="fid", extractor="raw", fid_bootstrapp=3, progress=False)
    # reference smaller than n: all of it is used, with a warning and a note on each comparison
    big = _noisy(_digits().data[:400], 5)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        rec = evaluate(big, "digits", metrics="fid,prdc", extractor="raw", progress=False, fid_bootstrap=0)
    assert any("only 360 items" in str(x.message) for x in w)
    assert "only 360 items" in rec.metrics["fid"].note and rec.config["n_ref"] == 360
    with pytest.raises(DataError, match=r"reference set has per-sample shape \(1, 4, 4\)"):
        evaluate(good, "digits", metrics="fid", extractor="raw", ref=torch.rand(100, 1, 4, 4), progress=False)
    assert resolve_metrics("fid,precision,clip,bpd") == ["fid", "prdc", "clip_score", "clip_fd", "nll"]
