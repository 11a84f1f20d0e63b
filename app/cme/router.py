"""HTTP for LA case systems: candidates, CME records, corrections, removal clocks (work is in service.py).

Every route is scoped to the caller's LA inside the query: another LA's ids answer 404 and never appear
in lists; partners other than LAs, and LA credentials without an officer, get 403.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import Header, Query, Response, status
from sqlalchemy.orm import Session

from app.cme import repository, service
from app.cme.clocks import Deadline, DeadlineBasis, deadline_state
from app.cme.dependencies import CmeSettingsDep, OfficerDep
from app.cme.domain import (
    ADDRESS_FIELDS,
    CandidateStatus,
    ExtensionReason,
    RecordStatus,
    SubjectType,
    birth_range_for_year,
    hidden_fields,
)
from app.cme.models import CmeDuty, CmeEvent, CmeRemovalEvent, CmeSubjectAccessRequest
from app.cme.removal import Confidence, RemovalAction, RemovalGround
from app.cme.schemas import (
    AccessLogEntry,
    CandidatePage,
    CandidateRead,
    ConfirmCandidate,
    DueList,
    DutyRead,
    Erasure,
    EventRead,
    History,
    IncomingTransfer,
    IncomingTransferList,
    RecordPage,
    RecordPatch,
    RecordRead,
    RecordStubRead,
    RemovalEventCreate,
    RemovalEventRead,
    RemoveRecord,
    ResolveCandidate,
    RestrictionChange,
    SubjectAccessAnswer,
    SubjectAccessExport,
    SubjectAccessExtension,
    SubjectAccessRequestCreate,
    SubjectAccessRequestRead,
    TransferCreate,
    TransferRead,
)
from app.cme.views import candidate_read, record_read
from app.core.dates import HorizonDate
from app.core.dependencies import SessionDep
from app.core.errors import problem_responses
from app.security.clock import ClockDep
from app.security.dependencies import authenticated_router
from app.security.service_key import ServiceSignerDep

router = authenticated_router(prefix="/v1/cme", tags=["cme"], responses=problem_responses(403))

Limit = Annotated[int, Query(ge=1, description="Page size; the server caps it at its configured maximum.")]
CursorParam = Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page.")]
District = Annotated[
    str | None,
    Query(pattern=r"^[A-Za-z]{1,2}[0-9][0-9A-Za-z]?$", description="Postcode district, e.g. CF10."),
]
YearGroup = Annotated[
    int | None, Query(ge=-3, le=14, description="National curriculum year in the current school year.")
]
IfMatch = Annotated[
    str | None,
    Header(description="ETag of the record as last read (required: 428 without it, 412 when stale)."),
]
_ETAG = {
    "description": "The record's version: send it back as If-Match to change the record.",
    "required": True,
    "schema": {"type": "string"},
}
_LOCATION = {"description": "The new CME record.", "required": True, "schema": {"type": "string"}}
# A record's answer carries its ETag; a record created from a candidate or transfer its Location too.
WITH_ETAG: dict[int | str, dict[str, Any]] = {200: {"headers": {"ETag": _ETAG}}}
CREATED_WITH_ETAG: dict[int | str, dict[str, Any]] = {
    201: {"headers": {"ETag": _ETAG, "Location": _LOCATION}}
}


def _district(value: str | None) -> str | None:
    return value.upper() if value else None


def _born_between(year_group: int | None, today: dt.date) -> tuple[dt.date, dt.date] | None:
    return birth_range_for_year(year_group, today) if year_group is not None else None


def _duty_read(duty: CmeDuty, today: dt.date) -> DutyRead:
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


def _removal_event_read(session: Session, event: CmeRemovalEvent, today: dt.date) -> RemovalEventRead:
    return RemovalEventRead(
        id=event.id,
        record_id=event.record_id,
        ground=RemovalGround(event.ground),
        became_aware_on=event.became_aware_on,
        left_area_on=event.left_area_on,
        receiving_la=event.receiving_la,
        duties=[_duty_read(duty, today) for duty in service.duties_of(session, event)],
    )


def _history(subject_id: uuid.UUID, events: Sequence[CmeEvent]) -> History:
    return History(id=subject_id, events=[EventRead.model_validate(event) for event in events])


# --- Candidates -----------------------------------------------------------------------------------------


@router.get("/candidates", operation_id="list_cme_candidates", responses=problem_responses(400))
def list_candidates(
    officer: OfficerDep,
    session: SessionDep,
    clock: ClockDep,
    settings: CmeSettingsDep,
    status_: Annotated[CandidateStatus | None, Query(alias="status")] = CandidateStatus.OPEN,
    postcode_district: District = None,
    national_curriculum_year: YearGroup = None,
    sort: Literal["opened_at", "-opened_at"] = "opened_at",
    limit: Limit = 50,
    cursor: CursorParam = None,
) -> CandidatePage:
    """The LA's candidate work queue (reg 3): health-list children nobody matched, oldest first by default."""
    now = clock.now()
    where = repository.CandidateFilter(
        status=status_,
        postcode_district=_district(postcode_district),
        born_between=_born_between(national_curriculum_year, now.date()),
    )
    page = service.list_candidates(
        session,
        officer,
        where=where,
        sort=sort,
        limit=min(limit, settings.max_page_size),
        cursor=cursor,
        now=now,
    )
    return CandidatePage(
        items=[candidate_read(row, now.date()) for row in page.rows], next_cursor=page.next_cursor
    )


