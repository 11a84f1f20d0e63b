"""Record-level data rules: every record gets a fate, and no record is ever silently dropped.

The rule (docs/decisions/0004-record-fates-and-intake.md):
- *rejected*: the record cannot lawfully or usefully be held. Health lists: no name at all, no date of
  birth, a birth date after the as-of date, or a child outside compulsory school age on the as-of date,
  whom the service must not hold (R3.5). Education registers: only a record that identifies nobody (no
  given name, no family name and no valid NHS number). Rejected records are not stored; the receipt names
  each one with its index, field and code so the sender can correct and resend.
- *flagged*: stored and matched, with the finding recorded: a postcode that does not parse or is absent,
  a partial name, an invalid NHS number (the number itself is dropped); on an education register also a
  missing birth date, a birth date after the as-of date or giving an implausible age (that date is not
  stored), a child outside compulsory school age. An education record is evidence that education knows
  the child, even when incomplete: refusing it would make a known child look missing.
- *accepted*: no findings.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple

from app.core.csa import CsaStatus, csa_status
from app.core.identifiers import is_valid_nhs_number, normalise_postcode
from app.submissions.schemas import EducationRecord, HealthRecord, HealthRecordItem, SchoolRollRecord

# Education registers legitimately hold children just outside CSA (nursery, sixth form); beyond these
# ages a birth date is more likely wrong than real.
EDUCATION_MIN_AGE_YEARS = 2
EDUCATION_MAX_AGE_YEARS = 20


class Fate(StrEnum):
    accepted = "accepted"
    flagged = "flagged"
    rejected = "rejected"


class IssueCode(StrEnum):
    missing_name = "missing_name"
    partial_name = "partial_name"
    missing_date_of_birth = "missing_date_of_birth"
    date_of_birth_in_future = "date_of_birth_in_future"
    outside_compulsory_school_age = "outside_compulsory_school_age"
    implausible_date_of_birth = "implausible_date_of_birth"
    missing_postcode = "missing_postcode"
    invalid_postcode = "invalid_postcode"
    invalid_nhs_number = "invalid_nhs_number"
    admission_date_in_future = "admission_date_in_future"


_MESSAGES = {
    IssueCode.missing_name: "Neither given name nor family name is present.",
    IssueCode.partial_name: "Only one of given name and family name is present.",
    IssueCode.missing_date_of_birth: "No date of birth is given.",
    IssueCode.date_of_birth_in_future: "The date of birth is after the as-of date.",
    IssueCode.outside_compulsory_school_age: "The child is not of compulsory school age on the as-of date.",
    IssueCode.implausible_date_of_birth: "The date of birth gives an age no education register would hold.",
    IssueCode.missing_postcode: "No postcode is given.",
    IssueCode.invalid_postcode: "The postcode is not a valid UK postcode.",
    IssueCode.invalid_nhs_number: "The NHS number fails its modulus-11 check; it was not stored.",
    IssueCode.admission_date_in_future: "The admission date is after the as-of date.",
}

# Health lists: without a name nothing can be acted on; without a plausible birth date compulsory school age
# cannot be established, and the service must not hold a child it cannot place within it (R3.5).
_REJECTING = frozenset(
    {
        IssueCode.missing_name,
        IssueCode.missing_date_of_birth,
        IssueCode.date_of_birth_in_future,
    }
)
# Education registers: a birth date that cannot be the child's is not stored. Held, it would count as
# evidence *against* the child's own record (a different date weighs about -7.4 bits, enough to turn
# names and address agreeing into a review or no match); held as missing it counts neither way.
_DATE_NOT_STORED = frozenset({IssueCode.date_of_birth_in_future, IssueCode.implausible_date_of_birth})
_DATE_NOT_STORED_MESSAGES = {
    IssueCode.date_of_birth_in_future: "The date of birth is after the as-of date; it was not stored.",
    IssueCode.implausible_date_of_birth: (
        "The date of birth gives an age no education register would hold; it was not stored."
    ),
}


@dataclass(frozen=True, slots=True)
class Issue:
    code: IssueCode
    field: str
    # The record was stored without this field's value (the value is known to be wrong).
    value_dropped: bool = False

    @property
    def message(self) -> str:
        return _DATE_NOT_STORED_MESSAGES[self.code] if self.value_dropped else _MESSAGES[self.code]


class Assessment(NamedTuple):
    # A NamedTuple, not a frozen dataclass: one is built per record, and frozen dataclasses construct
    # through object.__setattr__, several times slower at 500,000 records.
    fate: Fate
    issues: tuple[Issue, ...]
    postcode_norm: str | None
    nhs_number: str | None
    # False when the record is stored without the date of birth it was sent with (see `_DATE_NOT_STORED`).
    keeps_date_of_birth: bool = True


@lru_cache(maxsize=65_536)
def _csa_status(dob: dt.date, on: dt.date) -> CsaStatus:
    # A list of 500,000 children holds only a few thousand distinct birth dates.
    return csa_status(dob, on)


def _age_on(dob: dt.date, on: dt.date) -> int:
    return on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))


def _common(
    record: HealthRecord | EducationRecord, as_of: dt.date
) -> tuple[list[Issue], str | None, str | None]:
    issues: list[Issue] = []
    given, family, dob, address = record.given_name, record.family_name, record.date_of_birth, record.address
    if given is None and family is None:
        issues.append(Issue(IssueCode.missing_name, "given_name"))
    elif given is None or family is None:
        issues.append(Issue(IssueCode.partial_name, "given_name" if given is None else "family_name"))
    if dob is None:
        issues.append(Issue(IssueCode.missing_date_of_birth, "date_of_birth"))
    elif dob > as_of:
        issues.append(Issue(IssueCode.date_of_birth_in_future, "date_of_birth"))
    raw_postcode = address.postcode if address is not None else None
    postcode_norm = normalise_postcode(raw_postcode)
    if raw_postcode is None:
        issues.append(Issue(IssueCode.missing_postcode, "address.postcode"))
    elif postcode_norm is None:
        issues.append(Issue(IssueCode.invalid_postcode, "address.postcode"))
    nhs_number = record.nhs_number
    if nhs_number is not None:
        if is_valid_nhs_number(nhs_number):
            nhs_number = nhs_number.replace(" ", "")
        else:
            issues.append(Issue(IssueCode.invalid_nhs_number, "nhs_number"))
            nhs_number = None
    return issues, postcode_norm, nhs_number


def _fate(issues: list[Issue]) -> Fate:
    """A health record's fate."""
    if not issues:
        return Fate.accepted
    if any(issue.code in _REJECTING for issue in issues):
        return Fate.rejected
    return Fate.flagged


