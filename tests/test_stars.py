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


def test_stability_from_spread_and_failures():
    # cv 0.1 exactly is not < 0.1 -> 3 stars
    assert S.stability_stars([9, 10, 11], 0) == 3
    # 10, 10.2, 9.8: std 0.2, cv 0.02 -> 5
    assert S.stability_stars([10, 10.2, 9.8], 0) == 5
    # same spread with one failed run of 4 (1/4 <= 1/3) -> capped at 3
    assert S.stability_stars([10, 10.2, 9.8], 1) == 3
    # 1 failed of 3 is exactly a third -> 3; 2 of 4 -> 2
    assert S.stability_stars([10, 10.2], 1) == 3
    assert S.stability_stars([10, 10.2], 2) == 2
    # 10, 13: std 2.1213, mean 11.5, cv 0.184 -> 3
    assert S.stability_stars([10, 13], 0) == 3
    # 10, 30: cv 0.707 -> 1, with failures still 1
    assert S.stability_stars([10, 30], 0) == 1
    assert S.stability_stars([10, 30], 2) == 1
    # one healthy seed: no spread; not rated unless something failed (then the cap: 2 of 3 failed -> 2)
    assert S.stability_stars([10], 0) is None
    assert S.stability_stars([10], 2) == 2
    # all failed
    assert S.stability_stars([], 3) == 1
    assert S.stability_stars([float("nan")], 1) == 1
    assert S.stability_stars([], 0) is None
    # n_runs given explicitly: 3 values, 1 failure of 4 runs
    assert S.stability_stars([10, 10.2, 9.8], 1, 4) == 3