@router.get("/candidates/{candidate_id}", operation_id="get_cme_candidate", responses=problem_responses(404))
def get_candidate(
    candidate_id: uuid.UUID, officer: OfficerDep, session: SessionDep, clock: ClockDep
) -> CandidateRead:
    now = clock.now()
    return candidate_read(service.read_candidate(session, officer, candidate_id, now=now), now.date())


@router.get(
    "/candidates/{candidate_id}/history",
    operation_id="get_cme_candidate_history",
    responses=problem_responses(404),
)
def get_candidate_history(
    candidate_id: uuid.UUID, officer: OfficerDep, session: SessionDep, clock: ClockDep
) -> History:
    events = service.history(session, officer, SubjectType.CANDIDATE, candidate_id, now=clock.now())
    return _history(candidate_id, events)


@router.post(
    "/candidates/{candidate_id}/confirm",
    operation_id="confirm_cme_candidate",
    status_code=status.HTTP_201_CREATED,
    responses={**CREATED_WITH_ETAG, **problem_responses(404, 409)},
)
def confirm_candidate(
    candidate_id: uuid.UUID,
    decision: ConfirmCandidate,
    response: Response,
    officer: OfficerDep,
    session: SessionDep,
    clock: ClockDep,
) -> RecordRead:
    """Reg 3 (a)(b)(c) all hold: create the CME record from the candidate, logging who decided and why.
    409 when the candidate is decided already, or the child is not of compulsory school age today."""
    now = clock.now()
    record = service.confirm_candidate(session, officer, candidate_id, decision, now=now)
    response.headers["Location"] = f"{router.prefix}/records/{record.id}"
    response.headers["ETag"] = service.etag(record)
    return record_read(record, officer.role, now.date())


@router.post(
    "/candidates/{candidate_id}/resolve",
    operation_id="resolve_cme_candidate",
    responses=problem_responses(404, 409),
)
def resolve_candidate(
    candidate_id: uuid.UUID, body: ResolveCandidate, officer: OfficerDep, session: SessionDep, clock: ClockDep
) -> CandidateRead:
    """Close a candidate without a record; its personal data is deleted, the outcome kept."""
    now = clock.now()
    return candidate_read(
        service.resolve_candidate(session, officer, candidate_id, body.outcome, now=now), now.date()
    )


@router.post(
    "/candidates/{candidate_id}/erasure",
    operation_id="erase_cme_candidate",
    responses=problem_responses(404, 409),
)
def erase_candidate(
    candidate_id: uuid.UUID, body: Erasure, officer: OfficerDep, session: SessionDep, clock: ClockDep
) -> CandidateRead:
    """Data protection officer only (UK GDPR art. 17): close an undecided candidate and delete its data."""
    now = clock.now()
    return candidate_read(service.erase_candidate(session, officer, candidate_id, body, now=now), now.date())


# --- Records --------------------------------------------------------------------------------------------