@lru_cache(maxsize=1 << 18)
def _accepted_at(raw_postcode: str | None) -> Assessment | None:
    """The assessment of a record without findings at this postcode; None if the postcode is a finding."""
    postcode_norm = normalise_postcode(raw_postcode)
    return None if postcode_norm is None else Assessment(Fate.accepted, (), postcode_norm, None)


def assess_health_record(record: HealthRecord, as_of: dt.date) -> Assessment:
    # Almost every record on a list is plainly accepted: settle those with a few attribute reads and two
    # cached look-ups, and leave everything else to the full rules (same answer, tested).
    dob, address = record.date_of_birth, record.address
    if (
        dob is not None
        and address is not None
        and record.given_name is not None
        and record.family_name is not None
        and record.nhs_number is None
        and dob <= as_of
        and _csa_status(dob, as_of) is CsaStatus.WITHIN
    ):
        accepted = _accepted_at(address.postcode)
        if accepted is not None:
            return accepted
    return _assess_health_in_full(record, as_of)


def plainly_accepted_item(item: HealthRecordItem, as_of: dt.date) -> Assessment | None:
    """`assess_health_record`'s quick answer for a record held as a dict: the assessment of a record
    without findings, or None when the full rules must look at it (as a `HealthRecord`)."""
    dob, address = item.get("date_of_birth"), item.get("address")
    if (
        dob is not None
        and address is not None
        and item.get("given_name") is not None
        and item.get("family_name") is not None
        and item.get("nhs_number") is None
        and dob <= as_of
        and _csa_status(dob, as_of) is CsaStatus.WITHIN
    ):
        return _accepted_at(address.get("postcode"))
    return None


def _assess_health_in_full(record: HealthRecord, as_of: dt.date) -> Assessment:
    issues, postcode_norm, nhs_number = _common(record, as_of)
    dob = record.date_of_birth
    if dob is not None and dob <= as_of and _csa_status(dob, as_of) is not CsaStatus.WITHIN:
        # R3.5: the service must not hold children outside compulsory school age.
        issues.append(Issue(IssueCode.outside_compulsory_school_age, "date_of_birth"))
        return Assessment(Fate.rejected, tuple(issues), postcode_norm, nhs_number)
    return Assessment(_fate(issues), tuple(issues), postcode_norm, nhs_number)


def assess_education_record(record: EducationRecord, as_of: dt.date) -> Assessment:
    """An education record's fate: rejected only when it identifies nobody (no given name, no family name
    and no valid NHS number); anything else is stored and matched on what it holds, flagged with every
    finding. A record the service refused would leave the child it describes looking unknown to education,
    and so wrongly flagged as missing. A birth date that cannot be the child's (after the as-of date, or an
    age outside 2-20) is flagged and not stored (`_DATE_NOT_STORED`)."""
    issues, postcode_norm, nhs_number = _common(record, as_of)
    dob = record.date_of_birth
    keeps_date = True
    if dob is not None:
        if dob > as_of:
            keeps_date = False
        elif not EDUCATION_MIN_AGE_YEARS <= _age_on(dob, as_of) <= EDUCATION_MAX_AGE_YEARS:
            issues.append(Issue(IssueCode.implausible_date_of_birth, "date_of_birth"))
            keeps_date = False
        elif _csa_status(dob, as_of) is not CsaStatus.WITHIN:
            issues.append(Issue(IssueCode.outside_compulsory_school_age, "date_of_birth"))
    if not keeps_date:
        issues = [
            Issue(i.code, i.field, value_dropped=True) if i.code in _DATE_NOT_STORED else i for i in issues
        ]
    if (
        isinstance(record, SchoolRollRecord)
        and record.admission_date is not None
        and record.admission_date > as_of
    ):
        issues.append(Issue(IssueCode.admission_date_in_future, "admission_date"))
    identifies_nobody = record.given_name is None and record.family_name is None and nhs_number is None
    fate = Fate.rejected if identifies_nobody else Fate.flagged if issues else Fate.accepted
    return Assessment(fate, tuple(issues), postcode_norm, nhs_number, keeps_date)
