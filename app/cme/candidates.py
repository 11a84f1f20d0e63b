"""Candidates (reg 3): health-list children nobody matched, in the LA's work queue until an officer decides.

A decision closes the candidate either way: confirmed (a CME record takes its data), resolved (no record),
or erased by the data protection officer (UK GDPR art. 17). Closing deletes the child's data (R3.5).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from app.cme import repository
from app.cme.domain import (
    CandidateInput,
    CandidateStatus,
    Purpose,
    Resolution,
    SubjectType,
    identity_key,
    postcode_district,
)
from app.cme.exceptions import CandidateClosed
from app.cme.models import CmeCandidate, CmeRecord
from app.cme.records import CHILD_FIELDS, include
from app.cme.removal import ERASURE
from app.cme.schemas import ConfirmCandidate, Erasure
from app.cme.shared import (
    Officer,
    Page,
    add_event,
    audit_event,
    born_between,
    candidate_of,
    district,
    event_row,
    flush_versioned,
    page_request,
    paginate,
)


def open_candidates(
    session: Session,
    *,
    la_id: str,
    submission_ids: Sequence[uuid.UUID],
    children: Sequence[CandidateInput],
    now: dt.datetime,
    step: Callable[[], None] | None = None,
    step_rows: int = 1000,
) -> list[uuid.UUID]:
    """Put unmatched health-list children in the LA's work queue; one id per input, in order.

    `submission_ids[i]` is the list `children[i]` came from. A child already known to this LA (an open
    candidate or a CME record, found by `link_id` or by exact normalised names plus date of birth) is
    linked to it, and that id is returned, instead of opening a second candidate; two children of one
    batch with one key share one new candidate. Running the same health rows again returns the same ids.
    Set-based: a few queries and one statement per table for the whole batch, however large. With `step`,
    new candidates are written in parts of `step_rows`, each with its history and audit event, and `step`
    is called after each part (a matching round on SQLite commits there).
    """
    earlier = repository.candidates_from(session, la_id, sorted(set(submission_ids)))
    keys = [identity_key(c.given_name, c.family_name, c.date_of_birth) for c in children]
    known = repository.known_children(
        session,
        la_id,
        ids=[c.link_id for c in children if c.link_id is not None],
        keys=sorted({key for key in keys if key is not None}),
    )
    new: dict[uuid.UUID, dict[str, Any]] = {}
    new_by_key: dict[str, uuid.UUID] = {}
    sightings: dict[uuid.UUID, int] = {}
    events: list[dict[str, Any]] = []
    linked: list[uuid.UUID] = []
    result: list[uuid.UUID] = []
    for submission_id, child, key in zip(submission_ids, children, keys, strict=True):
        if child.health_child_id is not None and (submission_id, child.health_child_id) in earlier:
            result.append(earlier[(submission_id, child.health_child_id)])
            continue
        existing, subject = _known_child(known, new_by_key, child.link_id, key)
        if existing is None:
            candidate_id = uuid.uuid4()
            new[candidate_id] = _candidate_row(candidate_id, la_id, submission_id, child, key, now)
            if key is not None:
                new_by_key[key] = candidate_id
            result.append(candidate_id)
            continue
        if subject is SubjectType.CANDIDATE:
            sightings[existing] = sightings.get(existing, 0) + 1
        events.append(event_row(la_id, subject, existing, "sighted", now))
        linked.append(existing)
        result.append(existing)
    rows = list(new.values())
    size = step_rows if step else max(len(rows), 1)
    for start in range(0, len(rows), size):
        part = rows[start : start + size]
        ids = [row["id"] for row in part]
        repository.insert_candidates(session, part)
        repository.insert_events(
            session, [event_row(la_id, SubjectType.CANDIDATE, i, "opened", now) for i in ids]
        )
        audit_event(session, None, "cme.candidate.open", ids, Purpose.IDENTIFY, now)
        if step:
            step()
    # Sightings last: a part written before a crash is found again by the retry, which then counts
    # the sightings once.
    repository.add_sightings(session, sightings)
    repository.insert_events(session, events)
    if linked:
        audit_event(session, None, "cme.candidate.link", linked, Purpose.IDENTIFY, now)
    return result


def _known_child(
    known: repository.KnownChildren,
    new_by_key: dict[str, uuid.UUID],
    link_id: uuid.UUID | None,
    key: str | None,
) -> tuple[uuid.UUID | None, SubjectType]:
    """The open candidate or record this child already is: by link id, then by key (an open candidate
    before a record, then one opened earlier in this batch)."""
    if link_id is not None:
        if link_id in known.candidate_ids:
            return link_id, SubjectType.CANDIDATE
        if link_id in known.record_ids:
            return link_id, SubjectType.RECORD
    if key is not None:
        if key in known.candidate_by_key:
            return known.candidate_by_key[key], SubjectType.CANDIDATE
        if key in known.record_by_key:
            return known.record_by_key[key], SubjectType.RECORD
        if key in new_by_key:
            return new_by_key[key], SubjectType.CANDIDATE
    return None, SubjectType.CANDIDATE


def _candidate_row(
    candidate_id: uuid.UUID,
    la_id: str,
    submission_id: uuid.UUID,
    child: CandidateInput,
    key: str | None,
    now: dt.datetime,
) -> dict[str, Any]:
    return {
        "id": candidate_id,
        "la_id": la_id,
        "status": CandidateStatus.OPEN.value,
        "opened_at": now,
        "submission_id": submission_id,
        "match_run_id": child.match_run_id,
        "health_child_id": child.health_child_id,
        "sightings": 1,
        "given_name": child.given_name,
        "middle_names": child.middle_names,
        "family_name": child.family_name,
        "former_names": [dict(name) for name in child.former_names],
        "date_of_birth": child.date_of_birth,
        "address_lines": list(child.address_lines),
        "town": child.town,
        "postcode": child.postcode,
        "postcode_district": postcode_district(child.postcode),
        "address_is_last_known": child.address_is_last_known,
        "identity_key": key,
        "closed_at": None,
        "closed_by": None,
        "outcome": None,
        "record_id": None,
        "version": 1,
    }


def candidate_filter(
    *,
    status: CandidateStatus | None,
    postcode_district: str | None,
    national_curriculum_year: int | None,
    today: dt.date,
) -> repository.CandidateFilter:
    """What a list of candidates selects, from the list's query."""
    return repository.CandidateFilter(
        status=status,
        postcode_district=district(postcode_district),
        born_between=born_between(national_curriculum_year, today),
    )


