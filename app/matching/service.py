"""Use cases of matching: the active model, batch runs with minimisation, the review queue, real-time queries.

Services never commit: a request or a job owns the transaction. The CME and audit domains are reached
through one small function each (`_open_candidates`, `_report_found_on_register`, `_audit`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import gc
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import Row, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.audit import service as audit_service
from app.audit.service import ReadEventWriter
from app.cme import candidates as cme_candidates
from app.cme import removals as cme_removals
from app.cme.domain import CandidateInput
from app.core.errors import Conflict, InvalidCursor, NotFound, ProblemError
from app.matching import labels, repository
from app.matching.engine import explain_stored, link
from app.matching.frames import columns_to_frame, former_name_columns
from app.matching.models import MatchModelVersion, MatchOutcome
from app.matching.params import DEFAULT_MODEL, FIELDS, MatchModel
from app.matching.realtime import Candidate, EducationIndex
from app.matching.schemas import (
    CandidateRecord,
    Decision,
    DualRegistration,
    DualRegistrationPage,
    Explanation,
    MatchCandidate,
    MatchResponse,
    MatchResult,
    Registration,
    ReviewDecision,
    ReviewDetail,
    ReviewPage,
    ReviewSummary,
    dump_child,
)
from app.security.caller import Caller
from app.submissions.models import EducationChild
from app.submissions.schemas import HealthRecord

logger = logging.getLogger(__name__)

HEALTH_LIST_RUN = "health_list"
REMATCH_RUN = "rematch"
PURPOSE = "reg3_identification"
MAX_REALTIME_CANDIDATES = 5
_META_COLUMNS = ("la_id", "register", "school_number", "school_name")


class ReviewNotFound(NotFound):
    slug, title = "review-not-found", "No such review"


class ReviewDecided(Conflict):
    slug, title = "review-decided", "The review has already been decided"


# --- The model as data ----------------------------------------------------------------------------------


MODEL_PURPOSE = "matching_model"
SHIPPED_DEFAULT = "shipped-default"
OPERATOR = "operator"


def model_from_params(params: Mapping[str, Any]) -> MatchModel:
    """A stored model's parameters as the `MatchModel` they were stored from, with the same content hash.

    PostgreSQL's JSONB keeps object keys in its own order (shorter keys first), and `fields` is a dict:
    read back as stored, the model would hash differently from the row's `content_hash`, and runs would
    name a hash no row holds. The fields go back into `FIELDS` order, the order every model is built in.
    """
    model = MatchModel.model_validate(params)
    return model.model_copy(update={"fields": {name: model.fields[name] for name in FIELDS}})


def _is_older_shipped_default(row: MatchModelVersion) -> bool:
    return row.version.startswith("defaults-") and row.content_hash != DEFAULT_MODEL.content_hash


def active_model(session: Session, now: dt.datetime) -> MatchModel:
    """The active model; the shipped default is stored (and so versioned) on first use.

    A newer shipped default replaces an older one that is active (audited `match_model.activated`, reason
    `shipped-default`), once: when this code's default was stored before, someone moved away from it, and
    a model an operator activated (`cme model activate`) stays until an operator changes it.
    """
    row = repository.active_model(session)
    if row is not None and not (
        _is_older_shipped_default(row)
        and repository.model_by_hash(session, DEFAULT_MODEL.content_hash) is None
    ):
        return model_from_params(row.params)
    previous = None if row is None else row.content_hash
    try:
        with session.begin_nested():
            stored = repository.add_model(
                session,
                version=DEFAULT_MODEL.version,
                content_hash=DEFAULT_MODEL.content_hash,
                params=DEFAULT_MODEL.model_dump(mode="json"),
                now=now,
            )
            if row is not None:
                repository.make_only_active(session, stored.id)
                repository.bump_register_generation(session, now)  # real-time indexes rebuild with it
    except IntegrityError:
        return DEFAULT_MODEL  # a concurrent first use or upgrade stored it: the same parameters
    if previous is not None:
        _audit_model(session, "match_model.activated", DEFAULT_MODEL, previous, SHIPPED_DEFAULT, None, now)
    return DEFAULT_MODEL


def _audit_model(
    session: Session,
    action: str,
    model: MatchModel,
    previous: str | None,
    reason: str,
    operator: str | None,
    now: dt.datetime,
    extra: Sequence[str] = (),
) -> None:
    """A model event: the model's hash first, then what it names as `key:value` (no personal data)."""
    ids = [
        model.content_hash,
        f"version:{model.version}",
        f"previous:{previous or 'none'}",
        f"reason:{reason}",
        *extra,
    ]
    if operator is None:
        audit_service.record(
            session, actor=None, action=action, object_type="match_model", object_ids=ids,
            purpose=MODEL_PURPOSE, now=now,
        )  # fmt: skip
    else:
        audit_service.record_operator(
            session, operator=operator, action=action, object_type="match_model", object_ids=ids,
            purpose=MODEL_PURPOSE, now=now,
        )  # fmt: skip


