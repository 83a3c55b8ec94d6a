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
        ours = inception_score(logits, splits=10, seed=seed, bootstrap=0)
        assert ours.value == pytest.approx(ref["inception_score_mean"], rel=1e-6)
        assert ours.std == pytest.approx(ref["inception_score_std"], rel=1e-6)


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


def test_underflowing_classes_follow_0_log_0_convention():
    # p(y|x) = (1, 0) in float64 (exp(-800) underflows): q = (1, 0) and IS = exp(0) = 1.
    # torch-fidelity (and the old code) compute 0 * (log 0 - log 0) = NaN here.
    logits = torch.tensor([[0.0, -800.0]] * 20)
    assert inception_score(logits).value == 1.0
    assert math.isnan(isc_features_to_metric(logits, splits=10)["inception_score_mean"])
    # confident predictions over 2 of 10 classes, the other 8 underflow everywhere: IS = 2 exactly
    c = 10
    logits = torch.full((40, c), -800.0)
    logits[torch.arange(40), torch.arange(40) % 2] = 0.0
    mv = inception_score(logits, splits=1, shuffle=False)
    assert mv.value == pytest.approx(2.0, rel=1e-12)


def test_bootstrap_interval_is_the_between_set_spread():
    # p(y|x) from a fixed distribution of logits; IS of independent sets of n samples spreads
    # less than the split std suggests. The bootstrap std estimates the between-set std.
    c, n = 10, 400
    centres = torch.randn(c, c, generator=torch.Generator().manual_seed(0)) * 2

    def draw(seed):
        g = torch.Generator().manual_seed(seed)
        return centres[torch.randint(0, c, (n,), generator=g)] + torch.randn(n, c, generator=g) * 1.5

    vals = [inception_score(draw(100 + s), bootstrap=0).value for s in range(60)]
    between = float(torch.tensor(vals, dtype=torch.float64).std())
    mv = inception_score(draw(1), bootstrap=200, seed=0)
    assert mv.extra["regress_std"] == "bootstrap_std" and "percentile bootstrap" in mv.extra["interval"]
    assert 0.6 < mv.extra["bootstrap_std"] / between < 1.6
    assert mv.std > 1.5 * between  # the field's split std is not the between-set spread
    assert 1.0 <= mv.ci_low < mv.value < mv.ci_high <= c
    assert inception_score(draw(1), bootstrap=200, seed=0).ci_low == mv.ci_low  # seeded


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
