"""Turn candidates, records, their histories and clocks into response models, leaving out what the caller's
role may not see."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from app.cme.clocks import Deadline, DeadlineBasis, deadline_state
from app.cme.domain import ADDRESS_FIELDS, CONTACT_AND_ALN_FIELDS, ExtensionReason, hidden_fields
from app.cme.models import CmeCandidate, CmeDuty, CmeEvent, CmeRecord, CmeSubjectAccessRequest
from app.cme.removal import Confidence, RemovalAction, RemovalGround
from app.cme.removals import RemovalEventDuties
from app.cme.schemas import (
    CandidateRead,
    CmeAddress,
    DutyRead,
    EducationProvider,
    EventRead,
    FormerName,
    History,
    LearningNeeds,
    Parent,
    Provenance,
    RecordFlags,
    RecordRead,
    RemovalEventRead,
    SubjectAccessRequestRead,
)
from app.core.csa import national_curriculum_year
from app.security.roles import OfficerRole


def _address(row: CmeCandidate | CmeRecord) -> CmeAddress | None:
    if not (row.address_lines or row.town or row.postcode):
        return None
    return CmeAddress(
        lines=list(row.address_lines or []),
        town=row.town,
        postcode=row.postcode,
        is_last_known=bool(row.address_is_last_known),
    )


def _child(row: CmeCandidate | CmeRecord, today: dt.date, *, show_address: bool) -> dict[str, Any]:
    dob = row.date_of_birth
    return {
        "given_name": row.given_name,
        "middle_names": row.middle_names,
        "family_name": row.family_name,
        "former_names": [FormerName(**name) for name in row.former_names or []],
        "date_of_birth": dob,
        "national_curriculum_year": national_curriculum_year(dob, today) if dob else None,
        "address": _address(row) if show_address else None,
    }


def candidate_read(candidate: CmeCandidate, today: dt.date) -> CandidateRead:
    return CandidateRead(
        id=candidate.id,
        status=candidate.status,
        opened_at=candidate.opened_at,
        submission_id=candidate.submission_id,
        sightings=candidate.sightings,
        closed_at=candidate.closed_at,
        outcome=candidate.outcome,
        record_id=candidate.record_id,
        **_child(candidate, today, show_address=True),
    )


def record_read(
    record: CmeRecord, role: OfficerRole, today: dt.date, *, everything: bool = False
) -> RecordRead:
    """The record as `role` may see it; `everything` for a subject-access export, which holds it all."""
    hidden = frozenset() if everything else hidden_fields(role, sensitive=record.sensitive)
    contacts_hidden = bool(hidden & CONTACT_AND_ALN_FIELDS)
    needs = record.additional_learning_needs, record.additional_learning_provision
    return RecordRead(
        id=record.id,
        status=record.status,
        created_at=record.created_at,
        version=record.version,
        flags=RecordFlags(
            sensitive=record.sensitive,
            suspected_inaccurate=record.suspected_inaccurate,
            restricted=record.restricted,
        ),
        parents=None if contacts_hidden else [Parent(**parent) for parent in record.parents],
        education_providers=[EducationProvider(**provider) for provider in record.education_providers],
        additional_learning_needs=(
            None
            if contacts_hidden or needs == (None, None)
            else LearningNeeds(needs=needs[0], provision=needs[1])
        ),
        csa_removal_on=record.csa_removal_on,
        hidden_fields=sorted(hidden),
        provenance={
            name: Provenance(**origin) for name, origin in record.provenance.items() if name not in hidden
        },
        **_child(record, today, show_address=not (hidden & ADDRESS_FIELDS)),
    )


def history_read(subject_id: uuid.UUID, events: Sequence[CmeEvent]) -> History:
    return History(id=subject_id, events=[EventRead.model_validate(event) for event in events])


def duty_read(duty: CmeDuty, today: dt.date) -> DutyRead:
    deadline = Deadline(due_on=duty.due_on, warn_from=duty.warn_from, basis=DeadlineBasis(duty.basis))
    return DutyRead(
        id=duty.id,
        record_id=duty.record_id,
        ground=RemovalGround(duty.ground),
        action=RemovalAction(duty.action),
        regulation=duty.regulation,
        confidence=Confidence(duty.confidence),
        basis=deadline.basis,
        due_on=duty.due_on,
        warn_from=duty.warn_from,
        state=deadline_state(deadline, today),
    )


def removal_event_read(removal: RemovalEventDuties, today: dt.date) -> RemovalEventRead:
    event = removal.event
    return RemovalEventRead(
        id=event.id,
        record_id=event.record_id,
        ground=RemovalGround(event.ground),
        became_aware_on=event.became_aware_on,
        left_area_on=event.left_area_on,
        receiving_la=event.receiving_la,
        duties=[duty_read(duty, today) for duty in removal.duties],
    )


def subject_access_request_read(request: CmeSubjectAccessRequest, today: dt.date) -> SubjectAccessRequestRead:
    deadline = Deadline(due_on=request.due_on, warn_from=request.warn_from, basis=DeadlineBasis.STATUTORY)
    return SubjectAccessRequestRead(
        id=request.id,
        record_id=request.record_id,
        received_on=request.received_on,
        due_on=request.due_on,
        warn_from=request.warn_from,
        extended_due_on=request.extended_due_on,
        extended_on=request.extended_on,
        extension_reason=None
        if request.extension_reason is None
        else ExtensionReason(request.extension_reason),
        answered_on=request.answered_on,
        state=None if request.answered_on is not None else deadline_state(deadline, today),
    )
