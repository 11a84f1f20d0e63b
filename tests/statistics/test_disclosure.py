"""Primary and secondary suppression, with plain numbers."""

from __future__ import annotations

from app.statistics.disclosure import Cell, protect_counts, protect_statistic


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
        assert by_la == {"A": 20, "B": None, "C": None, "D": 9}
        assert wales == 38

    def test_the_suppressed_cells_cannot_be_recovered_from_the_total(self) -> None:
        counts = {"A": 20, "B": 3, "C": 6, "D": 9}
        column = protect_counts(counts)
        hidden = [la for la, cell in column.by_la.items() if cell.suppressed]
        assert len(hidden) >= 2
        assert sum(counts[la] for la in hidden) >= 5

    def test_two_small_cells_summing_under_five_take_a_third(self) -> None:
        by_la, wales = _values({"A": 1, "B": 2, "C": 30, "D": 8})
        assert by_la == {"A": None, "B": None, "C": 30, "D": None}
        assert wales == 41

    def test_two_small_cells_summing_to_five_are_enough(self) -> None:
        by_la, _ = _values({"A": 1, "B": 4, "C": 30, "D": 8})
        assert by_la == {"A": None, "B": None, "C": 30, "D": 8}

    def test_with_no_la_left_to_suppress_the_wales_total_goes(self) -> None:
        column = protect_counts({"A": 3})
        assert column.by_la["A"].suppressed and column.wales == Cell(None, True)

    def test_zeros_are_recoverable_as_a_sum_so_they_take_a_real_cell_too(self) -> None:
        by_la, wales = _values({"A": 5, "B": 9, "C": 0, "D": 0})
        assert by_la == {"A": None, "B": 9, "C": None, "D": None}
        assert wales == 14

    def test_nothing_small_nothing_suppressed(self) -> None:
        by_la, wales = _values({"A": 5, "B": 6})
        assert by_la == {"A": 5, "B": 6} and wales == 11


class TestStatistic:
    def test_a_median_on_fewer_than_five_cases_is_withheld(self) -> None:
        assert protect_statistic(3.5, 4) == Cell(None, True)
        assert protect_statistic(3.5, 5) == Cell(3.5, False)
