"""Removal grounds and their deadlines (R6.2, R6.3, R6.4, R11.1, R11.2; regs 7-10 are assumptions)."""

from datetime import date, timedelta

import pytest

from app.cme.clocks import ClockSettings, DeadlineBasis, asap_due, reg6_notify_due
from app.cme.csa import CsaStatus, csa_status
from app.cme.removal import (
    Confidence,
    RemovalAction,
    RemovalDuty,
    RemovalGround,
    csa_removal_date,
    removal_due,
)

AWARE = date(2025, 5, 1)
ASSUMED_GROUNDS = [
    RemovalGround.REGISTERED_PUPIL,
    RemovalGround.SUITABLE_EDUCATION,
    RemovalGround.DIED,
    RemovalGround.LEFT_ENGLAND_AND_WALES,
]


class TestGroundRules:
    def test_regs_6_to_11_each_have_exactly_one_ground(self) -> None:
        assert sorted(ground.rule.regulation for ground in RemovalGround) == [6, 7, 8, 9, 10, 11]

    def test_only_regs_6_and_11_are_verified(self) -> None:
        verified = {ground for ground in RemovalGround if ground.rule.confidence is Confidence.VERIFIED}
        assert verified == {RemovalGround.MOVED_TO_ANOTHER_LA, RemovalGround.CEASED_COMPULSORY_SCHOOL_AGE}

    @pytest.mark.parametrize("ground", ASSUMED_GROUNDS)
    def test_regs_7_to_10_are_marked_as_assumptions(self, ground: RemovalGround) -> None:
        assert ground.rule.confidence is Confidence.ASSUMPTION


class TestReg6MovedToAnotherLa:
    def test_r6_2_awareness_alone_starts_only_the_28_day_inform_duty(self) -> None:
        duties = removal_due(RemovalGround.MOVED_TO_ANOTHER_LA, AWARE)
        assert duties == [
            RemovalDuty(
                RemovalGround.MOVED_TO_ANOTHER_LA, RemovalAction.INFORM_RECEIVING_LA, reg6_notify_due(AWARE)
            )
        ]
        assert duties[0].regulation == 6
        assert duties[0].confidence is Confidence.VERIFIED
        assert duties[0].deadline.due_on == date(2025, 5, 29)

    def test_r6_3_removal_runs_from_departure_when_the_move_was_foreseen(self) -> None:
        left = date(2025, 6, 13)
        inform, remove = removal_due(RemovalGround.MOVED_TO_ANOTHER_LA, AWARE, left_area_on=left)
        assert inform.action is RemovalAction.INFORM_RECEIVING_LA
        assert inform.deadline.due_on == date(2025, 5, 29)
        assert remove.action is RemovalAction.REMOVE_RECORD
        assert remove.deadline == asap_due(left)
        assert remove.deadline.due_on == date(2025, 6, 20)
        assert remove.deadline.basis is DeadlineBasis.INTERNAL_TARGET

    def test_r6_4_removal_runs_from_awareness_when_the_child_had_already_left(self) -> None:
        _, remove = removal_due(RemovalGround.MOVED_TO_ANOTHER_LA, AWARE, left_area_on=date(2025, 3, 1))
        assert remove.deadline == asap_due(AWARE)

    def test_settings_set_the_removal_target(self) -> None:
        settings = ClockSettings(asap_working_days=2, extra_holidays=frozenset({date(2025, 6, 16)}))
        _, remove = removal_due(
            RemovalGround.MOVED_TO_ANOTHER_LA, AWARE, left_area_on=date(2025, 6, 13), settings=settings
        )
        assert remove.deadline.due_on == date(2025, 6, 18)


class TestOtherGrounds:
    def test_r11_1_removal_as_soon_as_reasonably_practicable(self) -> None:
        (duty,) = removal_due(RemovalGround.CEASED_COMPULSORY_SCHOOL_AGE, AWARE)
        assert duty.action is RemovalAction.REMOVE_RECORD
        assert duty.regulation == 11
        assert duty.confidence is Confidence.VERIFIED
        assert duty.deadline == asap_due(AWARE)

    @pytest.mark.parametrize("ground", ASSUMED_GROUNDS)
    def test_assumed_grounds_get_the_internal_target_and_say_so(self, ground: RemovalGround) -> None:
        (duty,) = removal_due(ground, AWARE, settings=ClockSettings(asap_working_days=3))
        assert duty.action is RemovalAction.REMOVE_RECORD
        assert duty.confidence is Confidence.ASSUMPTION
        assert duty.deadline == asap_due(AWARE, working_days=3)

    @pytest.mark.parametrize("ground", [*ASSUMED_GROUNDS, RemovalGround.CEASED_COMPULSORY_SCHOOL_AGE])
    def test_departure_date_is_refused_outside_reg_6(self, ground: RemovalGround) -> None:
        with pytest.raises(ValueError, match="left_area_on applies only"):
            removal_due(ground, AWARE, left_area_on=AWARE)


class TestCsaRemovalDate:
    def test_r11_2_brief_example_removal_due_the_day_after_the_sld(self) -> None:
        assert csa_removal_date(date(2007, 9, 23)) == date(2024, 6, 29)

    def test_r11_2_is_the_first_day_above_csa(self) -> None:
        first = date(2007, 1, 1)
        for dob in (first + timedelta(days=offset) for offset in range(731)):
            removal = csa_removal_date(dob)
            assert csa_status(dob, removal - timedelta(days=1)) is CsaStatus.WITHIN
            assert csa_status(dob, removal) is CsaStatus.ABOVE

    def test_r11_2_scheduled_removal_needs_nobody_to_notice(self) -> None:
        removal_day = csa_removal_date(date(2007, 9, 23))  # Saturday 29 June 2024
        (duty,) = removal_due(RemovalGround.CEASED_COMPULSORY_SCHOOL_AGE, removal_day)
        assert duty.deadline.warn_from == removal_day
        assert duty.deadline.due_on == date(2024, 7, 5)

    def test_r11_2_passes_the_school_year_start_through(self) -> None:
        def fourth_of_september(year: int) -> date:
            return date(year, 9, 4)

        assert csa_removal_date(date(2008, 9, 3)) == date(2025, 6, 28)
        assert csa_removal_date(date(2008, 9, 3), fourth_of_september) == date(2024, 6, 29)
