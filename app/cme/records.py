"""CME records: inclusion (reg 3), lists, reads and corrections (reg 5)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from app.cme import repository
from app.cme.domain import (
    ADDRESS_FIELDS,
    Purpose,
    RecordStatus,
    Resolution,
    editable_fields_denied,
    hidden_fields,
    identity_key,
    postcode_district,
)
from app.cme.exceptions import NotCompulsorySchoolAge, RoleNotAllowed
from app.cme.models import CmeRecord
from app.cme.removal import csa_removal_date
from app.cme.schemas import ConfirmCandidate, RecordPatch
from app.cme.shared import (
    Officer,
    Page,
    add_event,
    audit_event,
    born_between,
    check_if_match,
    district,
    flush_versioned,
    page_request,
    paginate,
    record_of,
)
from app.core.csa import CsaStatus, csa_status
from app.core.errors import PreconditionFailed

# Fields that hold personal data on candidates and records; cleared when a candidate closes.
CHILD_FIELDS = (
    "given_name",
    "middle_names",
    "family_name",
    "former_names",
    "date_of_birth",
    "address_lines",
    "town",
    "postcode",
    "postcode_district",
    "address_is_last_known",
    "identity_key",
)
_ADDRESS_COLUMNS = ("address_lines", "town", "postcode", "postcode_district", "address_is_last_known")
# Provenance names of record fields, and the columns that hold each; a health row can provide the first six
# (Schedule 2 paras 1-3).
RECORD_FIELDS: Mapping[str, Sequence[str]] = {
    "given_name": ("given_name",),
    "middle_names": ("middle_names",),
    "family_name": ("family_name",),
    "former_names": ("former_names",),
    "date_of_birth": ("date_of_birth",),
    "address": ("address_lines", "town", "postcode"),
    "parents": ("parents",),
    "education_providers": ("education_providers",),
    "additional_learning_needs": ("additional_learning_needs", "additional_learning_provision"),
}
_FLAGS = frozenset({"sensitive", "suspected_inaccurate"})


def include(
    session: Session,
    officer: Officer,
    decision: ConfirmCandidate,
    now: dt.datetime,
    *,
    values: dict[str, Any],
    origin: dict[str, Any],
    candidate_id: uuid.UUID | None = None,
) -> CmeRecord:
    """A new record in the officer's LA, its reg 3 decision the first entry of its history (R3.4).

    `values` are its columns; every field present in them has `origin` as its provenance. Only a child of
    compulsory school age today may be included (reg 2 "child"): a record of a younger child, or of one
    past the age, would hold personal data the database has no basis for. Where the date of birth is
    unknown the officer's reg 3 decision stands alone."""
    dob: dt.date | None = values.get("date_of_birth")
    if dob is not None and (status := csa_status(dob, now.date())) is not CsaStatus.WITHIN:
        raise NotCompulsorySchoolAge(
            f"The child is {status.value} compulsory school age today; resolve the candidate as "
            f"{Resolution.NOT_COMPULSORY_SCHOOL_AGE.value} instead."
        )
    record = CmeRecord(
        id=uuid.uuid4(),
        la_id=officer.la_id,
        status=RecordStatus.ACTIVE,
        created_at=now,
        created_by=officer.caller.officer_id,
        candidate_id=candidate_id,
        sensitive=False,
        suspected_inaccurate=False,
        restricted=False,
        parents=[],
        education_providers=[],
        provenance={
            name: dict(origin)
            for name, columns in RECORD_FIELDS.items()
            if any(values.get(column) not in (None, [], "") for column in columns)
        },
        csa_removal_on=csa_removal_date(dob) if dob else None,
    )
    for name, value in values.items():
        setattr(record, name, value)
    session.add(record)
    add_event(
        session,
        la_id=officer.la_id,
        subject=record,
        action="included",
        now=now,
        officer=officer,
        reason=decision.basis,
        fields=["reg3(a)", "reg3(b)", "reg3(c)"],
    )
    return record


