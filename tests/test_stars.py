"""The comparison table's star rules on hand-made numbers (expected values worked out by hand)."""

import math

import pytest

from dgmbench.report import stars as S


def test_band_edges():
    assert [S.band_stars(x) for x in (0.0, 0.19, 0.2, 0.39, 0.4, 0.59, 0.6, 0.79, 0.8, 1.0)] == [
        1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert S.band_stars(None) is None
    assert S.band_stars(float("nan")) is None


def test_density_by_kind_and_bpd():
    assert S.density_stars("exact") == 5
    assert S.density_stars("bound") == 4
    assert S.density_stars("estimate") == 3
    assert S.density_stars("none") == 1
    assert S.density_stars(None) == 1
    # 1.2 bpd vs best 1.0: 20% worse -> one star less
    assert S.density_stars("exact", 1.2, 1.0) == 4
    # 1.09 vs 1.0: within 10% -> kept
    assert S.density_stars("exact", 1.09, 1.0) == 5
    # the penalty never takes a model with a likelihood below 2
    assert S.density_stars("estimate", 3.0, 1.0) == 2
    assert S.density_stars("bound", 3.0, 1.0) == 3
    # negative NLL (2-D densities): -2.0 vs best -3.0 is 1.0 nats = 33% of |best| worse
    assert S.density_stars("exact", -2.0, -3.0) == 4
    assert S.density_stars("exact", -2.8, -3.0) == 5
    with pytest.raises(ValueError):
        S.density_stars("approximate")


def test_coefficient_of_variation():
    # values 9, 10, 11: mean 10, sample std 1 -> 0.1
    assert S.coefficient_of_variation([9, 10, 11]) == pytest.approx(0.1)
    assert S.coefficient_of_variation([5]) is None
    assert S.coefficient_of_variation([0, 0]) == 0.0
    assert S.coefficient_of_variation([-1, 1]) == math.inf


def test_stability():
    # cv 0.1 exactly is not < 0.1 -> 3 stars
    assert S.stability_stars([9, 10, 11], 0) == 3
    # 10, 10.2, 9.8: std 0.2, cv 0.02 -> 5
    assert S.stability_stars([10, 10.2, 9.8], 0) == 5
    # same with one diverged run -> 4
    assert S.stability_stars([10, 10.2, 9.8], 1) == 4
    # 10, 13: std 2.1213, mean 11.5, cv 0.184 -> 3
    assert S.stability_stars([10, 13], 0) == 3
    # 10, 30: cv 0.707 -> 1, with diverged still 1
    assert S.stability_stars([10, 30], 0) == 1
    assert S.stability_stars([10, 30], 2) == 1
    # one finished seed: no spread; not rated unless something diverged
    assert S.stability_stars([10], 0) is None
    assert S.stability_stars([10], 2) == 3
    # all diverged
    assert S.stability_stars([], 3) == 1
    assert S.stability_stars([float("nan")], 1) == 1
    assert S.stability_stars([], 0) is None


def test_fid_and_quality():
    assert S.fid_stars(10, 10) == 5
    assert S.fid_stars(19.9, 10) == 5  # less than one doubling
    assert S.fid_stars(20, 10) == 4  # exactly one doubling
    assert S.fid_stars(45, 10) == 3  # log2(4.5) = 2.17
    assert S.fid_stars(80, 10) == 2
    assert S.fid_stars(160, 10) == 1
    assert S.fid_stars(10_000, 10) == 1
    assert S.fid_stars(None, 10) is None
    # quality: FID 4 stars, precision 0.5 -> 3 stars; mean 3.5 rounds half up to 4
    assert S.quality_stars(20, 10, 0.5) == 4
    # FID 5, precision 0.1 -> 1: mean 3
    assert S.quality_stars(10, 10, 0.1) == 3
    # only precision
    assert S.quality_stars(None, None, 0.85) == 5
    assert S.quality_stars(None, None, None) is None


def test_speed():
    assert S.speed_stars(1000, 1000) == 5
    assert S.speed_stars(101, 1000) == 5  # less than 10x slower
    assert S.speed_stars(100, 1000) == 4  # exactly 10x
    assert S.speed_stars(5, 1000) == 3  # 200x
    assert S.speed_stars(0.5, 1000) == 2  # 2000x: floor(log10(2000)) = 3 -> 2
    assert S.speed_stars(0.05, 1000) == 1  # 20000x
    assert S.speed_stars(None, 1000) is None
    assert S.speed_stars(0, 1000) is None


def test_coverage():
    assert S.image_coverage_stars(0.9, 0.7) == 5  # mean 0.8
    assert S.image_coverage_stars(0.5, 0.2) == 2  # mean 0.35
    assert S.image_coverage_stars(None, 0.65) == 4
    assert S.image_coverage_stars(None, None) is None
    assert S.mode_coverage_stars(8, 8, 0.01) == 5
    assert S.mode_coverage_stars(8, 8, 0.7) == 4
    assert S.mode_coverage_stars(6, 8, 0.1) == 4  # 0.75
    assert S.mode_coverage_stars(5, 8, 0.1) == 3
    assert S.mode_coverage_stars(2, 8, 0.1) == 2  # 0.25
    assert S.mode_coverage_stars(1, 25, 0.1) == 1
    assert S.mode_coverage_stars(0, 8, math.inf) == 1
    assert S.mode_coverage_stars(None, 8, None) is None


def test_star_string_and_rules_documented():
    assert S.star_string(3) == "★★★☆☆"
    assert S.star_string(None) == "-"
    for key in ("density", "stability", "quality", "speed", "coverage_images", "coverage_modes"):
        assert len(S.RULES[key]) > 40
