"""CLIP extractor: a tiny open_clip config registered from a temp dir, saved, and loaded through
``pretrained=<file>`` exactly as users load real checkpoints (no CLIP weights can be downloaded here)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from dgmbench.errors import UsageError, WeightsMissingError

TINY = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
NAME = "dgmbench-tiny-test-clip"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import open_clip

    d = tmp_path_factory.mktemp("clipcfg")
    (d / f"{NAME}.json").write_text(json.dumps(TINY))
    open_clip.add_model_config(d)
    torch.manual_seed(0)
    model = open_clip.create_model(NAME, pretrained=None)
    path = d / "tiny_clip.pt"
    torch.save(model.state_dict(), path)
    return path, model.eval()


@pytest.fixture(scope="module")
def extractor(checkpoint):
    from dgmbench.features.clip import ClipExtractor

    return ClipExtractor(NAME, pretrained=checkpoint[0])


def test_image_embeddings_normalised_deterministic_and_equal_direct(extractor, checkpoint):
    path, ref_model = checkpoint
    g = torch.Generator().manual_seed(1)
    imgs = torch.rand(5, 3, 48, 40, generator=g)
    out = extractor.extract(imgs)
    assert set(out) == {"clip"} and out["clip"].shape == (5, 16) and out["clip"].dtype == torch.float32
    torch.testing.assert_close(out["clip"].norm(dim=1), torch.ones(5), rtol=0, atol=1e-5)
    assert torch.equal(extractor.extract(imgs)["clip"], out["clip"])  # deterministic
    # batch independence
    torch.testing.assert_close(torch.cat([extractor.extract(imgs[:2])["clip"], extractor.extract(imgs[2:])["clip"]]),
                               out["clip"], rtol=0, atol=1e-6)
    # independent reference: torchvision ops with the config's size and OpenAI mean/std, into the saved model
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
    from torchvision.transforms.functional import InterpolationMode, center_crop, normalize, resize

    x = resize(imgs, 32, interpolation=InterpolationMode.BICUBIC, antialias=True)
    x = normalize(center_crop(x, [32, 32]).clamp(0, 1), OPENAI_DATASET_MEAN, OPENAI_DATASET_STD)
    with torch.no_grad():
        want = F.normalize(ref_model.encode_image(x), dim=-1)
    torch.testing.assert_close(out["clip"], want, rtol=0, atol=1e-5)
    assert extractor.resize == "open_clip-bicubic-shortest-32-tensor"
    import hashlib

    assert extractor.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_grayscale_and_text(extractor, checkpoint):
    _, ref_model = checkpoint
    gray = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(extractor.extract(gray)["clip"], extractor.extract(gray.expand(-1, 3, -1, -1))["clip"])
    prompts = ["a handwritten digit zero", "a handwritten digit one", "a photo of a cat"]
    t = extractor.encode_text(prompts)
    assert t.shape == (3, 16)
    torch.testing.assert_close(t.norm(dim=1), torch.ones(3), rtol=0, atol=1e-5)
    import open_clip

    with torch.no_grad():
        want = F.normalize(ref_model.encode_text(open_clip.get_tokenizer(NAME)(prompts)), dim=-1)
    torch.testing.assert_close(t, want, rtol=0, atol=1e-5)
    assert not torch.allclose(t[0], t[2])


def test_registry_and_errors(checkpoint, tmp_path, monkeypatch):
    from dgmbench.features import get_extractor
    from dgmbench.features.clip import ClipExtractor

    ext = get_extractor("clip", device="cpu", model_name=NAME, pretrained=str(checkpoint[0]))
    assert ext.name == "clip" and ext.feature_output == "clip"
    with pytest.raises(WeightsMissingError, match="does not exist"):
        ClipExtractor(NAME, pretrained=tmp_path / "missing.pt")
    with pytest.raises(UsageError, match="unknown open_clip model"):
        ClipExtractor("ViT-B-33", pretrained=checkpoint[0])
    monkeypatch.setenv("DGMBENCH_OFFLINE", "1")
    with pytest.raises(WeightsMissingError, match="download, which is disabled"):
        ClipExtractor("ViT-B-32", pretrained="openai")