def list_candidates(
    session: Session,
    officer: Officer,
    *,
    where: repository.CandidateFilter,
    sort: str,
    limit: int,
    cursor: str | None,
    now: dt.datetime,
) -> Page:
    page = page_request(officer, sort=sort, limit=limit, cursor=cursor)
    result = paginate(
        repository.list_candidates(session, officer.la_id, where, page), officer, page, "opened_at"
    )
    audit_event(
        session, officer.caller, "cme.candidate.list", [row.id for row in result.rows], Purpose.IDENTIFY, now
    )
    return result


def read_candidate(
    session: Session, officer: Officer, candidate_id: uuid.UUID, *, now: dt.datetime
) -> CmeCandidate:
    candidate = candidate_of(session, officer, candidate_id)
    audit_event(session, officer.caller, "cme.candidate.read", [candidate.id], Purpose.IDENTIFY, now)
    return candidate


def _close(candidate: CmeCandidate, officer: Officer, outcome: str, now: dt.datetime) -> None:
    """Decided: keep a stub (ids, outcome, who, when) and delete the child's data (minimisation, R3.5)."""
    candidate.status = CandidateStatus.CONFIRMED if outcome == "confirmed" else CandidateStatus.RESOLVED
    candidate.outcome = outcome
    candidate.closed_at = now
    candidate.closed_by = officer.caller.officer_id
    candidate.health_child_id = None
    for name in CHILD_FIELDS:
        setattr(candidate, name, None)


def _open_candidate(session: Session, officer: Officer, candidate_id: uuid.UUID) -> CmeCandidate:
    candidate = candidate_of(session, officer, candidate_id)
    if candidate.status != CandidateStatus.OPEN:
        raise CandidateClosed()
    return candidate


def confirm_candidate(
    session: Session,
    officer: Officer,
    candidate_id: uuid.UUID,
    decision: ConfirmCandidate,
    *,
    now: dt.datetime,
) -> CmeRecord:
    """Reg 3(a)(b)(c) confirmed: a CME record takes the candidate's data; decision logged (R3.2, R3.4)."""
    candidate = _open_candidate(session, officer, candidate_id)
    origin = {"source": "submission", "submission_id": str(candidate.submission_id),
              "at": candidate.opened_at.isoformat()}  # fmt: skip
    values = {name: getattr(candidate, name) for name in CHILD_FIELDS}
    record = include(session, officer, decision, now, values=values, origin=origin, candidate_id=candidate.id)
    _close(candidate, officer, "confirmed", now)
    candidate.record_id = record.id
    add_event(session, la_id=officer.la_id, subject=candidate, action="confirmed", now=now, officer=officer)
    flush_versioned(session, CandidateClosed())
    audit_event(
        session, officer.caller, "cme.candidate.confirm", [candidate.id, record.id], Purpose.IDENTIFY, now
    )
    return record


def resolve_candidate(
    session: Session, officer: Officer, candidate_id: uuid.UUID, outcome: Resolution, *, now: dt.datetime
) -> CmeCandidate:
    """No record: one of the reg 3 conditions fails. Only the outcome and who decided remain."""
    candidate = _open_candidate(session, officer, candidate_id)
    _close(candidate, officer, outcome.value, now)
    add_event(
        session,
        la_id=officer.la_id,
        subject=candidate,
        action="resolved",
        now=now,
        officer=officer,
        fields=[outcome.value],
    )
    flush_versioned(session, CandidateClosed())
    audit_event(session, officer.caller, "cme.candidate.resolve", [candidate.id], Purpose.IDENTIFY, now)
    return candidate


def erase_candidate(
    session: Session, officer: Officer, candidate_id: uuid.UUID, erasure: Erasure, *, now: dt.datetime
) -> CmeCandidate:
    """UK GDPR art. 17 for an undecided candidate: closed as `erased`, its child data deleted as any close."""
    candidate = _open_candidate(session, officer, candidate_id)
    _close(candidate, officer, ERASURE, now)
    add_event(session, la_id=officer.la_id, subject=candidate, action="erased", now=now, officer=officer,
              reason=erasure.reason, fields=[erasure.received_on.isoformat()])  # fmt: skip
    flush_versioned(session, CandidateClosed())
    audit_event(
        session, officer.caller, "cme.candidate.erase", [candidate.id], Purpose.DATA_SUBJECT_RIGHTS, now
    )
    return candidate
