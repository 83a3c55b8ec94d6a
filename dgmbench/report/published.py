"""Published results on a dataset's protocol, shown beside the measured rows of the same family.

:data:`PUBLISHED` holds, per dataset, the numbers papers report on the protocol the leaderboard
uses, so a reader sees how far each baseline is from its family's published behaviour. Today:
the 2-D mode-collapse benchmarks ``ring8`` and ``grid25`` (2,500 samples; high quality = within
3 std of the nearest mode; modes captured; reverse KL of the high-quality mode histogram from
uniform, nats), from PacGAN's Table 1 (Lin et al. 2018: mean ± standard error of the mean over
10 trials of 400,000 steps) and VEEGAN's Table 1 (Srivastava et al. 2017, their own GAN setup,
single values). Both were checked against the tables the papers' repositories publish
(``fjxmlzn/PacGAN`` ``synthetic_data_experiments/results/Table1.png``, ``akashgit/VEEGAN``
``tab.png``). High quality is a fraction here, as in ``mode_coverage``. ``baselines/README.md``
("published vs ours") adds the vanilla-GAN presets and the per-seed values.
"""

from __future__ import annotations

from dataclasses import dataclass

from .comparison import fmt
from .summary import ModelSummary

PUBLISHED_NOTE = ("The papers' numbers on this protocol beside the measured rows of the same family. PacGAN's ± is "
                  "the standard error of the mean over its 10 trials (s.e.; the trials' std is about 3.2 times "
                  "larger); VEEGAN gives single values; the measured rows show mean ± std over seeds. "
                  "baselines/README.md (published vs ours) adds the vanilla-GAN presets, the per-seed values and "
                  "what the CPU schedule trades.")
MODE_METRICS = ("modes_captured", "hq_fraction", "mode_rkl")
MODE_HEADERS = ("modes ↑", "high-quality fraction ↑", "reverse KL (nats) ↓")


@dataclass(frozen=True)
class PublishedResult:
    """One published row: where it is from, which model, its family, metric -> (mean, spread or None),
    and what the spread is (``spread_kind``, e.g. "s.e." for a standard error of the mean)."""

    source: str
    model: str
    family: str
    values: dict[str, tuple[float, float | None]]
    spread_kind: str | None = None


_PACGAN = "PacGAN Table 1 (400,000 steps, 10 trials)"
_VEEGAN = "VEEGAN Table 1 (their GAN setup)"

PUBLISHED: dict[str, tuple[PublishedResult, ...]] = {
    "ring8": (
        PublishedResult(_PACGAN, "GAN", "gan", {"modes_captured": (6.3, 0.5), "hq_fraction": (0.982, 0.002),
                                                 "mode_rkl": (0.45, 0.09)}, "s.e."),
        PublishedResult(_PACGAN, "PacGAN2", "gan", {"modes_captured": (7.9, 0.1), "hq_fraction": (0.956, 0.020),
                                                     "mode_rkl": (0.07, 0.03)}, "s.e."),
        PublishedResult(_VEEGAN, "GAN", "gan", {"modes_captured": (1.0, None), "hq_fraction": (0.993, None)}),
    ),
    "grid25": (
        PublishedResult(_PACGAN, "GAN", "gan", {"modes_captured": (17.3, 0.8), "hq_fraction": (0.948, 0.007),
                                                 "mode_rkl": (0.70, 0.07)}, "s.e."),
        PublishedResult(_PACGAN, "PacGAN2", "gan", {"modes_captured": (23.8, 0.7), "hq_fraction": (0.913, 0.008),
                                                     "mode_rkl": (0.13, 0.04)}, "s.e."),
        PublishedResult(_VEEGAN, "GAN", "gan", {"modes_captured": (3.3, None), "hq_fraction": (0.005, None)}),
    ),
}


def _cell(mean: float | None, spread: float | None, kind: str | None = None) -> str:
    if mean is None:
        return "-"
    return fmt(mean, 3) + (f" ± {fmt(spread, 2)}" if spread is not None else "") + (f" ({kind})" if kind and spread is not None else "")


def published_rows(dataset: str, summaries: list[ModelSummary]) -> list[list[str]]:
    """Rows (source, model, modes, hq fraction, rKL): the published ones (± their spread, named),
    then each measured model of a family that has published rows (mean ± std over its finished seeds)."""
    pub = PUBLISHED.get(dataset, ())
    if not pub:
        return []
    rows = [[p.source, p.model, *(_cell(*p.values.get(m, (None, None)), p.spread_kind) for m in MODE_METRICS)]
            for p in pub]
    families = {p.family for p in pub}
    for s in summaries:
        if s.family in families and not s.is_real:
            seeds = len(s.values("modes_captured"))
            rows.append([f"measured here ({seeds} seed{'s' if seeds != 1 else ''})",
                         f"{s.family}" + (f" (preset {s.preset})" if s.preset else ""),
                         *(_cell(s.mean(m), s.std(m)) for m in MODE_METRICS)])
    return rows


def published_markdown(dataset: str, summaries: list[ModelSummary], heading: str = "##") -> list[str]:
    """The "Published vs measured" section in Markdown (``heading`` level, the note, the rows of
    :func:`published_rows` as a table, a blank line), or [] when nothing is published."""
    rows = published_rows(dataset, summaries)
    if not rows:
        return []
    head = ["source", "model", *MODE_HEADERS]
    table = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]
    return [f"{heading} Published vs measured", "", PUBLISHED_NOTE, "", *table, ""]
