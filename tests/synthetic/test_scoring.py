"""The scorer, on small hand-built truths where every figure can be worked out by hand."""

from __future__ import annotations

from datetime import date

import pytest

from app.synthetic.scoring import LinkOutcome, PersonFacts, ScoreReport, Truth, missed_targets, score

TWIN_DOB = date(2015, 3, 2)
COMMON_DOB = date(2014, 1, 1)
PEOPLE = {
    0: PersonFacts("Ffion", "Jones", TWIN_DOB, twin_id=1),
    1: PersonFacts("Fflur", "Jones", TWIN_DOB, twin_id=0),
    2: PersonFacts("Dylan", "Davies", COMMON_DOB),
    3: PersonFacts("Dylan", "Evans", COMMON_DOB),
    4: PersonFacts("Osian", "Evans", date(2012, 5, 6)),
    5: PersonFacts("Cerys", "Hughes", date(2011, 7, 8)),
}
# Health rows 0-5 are persons 0-5; person 4 is on no register; person 3 has two education records.
TRUTH = Truth(
    health_person_ids=[0, 1, 2, 3, 4, 5],
    education_person_ids=[0, 1, 2, 3, 3, 5],
    people=PEOPLE,
)


def _perfect() -> list[LinkOutcome]:
    return [
        LinkOutcome(0, "matched", 0),
        LinkOutcome(1, "matched", 1),
        LinkOutcome(2, "matched", 2),
        LinkOutcome(3, "matched", 4),  # the child's second education record is just as right
        LinkOutcome(4, "unmatched"),
        LinkOutcome(5, "matched", 5),
    ]


class TestScore:
    def test_perfect_result_scores_one_everywhere(self) -> None:
        report = score(TRUTH, _perfect())
        assert (report.matched, report.correct_matched, report.linkable_rows) == (5, 5, 5)
        assert report.link_precision == report.link_recall == 1.0
        assert report.unknown_precision == report.unknown_recall == 1.0
        assert report.twins_cross_matched == report.common_name_collisions == 0
        assert missed_targets(report) == {}

    def test_wrong_links_count_against_precision_and_are_classified(self) -> None:
        outcomes = [
            LinkOutcome(0, "matched", 1),  # twin cross-match
            LinkOutcome(1, "matched", 1),
            LinkOutcome(2, "matched", 3),  # different Dylan born the same day
            LinkOutcome(3, "possible", 4),
            LinkOutcome(4, "unmatched"),
            LinkOutcome(5, "unmatched"),  # a child on a roll reported unknown
        ]
        report = score(TRUTH, outcomes)
        assert (report.matched, report.possible, report.unmatched) == (3, 1, 2)
        assert report.correct_matched == 1
        assert report.link_precision == pytest.approx(1 / 3)
        assert report.link_recall == pytest.approx(1 / 5)
        assert report.link_precision_with_possibles == pytest.approx(2 / 4)
        assert report.link_recall_with_possibles == pytest.approx(2 / 5)
        assert report.unknown_precision == pytest.approx(1 / 2)
        assert report.unknown_recall == 1.0
        assert report.twins_cross_matched == 1
        assert report.common_name_collisions == 1
        assert set(missed_targets(report)) == {"link_precision", "link_recall", "unknown_precision"}

    def test_wrong_possible_links_are_classified_separately(self) -> None:
        outcomes = _perfect()
        outcomes[0] = LinkOutcome(0, "possible", 1)
        outcomes[2] = LinkOutcome(2, "possible", 3)
        report = score(TRUTH, outcomes)
        assert report.twins_cross_matched == report.common_name_collisions == 0
        assert report.twins_cross_possible == report.common_name_collisions_possible == 1
        assert report.link_precision == 1.0
        assert report.link_precision_with_possibles == pytest.approx(3 / 5)

    def test_an_unrelated_wrong_link_is_neither_twin_nor_collision(self) -> None:
        outcomes = _perfect()
        outcomes[5] = LinkOutcome(5, "matched", 0)
        report = score(TRUTH, outcomes)
        assert report.wrong_matched == 1
        assert report.twins_cross_matched == report.common_name_collisions == 0

    def test_missing_unknown_child_lowers_unknown_recall(self) -> None:
        outcomes = _perfect()
        outcomes[4] = LinkOutcome(4, "possible", 5)
        report = score(TRUTH, outcomes)
        assert report.unknown_recall == 0.0
        assert report.predicted_unknown_rows == 0


class TestMalformedResults:
    def test_missing_row_is_refused(self) -> None:
        with pytest.raises(ValueError, match="no outcome"):
            score(TRUTH, _perfect()[:-1])

    def test_repeated_row_is_refused(self) -> None:
        with pytest.raises(ValueError, match="twice"):
            score(TRUTH, [*_perfect(), LinkOutcome(0, "unmatched")])

    def test_link_without_education_row_is_refused(self) -> None:
        outcomes = _perfect()
        outcomes[0] = LinkOutcome(0, "matched", None)
        with pytest.raises(ValueError, match="without a valid education row"):
            score(TRUTH, outcomes)

    def test_unknown_outcome_is_refused(self) -> None:
        outcomes = _perfect()
        outcomes[0] = LinkOutcome(0, "maybe", 0)
        with pytest.raises(ValueError, match="unknown outcome"):
            score(TRUTH, outcomes)


class TestReport:
    def test_str_names_every_measure(self) -> None:
        text = str(score(TRUTH, _perfect()))
        for label in (
            "link precision",
            "link recall",
            "unknown precision",
            "unknown recall",
            "twins",
            "common-name",
        ):
            assert label in text

    def test_empty_denominators_read_as_perfect(self) -> None:
        report = ScoreReport(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        assert report.link_precision == report.unknown_recall == 1.0