class ModelVersionTooLong(ProblemError):
    status, slug, title = 400, "invalid-model", "The model's version label is too long"


@dataclass(frozen=True)
class Activation:
    model: MatchModel
    previous: str | None
    changed: bool


def activate_model(session: Session, model: MatchModel, *, now: dt.datetime, operator: str) -> Activation:
    """Store `model` (unless stored) and make it the only active one, audited `match_model.activated` with
    the previous hash. Activating the active model again changes nothing and is not audited."""
    if len(model.version) > 64:
        raise ModelVersionTooLong("A model's version label has at most 64 characters.")
    repository.lock_models(session)
    current = repository.active_model(session)
    previous = None if current is None else current.content_hash
    if previous == model.content_hash:
        return Activation(model=model, previous=previous, changed=False)
    # The shipped default counts as seen from now on, so it never replaces an operator's choice.
    if repository.model_by_hash(session, DEFAULT_MODEL.content_hash) is None and (
        model.content_hash != DEFAULT_MODEL.content_hash
    ):
        repository.add_model(
            session,
            version=DEFAULT_MODEL.version,
            content_hash=DEFAULT_MODEL.content_hash,
            params=DEFAULT_MODEL.model_dump(mode="json"),
            now=now,
            active=False,
        )
    row = repository.model_by_hash(session, model.content_hash)
    if row is None:
        row = repository.add_model(
            session,
            version=model.version,
            content_hash=model.content_hash,
            params=model.model_dump(mode="json"),
            now=now,
            active=False,
        )
    repository.make_only_active(session, row.id)
    repository.bump_register_generation(session, now)  # every process's real-time index rebuilds with it
    _audit_model(session, "match_model.activated", model, previous, OPERATOR, operator, now)
    return Activation(model=model, previous=previous, changed=True)


def stored_active_model(session: Session) -> MatchModel:
    """The active model as stored, without storing anything (the shipped default when none is)."""
    row = repository.active_model(session)
    return DEFAULT_MODEL if row is None else model_from_params(row.params)


def model_status(session: Session) -> dict[str, Any]:
    """The active model as stored (read only): version, hash, created_at; and the shipped default."""
    row = repository.active_model(session)
    shipped = {"version": DEFAULT_MODEL.version, "content_hash": DEFAULT_MODEL.content_hash}
    if row is None:
        return {**shipped, "created_at": None, "stored": False, "shipped_default": shipped}
    pending = _is_older_shipped_default(row) and (
        repository.model_by_hash(session, DEFAULT_MODEL.content_hash) is None
    )
    return {
        "version": row.version,
        "content_hash": row.content_hash,
        "created_at": row.created_at.isoformat(),
        "stored": True,
        "shipped_default": shipped,
        # The shipped default replaces this older one at the next matching run (or index build).
        "replaced_by_shipped_default_on_next_use": pending,
    }


