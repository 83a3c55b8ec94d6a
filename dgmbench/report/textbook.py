"""The textbook comparison table beside the measured one.

The classic table (one row per family, five columns, stars out of 5) that the project
regenerates is :data:`TEXTBOOK`. Per cell the report shows the textbook rating, the measured
rating (:mod:`.comparison`), whether they agree within one star, and where they disagree a
one-line reason drawn from the measured numbers; a summary line counts the agreements.

The textbook's explicit-density column is a word, not stars; it is compared through the
same scale as the measured rule (``stars.KIND_STARS``): yes (exact) 5, lower bound 4, up to Z
or indirectly (an estimate) 3, no 1.
"""

from __future__ import annotations

from dataclasses import dataclass

from .comparison import COLUMNS, ComparisonRow

DENSITY_WORD_STARS = {"yes": 5, "yes (lower bound)": 4, "yes (up to Z)": 3, "yes (indirectly)": 3, "no": 1}

# family -> (explicit density word, stability, quality, speed, coverage)
TEXTBOOK_ROWS: dict[str, tuple[str, int, int, int, int]] = {
    "autoregressive": ("yes", 4, 3, 2, 4),
    "vae": ("yes (lower bound)", 4, 3, 5, 4),
    "flow": ("yes", 3, 3, 4, 3),
    "gan": ("no", 2, 5, 5, 2),
    "ebm": ("yes (up to Z)", 2, 3, 1, 3),
    "score": ("yes (indirectly)", 3, 4, 2, 4),
    "diffusion": ("yes (indirectly)", 5, 5, 2, 5),
}
FAMILY_TITLES = {"autoregressive": "autoregressive", "vae": "VAE", "flow": "normalizing flow", "gan": "GAN",
                 "ebm": "EBM", "score": "score-based", "diffusion": "diffusion"}
SHORT_TITLES = {"density": "density", "stability": "stability", "quality": "quality", "speed": "speed",
                "coverage": "coverage"}


def textbook_rating(family: str, column: str) -> tuple[int, str] | None:
    """(stars, what the textbook says) of ``family`` in ``column``; None for a family it has no row for."""
    row = TEXTBOOK_ROWS.get(family)
    if row is None:
        return None
    i = [c for c, _ in COLUMNS].index(column)
    if i == 0:
        return DENSITY_WORD_STARS[row[0]], row[0]
    return int(row[i]), f"{row[i]}/5"


@dataclass
class TextbookCell:
    column: str
    textbook: int
    textbook_text: str
    measured: int | None
    measured_text: str

    @property
    def agree(self) -> bool | None:
        """Within one star; None when the measured cell is not rated."""
        return None if self.measured is None else abs(self.measured - self.textbook) <= 1

    def reason(self, family: str) -> str | None:
        """One line for a disagreement: both ratings and the measured numbers behind the measured one."""
        if self.agree is not False:
            return None
        title = FAMILY_TITLES.get(family, family)
        return f"{title} {SHORT_TITLES[self.column]} {self.textbook} vs {self.measured}: {self.measured_text}"


@dataclass
class TextbookRow:
    family: str
    cells: dict[str, TextbookCell]


def textbook_rows(rows: list[ComparisonRow]) -> list[TextbookRow]:
    """The measured rows of families the textbook rates (the real-data row and unknown families are left out)."""
    out = []
    for row in rows:
        if row.is_real or row.family not in TEXTBOOK_ROWS:
            continue
        cells = {}
        for c, _ in COLUMNS:
            stars, text = textbook_rating(row.family, c)  # type: ignore[misc]
            cells[c] = TextbookCell(c, stars, text, row.cells[c].stars, row.cells[c].text)
        out.append(TextbookRow(row.family, cells))
    return out


def agreement(rows: list[TextbookRow]) -> tuple[int, int]:
    """(cells that agree within one star, rated cells)."""
    rated = [c for r in rows for c in r.cells.values() if c.agree is not None]
    return sum(1 for c in rated if c.agree), len(rated)


def summary_line(rows: list[TextbookRow], name: str) -> str:
    agree, total = agreement(rows)
    per_col = []
    for c, _ in COLUMNS:
        cells = [r.cells[c] for r in rows if r.cells[c].agree is not None]
        if cells:
            per_col.append(f"{SHORT_TITLES[c]} {sum(1 for x in cells if x.agree)}/{len(cells)}")
    return (f"{name}: {agree} of {total} rated cells agree with the textbook within one star"
            + (f" ({', '.join(per_col)})." if per_col else "."))


def cell_text(cell: TextbookCell) -> str:
    """'textbook 4 · measured 2 ✗' (✓ within one star, ✗ not, '?' not rated)."""
    mark = "?" if cell.agree is None else ("✓" if cell.agree else "✗")
    measured = "-" if cell.measured is None else str(cell.measured)
    tb = cell.textbook_text if cell.column == "density" else str(cell.textbook)
    return f"textbook {tb} · measured {measured} {mark}"


def textbook_markdown(rows: list[ComparisonRow], name: str) -> str:
    """The textbook-vs-measured table, the summary line and one reason per disagreement."""
    tb = textbook_rows(rows)
    if not tb:
        return "No family of this table is in the textbook table."
    lines = ["| family | " + " | ".join(title for _, title in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for r in tb:
        lines.append(f"| {FAMILY_TITLES.get(r.family, r.family)} | "
                     + " | ".join(cell_text(r.cells[c]) for c, _ in COLUMNS) + " |")
    lines += ["", summary_line(tb, name)]
    reasons = [c.reason(r.family) for r in tb for c in r.cells.values() if c.reason(r.family)]
    if reasons:
        lines += ["", "Where they disagree (measured numbers):", ""] + [f"- {x}" for x in reasons]
    lines += ["", "Textbook density words on the measured scale: yes 5, yes (lower bound) 4, yes (up to Z) and "
              "yes (indirectly) 3, no 1. Agreement: within one star."]
    return "\n".join(lines)