def test_failure_cap_and_spread_bands():
    assert [S.failure_cap(f, 3) for f in (0, 1, 2, 3)] == [5, 3, 2, 1]
    assert [S.failure_cap(f, 6) for f in (0, 1, 2, 3, 5, 6)] == [5, 3, 3, 2, 2, 1]
    assert [S.spread_stars(c) for c in (0.0, 0.049, 0.05, 0.099, 0.1, 0.199, 0.2, 0.399, 0.4, math.inf)] == [
        5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert S.spread_stars(None) is None


def test_collapse_thresholds():
    assert S.collapsed_image_run(0.0) and S.collapsed_image_run(0.099)
    assert not S.collapsed_image_run(0.1) and not S.collapsed_image_run(None)
    assert S.collapsed_modes_run(3, 8) and not S.collapsed_modes_run(4, 8)  # half the modes is not collapsed
    assert S.collapsed_modes_run(12, 25) and not S.collapsed_modes_run(13, 25)
    assert not S.collapsed_modes_run(None, 8) and not S.collapsed_modes_run(3, None)


def test_density_near_uniform_is_one_star():
    # 7.99 bits/dim is within 5% of the uniform 8.00: 1 star whatever the kind
    assert S.density_stars("exact", 7.99, 1.36, bits_per_dim=True) == 1
    assert S.density_stars("bound", 7.60, 7.60, bits_per_dim=True) == 1  # exactly 5% below: 1
    assert S.density_stars("bound", 8.87, 2.0, bits_per_dim=True) == 1   # worse than uniform
    # 7.59 is more than 5% below: the kind rule, here 10%+ worse than best -> 4 - 1 = 3
    assert S.density_stars("bound", 7.59, 2.0, bits_per_dim=True) == 3
    assert S.density_stars("exact", 1.36, 1.36, bits_per_dim=True) == 5
    # NLL in nats (2-D data) has no uniform model: the rule does not apply
    assert S.density_stars("exact", 7.99, 7.99) == 5
    assert S.density_stars("none", 9.0, 1.0, bits_per_dim=True) == 1


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


def test_quality_anchored_to_real_data():
    # one star per factor of 4 over the real-data FID
    assert [S.anchored_fid_stars(f, 10) for f in (10, 39.9, 40, 159.9, 160, 640, 2560, 1e6)] == [
        5, 5, 4, 4, 3, 2, 1, 1]
    assert S.anchored_fid_stars(5, 10) == 5 and S.anchored_fid_stars(None, 10) is None
    # the best model of a bad table: relative 5 stars, but 64x the real-data FID -> anchored 2;
    # FID rating min(5, 2) = 2, precision 0.85 -> 5: (2 + 5) / 2 = 3.5 -> 4
    assert S.quality_stars(640, 640, 0.85) == 5
    assert S.quality_stars(640, 640, 0.85, real_fid=10) == 4
    # and with a poor precision 0.1 -> 1: (2 + 1) / 2 = 1.5 -> 2
    assert S.quality_stars(640, 640, 0.1, real_fid=10) == 2
    # close to real data: anchored does not lower the relative rating
    assert S.quality_stars(20, 10, 0.9, real_fid=8) == S.quality_stars(20, 10, 0.9) == 5
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


def _rec(family, seed, metrics, *, status="ok", kind="none", real=False, num_modes=None):
    from dgmbench.results import MetricValue, Record

    r = Record(model=f"{family}-x", dataset="digits" if num_modes is None else "ring8", split="test", family=family,
               seed=seed)
    for name, v in metrics.items():
        r.add(MetricValue(name, v, n=100, kind=kind if name in ("bpd", "nll") else None))
    r.config = {"table": {"family": family, "preset": "p", "seed": seed, "status": status, "likelihood_kind": kind,
                          **({"real_data": True} if real else {}), **({"num_modes": num_modes} if num_modes else {})}}
    return r


def _rows(records, kind="image"):
    from dgmbench.report.comparison import comparison_table
    from dgmbench.report.summary import summarize

    return {r.family: r for r in comparison_table(summarize(records), kind)}


def test_a_model_that_collapses_every_seed_the_same_way_gets_one_star():
    """digits-tiny GAN before these rules: recall 0 on every seed, FID cv 3.5% -> 5 stars for stability."""
    gan = [_rec("gan", s, {"fid": f, "precision": 0.44, "recall": 0.0, "coverage": 0.03})
           for s, f in enumerate((778.0, 750.0, 805.0))]
    vae = [_rec("vae", s, {"fid": f, "precision": 0.74, "recall": 0.38, "coverage": 0.2}, kind="bound")
           for s, f in enumerate((490.0, 470.0, 508.0))]
    rows = _rows(gan + vae)
    assert rows["gan"].cells["stability"].stars == 1
    assert "3/3 collapsed (recall < 0.1)" in rows["gan"].cells["stability"].text
    assert rows["vae"].cells["stability"].stars == 5  # cv 3.9%, nothing failed
    # one collapsed seed of three: the spread of the other two (cv ~1%) is capped at 3
    gan[0].metrics["recall"].value = 0.3
    gan[1].metrics["recall"].value = 0.3
    assert _rows(gan + vae)["gan"].cells["stability"].stars == 3


def test_toy_runs_with_fewer_than_half_the_modes_are_failures():
    ok = [_rec("flow", s, {"hq_fraction": 0.9, "modes_captured": 8.0}, num_modes=8) for s in range(2)]
    bad = [_rec("gan", s, {"hq_fraction": 0.9, "modes_captured": 3.0}, num_modes=8) for s in range(2)]
    rows = _rows(ok + bad, kind="points")
    assert rows["flow"].cells["stability"].stars == 5 and rows["gan"].cells["stability"].stars == 1


def test_density_column_gives_uniform_level_bpd_one_star():
    recs = [_rec("ebm", 0, {"bpd": 8.0, "fid": 500.0}, kind="estimate"),
            _rec("autoregressive", 0, {"bpd": 2.27, "fid": 200.0}, kind="exact")]
    rows = _rows(recs)
    assert rows["ebm"].cells["density"].stars == 1 and "uniform: 8.00" in rows["ebm"].cells["density"].text
    assert rows["autoregressive"].cells["density"].stars == 5


def test_real_data_row_anchors_quality_and_is_not_a_model():
    real = _rec("real data", 0, {"fid": 10.0, "precision": 0.95, "recall": 0.95, "coverage": 0.9}, real=True)
    models = [_rec("vae", 0, {"fid": 640.0, "precision": 0.85, "recall": 0.5, "samples_per_s": 100.0}),
              _rec("gan", 0, {"fid": 1280.0, "precision": 0.85, "recall": 0.5, "samples_per_s": 1000.0})]
    without = _rows(models)
    assert without["vae"].cells["quality"].stars == 5  # best of the table, relative only
    rows = _rows([real] + models)
    # vae: relative 5, anchored 64x -> 2; precision 5 -> (2 + 5) / 2 = 3.5 -> 4
    assert rows["vae"].cells["quality"].stars == 4 and "64x real" in rows["vae"].cells["quality"].text
    # gan: relative 4 (one doubling), anchored 128x -> 5 - 3 = 2; (2 + 5) / 2 -> 4
    assert rows["gan"].cells["quality"].stars == 4
    # the real-data row: no density, stability or speed rating, and it is not "best" of the table
    assert [rows["real data"].cells[c].stars for c in ("density", "stability", "speed")] == [None, None, None]
    assert rows["real data"].is_real
    assert rows["vae"].cells["speed"].stars == 4  # fastest is the gan model, not the real-data row


def test_textbook_cells_agree_within_one_star_and_explain_disagreements():
    from dgmbench.report.comparison import comparison_table
    from dgmbench.report.summary import summarize
    from dgmbench.report.textbook import agreement, summary_line, textbook_markdown, textbook_rows

    real = _rec("real data", 0, {"fid": 10.0, "precision": 0.95, "recall": 0.95}, real=True)
    gan = [_rec("gan", s, {"fid": 800.0 + s, "precision": 0.44, "recall": 0.0, "coverage": 0.03,
                           "samples_per_s": 1e4}) for s in range(2)]
    rows = comparison_table(summarize([real] + gan), "image")
    tb = textbook_rows(rows)
    assert [r.family for r in tb] == ["gan"]  # the real-data row is not in the textbook table
    cells = tb[0].cells
    # textbook GAN: density no (1), stability 2, quality 5, speed 5, coverage 2
    assert [cells[c].textbook for c in ("density", "stability", "quality", "speed", "coverage")] == [1, 2, 5, 5, 2]
    # measured: density 1, stability 1 (collapsed), quality: anchored 80x -> 5 - 3 = 2, precision 0.44 -> 3:
    # 2.5 -> 3; speed 5; coverage (0 + 0.03) / 2 -> 1
    assert [cells[c].measured for c in ("density", "stability", "quality", "speed", "coverage")] == [1, 1, 3, 5, 1]
    assert [cells[c].agree for c in ("density", "stability", "quality", "speed", "coverage")] == [
        True, True, False, True, True]
    assert cells["quality"].reason("gan") == "GAN quality 5 vs 3: FID 800, 80x real, precision 0.44"
    assert agreement(tb) == (4, 5)
    assert summary_line(tb, "digits-tiny").startswith("digits-tiny: 4 of 5 rated cells agree")
    md = textbook_markdown(rows, "digits-tiny")
    assert "| GAN | textbook no · measured 1 ✓ |" in md and "- GAN quality 5 vs 3" in md


def test_uniform_model_on_a_coarser_grid_is_no_usable_density():
    # a 17-level PixelCNN at 4.0 bits/dim is within 5% of that grid's uniform model (log2 17 = 4.09): 1 star;
    # on the 8-bit grid 4.0 would be a good value. Best-in-table compares only values on one grid.
    ar = _rec("autoregressive", 0, {"bpd": 4.0}, kind="exact")
    ar.metrics["bpd"].unit, ar.metrics["bpd"].extra["grid_levels"] = "bits/dim on a 17-level grid", 17
    flow = _rec("flow", 0, {"bpd": 1.0}, kind="exact")
    rows = _rows([ar, flow])
    assert rows["autoregressive"].cells["density"].stars == 1
    assert "(uniform: 4.09)" in rows["autoregressive"].cells["density"].text
    assert "bits/dim on a 17-level grid" in rows["autoregressive"].cells["density"].text
    ar.metrics["bpd"].value = 1.2  # 20% worse than the 8-bit flow's 1.0, but on another grid: no penalty
    assert _rows([ar, flow])["autoregressive"].cells["density"].stars == 5
