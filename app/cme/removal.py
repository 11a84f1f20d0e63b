"""Removal grounds for a CME record and the deadlines each one starts.

The explanatory note to WSI 2025/440 says regs 6 to 11 list every occasion on which a record must be
removed. Regs 6 and 11 were read in the regulation text (VERIFIED). The text of regs 7 to 10 was not
retrieved: their subjects and their numbering below are ASSUMPTIONS (open question Q3), and so is
applying the "as soon as reasonably practicable" target to them. Check the official text before
relying on them, and keep callers reporting `confidence` to staff.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from app.cme.clocks import ClockSettings, Deadline, asap_due, reg6_notify_due
from app.core.csa import SchoolYearStart, csa_end, first_of_september


class Confidence(StrEnum):
    VERIFIED = "verified"  # read in the regulation text
    ASSUMPTION = "assumption"  # regulation text not retrieved; inferred from secondary sources


class RemovalAction(StrEnum):
    INFORM_RECEIVING_LA = "inform_receiving_la"
    REMOVE_RECORD = "remove_record"


# Stub ground of a record erased on the data subject's request (UK GDPR art. 17), not under regs 6-11.
ERASURE = "erasure"


@dataclass(frozen=True, slots=True)
class GroundRule:
    regulation: int
    confidence: Confidence
    summary: str


class RemovalGround(StrEnum):
    """Why a CME record leaves the database. Values are stored, so never rename them."""

    MOVED_TO_ANOTHER_LA = "moved_to_another_la"
    REGISTERED_PUPIL = "registered_pupil"
    SUITABLE_EDUCATION = "suitable_education"
    DIED = "died"
    LEFT_ENGLAND_AND_WALES = "left_england_and_wales"
    CEASED_COMPULSORY_SCHOOL_AGE = "ceased_compulsory_school_age"

    @property
    def rule(self) -> GroundRule:
        return GROUND_RULES[self]


GROUND_RULES: Mapping[RemovalGround, GroundRule] = {
    RemovalGround.MOVED_TO_ANOTHER_LA: GroundRule(
        regulation=6,
        confidence=Confidence.VERIFIED,
        summary=(
            "Child has become, or is likely to become, ordinarily resident in another LA in Wales or an"
            " LA in England: inform that LA within 28 days of awareness; remove as soon as reasonably"
            " practicable after the child has left the area."
        ),
    ),
    RemovalGround.REGISTERED_PUPIL: GroundRule(
        regulation=7,
        confidence=Confidence.ASSUMPTION,
        summary="Child has become a registered pupil at a school.",
    ),
    RemovalGround.SUITABLE_EDUCATION: GroundRule(
        regulation=8,
        confidence=Confidence.ASSUMPTION,
        summary="The LA is satisfied that the child is receiving a suitable education.",
    ),
    RemovalGround.DIED: GroundRule(
        regulation=9,
        confidence=Confidence.ASSUMPTION,
        summary="The child has died.",
    ),
    RemovalGround.LEFT_ENGLAND_AND_WALES: GroundRule(
        regulation=10,
        confidence=Confidence.ASSUMPTION,
        summary="The child has left England and Wales (reg 6 covers moves within them only).",
    ),
    RemovalGround.CEASED_COMPULSORY_SCHOOL_AGE: GroundRule(
        regulation=11,
        confidence=Confidence.VERIFIED,
        summary=(
            "Child has ceased to be of compulsory school age: remove as soon as reasonably practicable."
            " Computable in advance from the date of birth."
        ),
    ),
}


@dataclass(frozen=True, slots=True)
class RemovalDuty:
    """One thing the LA must do because of a removal ground, and by when."""

    ground: RemovalGround
    action: RemovalAction
    deadline: Deadline

    @property
    def regulation(self) -> int:
        return self.ground.rule.regulation

    @property
    def confidence(self) -> Confidence:
        return self.ground.rule.confidence


def removal_due(
    ground: RemovalGround,
    became_aware_on: date,
    left_area_on: date | None = None,
    settings: ClockSettings = ClockSettings(),
) -> list[RemovalDuty]:
    """The duties, with deadlines, that start when the LA becomes aware of `ground`.

    Reg 6 has two separate events: awareness of a (possibly future) move starts the 28-day duty to
    inform the receiving LA, and removal waits until the child has actually left (`left_area_on`).
    Until that date is known only the inform duty is returned. The removal clock runs from the later
    of departure and awareness, since nothing is practicable before the LA knows.

    Every other ground is a single removal "as soon as reasonably practicable" after awareness. For
    reg 11 pass `csa_removal_date(dob)` as `became_aware_on` so the clock needs nobody to notice.
    """
    if left_area_on is not None and ground is not RemovalGround.MOVED_TO_ANOTHER_LA:
        raise ValueError("left_area_on applies only to the moved_to_another_la ground")

    def remove_after(event_date: date) -> RemovalDuty:
        deadline = asap_due(event_date, settings.asap_working_days, settings.extra_holidays)
        return RemovalDuty(ground, RemovalAction.REMOVE_RECORD, deadline)

    if ground is not RemovalGround.MOVED_TO_ANOTHER_LA:
        return [remove_after(became_aware_on)]
    duties = [RemovalDuty(ground, RemovalAction.INFORM_RECEIVING_LA, reg6_notify_due(became_aware_on))]
    if left_area_on is not None:
        duties.append(remove_after(max(left_area_on, became_aware_on)))
    return duties


def csa_removal_date(dob: date, school_year_start: SchoolYearStart = first_of_september) -> date:
    """The first day on which the child is no longer of compulsory school age (reg 11 trigger)."""
    return csa_end(dob, school_year_start) + timedelta(days=1)
