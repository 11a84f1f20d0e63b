"""Primary and secondary suppression, then rounding to 5, with plain numbers.

Published counts are rounded to the nearest multiple of 5 since the figures are given per month: an
expected value that is not a multiple of 5 reads as its rounded value (the raw count in a comment).
"""

from __future__ import annotations

import pytest

from app.statistics.disclosure import Cell, protect_counts, protect_statistic, rounded


def _values(counts: dict[str, int]) -> tuple[dict[str, int | float | None], int | float | None]:
    column = protect_counts(counts)
    return {la: cell.value for la, cell in column.by_la.items()}, column.wales.value


class TestPrimary:
    def test_five_is_shown_and_four_is_not(self) -> None:
        column = protect_counts({"A": 5, "B": 9, "C": 4, "D": 1})
        assert column.by_la["A"] == Cell(5, False)
        assert column.by_la["C"] == Cell(None, True)

    def test_zero_is_suppressed_like_any_small_count(self) -> None:
        assert protect_counts({"A": 0, "B": 9, "C": 8}).by_la["A"].suppressed

    def test_a_small_wales_total_is_suppressed(self) -> None:
        column = protect_counts({"A": 2, "B": 2})
        assert column.wales == Cell(None, True)


class TestSecondary:
    def test_one_small_la_takes_the_smallest_other_with_it(self) -> None:
        by_la, wales = _values({"A": 20, "B": 3, "C": 6, "D": 9})
        assert by_la == {"A": 20, "B": None, "C": None, "D": 10}  # D: 9 rounded
        assert wales == 40  # 38 rounded

    def test_the_suppressed_cells_cannot_be_recovered_from_the_total(self) -> None:
        counts = {"A": 20, "B": 3, "C": 6, "D": 9}
        column = protect_counts(counts)
        hidden = [la for la, cell in column.by_la.items() if cell.suppressed]
        assert len(hidden) >= 2
        assert sum(counts[la] for la in hidden) >= 5

    def test_two_small_cells_summing_under_five_take_a_third(self) -> None:
        by_la, wales = _values({"A": 1, "B": 2, "C": 30, "D": 8})
        assert by_la == {"A": None, "B": None, "C": 30, "D": None}
        assert wales == 40  # 41 rounded

    def test_two_small_cells_summing_to_five_are_enough(self) -> None:
        by_la, _ = _values({"A": 1, "B": 4, "C": 30, "D": 8})
        assert by_la == {"A": None, "B": None, "C": 30, "D": 10}  # D: 8 rounded

    def test_with_no_la_left_to_suppress_the_wales_total_goes(self) -> None:
        column = protect_counts({"A": 3})
        assert column.by_la["A"].suppressed and column.wales == Cell(None, True)

    def test_zeros_are_recoverable_as_a_sum_so_they_take_a_real_cell_too(self) -> None:
        by_la, wales = _values({"A": 5, "B": 9, "C": 0, "D": 0})
        assert by_la == {"A": None, "B": 10, "C": None, "D": None}  # B: 9 rounded
        assert wales == 15  # 14 rounded

    def test_nothing_small_nothing_suppressed(self) -> None:
        by_la, wales = _values({"A": 5, "B": 6})
        assert by_la == {"A": 5, "B": 5} and wales == 10  # B: 6 and Wales: 11 rounded


class TestRounding:
    @pytest.mark.parametrize(
        ("count", "expected"), [(5, 5), (6, 5), (7, 5), (8, 10), (12, 10), (13, 15), (120, 120), (123, 125)]
    )
    def test_a_count_goes_to_the_nearest_multiple_of_five(self, count: int, expected: int) -> None:
        assert rounded(count) == expected

    def test_every_published_count_is_a_multiple_of_five_and_at_least_five(self) -> None:
        for counts in ({"A": 5, "B": 6, "C": 7}, {"A": 8, "B": 13, "C": 0}, {"A": 1, "B": 4, "C": 22}):
            column = protect_counts(counts)
            for cell in [*column.by_la.values(), column.wales]:
                assert cell.suppressed or (
                    isinstance(cell.value, int) and cell.value % 5 == 0 and cell.value >= 5
                )

    def test_wales_is_the_rounded_true_total_not_the_sum_of_rounded_cells(self) -> None:
        # 7 + 7 + 7 = 21 -> 20; the rounded cells (5 each) would sum to 15.
        by_la, wales = _values({"A": 7, "B": 7, "C": 7})
        assert by_la == {"A": 5, "B": 5, "C": 5} and wales == 20

    def test_suppression_is_decided_on_the_true_counts(self) -> None:
        # A's 4 is withheld; B (6, the smallest other) goes with it although 6 rounds to 5 like C's 7.
        by_la, wales = _values({"A": 4, "B": 6, "C": 7})
        assert by_la == {"A": None, "B": None, "C": 5} and wales == 15  # 17 rounded

    def test_a_difference_of_two_rounded_readings_does_not_give_a_small_number(self) -> None:
        # 120 then 122 cases: both read 120, the 2 new ones do not show.
        assert rounded(122) - rounded(120) == 0
        # 120 then 123: the difference reads 5, which says only that 1 to 9 (±4) arrived.
        assert rounded(123) - rounded(120) == 5


class TestStatistic:
    def test_a_median_on_fewer_than_five_cases_is_withheld(self) -> None:
        assert protect_statistic(3.5, 4) == Cell(None, True)
        assert protect_statistic(3.5, 5) == Cell(3.5, False)
