"""Turn candidates and records into response models, leaving out what the caller's role may not see."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.cme.csa import national_curriculum_year
from app.cme.domain import ADDRESS_FIELDS, CONTACT_AND_ALN_FIELDS, hidden_fields
from app.cme.models import CmeCandidate, CmeRecord
from app.cme.schemas import (
    CandidateRead,
    CmeAddress,
    EducationProvider,
    FormerName,
    LearningNeeds,
    Parent,
    Provenance,
    RecordFlags,
    RecordRead,
)
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