@router.get("/records", operation_id="list_cme_records", responses=problem_responses(400))
def list_records(
    officer: OfficerDep,
    session: SessionDep,
    clock: ClockDep,
    settings: CmeSettingsDep,
    status_: Annotated[RecordStatus | None, Query(alias="status")] = None,
    due_before: Annotated[
        HorizonDate | None,
        Query(description="Records with a removal clock or CSA end on or before this date."),
    ] = None,
    postcode_district: District = None,
    national_curriculum_year: YearGroup = None,
    sensitive: bool | None = None,
    suspected_inaccurate: bool | None = None,
    sort: Literal["created_at", "-created_at"] = "created_at",
    limit: Limit = 50,
    cursor: CursorParam = None,
) -> RecordPage:
    """The LA's CME records (restricted ones are never listed)."""
    now = clock.now()
    where = repository.RecordFilter(
        status=status_,
        due_before=due_before,
        postcode_district=_district(postcode_district),
        born_between=_born_between(national_curriculum_year, now.date()),
        sensitive=sensitive,
        suspected_inaccurate=suspected_inaccurate,
        include_sensitive_in_district=not (ADDRESS_FIELDS & hidden_fields(officer.role, sensitive=True)),
    )
    page = service.list_records(
        session,
        officer,
        where=where,
        sort=sort,
        limit=min(limit, settings.max_page_size),
        cursor=cursor,
        now=now,
    )
    return RecordPage(
        items=[record_read(row, officer.role, now.date()) for row in page.rows], next_cursor=page.next_cursor
    )


@router.get(
    "/records/{record_id}",
    operation_id="get_cme_record",
    responses={**WITH_ETAG, **problem_responses(404)},
)
def get_record(
    record_id: uuid.UUID, response: Response, officer: OfficerDep, session: SessionDep, clock: ClockDep
) -> RecordRead:
    now = clock.now()
    record = service.read_record(session, officer, record_id, now=now)
    response.headers["ETag"] = service.etag(record)
    return record_read(record, officer.role, now.date())


@router.get(
    "/records/{record_id}/history", operation_id="get_cme_record_history", responses=problem_responses(404)
)
def get_record_history(
    record_id: uuid.UUID, officer: OfficerDep, session: SessionDep, clock: ClockDep
) -> History:
    return _history(
        record_id, service.history(session, officer, SubjectType.RECORD, record_id, now=clock.now())
    )


@router.patch(
    "/records/{record_id}",
    operation_id="correct_cme_record",
    responses={**WITH_ETAG, **problem_responses(404, 412, 428)},
)
def correct_record(
    record_id: uuid.UUID,
    patch: RecordPatch,
    response: Response,
    officer: OfficerDep,
    session: SessionDep,
    clock: ClockDep,
    if_match: IfMatch = None,
) -> RecordRead:
    """Reg 5: correct or complete a record, with a reason; If-Match is required."""
    now = clock.now()
    record = service.correct_record(session, officer, record_id, patch, if_match=if_match, now=now)
    response.headers["ETag"] = service.etag(record)
    return record_read(record, officer.role, now.date())


@router.post(
    "/records/{record_id}/removal-events",
    operation_id="create_cme_removal_event",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404, 409),
)
def create_removal_event(
    record_id: uuid.UUID,
    body: RemovalEventCreate,
    officer: OfficerDep,
    session: SessionDep,
    clock: ClockDep,
    settings: CmeSettingsDep,
) -> RemovalEventRead:
    """The LA became aware of a removal ground (regs 6-11): store it with evidence; start the legal clocks."""
    now = clock.now()
    event = service.add_removal_event(session, officer, record_id, body, now=now, clocks=settings.clocks)
    return _removal_event_read(session, event, now.date())


@router.post(
    "/records/{record_id}/removal",
    operation_id="remove_cme_record",
    responses=problem_responses(404, 409, 412, 428),
)
def remove_record(
    record_id: uuid.UUID,
    body: RemoveRecord,
    officer: OfficerDep,
    session: SessionDep,
    clock: ClockDep,
    if_match: IfMatch = None,
) -> RecordStubRead:
    """Remove the record (hard delete) on a recorded ground; answers the non-identifying stub that remains."""
    stub = service.remove_record(session, officer, record_id, body.ground, if_match=if_match, now=clock.now())
    return RecordStubRead.model_validate(stub)


