"""CLIP score and CLIP-space FD with a tiny random open_clip model loaded the way users load checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

from dgmbench.data.registry import get_dataset
from dgmbench.errors import DataError
from dgmbench.metrics.clip_score import class_prompts, clip_score, clip_scores

TINY = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
NAME = "dgmbench-tiny-clip-metrics"


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    import open_clip

    d = tmp_path_factory.mktemp("clipcfg")
    (d / f"{NAME}.json").write_text(json.dumps(TINY))
    open_clip.add_model_config(d)
    torch.manual_seed(0)
    path = d / "tiny.pt"
    torch.save(open_clip.create_model(NAME, pretrained=None).state_dict(), path)
    return path


def test_prompts():
    assert class_prompts(["zero", "one"], "digits") == ["a handwritten digit zero", "a handwritten digit one"]
    assert class_prompts(["cat"], "cifar10") == ["a photo of a cat"]
    assert class_prompts(["cat"], template="art of {name}") == ["art of cat"]
    with pytest.raises(DataError, match="name"):
        class_prompts(["cat"], template="no placeholder")


def test_clip_score_definition_on_known_vectors():
    img = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    txt = torch.tensor([[1.0, 0.0], [0.0, -1.0]])
    labels = torch.tensor([0, 1, 0])
    # cosines: 1, -1 (clipped to 0), 1/sqrt(2)
    s = clip_scores(img, txt, labels)
    np.testing.assert_allclose(s.numpy(), [100.0, 0.0, 100 / np.sqrt(2)], rtol=1e-12)
    mv = clip_score(img, txt, labels, w=2.5)
    assert mv.value == pytest.approx(2.5 * (100 + 0 + 100 / np.sqrt(2)) / 3)
    assert mv.ci_low < mv.value < mv.ci_high
    with pytest.raises(DataError, match="labels must be in"):
        clip_scores(img, txt, torch.tensor([0, 1, 2]))
    with pytest.raises(DataError, match="pass labels"):
        clip_scores(img, txt)


def test_clip_metrics_through_the_harness(tiny_clip):
    import open_clip

    from dgmbench.features.clip import ClipExtractor
    from dgmbench.harness import evaluate
    from dgmbench.protocol import SamplesModel

    digits = get_dataset("digits", "train")
    samples, labels = digits.data[:40], digits.labels[:40]
    rec = evaluate(SamplesModel(samples, labels), "digits", metrics="clip", clip_model=NAME,
                   clip_pretrained=str(tiny_clip), fid_bootstrap=0, progress=False, cache=False)
    # direct computation with the raw open_clip model and numpy
    model, _, _ = open_clip.create_model_and_transforms(NAME, pretrained=str(tiny_clip))
    model.eval()
    ext = ClipExtractor(NAME, pretrained=tiny_clip)
    with torch.no_grad():
        img = model.encode_image(ext.preprocess_tensor(samples)).double().numpy()
        txt = model.encode_text(open_clip.get_tokenizer(NAME)(
            [f"a handwritten digit {c}" for c in digits.class_names])).double().numpy()
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    txt /= np.linalg.norm(txt, axis=1, keepdims=True)
    cos = (img * txt[labels.numpy()]).sum(1)
    assert rec.value("clip_score") == pytest.approx(100 * np.maximum(cos, 0).mean(), rel=1e-5)
    assert rec.metrics["clip_score"].extractor == "clip" and rec.metrics["clip_score"].extractor_sha256 == ext.sha256
    # CLIP-space FD equals torch-fidelity's Frechet distance on the same embeddings (reference: 40 test items)
    test = get_dataset("digits", "test").data
    ref = test[torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:40]]
    fg, fr = ext.extract(samples)["clip"].double(), ext.extract(ref)["clip"].double()
    want = fid_statistics_to_metric(fid_features_to_statistics(fg), fid_features_to_statistics(fr), verbose=False)
    assert rec.value("clip_fd") == pytest.approx(want["frechet_inception_distance"], rel=1e-6)


def test_cmmd_through_the_harness_equals_a_direct_computation(tiny_clip):
    """`--metrics cmmd`: 1000 x unbiased RBF MMD^2 (sigma 10) of the CLIP embeddings, written out here."""
    from dgmbench.features.clip import ClipExtractor
    from dgmbench.harness import evaluate
    from dgmbench.protocol import SamplesModel

    digits = get_dataset("digits", "train")
    samples = digits.data[:30]
    rec = evaluate(SamplesModel(samples), "digits", metrics="cmmd", clip_model=NAME, clip_pretrained=str(tiny_clip),
                   progress=False, cache=False)
    ext = ClipExtractor(NAME, pretrained=tiny_clip)
    test = get_dataset("digits", "test").data
    ref = test[torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:30]]
    x, y = ext.extract(samples)["clip"].double(), ext.extract(ref)["clip"].double()

    def k(a, b):
        return torch.exp(-torch.cdist(a, b) ** 2 / (2 * 10.0 ** 2))

    m = x.shape[0]
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    mmd2 = (kxx.sum() - kxx.diag().sum()) / (m * (m - 1)) + (kyy.sum() - kyy.diag().sum()) / (m * (m - 1)) \
        - 2 * kxy.mean()
    assert rec.value("cmmd") == pytest.approx(1000 * float(mmd2), rel=1e-6, abs=1e-9)
    assert rec.metrics["cmmd"].higher_is_better is False and rec.metrics["cmmd"].extractor == "clip"