def estimate_from_reviews(
    session: Session, *, now: dt.datetime, operator: str, rules: labels.Rules, prior_strength: float
) -> labels.Proposal:
    """A model re-estimated from every decided review, with the active model as the prior; audited
    `match_model.estimated` (hashes and counts only). Never activates. Raises `NotEnoughDecisions`."""
    base = active_model(session, now)
    read = [
        labels.read_label(row.recipient_la, row.review_status, row.evidence, row.match_probability)
        for row in repository.decided_reviews(session)
    ]
    usable = [label for label in read if label is not None]
    proposal = labels.propose(usable, base, rules=rules, prior_strength=prior_strength)
    proposal.report["unreadable_decisions"] = len(read) - len(usable)
    report = proposal.report
    extra = [
        f"base:{base.content_hash}",
        f"decisions:{report['decisions']}",
        f"confirmed:{report['confirmed']}",
        f"rejected:{report['rejected']}",
        f"las:{len(report['by_la'])}",
        f"prior_strength:{prior_strength:g}",
        f"labels:{report['labels_digest']}",
    ]
    _audit_model(session, "match_model.estimated", proposal.model, None, "reviews", operator, now, extra)
    return proposal


def stored_explanation(session: Session, outcome: MatchOutcome) -> dict[str, Any]:
    """The full explanation of a stored outcome, with the parameters of the model that decided it."""
    params = repository.model_of_run(session, outcome.run_id)
    return explain_stored(
        outcome.evidence,
        outcome=outcome.outcome,
        match_weight=outcome.match_weight,
        match_probability=outcome.match_probability,
        model=DEFAULT_MODEL if params is None else model_from_params(params),
    )


# --- Frames from stored rows ----------------------------------------------------------------------------


def rows_to_frame(rows: Sequence[Sequence[Any]], names: Sequence[str], *, la_column: str) -> pl.DataFrame:
    """Stored child rows (a Core select of `names`) -> canonical matching frame, column by column."""
    transposed: dict[str, Sequence[Any]] = (
        dict(zip(names, zip(*rows, strict=True), strict=True)) if rows else {name: () for name in names}
    )
    # No list built per row: with hundreds of thousands of rows alive, per-row allocations are what set
    # off full garbage collections (frames.former_name_columns).
    former_given, former_family = former_name_columns(transposed["former_names"])
    raw: dict[str, Sequence[Any] | pl.Series] = {
        "id": transposed["id"],
        "given_name": transposed["given_name"],
        "middle_names": transposed["middle_names"],
        "family_name": transposed["family_name"],
        "former_given_names": former_given,
        "former_family_names": former_family,
        "date_of_birth": transposed["date_of_birth"],
        "address_lines": transposed["address_lines"],
        "town": transposed["town"],
        "postcode": transposed["postcode"],
        "la": transposed[la_column],
    }
    for optional in ("register", "nhs_number", "preferred_given_name", "preferred_family_name", "sex"):
        if optional in transposed:
            raw[optional] = transposed[optional]
    return columns_to_frame(raw)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


# --- Hand-overs to other domains ------------------------------------------------------------------------


def _audit(
    session: Session, actor: Caller | None, action: str, object_type: str, ids: Sequence[object]
) -> None:
    audit_service.record(
        session,
        actor=actor,
        action=action,
        object_type=object_type,
        object_ids=[str(i) for i in ids],
        purpose=PURPOSE,
    )


def _report_found_on_register(
    session: Session,
    *,
    candidates: Sequence[tuple[uuid.UUID, str]],
    records: Sequence[tuple[uuid.UUID, str]],
    run_id: uuid.UUID,
    now: dt.datetime,
) -> None:
    """Hand the CME children now found on a register to their LA's CME database, one LA at a time.

    The CME domain starts the registered-pupil removal clock on records and notes candidates' history;
    officers decide what follows (a false match must not take a child off the list by itself).
    """
    by_la: dict[str, tuple[list[uuid.UUID], list[uuid.UUID]]] = {}
    for child_id, la_id in candidates:
        by_la.setdefault(la_id, ([], []))[0].append(child_id)
    for child_id, la_id in records:
        by_la.setdefault(la_id, ([], []))[1].append(child_id)
    for la_id, (candidate_ids, record_ids) in sorted(by_la.items()):
        cme_removals.found_on_register(
            session,
            la_id=la_id,
            candidate_ids=candidate_ids,
            record_ids=record_ids,
            run_id=run_id,
            today=now.date(),
            now=now,
        )