@router.post(
    "/records/{record_id}/erasure",
    operation_id="erase_cme_record",
    responses=problem_responses(404, 412, 428),
)
def erase_record(
    record_id: uuid.UUID,
    body: Erasure,
    officer: OfficerDep,
    session: SessionDep,
    clock: ClockDep,
    if_match: IfMatch = None,
) -> RecordStubRead:
    """Data protection officer only (UK GDPR art. 17, where the law allows it): hard delete, as a removal."""
    stub = service.erase_record(session, officer, record_id, body, if_match=if_match, now=clock.now())
    return RecordStubRead.model_validate(stub)


@router.put(
    "/records/{record_id}/restriction",
    operation_id="set_cme_record_restriction",
    responses={**WITH_ETAG, **problem_responses(404, 412, 428)},
)
def set_restriction(
    record_id: uuid.UUID,
    change: RestrictionChange,
    response: Response,
    officer: OfficerDep,
    session: SessionDep,
    clock: ClockDep,
    if_match: IfMatch = None,
) -> RecordRead:
    """Restrict processing (data subject right): the record stays stored but leaves every list; or lift it."""
    now = clock.now()
    record = service.set_restriction(session, officer, record_id, change, if_match=if_match, now=now)
    response.headers["ETag"] = service.etag(record)
    return record_read(record, officer.role, now.date())


@router.get(
    "/records/{record_id}/subject-access-export",
    operation_id="export_cme_record_for_subject_access",
    responses=problem_responses(404),
)
def subject_access_export(
    record_id: uuid.UUID, officer: OfficerDep, session: SessionDep, clock: ClockDep
) -> SubjectAccessExport:
    """For the data protection officer: everything held about the child and its access log (audited)."""
    now = clock.now()
    export = service.subject_access(session, officer, record_id, now=now)
    return SubjectAccessExport(
        generated_at=now,
        record=record_read(export.record, officer.role, now.date(), everything=True),
        history=[EventRead.model_validate(event) for event in export.history],
        removal_events=[_removal_event_read(session, event, now.date()) for event in export.removal_events],
        access_log=[AccessLogEntry.model_validate(event) for event in export.access_log],
    )


# --- Transfers (reg 6) ---------------------------------------------------------------------------------


@router.post(
    "/records/{record_id}/transfers",
    operation_id="transfer_cme_record",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404, 409),
)
def transfer_record(
    record_id: uuid.UUID,
    body: TransferCreate,
    officer: OfficerDep,
    session: SessionDep,
    clock: ClockDep,
    signer: ServiceSignerDep,
) -> TransferRead:
    """Reg 6(a): inform the receiving LA (a pilot LA gets an incoming transfer, others a signed package)."""
    outcome = service.transfer_record(
        session, officer, record_id, body.receiving_la, signer=signer, now=clock.now()
    )
    return TransferRead.model_validate(outcome.transfer).model_copy(update={"package": outcome.package})


@router.get("/transfers", operation_id="list_cme_incoming_transfers")
def list_incoming_transfers(
    officer: OfficerDep, session: SessionDep, clock: ClockDep
) -> IncomingTransferList:
    """Records other LAs sent to this LA under reg 6, waiting for its decision."""
    transfers = service.incoming_transfers(session, officer, now=clock.now())
    return IncomingTransferList(
        items=[
            IncomingTransfer(
                id=t.id, from_la=t.from_la, created_at=t.created_at, **_paras_1_to_3(t.snapshot or {})
            )
            for t in transfers
        ]
    )


def _paras_1_to_3(snapshot: dict[str, Any]) -> dict[str, Any]:
    names = ("given_name", "middle_names", "family_name", "date_of_birth", "postcode")
    return {name: snapshot.get(name) for name in names}


