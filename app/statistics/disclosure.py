"""Statistical disclosure control for the pilot's statistics (pure: plain numbers in, cells out).

Primary: every count under `THRESHOLD` (0 to 4) is suppressed. Secondary: a measure is published for
each LA and for Wales, the Wales figure being the sum of the LA figures, so one suppressed LA cell could
be recovered as Wales minus the others. For each measure, while the suppressed LA cells number fewer
than two or sum to less than `THRESHOLD`, the smallest published LA cell (ties: first LA code) is
suppressed as well; if no LA cell is left to suppress, the Wales figure is. So the suppressed cells of a
measure can only be recovered together, as a sum of at least `THRESHOLD` spread over two or more LAs.

Rounding: every published count is then rounded to the nearest multiple of `ROUNDING_BASE` (no ties:
counts are whole). Suppression alone leaves exact differences: the cumulative figures of two month ends
differ by the exact (maybe small) number of new cases, and a month's flow adds a third exact figure to
that; rounded, each published count is known only within ±2 and a difference of two within ±4. The Wales total is the rounded sum of the true LA counts (off by at most 2), not
the sum of rounded cells (off by up to 2 per LA, and it would omit the withheld ones). Suppression is
decided on the true counts, so rounding only widens what a subtraction can recover.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

THRESHOLD = 5
ROUNDING_BASE = 5


@dataclass(frozen=True, slots=True)
class Cell:
    value: int | float | None
    suppressed: bool


@dataclass(frozen=True, slots=True)
class Column:
    """One measure after suppression: a cell per LA code, and the Wales total."""

    by_la: dict[str, Cell]
    wales: Cell


def _secondary(counts: Mapping[str, int], primary: set[str]) -> tuple[set[str], bool]:
    """LA codes to suppress (primary plus secondary), and whether the Wales total must go too."""
    suppressed = set(primary)
    if not suppressed:
        return suppressed, False
    published = sorted((count, la) for la, count in counts.items() if la not in suppressed)
    while len(suppressed) < 2 or sum(counts[la] for la in suppressed) < THRESHOLD:
        if not published:
            return suppressed, True
        suppressed.add(published.pop(0)[1])
    return suppressed, False


def rounded(count: int) -> int:
    """The nearest multiple of `ROUNDING_BASE` (a published count is at least `THRESHOLD`, so never 0)."""
    return ROUNDING_BASE * ((count + ROUNDING_BASE // 2) // ROUNDING_BASE)


def protect_counts(counts: Mapping[str, int]) -> Column:
    """Suppress one count measure across LAs, with its Wales total (their sum), and round what is published."""
    primary = {la for la, count in counts.items() if count < THRESHOLD}
    suppressed, wales_too = _secondary(counts, primary)
    total = sum(counts.values())
    wales_hidden = wales_too or total < THRESHOLD
    return Column(
        by_la={
            la: Cell(None if la in suppressed else rounded(count), la in suppressed)
            for la, count in counts.items()
        },
        wales=Cell(None if wales_hidden else rounded(total), wales_hidden),
    )


def protect_statistic(value: float | None, basis: int) -> Cell:
    """A statistic (a median) computed from `basis` cases: published only when the basis is not small."""
    hidden = basis < THRESHOLD
    return Cell(None if hidden else value, hidden)