def candidate_input(values: Mapping[str, Any], run_id: uuid.UUID) -> CandidateInput:
    """An unmatched staging row (`repository.HEALTH_MATCH_COLUMNS` by name) as the CME domain takes it."""
    return CandidateInput(
        health_child_id=values["id"],
        match_run_id=run_id,
        given_name=values["given_name"],
        middle_names=values["middle_names"],
        family_name=values["family_name"],
        former_names=list(values["former_names"] or []),
        date_of_birth=values["date_of_birth"],
        address_lines=list(values["address_lines"] or []),
        town=values["town"],
        postcode=values["postcode"],
        address_is_last_known=bool(values["address_is_last_known"]),
    )


Progress = Callable[[str, int, int | None], None]


# --- Batch: after a register changed ---------------------------------------------------------------------


def rematch_after_register_change(
    factory: sessionmaker[Session], *, job_id: uuid.UUID, now: dt.datetime, progress: Progress
) -> dict[str, Any]:
    """Bump the register generation (real-time indexes rebuild) and re-match open CME children.

    Health lists are not re-run: their matched rows are gone by design. Open candidates and CME records
    found on a register now are reported to the CME domain. When a later register change is already
    queued, that job will see this change too, so the (full-register) matching is left to it.

    Three short transactions, none open while the job reports progress or while the engine links: on
    SQLite (one writer) a progress write inside the job's own write transaction would wait for itself.
    A retry after a crash bumps the generation again (harmless) and reports what is still found.
    """
    with factory.begin() as session:
        generation = repository.bump_register_generation(session, now)
        if repository.later_job_queued(session, job_id):
            return {"register_generation": generation, "deferred_to_later_job": True}
        model = active_model(session, now)
        candidates, records = repository.open_cme_children(session)
        total = len(candidates) + len(records)
        education = (
            rows_to_frame(
                repository.education_rows(session), repository.EDUCATION_MATCH_COLUMNS, la_column="la_id"
            )
            if total
            else None
        )
    progress("rematch", 0, total)
    found: dict[str, list[tuple[uuid.UUID, str]]] = {"candidates": [], "records": []}
    if education is not None:
        found = {
            "candidates": _found_on_register(candidates, education, model),
            "records": _found_on_register(records, education, model),
        }
        with factory.begin() as session:
            _report_found_on_register(
                session, candidates=found["candidates"], records=found["records"], run_id=job_id, now=now
            )
    return {
        "register_generation": generation,
        "model_version": model.version,
        "candidates_checked": len(candidates),
        "records_checked": len(records),
        "candidates_on_register": len(found["candidates"]),
        "records_on_register": len(found["records"]),
    }


def _found_on_register(
    rows: Sequence[Row[Any]], education: pl.DataFrame, model: MatchModel
) -> list[tuple[uuid.UUID, str]]:
    """(id, LA) of the CME children the engine matches to a register record."""
    if not rows:
        return []
    # The engine works on integer ids: use positions, then map back.
    positional = [(position, *row[1:]) for position, row in enumerate(rows)]
    frame = rows_to_frame(positional, repository.CME_MATCH_COLUMNS, la_column="la_id")
    result = link(frame, education, model)
    matched = result.filter(pl.col("outcome") == "matched")["health_id"].to_list()
    return [(rows[position].id, rows[position].la_id) for position in matched]


# --- Review queue ---------------------------------------------------------------------------------------
# Who may call each use case below is `app.security.authorization.RULES` (officers of pilot LAs); the LA
# whose queue it is, is the caller's partner, never a value from the request.