@router.post(
    "/transfers/{transfer_id}/accept",
    operation_id="accept_cme_transfer",
    status_code=status.HTTP_201_CREATED,
    responses={**CREATED_WITH_ETAG, **problem_responses(404, 409)},
)
def accept_transfer(
    transfer_id: uuid.UUID,
    decision: ConfirmCandidate,
    response: Response,
    officer: OfficerDep,
    session: SessionDep,
    clock: ClockDep,
) -> RecordRead:
    """The receiving LA affirms reg 3 for the child: the transferred data becomes its CME record (409 when
    the child is not of compulsory school age today: decline the transfer instead)."""
    now = clock.now()
    record = service.accept_transfer(session, officer, transfer_id, decision, now=now)
    response.headers["Location"] = f"{router.prefix}/records/{record.id}"
    response.headers["ETag"] = service.etag(record)
    return record_read(record, officer.role, now.date())


@router.post(
    "/transfers/{transfer_id}/decline", operation_id="decline_cme_transfer", responses=problem_responses(404)
)
def decline_transfer(
    transfer_id: uuid.UUID, officer: OfficerDep, session: SessionDep, clock: ClockDep
) -> TransferRead:
    """The receiving LA does not include the child; the transferred data is deleted."""
    return TransferRead.model_validate(
        service.decline_transfer(session, officer, transfer_id, now=clock.now())
    )


@router.get("/due", operation_id="list_cme_due")
def list_due(
    officer: OfficerDep,
    session: SessionDep,
    clock: ClockDep,
    before: Annotated[
        HorizonDate | None, Query(description="Clocks due on or before this date; default today.")
    ] = None,
) -> DueList:
    """Legal clocks due by `before`, overdue ones included, each with its state today."""
    now = clock.now()
    today = now.date()
    until = before or today
    duties = service.due(session, officer, before=until, now=now)
    requests = service.due_subject_access_requests(session, officer, before=until, now=now)
    return DueList(
        today=today,
        before=until,
        items=[_duty_read(duty, today) for duty in duties],
        subject_access_requests=[_subject_access_request_read(request, today) for request in requests],
    )


def _subject_access_request_read(
    request: CmeSubjectAccessRequest, today: dt.date
) -> SubjectAccessRequestRead:
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


@router.post(
    "/subject-access-requests",
    operation_id="record_cme_subject_access_request",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404),
)
def record_subject_access_request(
    body: SubjectAccessRequestCreate, officer: OfficerDep, session: SessionDep, clock: ClockDep
) -> SubjectAccessRequestRead:
    """Data protection officer: a subject access request about a record was received; start its clock."""
    now = clock.now()
    request = service.record_subject_access_request(session, officer, body, now=now)
    return _subject_access_request_read(request, now.date())


@router.get(
    "/subject-access-requests/{request_id}",
    operation_id="get_cme_subject_access_request",
    responses=problem_responses(404),
)
def get_subject_access_request(
    request_id: uuid.UUID, officer: OfficerDep, session: SessionDep, clock: ClockDep
) -> SubjectAccessRequestRead:
    """Data protection officer: one subject access request and where its deadline stands."""
    now = clock.now()
    request = service.get_subject_access_request(session, officer, request_id, now=now)
    return _subject_access_request_read(request, now.date())


@router.post(
    "/subject-access-requests/{request_id}/extension",
    operation_id="extend_cme_subject_access_request",
    responses=problem_responses(404, 409, 422),
)
def extend_subject_access_request(
    request_id: uuid.UUID,
    body: SubjectAccessExtension,
    officer: OfficerDep,
    session: SessionDep,
    clock: ClockDep,
) -> SubjectAccessRequestRead:
    """Data protection officer: two more months for a complex request or numerous ones, once, if the
    requester was told within the first month (409 otherwise)."""
    now = clock.now()
    request = service.extend_subject_access_request(session, officer, request_id, body, now=now)
    return _subject_access_request_read(request, now.date())


@router.post(
    "/subject-access-requests/{request_id}/answer",
    operation_id="answer_cme_subject_access_request",
    responses=problem_responses(404, 409, 422),
)
def answer_subject_access_request(
    request_id: uuid.UUID,
    body: SubjectAccessAnswer,
    officer: OfficerDep,
    session: SessionDep,
    clock: ClockDep,
) -> SubjectAccessRequestRead:
    """Data protection officer: the request was answered; its clock stops and it leaves the due list
    (409 if it was answered already)."""
    now = clock.now()
    request = service.answer_subject_access_request(session, officer, request_id, body, now=now)
    return _subject_access_request_read(request, now.date())
