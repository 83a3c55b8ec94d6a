"""Inception Score equals torch-fidelity's isc_features_to_metric; closed-form cases; missing weights."""

import math

import pytest
import torch
from torch_fidelity.metric_isc import isc_features_to_metric

from dgmbench.errors import DataError
from dgmbench.metrics.inception_score import inception_score, inception_score_unavailable


def test_equals_torch_fidelity():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1000, 1008, generator=g) * 3
    for seed in (0, 2020):
        ref = isc_features_to_metric(logits, splits=10, shuffle=True, rng_seed=seed)
        ours = inception_score(logits, splits=10, seed=seed)
        assert ours.value == pytest.approx(ref["inception_score_mean"], rel=1e-3)
        assert ours.std == pytest.approx(ref["inception_score_std"], rel=1e-3)


def test_closed_forms():
    # confident and evenly spread over C classes: IS = C; all the same class: IS = 1
    c = 10
    logits = torch.full((200, c), -1e4)
    logits[torch.arange(200), torch.arange(200) % c] = 0.0
    assert inception_score(logits, splits=1, shuffle=False).value == pytest.approx(c, rel=1e-9)
    assert inception_score(torch.zeros(50, c), splits=5).value == pytest.approx(1.0, abs=1e-12)
    # half-confident two-class mixture: p(y|x) = (a, 1-a) for all x: IS = 1
    same = torch.tensor([[math.log(0.3), math.log(0.7)]]).repeat(40, 1)
    assert inception_score(same, splits=4).value == pytest.approx(1.0, abs=1e-12)


def test_unavailable_has_no_number_and_says_why():
    mv = inception_score_unavailable(n=100)
    assert mv.value is None and "Inception weights" in mv.note
    assert "n/a" in mv.format()


def test_bad_input():
    with pytest.raises(DataError, match="splits"):
        inception_score(torch.zeros(5, 3), splits=10)
    with pytest.raises(DataError, match="NaN"):
        inception_score(torch.full((20, 3), float("nan")))
    with pytest.raises(DataError, match=r"\(N, C\)"):
        inception_score(torch.zeros(20))
