"""Request and response bodies of the review queue and real-time matching."""

from __future__ import annotations

import datetime as dt
import uuid
from contextvars import ContextVar
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from app.submissions.schemas import Address, FormerName, HealthRecord


class Decision(StrEnum):
    confirm = "confirm"
    reject = "reject"


class ReviewDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Decision = Field(
        description="confirm: the same child (matched); reject: not the same (unmatched)."
    )
    reason: str = Field(min_length=1, max_length=500, description="Why; kept with the decision.")


class FieldEvidence(BaseModel):
    field: str
    level: str = Field(
        description="Comparison level, best first per field; 'missing' when a side has no value."
    )
    weight: float | None = Field(description="Fellegi-Sunter weight in bits.")


class Explanation(BaseModel):
    """Why: every field's comparison level and weight, the totals and thresholds. Levels only, never values."""

    outcome: str | None = None
    reason: str | None = None
    names_swapped: bool = False
    fields: list[FieldEvidence]
    prior: float | None = None
    match_weight: float | None = None
    match_probability: float | None = None
    runner_up_weight: float | None = None
    thresholds: dict[str, float] = Field(default_factory=dict)
    model_version: str | None = None
    model_hash: str | None = None


class ReviewSummary(BaseModel):
    id: uuid.UUID
    submission_id: uuid.UUID
    record_index: int
    created_at: dt.datetime
    review_status: str
    register_type: str | None
    education_la: str | None
    match_probability: float | None


class ReviewPage(BaseModel):
    items: list[ReviewSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class ChildDetail(BaseModel):
    """A child's Schedule 2 items as held, for the reviewing officer."""

    given_name: str | None
    middle_names: str | None
    family_name: str | None
    former_names: list[FormerName]
    date_of_birth: dt.date | None
    address: Address | None


class Registration(BaseModel):
    """A register record as an LA may see it: id and school only on the caller's own LA's registers; for
    another LA's, the LA and the register type."""

    la_id: str
    register_type: str
    education_child_id: int | None = None
    school_number: str | None = None
    school_name: str | None = None


class CandidateRecord(Registration):
    """A register record the health child may be. Full detail only for the caller's own LA's registers."""

    child: ChildDetail | None = None


class ReviewDetail(ReviewSummary):
    health_child: ChildDetail | None = Field(
        description="Null once the review is decided (the row is deleted)."
    )
    candidates: list[CandidateRecord]
    explanation: Explanation
    decided_at: dt.datetime | None = None
    candidate_id: uuid.UUID | None = Field(default=None, description="The CME candidate a rejection opened.")


_nhs_number_enabled: ContextVar[bool] = ContextVar("match_nhs_number_enabled", default=False)


def bind_nhs_number_enabled(enabled: bool) -> None:
    """Whether `MatchRecord.nhs_number` is accepted for the rest of the current request (the deployment's
    CME_NHS_NUMBER_ENABLED; bound by the route before the body is validated)."""
    _nhs_number_enabled.set(enabled)


class MatchRecord(HealthRecord):
    """A child to match: the items of a health-list record. `nhs_number` is accepted, and matched on, only
    where the deployment has switched NHS numbers on (CME_NHS_NUMBER_ENABLED); otherwise it is a 422."""

    @field_validator("nhs_number")
    @classmethod
    def _nhs_number_switched_on(cls, value: str | None, info: ValidationInfo) -> str | None:
        enabled = (info.context or {}).get("nhs_number_enabled", _nhs_number_enabled.get())
        if value is not None and not enabled:
            raise ValueError("NHS numbers are not accepted by this deployment")
        return value


class MatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[MatchRecord] = Field(min_length=1, max_length=100)


class MatchCandidate(BaseModel):
    """One register record a queried child may be.

    For another LA's register only `la_id` and `known` are given: that LA holds the child, nothing more.
    """

    la_id: str
    known: bool = True
    register_type: str | None = None
    education_child_id: int | None = None
    school_number: str | None = None
    school_name: str | None = None
    outcome: str | None = None
    match_weight: float | None = None
    match_probability: float | None = None
    explanation: Explanation | None = None


class MatchResult(BaseModel):
    record_index: int
    candidates: list[MatchCandidate]


class MatchResponse(BaseModel):
    results: list[MatchResult]
    model_version: str


def dump_child(row: Any) -> ChildDetail:
    """A stored child row (health or education) as `ChildDetail`."""
    has_address = bool(row.address_lines) or row.town is not None or row.postcode is not None
    return ChildDetail(
        given_name=row.given_name,
        middle_names=row.middle_names,
        family_name=row.family_name,
        former_names=[FormerName.model_validate(name) for name in row.former_names or []],
        date_of_birth=row.date_of_birth,
        address=Address(lines=list(row.address_lines or []), town=row.town, postcode=row.postcode)
        if has_address
        else None,
    )


class DualRegistration(BaseModel):
    """A health-list child matched to a register record who is on another register too (a school roll and
    the EHE register, two schools' rolls): the LA decides which holds."""

    id: uuid.UUID = Field(description="The match outcome.")
    submission_id: uuid.UUID
    record_index: int
    outcome: str = Field(description="`matched`, or `possible` (then also in the review queue).")
    created_at: dt.datetime
    registrations: list[Registration] = Field(description="The record matched first, then the others.")


class DualRegistrationPage(BaseModel):
    items: list[DualRegistration]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