def _encode_cursor(outcome: MatchOutcome) -> str:
    text = f"{outcome.created_at.isoformat()}|{outcome.id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, review_id = text.split("|")
        parsed = dt.datetime.fromisoformat(at)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return parsed, uuid.UUID(review_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor("The cursor was not issued by this endpoint.") from None


def _summary(outcome: MatchOutcome) -> ReviewSummary:
    return ReviewSummary(
        id=outcome.id,
        submission_id=outcome.submission_id,
        record_index=outcome.record_index,
        created_at=outcome.created_at,
        review_status=str(outcome.review_status),
        register_type=outcome.register,
        education_la=outcome.education_la,
        match_probability=outcome.match_probability,
    )


def list_reviews(session: Session, caller: Caller, *, cursor: str | None, limit: int) -> ReviewPage:
    la_id = caller.partner_id
    after = _decode_cursor(cursor) if cursor else None
    rows = repository.list_reviews(session, la_id=la_id, after=after, limit=limit + 1)
    page = rows[:limit]
    _audit(session, caller, "matching.review.list", "match_outcome", [r.id for r in page])
    return ReviewPage(
        items=[_summary(r) for r in page], next_cursor=_encode_cursor(page[-1]) if len(rows) > limit else None
    )


def _review(session: Session, caller: Caller, review_id: uuid.UUID, *, lock: bool = False) -> MatchOutcome:
    outcome = repository.get_review(session, la_id=caller.partner_id, review_id=review_id, lock=lock)
    if outcome is None:
        raise ReviewNotFound("No such review for this local authority.")
    return outcome


def read_review(session: Session, caller: Caller, review_id: uuid.UUID) -> ReviewDetail:
    outcome = _review(session, caller, review_id)
    health = (
        repository.health_row(session, outcome.health_child_id)
        if outcome.review_status == "pending"
        else None
    )
    candidates: list[CandidateRecord] = []
    if outcome.education_child_id is not None:
        education = repository.education_by_ids(session, [outcome.education_child_id]).get(
            outcome.education_child_id
        )
        if education is not None:
            own = {education.id: education} if education.la_id == outcome.recipient_la else {}
            held = {
                "education_child_id": education.id,
                "register": education.register,
                "la_id": education.la_id,
            }
            candidates.append(
                CandidateRecord(
                    **_registration(held, own).model_dump(), child=dump_child(education) if own else None
                )
            )
    _audit(
        session, caller, "matching.review.read", "match_outcome",
        [outcome.id, *(c.education_child_id for c in candidates if c.education_child_id is not None)],
    )  # fmt: skip
    return ReviewDetail(
        **_summary(outcome).model_dump(),
        health_child=dump_child(health) if health is not None else None,
        candidates=candidates,
        explanation=Explanation.model_validate(stored_explanation(session, outcome)),
        decided_at=outcome.reviewed_at,
        candidate_id=outcome.candidate_id,
    )


def decide_review(
    session: Session, caller: Caller, review_id: uuid.UUID, body: ReviewDecision, *, now: dt.datetime
) -> ReviewSummary:
    """Confirm (matched: the staging row goes) or reject (unmatched: a CME candidate, then the row goes)."""
    outcome = _review(session, caller, review_id, lock=True)
    if outcome.review_status != "pending":
        raise ReviewDecided("This review was already decided.")
    if body.decision is Decision.confirm:
        repository.delete_health_rows(session, [outcome.health_child_id])
        outcome.review_status = "confirmed"
    else:
        row = repository.health_row(session, outcome.health_child_id)
        if row is not None:
            (outcome.candidate_id,) = cme_candidates.open_candidates(
                session,
                la_id=outcome.recipient_la,
                submission_ids=[outcome.submission_id],
                children=[candidate_input(row._asdict(), outcome.run_id)],
                now=now,
            )
            repository.delete_health_rows(session, [outcome.health_child_id])
        outcome.review_status = "rejected"
    outcome.reviewed_at = now
    outcome.reviewed_by = caller.officer_id or caller.partner_id
    outcome.review_reason = body.reason
    session.flush()
    _audit(session, caller, f"matching.review.{outcome.review_status}", "match_outcome", [outcome.id])
    return _summary(outcome)


# --- Dual registrations ---------------------------------------------------------------------------------


def list_dual_registrations(
    session: Session, caller: Caller, *, cursor: str | None, limit: int
) -> DualRegistrationPage:
    """The caller's LA's children on more than one register, as matching found them; audited."""
    la_id = caller.partner_id
    after = _decode_cursor(cursor) if cursor else None
    rows = repository.list_dual_registrations(session, la_id=la_id, after=after, limit=limit + 1)
    page = rows[:limit]
    held = [
        (o, [{"education_child_id": o.education_child_id, "register": o.register, "la_id": o.education_la},
             *(o.other_registrations or [])])
        for o in page
    ]  # fmt: skip
    own = repository.education_by_ids(
        session, [int(r["education_child_id"]) for _, regs in held for r in regs if r["la_id"] == la_id]
    )
    items = [
        DualRegistration(
            id=outcome.id,
            submission_id=outcome.submission_id,
            record_index=outcome.record_index,
            outcome=outcome.outcome,
            created_at=outcome.created_at,
            registrations=[_registration(r, own) for r in regs],
        )
        for outcome, regs in held
    ]
    _audit(session, caller, "matching.dual_registration.list", "match_outcome", [o.id for o in page])
    if own:
        _audit(session, caller, "matching.dual_registration.list", "education_child", sorted(own))
    return DualRegistrationPage(
        items=items, next_cursor=_encode_cursor(page[-1]) if len(rows) > limit else None
    )


def _registration(held: Mapping[str, Any], own: Mapping[int, EducationChild]) -> Registration:
    """A record a match points at (`held`: its id, register type and LA) as the LA may see it: in full when
    it is among `own` (the caller's own LA's records, loaded), else only its LA and register type."""
    record = own.get(int(held["education_child_id"]))
    if record is None:  # another LA's register: that LA and the register type only
        return Registration(la_id=str(held["la_id"]), register_type=str(held["register"]))
    return Registration(
        la_id=record.la_id,
        register_type=record.register,
        education_child_id=record.id,
        school_number=record.school_number,
        school_name=record.school_name,
    )


# --- Real-time ------------------------------------------------------------------------------------------


class MatchIndexWarming(ProblemError):
    status, slug, title = 503, "match-index-warming", "The matching index is being built"


Fingerprint = tuple[int, int | None]


def _register_fingerprint(session: Session) -> Fingerprint:
    """What an index was built from: the register generation (bumped by the re-match job) and the newest
    education row id (moves as soon as a register is stored, before that job has run)."""
    newest = session.scalar(select(func.max(EducationChild.id)))
    return repository.register_generation(session), None if newest is None else int(newest)


class RealtimeIndex:
    """The engine's `EducationIndex` plus what answering needs: each record's LA, register and school."""

    def __init__(self, rows: Sequence[Row[Any]], model: MatchModel, fingerprint: Fingerprint) -> None:
        self.fingerprint = fingerprint
        self.model = model
        frame = rows_to_frame(rows, repository.EDUCATION_MATCH_COLUMNS, la_column="la_id")
        self.index = EducationIndex.build(frame, model)
        position = {name: repository.EDUCATION_MATCH_COLUMNS.index(name) for name in _META_COLUMNS}
        self.meta = {name: [row[at] for row in rows] for name, at in position.items()}
        self.records = len(rows)

    def query(self, records: Sequence[HealthRecord]) -> list[list[tuple[Candidate, int]]]:
        """Per record, candidates at or above the 'possible' threshold with their row position, best first."""
        found = self.index.positioned([r.model_dump() for r in records], limit=MAX_REALTIME_CANDIDATES)
        possible = self.model.thresholds.possible
        return [[(c, at) for c, at in candidates if c.probability >= possible] for candidates in found]


class RealtimeIndexHolder:
    """The process's index, built on a background thread: at start-up (`start`) and when registers change.

    Until an index has answered a request it must match the registers as they are: a request waits up to
    `first_wait_seconds` for that build and is otherwise refused with 503 (`MatchIndexWarming`), so nobody
    waits for a full build. Once an index has answered, the register fingerprint is read at most every
    `check_seconds`; when it moved, a background rebuild runs while the old index keeps answering.

    The reading is done by a watcher thread (started with `start`), once per `check_seconds`, so no
    request pays for it: with requests a second or more apart, each one used to find the check due and
    hand a database read to the thread pool (p50 8.1 ms at one request a second, against 3-5 ms under
    steady load). A request still checks itself if the watcher has fallen a whole period behind.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        check_seconds: float = 1.0,
        first_wait_seconds: float = 3.0,
        freeze_from_records: int = 10_000,
    ) -> None:
        self._factory = session_factory
        self._freeze_from_records = freeze_from_records
        self._check_seconds = check_seconds
        self._first_wait_seconds = first_wait_seconds
        self._index: RealtimeIndex | None = None
        self._answered = False
        self._checked_at = 0.0
        self._built = threading.Condition()
        self._rebuilding: threading.Thread | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        """Begin building in the background (application start-up), and watching the registers."""
        with self._built:
            self._start_build()
        if self._check_seconds > 0:
            self._watcher = threading.Thread(target=self._watch, name="cme-match-watch", daemon=True)
            self._watcher.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop watching and wait for a build in progress (application shutdown), so no connection outlives
        the engine."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(timeout)
        with self._built:
            building = self._rebuilding
        if building is not None:
            building.join(timeout)

    def _watch(self) -> None:
        while not self._stopping.wait(self._check_seconds):
            index = self._index
            if index is None or not self._answered:
                continue  # the first request waits for a build of the registers as they are
            try:
                fingerprint = self._fingerprint()
            except Exception:
                # The database may be briefly away: requests check for themselves meanwhile.
                logger.exception("register fingerprint check failed")
                continue
            self._checked_at = time.monotonic()
            if fingerprint != index.fingerprint:
                with self._built:
                    self._start_build()

    def _start_build(self) -> None:
        # Caller holds self._built.
        if self._rebuilding is None:
            self._rebuilding = threading.Thread(target=self._rebuild, name="cme-match-index", daemon=True)
            self._rebuilding.start()

    def _build(self) -> RealtimeIndex:
        started = time.perf_counter()
        with self._factory.begin() as session:
            fingerprint = _register_fingerprint(session)
            model = active_model(session, dt.datetime.now(dt.UTC))
            rows = repository.education_rows(session)
        loaded = time.perf_counter()
        index = RealtimeIndex(rows, model, fingerprint)
        logger.info(
            "real-time index built",
            extra={
                "records": len(rows),
                "load_seconds": round(loaded - started, 2),
                "build_seconds": round(time.perf_counter() - loaded, 2),
            },
        )
        return index

    def _rebuild(self) -> None:
        index = None
        try:
            index = self._build()
            if index.records >= self._freeze_from_records:
                # A full collection walks every container the index holds (lists of one value per
                # record): about 60 ms at 100,000 records, and the collector starts one every few
                # thousand requests, a pause every waiting request shares. Collected once here, then
                # frozen (out of the collector's generations), the index is never walked again; a replaced
                # index is freed by reference counting as before.
                gc.collect()
                gc.freeze()
        except Exception:
            logger.exception("real-time index rebuild failed")
        finally:
            with self._built:
                if index is not None:
                    self._index = index
                self._rebuilding = None
                self._built.notify_all()

    def _fingerprint(self) -> Fingerprint:
        with self._factory() as session:
            return _register_fingerprint(session)

    def _first_answer(self) -> RealtimeIndex:
        """An index built from the registers as they are now, waiting a bounded time for it."""
        wanted = self._fingerprint()
        deadline = time.monotonic() + self._first_wait_seconds
        with self._built:
            while self._index is None or self._index.fingerprint != wanted:
                self._start_build()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise MatchIndexWarming(
                        "The register index is being built; try again shortly.", headers={"Retry-After": "5"}
                    )
                self._built.wait(left)
            self._answered = True
            self._checked_at = time.monotonic()
            return self._index

    def answering(self) -> RealtimeIndex | None:
        """The index, if answering with it needs no wait and no database read (it has answered, and the
        register fingerprint is not due to be checked); else None: call `current`, which may block."""
        index = self._index
        if index is None or not self._answered or time.monotonic() - self._checked_at >= self._due_after():
            return None
        return index

    def _due_after(self) -> float:
        # With the watcher reading every period, a check is due on the request path only once it has
        # missed a whole period (its read takes milliseconds; the wait between reads is the period).
        watching = self._watcher is not None and self._watcher.is_alive()
        return 2 * self._check_seconds if watching else self._check_seconds

    def current(self) -> RealtimeIndex:
        index = self._index
        if index is None or not self._answered:
            return self._first_answer()
        if time.monotonic() - self._checked_at >= self._due_after():
            self._checked_at = time.monotonic()
            if self._fingerprint() != index.fingerprint:
                with self._built:
                    self._start_build()
        return index

    def wait_for_rebuild(self, timeout: float = 60.0) -> None:
        """Block until a running rebuild finishes (tests, benchmarks)."""
        thread = self._rebuilding
        if thread is not None:
            thread.join(timeout)


# A query of a few records is matched in the event loop (about a millisecond each, less than handing it to
# a thread costs); a larger one must not hold the loop, so it goes to the thread pool.
MATCH_IN_LOOP_RECORDS = 5


async def match_records(
    caller: Caller, records: Sequence[HealthRecord], holder: RealtimeIndexHolder, audit: ReadEventWriter
) -> MatchResponse:
    """Match against the in-memory index and audit what was shown, before the answer goes out.

    Nothing is read from or changed in the database but the audit event, so the request needs no session:
    in the common case (the index answering, a few records) no thread-pool hand-off either.
    """
    index = holder.answering()
    if index is None:
        index = await run_in_threadpool(holder.current)
    if len(records) <= MATCH_IN_LOOP_RECORDS:
        response, shown = answer_match(caller, records, index)
    else:
        response, shown = await run_in_threadpool(answer_match, caller, records, index)
    await audit.append(
        [
            audit_service.new_event(
                actor=caller,
                action="matching.realtime.query",
                object_type="education_child",
                object_ids=shown,
                purpose=PURPOSE,
            )
        ]
    )
    return response


def answer_match(
    caller: Caller, records: Sequence[HealthRecord], index: RealtimeIndex
) -> tuple[MatchResponse, list[int]]:
    """Candidates for each record: full detail from the caller's own LA, only "known, which LA" otherwise;
    and the education records shown in full (what the audit event names)."""
    la_id = caller.partner_id
    results: list[MatchResult] = []
    shown: list[int] = []
    for record_index, found in enumerate(index.query(records)):
        candidates: list[MatchCandidate] = []
        other_las: set[str] = set()
        for candidate, at in found:
            record_la = index.meta["la_id"][at]
            if record_la != la_id:
                if record_la not in other_las:
                    other_las.add(record_la)
                    candidates.append(MatchCandidate(la_id=record_la))
                continue
            shown.append(candidate.education_id)
            candidates.append(
                MatchCandidate(
                    la_id=record_la,
                    register_type=index.meta["register"][at],
                    education_child_id=candidate.education_id,
                    school_number=index.meta["school_number"][at],
                    school_name=index.meta["school_name"][at],
                    outcome=candidate.outcome,
                    match_weight=_rounded(candidate.score),
                    match_probability=_rounded(candidate.probability),
                    explanation=Explanation.model_validate(candidate.explanation),
                )
            )
        results.append(MatchResult(record_index=record_index, candidates=candidates))
    return MatchResponse(results=results, model_version=index.model.version), shown