def record_filter(
    officer: Officer,
    *,
    status: RecordStatus | None,
    due_before: dt.date | None,
    postcode_district: str | None,
    national_curriculum_year: int | None,
    sensitive: bool | None,
    suspected_inaccurate: bool | None,
    today: dt.date,
) -> repository.RecordFilter:
    """What a list of records selects, from the list's query."""
    return repository.RecordFilter(
        status=status,
        due_before=due_before,
        postcode_district=district(postcode_district),
        born_between=born_between(national_curriculum_year, today),
        sensitive=sensitive,
        suspected_inaccurate=suspected_inaccurate,
        include_sensitive_in_district=not (ADDRESS_FIELDS & hidden_fields(officer.role, sensitive=True)),
    )


def list_records(
    session: Session,
    officer: Officer,
    *,
    where: repository.RecordFilter,
    sort: str,
    limit: int,
    cursor: str | None,
    now: dt.datetime,
) -> Page:
    page = page_request(officer, sort=sort, limit=limit, cursor=cursor)
    result = paginate(
        repository.list_records(session, officer.la_id, where, page), officer, page, "created_at"
    )
    audit_event(
        session, officer.caller, "cme.record.list", [row.id for row in result.rows], Purpose.CASEWORK, now
    )
    return result


def read_record(session: Session, officer: Officer, record_id: uuid.UUID, *, now: dt.datetime) -> CmeRecord:
    record = record_of(session, officer, record_id)
    audit_event(session, officer.caller, "cme.record.read", [record.id], Purpose.CASEWORK, now)
    return record


def _address_columns(address: dict[str, Any] | None) -> dict[str, Any]:
    if address is None:
        return dict.fromkeys(_ADDRESS_COLUMNS)
    return {
        "address_lines": list(address.get("lines") or []),
        "town": address.get("town"),
        "postcode": address.get("postcode"),
        "postcode_district": postcode_district(address.get("postcode")),
        "address_is_last_known": bool(address.get("is_last_known")),
    }


def _column_values(name: str, value: Any) -> dict[str, Any]:
    """The columns one patch field writes (`value` already in JSON form)."""
    if name == "address":
        return _address_columns(value)
    if name == "additional_learning_needs":
        value = value or {}
        return {
            "additional_learning_needs": value.get("needs"),
            "additional_learning_provision": value.get("provision"),
        }
    if name in ("former_names", "parents", "education_providers"):
        return {name: value or []}
    if name == "date_of_birth":
        dob = dt.date.fromisoformat(value) if value else None
        return {"date_of_birth": dob, "csa_removal_on": csa_removal_date(dob) if dob else None}
    return {name: value}


def correct_record(
    session: Session,
    officer: Officer,
    record_id: uuid.UUID,
    patch: RecordPatch,
    *,
    if_match: str | None,
    now: dt.datetime,
) -> CmeRecord:
    """Reg 5: correct or complete a record. Optimistic concurrency by ETag; provenance per changed field."""
    record = record_of(session, officer, record_id)
    check_if_match(record, if_match)
    changed = sorted(patch.model_fields_set - {"reason"})
    denied = editable_fields_denied(officer.role, sensitive=record.sensitive, requested=changed)
    if denied:
        raise RoleNotAllowed("The officer's role may not change: " + ", ".join(denied) + ".")
    values = patch.model_dump(mode="json", include=set(changed))
    provenance = dict(record.provenance)
    for name in changed:
        if name in _FLAGS:
            # A flag is on or off; null leaves it as it is.
            if values[name] is not None:
                setattr(record, name, values[name])
            continue
        for column, value in _column_values(name, values[name]).items():
            setattr(record, column, value)
        provenance[name] = {
            "source": "officer",
            "officer_id": officer.caller.officer_id,
            "role": officer.role.value,
            "at": now.isoformat(),
        }
    record.provenance = provenance
    record.identity_key = identity_key(record.given_name, record.family_name, record.date_of_birth)
    add_event(
        session,
        la_id=officer.la_id,
        subject=record,
        action="corrected",
        now=now,
        officer=officer,
        reason=patch.reason,
        fields=changed,
    )
    flush_versioned(session, PreconditionFailed("The record changed while it was being corrected."))
    audit_event(session, officer.caller, "cme.record.correct", [record.id], Purpose.ACCURACY, now)
    return record
