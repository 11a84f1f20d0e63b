"""Request and response models of the CME query API (separate in and out models, extra fields forbidden)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.cme.clocks import DeadlineBasis, DeadlineState
from app.cme.domain import (
    RECEIVING_LA_CODE,
    CandidateStatus,
    ExtensionReason,
    RecordStatus,
    Resolution,
    TransferStatus,
)
from app.cme.removal import Confidence, RemovalAction, RemovalGround
from app.core.dates import BirthDate, DepartureDate, EventDate
from app.core.text import LongText, ShortText, Text

Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ()-]{6,20}$")]
# Shape only (one @, a dot in the domain): deliverability is not ours to judge.
Email = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
]


class InModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class OutModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class FormerName(InModel):
    given_name: Text | None = None
    family_name: Text | None = None


class CmeAddress(InModel):
    """Schedule 2 para 2: address or last known address, including postcode."""

    lines: list[Text] = Field(default_factory=list, max_length=6)
    town: Text | None = None
    postcode: ShortText | None = None
    is_last_known: bool = False


class Parent(InModel):
    """Schedule 2 para 4: every field optional."""

    name: Text | None = None
    address: CmeAddress | None = None
    phone: Phone | None = None
    email: Email | None = None


class EducationProvider(InModel):
    """Schedule 2 para 5."""

    name: Text
    address: CmeAddress | None = None


class LearningNeeds(InModel):
    """Schedule 2 para 6."""

    needs: LongText | None = None
    provision: LongText | None = None


class Provenance(OutModel):
    source: Literal["submission", "officer", "transfer"]
    at: dt.datetime
    submission_id: uuid.UUID | None = None
    officer_id: str | None = None
    role: str | None = None
    transfer_id: uuid.UUID | None = None
    from_la: str | None = None


class ChildOut(OutModel):
    given_name: str | None
    middle_names: str | None
    family_name: str | None
    former_names: list[FormerName]
    date_of_birth: dt.date | None
    national_curriculum_year: int | None = Field(
        description="Year group in the current school year, from DOB."
    )
    address: CmeAddress | None = Field(description="Absent when hidden from the caller's role.")


class CandidateRead(ChildOut):
    id: uuid.UUID
    status: CandidateStatus
    opened_at: dt.datetime
    submission_id: uuid.UUID
    sightings: int
    closed_at: dt.datetime | None
    outcome: str | None
    record_id: uuid.UUID | None


class RecordFlags(OutModel):
    sensitive: bool
    suspected_inaccurate: bool
    restricted: bool = Field(description="Processing restricted (data subject right): stored, never listed.")


class RecordRead(ChildOut):
    id: uuid.UUID
    status: RecordStatus
    created_at: dt.datetime
    version: int
    flags: RecordFlags
    parents: list[Parent] | None = Field(description="Absent unless the role may see parent contacts.")
    education_providers: list[EducationProvider]
    additional_learning_needs: LearningNeeds | None = Field(description="Absent unless the role may see ALN.")
    csa_removal_on: dt.date | None = Field(description="Reg 11: first day above compulsory school age.")
    hidden_fields: list[str]
    provenance: dict[str, Provenance]


class CandidatePage(BaseModel):
    items: list[CandidateRead]
    next_cursor: str | None


class RecordPage(BaseModel):
    items: list[RecordRead]
    next_cursor: str | None


class EventRead(OutModel):
    at: dt.datetime
    officer_id: str | None
    role: str | None
    action: str
    reason: str | None
    fields: list[str]


class History(BaseModel):
    id: uuid.UUID
    events: list[EventRead]


class ConfirmCandidate(InModel):
    """Reg 3: all three conditions, each affirmed, and the basis of the judgement in (c) (R3.4)."""

    ordinarily_resident: Literal[True] = Field(description="Reg 3(a): ordinarily resident in the LA's area.")
    not_registered_pupil: Literal[True] = Field(description="Reg 3(b): not a registered pupil at a school.")
    education_may_not_be_suitable: Literal[True] = Field(
        description="Reg 3(c): appears to the LA not to be, or maybe not to be, receiving suitable education."
    )
    basis: LongText = Field(description="What the decision rests on. Kept in the record's decision log.")


class ResolveCandidate(InModel):
    outcome: Resolution


class RecordPatch(InModel):
    """Reg 5 correction: the fields to change (absent = unchanged, null = now unknown) and why."""

    reason: LongText
    given_name: Text | None = None
    middle_names: Text | None = None
    family_name: Text | None = None
    former_names: list[FormerName] | None = Field(default=None, max_length=10)
    date_of_birth: BirthDate | None = None
    address: CmeAddress | None = None
    parents: list[Parent] | None = Field(default=None, max_length=10)
    education_providers: list[EducationProvider] | None = Field(default=None, max_length=10)
    additional_learning_needs: LearningNeeds | None = None
    sensitive: bool | None = None
    suspected_inaccurate: bool | None = None


class RemovalEventCreate(InModel):
    ground: RemovalGround
    became_aware_on: EventDate
    left_area_on: DepartureDate | None = Field(
        default=None, description="Reg 6 only: the day the child left the area."
    )
    receiving_la: ShortText | None = Field(
        default=None, description="Reg 6 only: the receiving LA, if known."
    )
    evidence: LongText


class DutyRead(OutModel):
    id: uuid.UUID
    record_id: uuid.UUID
    ground: RemovalGround
    action: RemovalAction
    regulation: int
    confidence: Confidence
    basis: DeadlineBasis
    due_on: dt.date
    warn_from: dt.date
    state: DeadlineState


class RemovalEventRead(OutModel):
    id: uuid.UUID
    record_id: uuid.UUID
    ground: RemovalGround
    became_aware_on: dt.date
    left_area_on: dt.date | None
    receiving_la: str | None
    duties: list[DutyRead]


class SubjectAccessRequestCreate(InModel):
    record_id: uuid.UUID
    received_on: EventDate = Field(
        description="Day the request was received; the one-month clock runs from it."
    )


class SubjectAccessExtension(InModel):
    reason: ExtensionReason = Field(
        description="Why more time is needed: a complex request, or numerous ones."
    )
    informed_on: EventDate = Field(
        description="Day the requester was told of the extension and why; no later than the first deadline."
    )


class SubjectAccessAnswer(InModel):
    answered_on: EventDate = Field(
        description="Day the answer went to the requester; not before receipt, not later than today."
    )


class SubjectAccessRequestRead(OutModel):
    id: uuid.UUID
    record_id: uuid.UUID
    received_on: dt.date
    due_on: dt.date = Field(
        description="One calendar month after receipt, moved to the next working day; once extended, the "
        "extended deadline."
    )
    warn_from: dt.date
    extended_due_on: dt.date = Field(
        description="The latest date if extended by two months (complex requests)."
    )
    extended_on: dt.date | None = Field(description="Day the requester was told of an extension, if any.")
    extension_reason: ExtensionReason | None
    answered_on: dt.date | None
    state: DeadlineState | None = Field(description="Where the deadline stands today; null once answered.")


class DueList(BaseModel):
    today: dt.date
    before: dt.date
    items: list[DutyRead]
    subject_access_requests: list[SubjectAccessRequestRead] = Field(
        description="Subject access requests due by `before`; listed to the data protection officer only."
    )


class RemoveRecord(InModel):
    ground: RemovalGround


class RecordStubRead(OutModel):
    id: uuid.UUID
    created_at: dt.datetime
    removed_at: dt.datetime
    ground: RemovalGround | Literal["erasure"] = Field(
        description="The removal ground, or `erasure` (UK GDPR art. 17) for a record erased on request."
    )
    regulation: int | None = Field(description="Regulation of the removal ground; null for an erasure.")
    became_aware_on: dt.date
    remove_due_on: dt.date | None


class Erasure(InModel):
    """UK GDPR art. 17: the data protection officer decided the law allows erasure of a record or candidate."""

    received_on: EventDate = Field(description="Day the erasure request was received.")
    reason: LongText = Field(
        description="Why the law allows erasure here; kept with the stub, so it must not identify the child."
    )


class RestrictionChange(InModel):
    restricted: bool
    reason: LongText


class AccessLogEntry(OutModel):
    seq: int
    occurred_at: dt.datetime
    partner_id: str | None
    officer_id: str | None
    role: str | None
    action: str
    purpose: str | None


class SubjectAccessExport(BaseModel):
    """Everything held about the child in this LA's CME database, and who has accessed it."""

    generated_at: dt.datetime
    record: RecordRead
    history: list[EventRead]
    removal_events: list[RemovalEventRead]
    access_log: list[AccessLogEntry]


class TransferCreate(InModel):
    receiving_la: Annotated[str, StringConstraints(pattern=RECEIVING_LA_CODE)] = Field(
        description="GSS code of the receiving LA (Welsh W06..., English E06...-E10...)."
    )


class TransferRead(OutModel):
    id: uuid.UUID
    from_la: str
    to_la: str
    status: TransferStatus
    created_at: dt.datetime
    decided_at: dt.datetime | None
    new_record_id: uuid.UUID | None
    package_sha256: str | None
    package: str | None = Field(
        default=None,
        description="Signed package (compact JWS, typ cme-transfer+jws) for a non-pilot LA; returned once, "
        "to be sent over an approved secure channel. Not stored.",
    )


class IncomingTransfer(OutModel):
    """What a receiving pilot LA sees before deciding: Schedule 2 paras 1-3 only."""

    id: uuid.UUID
    from_la: str
    created_at: dt.datetime
    given_name: str | None
    middle_names: str | None
    family_name: str | None
    date_of_birth: dt.date | None
    postcode: str | None


class IncomingTransferList(BaseModel):
    items: list[IncomingTransfer]
