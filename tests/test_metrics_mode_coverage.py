"""Mode coverage (2-D mixtures): values by hand, interval formulas, and the intervals' coverage."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import gamma, norm

from dgmbench import evaluate
from dgmbench.data.toys import ring8_modes
from dgmbench.metrics.mode_coverage import mode_coverage, unseen_mode_allowance

MODES = torch.from_numpy(ring8_modes()).double()
STD = 0.01  # ring8's mode std: high quality = within 0.03 of a mode


def _draw(rng, n, weights, junk, spread):
    """n points: mode k with probability weights[k] (isotropic std ``spread``), else the origin (low quality)."""
    comp = rng.choice(len(weights) + 1, size=n, p=np.append(weights, junk))
    x = np.zeros((n, 2))
    on = comp < len(weights)
    x[on] = MODES.numpy()[comp[on]] + spread * rng.standard_normal((int(on.sum()), 2))
    return torch.from_numpy(x)


def _rkl_by_hand(counts):
    s = sum(counts)
    return sum(c / s * math.log(c / s * len(counts)) for c in counts if c > 0)


def test_values_and_hq_fraction_wilson_by_hand():
    x = torch.cat([MODES[:3].repeat(10, 1), MODES[3:4].repeat(5, 1), torch.zeros(15, 2)])  # 35 hq at 4 modes, 15 lq
    r = mode_coverage(x, MODES, STD)
    assert r.counts == [10, 10, 10, 5, 0, 0, 0, 0] and r.modes_captured == 4 and r.n == 50
    assert r.reverse_kl == pytest.approx(_rkl_by_hand(r.counts), rel=1e-12)
    z = norm.ppf(0.975)
    p, n = 35 / 50, 50
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo, hi, sd = r.intervals["hq_fraction"]
    assert (lo, hi) == pytest.approx((centre - half, centre + half), rel=1e-12)
    assert sd == pytest.approx(math.sqrt(p * (1 - p) / n), rel=1e-12)


def test_unseen_mode_allowance_closed_form():
    # zero samples in a mode: its Poisson mean is below the Jeffreys limit Gamma(1/2) quantile (2.51 at 95%);
    # with j such modes sharing that mass, another set captures at most j (1 - exp(-lam / j)) of them
    lam = gamma.ppf(0.975, 0.5)
    assert unseen_mode_allowance(1, 1, 0.95) == pytest.approx(1 - math.exp(-lam), rel=1e-12)
    assert unseen_mode_allowance(7, 1, 0.95) == pytest.approx(7 * (1 - math.exp(-lam / 7)), rel=1e-12)
    assert unseen_mode_allowance(0, 1, 0.95) == 0.0
    # min_count 2: P(Poisson >= 2) is convex near 0, so the mass is best kept on fewer modes
    best = max(j * (1 - math.exp(-lam / j) * (1 + lam / j)) for j in range(1, 8))
    assert unseen_mode_allowance(7, 2, 0.95) == pytest.approx(best, rel=1e-12)


def test_intervals_in_range_and_named_in_the_record():
    rng = np.random.default_rng(0)
    x = _draw(rng, 300, np.full(8, 0.9 / 8), 0.1, 0.015)
    rec = evaluate(x, "ring8", metrics="mode_coverage", progress=False)
    for name, top in (("modes_captured", 8), ("hq_fraction", 1), ("mode_rkl", math.log(8))):
        mv = rec.metrics[name]
        assert 0 <= mv.ci_low <= mv.value <= mv.ci_high <= top and mv.std >= 0, name
        assert mv.extra["interval"] and mv.extra["ci_level"] == 0.95
    assert "Wilson" in rec.metrics["hq_fraction"].extra["interval"]
    assert "bootstrap" in rec.metrics["mode_rkl"].extra["interval"] and rec.metrics["mode_rkl"].extra["bootstrap"] == 2000
    # collapsed onto one mode: 7 unseen modes keep the upper end open by their allowance, the KL is log 8 exactly
    rc = mode_coverage(MODES[:1].repeat(300, 1), MODES, STD)
    assert rc.intervals["modes_captured"][:2] == pytest.approx((1.0, 1.0 + unseen_mode_allowance(7, 1, 0.95)))
    assert rc.intervals["mode_rkl"][:2] == pytest.approx((math.log(8), math.log(8)))


def test_interval_coverage_simulation():
    # 200 independent generated sets of n = 400 from a known model: 8 modes with unequal weights (one rare,
    # n p ~ 1), per-axis std 0.015 (P(high quality | mode) = 1 - exp(-0.03^2 / (2 0.015^2)) = 1 - e^-2),
    # 10% junk at the origin. Targets at this n: E[modes captured] = sum_k 1 - (1 - p_k)^n exactly,
    # E[hq] = sum p_k, E[reverse KL] from 20,000 multinomial draws evaluated by hand. Measured over
    # 1,000 sets: modes 0.982, reverse KL 0.943, hq 0.960.
    w = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.08, 0.05, 0.003])
    junk, n, sets = 0.1, 400, 200
    w = w / w.sum() * (1 - junk)
    p = w * (1 - math.exp(-2.0))
    rng = np.random.default_rng(7)
    big = rng.multinomial(n, np.append(p, 1 - p.sum()), size=20_000)[:, :8]
    targets = {"modes_captured": float((1 - (1 - p) ** n).sum()), "hq_fraction": float(p.sum()),
               "mode_rkl": float(np.mean([_rkl_by_hand(row) for row in big]))}
    hits = dict.fromkeys(targets, 0)
    for s in range(sets):
        r = mode_coverage(_draw(rng, n, w, junk, 0.015), MODES, STD, seed=s)
        for name, t in targets.items():
            hits[name] += r.intervals[name][0] <= t <= r.intervals[name][1]
    # 95% of 200 = 190; P(Binomial(200, 0.95) < 181) < 0.5%
    assert all(h >= 181 for h in hits.values()), hits


def test_bootstrap_alone_misses_unseen_modes():
    # why the allowance: with the rare mode unseen (prob e^-1 here), the bootstrap's spread is 0 and
    # value [7, 7] excludes E = 7 + (1 - e^-1); the allowance reaches past it
    x = torch.cat([MODES[k:k + 1].repeat(50, 1) for k in range(7)])
    r = mode_coverage(x, MODES, STD)
    lo, hi, sd = r.intervals["modes_captured"]
    assert sd == 0 and lo == 7 and hi > 7 + (1 - math.exp(-1))
