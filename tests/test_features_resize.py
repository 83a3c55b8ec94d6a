"""Inception resize modes: torch-fidelity/TF1 bilinear ('tf-bilinear') and clean-fid's PIL bicubic ('clean').

The network input (what torch-fidelity's first convolution receives) is captured with a
forward pre-hook and compared with independent references: torch-fidelity's own
``interpolate_bilinear_2d_like_tensorflow1x`` for one mode, a per-channel PIL 'F' bicubic
resize written here (clean-fid's resizer) for the other. Offline weights (fid-helper converted).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import offline_inception_home
from PIL import Image

from dgmbench.errors import UsageError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    yield from offline_inception_home(tmp_path_factory, "resize_home")


@pytest.fixture(scope="module")
def images(cifar3) -> torch.Tensor:
    return cifar3


@pytest.fixture(scope="module")
def extractors(env):
    from dgmbench.features.inception import InceptionExtractor

    tf = InceptionExtractor(resize="tf-bilinear")
    clean = InceptionExtractor(resize="clean")
    return tf, clean


def _conv_input_and_pool(ext, images):
    """(the tensor torch-fidelity's first convolution layer receives, the pool features)."""
    seen = []
    h = ext.net.Conv2d_1a_3x3.conv.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    try:
        pool = ext.extract(images)["pool"]
    finally:
        h.remove()
    assert len(seen) == 1
    return seen[0].contiguous(), pool


def _pil_clean_reference(u8: torch.Tensor) -> torch.Tensor:
    """clean-fid's resizer written out: float32 'F' image per channel, PIL bicubic to 299, no clip/rounding."""
    out = []
    for img in u8.numpy():
        chans = []
        for c in range(3):
            pil = Image.fromarray(img[c].astype(np.float32))  # mode 'F' (float32), as clean-fid asks for
            assert pil.mode == "F"
            chans.append(np.asarray(pil.resize((299, 299), resample=Image.BICUBIC), dtype=np.float32))
        out.append(np.stack(chans))
    return torch.from_numpy(np.stack(out))


def test_each_mode_equals_its_reference_and_they_differ(extractors, images):
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    tf, clean = extractors
    u8 = (images * 255).round().to(torch.uint8)
    x_tf, pool_tf = _conv_input_and_pool(tf, images)
    x_clean, pool_clean = _conv_input_and_pool(clean, images)
    want_tf = (interpolate_bilinear_2d_like_tensorflow1x(u8.float(), size=(299, 299), align_corners=False) - 128) / 128
    want_clean = (_pil_clean_reference(u8) - 128) / 128
    assert x_tf.shape == x_clean.shape == (3, 3, 299, 299)
    torch.testing.assert_close(x_tf, want_tf, rtol=0, atol=1e-6)
    torch.testing.assert_close(x_clean, want_clean, rtol=0, atol=1e-6)
    # PIL bicubic overshoots (ringing): values outside the uint8 range are kept, as clean-fid keeps them
    assert float(want_clean.max()) > float(want_tf.max()) or float(want_clean.min()) < float(want_tf.min())
    # the two modes differ on the same images, at the input and in the features
    assert float((x_tf - x_clean).abs().max()) > 0.05
    assert float((pool_tf - pool_clean).abs().max()) > 1e-2
    assert tf.resize == "torch-fidelity-bilinear-299" and clean.resize == "clean-fid-pil-bicubic-299"
    # the pre-hook does not linger: tf-bilinear features are unchanged after a clean pass
    torch.testing.assert_close(tf.extract(images)["pool"], pool_tf, rtol=0, atol=0)


def test_clean_features_are_batch_independent(extractors, images):
    _, clean = extractors
    whole = clean.extract(images)["pool"]
    parts = torch.cat([clean.extract(images[:1])["pool"], clean.extract(images[1:])["pool"]])
    torch.testing.assert_close(parts, whole, rtol=0, atol=1e-5)


def test_resize_mode_names_and_cache_key(extractors, env):
    from dgmbench.features.cache import cache_key
    from dgmbench.features.inception import RESIZE_MODES, InceptionExtractor, resize_mode

    assert set(RESIZE_MODES) == {"tf-bilinear", "clean"}
    with pytest.raises(UsageError, match="unknown resize mode 'bicubic'"):
        resize_mode("bicubic")
    with pytest.raises(UsageError, match="tf-bilinear, clean"):
        InceptionExtractor(resize="pil")
    tf, clean = extractors
    keys = {cache_key("cifar10", "train", e.name, e.sha256, e.resize, 10) for e in (tf, clean)}
    assert len(keys) == 2  # the resize mode separates cached reference statistics
