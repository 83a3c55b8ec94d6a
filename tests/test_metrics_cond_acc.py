"""Conditional accuracy (``cond_acc``): the domain classifier's agreement with the class a
class-conditional model was asked for, checked against the classifier run by hand."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dgmbench.metrics import adapters


def _ctx(logits, labels):
    ext = SimpleNamespace(name="classifier-x", sha256="ab" * 32, resize=None, logits_output="logits",
                          feature_output="features")
    return SimpleNamespace(extractor=ext, features={"logits": logits}, labels=labels,
                           n=0 if logits is None else int(logits.shape[0]),
                           prov=lambda e=None: {"extractor": ext.name, "extractor_sha256": ext.sha256, "resize": None})


def test_adapter_on_hand_made_logits():
    logits = torch.tensor([[2.0, 0.1, 0.0], [0.0, 3.0, 1.0], [0.0, 0.2, 0.1], [5.0, 0.0, 0.0]])
    labels = torch.tensor([0, 1, 2, 1])
    (mv,) = adapters.cond_acc(_ctx(logits, labels))
    # argmax: 0, 1, 1, 0 -> agrees with the requested labels on items 0 and 1: 2 of 4
    assert mv.name == "cond_acc" and mv.value == 0.5 and mv.n == 4
    assert mv.std == pytest.approx(math.sqrt(0.5 * 0.5 / 4))
    assert mv.extractor == "classifier-x"


def test_unconditional_samples_and_extractors_without_logits_give_none_with_the_reason():
    (mv,) = adapters.cond_acc(_ctx(torch.zeros(3, 2), None))
    assert mv.value is None and "unconditional" in mv.note
    ctx = _ctx(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long))
    ctx.extractor.logits_output = None
    (mv,) = adapters.cond_acc(ctx)
    assert mv.value is None and "no class logits" in mv.note


class ClassImages(torch.nn.Module):
    """A class-conditional 'model' returning real test digits of the requested class (or of the next
    class with ``shift=1``), cycling through each class's images."""

    data_shape = (1, 8, 8)
    num_classes = 10

    def __init__(self, shift: int = 0):
        super().__init__()
        from dgmbench.data.registry import get_dataset

        test = get_dataset("digits", "test")
        self.by_class = [test.data[test.labels == c] for c in range(10)]
        self.shift = shift
        self.given: list[torch.Tensor] = []

    def sample(self, n, *, generator=None, labels=None):
        assert labels is not None
        out, seen = [], [0] * 10
        for c in labels.tolist():
            c = (c + self.shift) % 10
            out.append(self.by_class[c][seen[c] % len(self.by_class[c])])
            seen[c] += 1
        x = torch.stack(out)
        self.given.append(x)
        return x


@pytest.mark.parametrize("shift", [0, 1])
def test_cond_acc_through_evaluate_matches_the_classifier_run_by_hand(shift):
    from dgmbench.features.registry import get_extractor
    from dgmbench.harness import evaluate

    model = ClassImages(shift)
    n = 200
    rec = evaluate(model, "digits", metrics=["cond_acc"], n=n, seed=3, device="cpu", progress=False)
    # the harness asks for balanced labels in a seeded order: randperm(n, seed) % 10
    labels = torch.randperm(n, generator=torch.Generator().manual_seed(3)) % 10
    x = torch.cat(model.given)
    ext = get_extractor("classifier-digits", device="cpu")
    with torch.no_grad():
        pred = ext.extract(x, ["logits"])["logits"].argmax(1).numpy()
    want = float(np.mean(pred == labels.numpy()))
    assert rec.value("cond_acc") == pytest.approx(want, abs=1e-12)
    if shift == 0:
        assert want > 0.9  # real digits of the asked class: the classifier agrees
    else:
        assert want < 0.1  # the next class: it does not
