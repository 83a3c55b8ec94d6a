"""Reference-statistics files: `dgmbench ref-stats` writes pytorch-fid/clean-fid-format .npz files;
`load_ref_stats` reads them (and files written here with pytorch-fid's and clean-fid's exact keys and
dtypes), failing closed on anything that is not a covariance. FID from an exported file equals FID
from the dataset (dgmbench's evaluate, and pytorch-fid's formula written out here) to 1e-6 relative:
evaluate extracts float32 features in its own batches, so its statistics differ from this file's by
float32 rounding (CI's 2-core run measured 1.9e-6 absolute on FID 10.84, 1.8e-7 relative)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from scipy import linalg

from dgmbench.cli import main
from dgmbench.errors import DataError
from dgmbench.features.stats_file import PROVENANCE_KEY, load_ref_stats, provenance_mismatches, save_ref_stats
from dgmbench.metrics.fid import fid_from_stats, stats_from_features


def _pytorch_fid_distance(mu1, sigma1, mu2, sigma2):
    """pytorch-fid's calculate_frechet_distance (scipy sqrtm), written out (accurate to ~1e-7 relative
    here: the classifier features have near-singular covariances)."""
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    h = tmp_path_factory.mktemp("refstats_home")
    mp.setenv("DGMBENCH_HOME", str(h))
    yield h
    mp.undo()


@pytest.fixture(scope="module")
def exported(home, tmp_path_factory):
    """digits:test statistics written by the CLI with the default extractor (classifier-digits)."""
    out = tmp_path_factory.mktemp("refstats") / "digits-test.npz"
    assert main(["ref-stats", "--dataset", "digits", "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def digits_features():
    from dgmbench.data.registry import get_dataset
    from dgmbench.features.registry import extract_features, get_extractor

    ext = get_extractor("classifier-digits", device="cpu")
    ref = extract_features(ext, get_dataset("digits", "test"))[("classifier-digits", "features")]
    gen_images = get_dataset("digits", "train").data[:360]  # n = 360: score then uses all 360 test items
    gen = extract_features(ext, gen_images)[("classifier-digits", "features")]
    return ext, ref.double(), gen.double(), gen_images


def test_file_format_keys_dtypes_and_provenance(exported, digits_features):
    ext, ref, _, _ = digits_features
    with np.load(exported, allow_pickle=False) as z:
        assert set(z.files) == {"mu", "sigma", PROVENANCE_KEY}
        mu, sigma = z["mu"], z["sigma"]
        prov = json.loads(str(z[PROVENANCE_KEY]))
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    assert mu.shape == (64,) and sigma.shape == (64, 64)
    np.testing.assert_allclose(mu, ref.numpy().mean(0), rtol=0, atol=1e-6)
    np.testing.assert_allclose(sigma, np.cov(ref.numpy(), rowvar=False), rtol=0, atol=1e-6)
    assert prov["dataset"] == "digits" and prov["split"] == "test" and prov["n"] == 360 and prov["dim"] == 64
    assert prov["extractor"] == "classifier-digits" and prov["extractor_sha256"] == ext.sha256
    assert prov["feature_output"] == "features" and prov["resize"] == ext.resize
    st = load_ref_stats(exported)
    assert st.n == 360 and st.extra["source"] == "dgmbench" and len(st.extra["sha256"]) == 64
    assert provenance_mismatches(st, ext) == []


def test_fid_from_exported_stats_equals_fid_from_dataset(exported, digits_features):
    import dgmbench
    from dgmbench.protocol import SamplesModel

    _, ref, gen, gen_images = digits_features
    g = stats_from_features(gen)
    from_file = fid_from_stats(g, load_ref_stats(exported)).value
    from_dataset = fid_from_stats(g, stats_from_features(ref)).value
    assert from_file == pytest.approx(from_dataset, abs=1e-6)
    pf = _pytorch_fid_distance(g.mean.numpy(), g.cov.numpy(), ref.numpy().mean(0), np.cov(ref.numpy(), rowvar=False))
    assert from_file == pytest.approx(pf, abs=1e-6, rel=1e-6)
    assert from_file > 0.1  # a real distance: train vs test digits in classifier features
    # dgmbench's own scoring path on the dataset gives the same number
    rec = dgmbench.evaluate(SamplesModel(gen_images), "digits", split="test", metrics="fid", fid_bootstrap=0,
                            device="cpu", progress=False, cache=False)
    assert rec.metrics["fid"].value == pytest.approx(from_file, rel=1e-6, abs=1e-6)


def test_reads_pytorch_fid_and_clean_fid_files(tmp_path, digits_features):
    _, ref, gen, _ = digits_features
    mu, sigma = ref.numpy().mean(0), np.cov(ref.numpy(), rowvar=False)
    g = stats_from_features(gen)
    want = _pytorch_fid_distance(g.mean.numpy(), g.cov.numpy(), mu, sigma)
    # pytorch-fid --save-stats: np.savez_compressed(path, mu=m1, sigma=s1), both float64
    p1 = tmp_path / "pytorch_fid_stats.npz"
    np.savez_compressed(p1, mu=mu.astype(np.float64), sigma=sigma.astype(np.float64))
    st = load_ref_stats(p1)
    assert st.mean.dtype == torch.float64 and st.n == 0 and st.extra["source"] == "external"
    assert fid_from_stats(g, st).value == pytest.approx(fid_from_stats(g, stats_from_features(ref)).value, rel=1e-6)  # near-singular covariances: 1e-6 relative
    assert fid_from_stats(g, st).value == pytest.approx(want, rel=1e-6)
    # clean-fid make_custom_stats: mu from float32 features (float32), sigma = np.cov (float64)
    p2 = tmp_path / "cleanfid_custom.npz"
    feats32 = ref.numpy().astype(np.float32)
    np.savez_compressed(p2, mu=np.mean(feats32, axis=0), sigma=np.cov(feats32, rowvar=False))
    st2 = load_ref_stats(p2)
    assert st2.mean.dtype == torch.float64
    assert fid_from_stats(g, st2).value == pytest.approx(want, rel=1e-5)
    # dgmbench's writer round-trips, and pytorch-fid's loader idiom reads dgmbench's file
    p3 = save_ref_stats(tmp_path / "rt.npz", st)
    with np.load(p3) as f:
        m, s = f["mu"][:], f["sigma"][:]
    np.testing.assert_array_equal(m, mu)
    np.testing.assert_allclose(s, sigma, rtol=0, atol=1e-12)


def _write(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("case,match", [
    ("missing_sigma", "missing key"),
    ("mu_matrix", "must be a vector"),
    ("sigma_shape", "must be \\(4, 4\\)"),
    ("nan", "NaN or Inf"),
    ("asymmetric", "not symmetric"),
    ("negative_variance", "negative variance"),
    ("strings", "expected floating point"),
    ("pickled", "not a plain numeric array"),
    ("not_npz", "not a readable .npz"),
    ("absent", "does not exist"),
    ("bad_provenance", "unreadable 'dgmbench_provenance'"),
])
def test_load_fails_closed(tmp_path, case, match):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(10, 4))
    mu, sigma = a.mean(0), np.cov(a, rowvar=False)
    p = tmp_path / f"{case}.npz"
    if case == "missing_sigma":
        _write(p, mu=mu)
    elif case == "mu_matrix":
        _write(p, mu=sigma, sigma=sigma)
    elif case == "sigma_shape":
        _write(p, mu=mu, sigma=sigma[:3])
    elif case == "nan":
        s = sigma.copy()
        s[1, 1] = np.nan
        _write(p, mu=mu, sigma=s)
    elif case == "asymmetric":
        s = sigma.copy()
        s[0, 1] += 0.5
        _write(p, mu=mu, sigma=s)
    elif case == "negative_variance":
        s = sigma.copy()
        s[2, 2] = -1.0
        _write(p, mu=mu, sigma=s)
    elif case == "strings":
        _write(p, mu=np.array(["a", "b", "c", "d"]), sigma=sigma)
    elif case == "pickled":
        _write(p, mu=np.array([{"x": 1}], dtype=object), sigma=sigma)
    elif case == "not_npz":
        p.write_bytes(b"this is not a zip archive")
    elif case == "bad_provenance":
        _write(p, mu=mu, sigma=sigma, **{PROVENANCE_KEY: np.array("{not json")})
    with pytest.raises(DataError, match=match) as ei:
        load_ref_stats(p)
    assert "\n" not in str(ei.value)


def test_cli_refuses_to_overwrite_and_subset_matches_score_choice(exported, tmp_path, capsys, digits_features):
    assert main(["ref-stats", "--dataset", "digits", "--out", str(exported), "--no-progress"]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert main(["ref-stats", "--dataset", "digits", "--extractor", "inception", "--weights", "x.pt",
                 "--resize", "clean", "--out", str(tmp_path / "w.npz"), "--no-progress"]) == 3  # no such weights file
    assert main(["ref-stats", "--dataset", "digits", "--extractor", "raw", "--resize", "clean",
                 "--out", str(tmp_path / "r.npz"), "--no-progress"]) == 2
    # -n: the seed-0 random subset score uses for n_ref < split size
    from dgmbench.data.registry import get_dataset

    out = tmp_path / "sub.npz"
    assert main(["ref-stats", "--dataset", "digits", "--extractor", "raw", "-n", "100", "--out", str(out),
                 "--no-progress", "--no-cache", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["n"] == 100 and printed["subset"] == "seed-0 random subset" and printed["dim"] == 64
    want = get_dataset("digits", "test").subset(100, seed=0).data.reshape(100, -1).double().numpy()
    st = load_ref_stats(out)
    np.testing.assert_allclose(st.mean.numpy(), want.mean(0), rtol=0, atol=1e-6)
    np.testing.assert_allclose(st.cov.numpy(), np.cov(want, rowvar=False), rtol=0, atol=1e-6)
    ext = digits_features[0]
    assert provenance_mismatches(st, ext) == ["extractor: file 'raw' vs current 'classifier-digits'"]


# ---------------------------------------------------------------- score --ref-stats (wired into the harness)
def test_score_against_a_statistics_file_equals_scoring_against_the_dataset(exported, digits_features, tmp_path,
                                                                            capsys):
    """`score --ref-stats` (no --dataset: the extractor and the shape come from the file and the samples)
    gives pytorch-fid's distance on the same features, and the Record names the file."""
    _, ref, gen, gen_images = digits_features
    samples = tmp_path / "gen.npz"
    np.savez(samples, images=gen_images.numpy().astype(np.float32))
    rc = main(["--json", "score", "--samples", str(samples), "--ref-stats", str(exported), "--metrics", "fid",
               "--fid-bootstrap", "0", "--no-progress", "--device", "cpu"])
    assert rc == 0
    rec = json.loads(capsys.readouterr().out)
    g = stats_from_features(gen)
    want = _pytorch_fid_distance(g.mean.numpy(), g.cov.numpy(), ref.numpy().mean(0), np.cov(ref.numpy(), rowvar=False))
    assert rec["metrics"]["fid"]["value"] == pytest.approx(want, abs=1e-5, rel=1e-6)
    assert rec["metrics"]["fid"]["extractor"] == "classifier-digits"
    assert rec["config"]["ref_stats"]["path"] == str(exported) and rec["config"]["ref_stats"]["source"] == "dgmbench"


def test_score_with_ref_stats_refuses_metrics_that_need_reference_features(exported, tmp_path, capsys):
    samples = tmp_path / "gen.npz"
    np.savez(samples, images=np.random.default_rng(0).random((20, 1, 8, 8), dtype=np.float32))
    rc = main(["score", "--samples", str(samples), "--ref-stats", str(exported), "--metrics", "fid,kid"])
    err = capsys.readouterr().err
    assert rc == 2 and "kid needs the reference's features" in err and "use --dataset without --ref-stats" in err
    rc = main(["score", "--samples", str(samples), "--ref-stats", str(exported), "--extractor", "raw",
               "--metrics", "fid"])
    err = capsys.readouterr().err
    assert rc == 2 and "made with other features" in err


def test_score_without_dataset_or_ref_stats_is_a_usage_error(tmp_path, capsys):
    samples = tmp_path / "gen.npz"
    np.savez(samples, images=np.zeros((4, 1, 8, 8), dtype=np.float32))
    assert main(["score", "--samples", str(samples), "--metrics", "fid"]) == 2
    assert "--dataset is required" in capsys.readouterr().err
