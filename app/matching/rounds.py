"""Matching rounds: every health list of a period is matched together, once, against every register.

Health bodies send one list per LA per period (the month of the list's `as_of`). A list's job waits until
its period's round opens: at once when every expected list (each pilot LA's health board) is in, otherwise
`match_round_wait` after the first waiting list arrived. The round links all waiting lists of the period
in one `link`, so one-to-one assignment holds across lists (a namesake on one LA's list cannot take the
school record of a child on another's) and the outcome does not depend on the order the lists arrived in.
A list arriving after a round is matched in the next round of its period; there an education record that
an earlier round of the period already gave to a child is never matched again, only offered for review
(reason `record_taken_in_period`). Decision 0012.

The round reads and links with no write transaction open, then writes everything (runs, outcomes,
candidates, minimisation) in one short transaction of bulk statements: on SQLite, the one writer, the API
is locked out for that transaction only.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson
import polars as pl
from sqlalchemy.orm import Session, sessionmaker

from app.cme import candidates as cme_candidates
from app.cme.domain import CandidateInput
from app.core import bulk
from app.core.gc_pause import gc_paused
from app.jobs import service as jobs_service
from app.matching import repository
from app.matching.engine import link, stored_evidence
from app.matching.frames import columns_to_frame, text_columns
from app.matching.params import MatchModel
from app.matching.service import HEALTH_LIST_RUN, Progress, active_model, candidate_input

logger = logging.getLogger(__name__)

WAITING = "waiting_for_round"
TAKEN_IN_PERIOD = "record_taken_in_period"
# Rows of candidates written per part of a round on SQLite (outcomes: five times as many, they are narrower).
STEP_ROWS = 2000
# A worker that finds its period's round being run by another job looks again after this long.
RETRY_CLAIMED = dt.timedelta(seconds=2)


def period_of(as_of: dt.date) -> str:
    return f"{as_of:%Y-%m}"


@dataclass(frozen=True, slots=True)
class WaitingList:
    """A stored health list not yet matched."""

    submission_id: uuid.UUID
    sender_id: str
    recipient_id: str
    as_of: dt.date
    received_at: dt.datetime

    @property
    def source(self) -> str:
        # Every row of one list comes from one sender's snapshot: `link` keeps apart two rows of one list
        # that look alike (twins called Ioan and Iwan), as one list never holds a child twice.
        return f"{self.sender_id}@{self.as_of.isoformat()}"


@dataclass(frozen=True, slots=True)
class RoundTiming:
    wait: dt.timedelta  # after the first waiting list, the round runs with whatever is in
    quiet: dt.timedelta  # once every expected list is in, the round runs when no list came for this long


def opens_at(
    waiting: Sequence[WaitingList],
    received: set[tuple[str, str]],
    expected: set[tuple[str, str]],
    timing: RoundTiming,
) -> dt.datetime:
    """When the round over `waiting` may run.

    `timing.wait` after the first waiting list arrived at the latest. Sooner once every expected (sender,
    recipient) list of the period is in: when `timing.quiet` has passed since the last one arrived, so that
    the lists of GP practices (which no one can expect) sent in the same batch are in the round too.
    """
    first = min(w.received_at for w in waiting)
    if expected <= received:
        return min(first + timing.wait, max(w.received_at for w in waiting) + timing.quiet)
    return first + timing.wait


def canonical_order(waiting: Sequence[WaitingList]) -> list[WaitingList]:
    """The lists in an order that does not depend on when they arrived."""
    return sorted(waiting, key=lambda w: (w.sender_id, w.recipient_id, w.as_of, str(w.submission_id)))


def _other_registrations(result: pl.DataFrame, register_of: pl.DataFrame) -> pl.DataFrame:
    """health_id -> JSON text of the other records of the same child (dual registration), where any."""
    others = (
        result.select("health_id", pl.col("other_education_ids").alias("education_id"))
        .explode("education_id")
        .drop_nulls("education_id")
        .join(register_of, on="education_id")
        .sort("health_id", "education_id")
    )
    entry = pl.concat_str(
        pl.lit('{"education_child_id":'), pl.col("education_id").cast(pl.String),
        pl.lit(',"register":"'), pl.col("register"),
        pl.lit('","la_id":"'), pl.col("education_la"), pl.lit('"}'),
    )  # fmt: skip
    return others.group_by("health_id").agg(
        pl.concat_str(pl.lit("["), entry.str.join(","), pl.lit("]")).alias("other_registrations")
    )


# --- The round ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoundPlan:
    """Everything the round writes, computed before the write transaction opens."""

    period: str
    round_id: uuid.UUID
    run_ids: dict[uuid.UUID, uuid.UUID]  # one run per list
    lists: list[WaitingList]
    model: MatchModel
    outcomes: pl.DataFrame  # link output joined with record index, submission, LA, register
    candidates: dict[str, list[tuple[int, CandidateInput]]]  # by LA: (outcome position, child)
    education_records: int
    seconds: dict[str, float]


class RegisterFrame:
    """Every register as one canonical frame, kept between rounds while the registers do not change.

    A round needs it whole; building it is a second or two of the round at half a million records, and
    the registers seldom change between two rounds, or while a round waits for its quiet time (when
    `warm` builds it ahead). Keyed by the registers' fingerprint (`repository.register_fingerprint`).
    One per process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: tuple[str, pl.DataFrame] | None = None
        self._warming: threading.Thread | None = None

    def get(self, factory: sessionmaker[Session]) -> pl.DataFrame:
        with self._lock:
            with factory() as session:
                fingerprint = repository.register_fingerprint(session)
                if self._held is not None and self._held[0] == fingerprint:
                    return self._held[1]
                self._held = None  # let the old frame go before the new one is built
                frame = columns_to_frame(text_columns(repository.education_table(session), la_column="la_id"))
            self._held = (fingerprint, frame)
            return frame

    def warm(self, factory: sessionmaker[Session]) -> None:
        """Build the frame on a background thread, unless a build is already under way."""
        with self._lock:
            if self._warming is not None and self._warming.is_alive():
                return
            self._warming = threading.Thread(
                target=self._warm, args=(factory,), name="cme-register-frame", daemon=True
            )
            self._warming.start()

    def _warm(self, factory: sessionmaker[Session]) -> None:
        try:
            with gc_paused():
                self.get(factory)
        except Exception:
            logger.exception("register frame warm-up failed")  # the round builds it itself


REGISTERS = RegisterFrame()


def plan_round(
    factory: sessionmaker[Session],
    period: str,
    lists: Sequence[WaitingList],
    model: MatchModel,
    progress: Progress,
    registers: RegisterFrame = REGISTERS,
) -> RoundPlan:
    """Load the lists and every register, link once, decide every row; reads only."""
    # The registers' frame is built (or found) on a second connection while the lists are read on the
    # first: the database sends both at once, and much of the frame building lets go of the GIL.
    with ThreadPoolExecutor(1) as pool, factory() as session:
        education = pool.submit(registers.get, factory)
        return _plan(session, education, period, lists, model, progress)


def _plan(
    session: Session,
    registers: Future[pl.DataFrame],
    period: str,
    lists: Sequence[WaitingList],
    model: MatchModel,
    progress: Progress,
) -> RoundPlan:
    started = time.perf_counter()
    ordered = canonical_order(lists)
    run_ids = {w.submission_id: uuid.uuid4() for w in ordered}
    list_order = pl.DataFrame(
        {
            "submission_id": [str(w.submission_id) for w in ordered],
            "list_order": list(range(len(ordered))),
            "source": [w.source for w in ordered],
        },
        schema={"submission_id": pl.String, "list_order": pl.Int64, "source": pl.String},
    )
    health_text = (
        repository.health_table(session, [w.submission_id for w in ordered])
        .with_columns(pl.col("record_index").cast(pl.Int64))
        .join(list_order, on="submission_id")
        .sort("list_order", "record_index")
    )
    progress("load", 0, health_text.height)
    taken = repository.taken_in_period(session, period)
    health = columns_to_frame(
        {**text_columns(health_text, la_column="recipient_la"), "register": health_text["source"]}
    )
    education = registers.result()
    loaded = time.perf_counter()
    progress("link", 0, health_text.height)

    result = link(health, education, model)
    if taken:
        late_taken = (pl.col("outcome") == "matched") & pl.col("education_id").is_in(list(taken))
        result = result.with_columns(
            outcome=pl.when(late_taken).then(pl.lit("possible")).otherwise("outcome"),
            reason=pl.when(late_taken).then(pl.lit(TAKEN_IN_PERIOD)).otherwise("reason"),
        )
    register_of = education.select(
        pl.col("id").alias("education_id"), "register", pl.col("la").alias("education_la")
    )
    row_facts = health_text.select(
        pl.col("id").cast(pl.Int64).alias("health_id"), "record_index", "submission_id", "recipient_la"
    )
    result = (
        result.join(register_of, on="education_id", how="left", maintain_order="left")
        .join(row_facts, on="health_id", how="left", maintain_order="left")
        .join(_other_registrations(result, register_of), on="health_id", how="left", maintain_order="left")
    )
    unmatched = (
        result.with_row_index("position")
        .filter(pl.col("outcome") == "unmatched")
        .select("position", "health_id")
        .join(
            health_text.with_columns(pl.col("id").cast(pl.Int64).alias("health_id")),
            on="health_id",
            maintain_order="left",
        )
    )
    candidates: dict[str, list[tuple[int, CandidateInput]]] = {}
    for row in unmatched.iter_rows(named=True):
        child = candidate_input(_typed(row), run_ids[uuid.UUID(row["submission_id"])])
        candidates.setdefault(row["recipient_la"], []).append((row["position"], child))
    linked = time.perf_counter()
    return RoundPlan(
        period=period,
        round_id=uuid.uuid4(),
        run_ids=run_ids,
        lists=ordered,
        model=model,
        outcomes=result,
        candidates=candidates,
        education_records=education.height,
        seconds={"load": round(loaded - started, 3), "link": round(linked - loaded, 3)},
    )


def _typed(text: Mapping[str, Any]) -> dict[str, Any]:
    """A staging row read as text, with the Python values `candidate_input` takes."""
    dob = text["date_of_birth"]
    return {
        **text,
        "id": int(text["id"]),
        "former_names": orjson.loads(text["former_names"]) if text["former_names"] else [],
        "address_lines": orjson.loads(text["address_lines"]) if text["address_lines"] else [],
        "date_of_birth": None if dob is None else dt.date.fromisoformat(dob),
        "address_is_last_known": text["address_is_last_known"] in ("t", "true"),
    }


# Pause after each part on SQLite: a request waiting for the write lock sleeps between tries (SQLite's busy
# handler backs off to 100 ms), so a writer that starts its next part at once can keep it out for the whole
# round.
SQLITE_YIELD_SECONDS = 0.1


def _sqlite_step(session: Session) -> Callable[[], None]:
    def step() -> None:
        session.commit()
        time.sleep(SQLITE_YIELD_SECONDS)

    return step


def write_round(
    session: Session,
    plan: RoundPlan,
    *,
    job_id: uuid.UUID | None,
    now: dt.datetime,
    step: Callable[[], None] | None = None,
) -> dict[uuid.UUID, dict[str, Any]]:
    """Store the round: candidates, outcomes, one run per list, minimisation; each list's summary.

    With `step`, the writes go in parts of at most `STEP_ROWS` rows and `step` is called after each. On
    PostgreSQL there is none: the round is one transaction. On SQLite (one writer) it commits, so a waiting request gets the write lock within
    a fraction of a second; what a crash then leaves (candidates, outcomes of lists without a finished run)
    a retry finds again or replaces, and the lists stay unmatched until the last part commits.
    """
    started = time.perf_counter()
    result = plan.outcomes
    submission_ids = [w.submission_id for w in plan.lists]
    repository.delete_unfinished_outcomes(session, submission_ids)
    candidate_ids: dict[int, uuid.UUID] = {}
    for la_id, children in sorted(plan.candidates.items()):
        ids = cme_candidates.open_candidates(
            session,
            la_id=la_id,
            submission_ids=[uuid.UUID(result["submission_id"][position]) for position, _ in children],
            children=[child for _, child in children],
            now=now,
            step=step,
            step_rows=STEP_ROWS,
        )
        candidate_ids.update(zip((position for position, _ in children), ids, strict=True))
        if step:
            step()
    run_ids = plan.run_ids
    opened = time.perf_counter()
    outcomes = _outcome_frame(result, run_ids, candidate_ids, plan.model, now)
    part = STEP_ROWS * 5 if step else max(outcomes.height, 1)
    for start in range(0, outcomes.height, part):
        repository.insert_outcomes(session, outcomes.slice(start, part))
        if step:
            step()
    stored = time.perf_counter()
    # Minimisation: the staging rows go, but for the possible matches an officer has still to decide.
    repository.delete_staging_rows(
        session,
        submission_ids=[w.submission_id for w in plan.lists],
        keep=result.filter(pl.col("outcome") == "possible")["health_id"].to_list(),
    )
    minimised = time.perf_counter()
    seconds = {
        **plan.seconds,
        "candidates": round(opened - started, 3),
        "outcomes": round(stored - opened, 3),
        "minimise": round(minimised - stored, 3),
    }
    summaries = _summaries(plan, run_ids, job_id, seconds)
    repository.add_runs(
        session,
        [
            {
                "id": run_ids[w.submission_id],
                "kind": HEALTH_LIST_RUN,
                "submission_id": w.submission_id,
                "job_id": job_id,
                "period": plan.period,
                "round_id": plan.round_id,
                "model_version": plan.model.version,
                "model_hash": plan.model.content_hash,
                "status": "succeeded",
                "started_at": now,
                "finished_at": now,
                "summary": summaries[w.submission_id],
            }
            for w in plan.lists
        ],
    )
    repository.set_submissions_status(session, [w.submission_id for w in plan.lists], "matched")
    jobs_service.complete_waiting(
        session,
        {
            list_job: {**summaries[submission_id], "replayed": True}
            for submission_id, list_job in repository.jobs_of(session, [w.submission_id for w in plan.lists])
            if list_job != job_id
        },
        now=now,
    )
    return summaries


def _summaries(
    plan: RoundPlan,
    run_ids: Mapping[uuid.UUID, uuid.UUID],
    job_id: uuid.UUID | None,
    seconds: dict[str, float],
) -> dict[uuid.UUID, dict[str, Any]]:
    result = plan.outcomes
    overall = {"matched": 0, "possible": 0, "unmatched": 0}
    by_list: dict[str, dict[str, Any]] = {}
    for submission_id, outcome, register, count in (
        result.group_by("submission_id", "outcome", "register").len().iter_rows()
    ):
        entry = by_list.setdefault(
            submission_id,
            {
                "outcomes": dict.fromkeys(overall, 0),
                "by_register": {},
                "health_records": 0,
                "dual_registrations": 0,
            },
        )
        entry["outcomes"][outcome] += count
        entry["health_records"] += count
        overall[outcome] += count
        if register is not None and outcome != "unmatched":
            entry["by_register"].setdefault(register, {}).setdefault(outcome, 0)
            entry["by_register"][register][outcome] += count
    for submission_id, dual in (
        result.filter(pl.col("other_registrations").is_not_null()).group_by("submission_id").len().iter_rows()
    ):
        by_list[submission_id]["dual_registrations"] = dual
    taken = result.filter(pl.col("reason") == TAKEN_IN_PERIOD).height
    round_facts = {
        "period": plan.period,
        "round_id": str(plan.round_id),
        "round_job_id": None if job_id is None else str(job_id),
        "round_lists": len(plan.lists),
        "round_health_records": result.height,
        "round_outcomes": overall,
        "round_records_taken_in_period": taken,
        "education_records": plan.education_records,
        "model_version": plan.model.version,
        "model_hash": plan.model.content_hash,
        "seconds": {**seconds, "total": round(sum(seconds.values()), 3)},
    }
    empty = {
        "outcomes": dict.fromkeys(overall, 0),
        "by_register": {},
        "health_records": 0,
        "dual_registrations": 0,
    }
    return {
        w.submission_id: {
            "submission_id": str(w.submission_id),
            "run_id": str(run_ids[w.submission_id]),
            **by_list.get(str(w.submission_id), empty),
            **round_facts,
        }
        for w in plan.lists
    }


def _outcome_frame(
    result: pl.DataFrame,
    run_ids: Mapping[uuid.UUID, uuid.UUID],
    candidate_ids: Mapping[int, uuid.UUID],
    model: MatchModel,
    now: dt.datetime,
) -> pl.DataFrame:
    """One `match_outcome` row per health row, built column by column (500,000 rows in well under a
    second), as text where CSV carries text."""
    linked = pl.col("outcome") != "unmatched"
    runs = {str(k): str(v) for k, v in run_ids.items()}
    candidates = pl.DataFrame(
        {
            "position": list(candidate_ids),
            "candidate_id": [str(c) for c in candidate_ids.values()],
        },
        schema={"position": pl.UInt32, "candidate_id": pl.String},
    )
    return (
        result.with_row_index("position")
        .join(candidates, on="position", how="left", maintain_order="left")
        .select(
            pl.Series("id", bulk.ordered_uuids(result.height), dtype=pl.String),
            pl.col("submission_id").replace_strict(runs, return_dtype=pl.String).alias("run_id"),
            "submission_id",
            "record_index",
            "recipient_la",
            pl.col("health_id").alias("health_child_id"),
            "outcome",
            pl.when(linked).then(pl.col("education_id")).alias("education_child_id"),
            pl.when(linked).then(pl.col("education_la")).alias("education_la"),
            pl.when(linked).then(pl.col("register")).alias("register"),
            pl.col("match_weight").round(4),
            pl.col("match_probability").round(4),
            pl.lit(model.version).alias("model_version"),
            stored_evidence().alias("evidence"),
            pl.lit(now.isoformat()).alias("created_at"),
            pl.when(pl.col("outcome") == "possible").then(pl.lit("pending")).alias("review_status"),
            "candidate_id",
            pl.when(linked).then(pl.col("other_registrations")).alias("other_registrations"),
        )
    )


# --- The job ---------------------------------------------------------------------------------------------


class NotYet(Exception):
    """The list's round may not run yet; try again at `until`."""

    def __init__(self, until: dt.datetime) -> None:
        super().__init__(until.isoformat())
        self.until = until


def match_health_list(
    factory: sessionmaker[Session],
    submission_id: uuid.UUID,
    *,
    timing: RoundTiming,
    job_id: uuid.UUID,
    now: Callable[[], dt.datetime],
    progress: Progress,
) -> dict[str, Any]:
    """Run the round of this list's period (or find the one that matched it); its summary for this list.

    Raises `NotYet` while the round is not due, or another job is running it.
    """
    with factory.begin() as session:
        found = _settled(session, submission_id)
        if found is not None:
            return found
        submission = repository.get_submission(session, submission_id)
        assert submission is not None  # _settled answered for a missing one
        period = period_of(submission.as_of)
        waiting = [WaitingList(*tuple(row)) for row in repository.waiting_lists(session, period)]
        due = opens_at(
            waiting,
            repository.lists_received(session, period),
            repository.expected_lists(session),
            timing,
        )
        if now() < due:
            REGISTERS.warm(factory)  # the wait is time the registers' frame can be built in
            raise NotYet(due)
        if not repository.claim_period(session, period, job_id, now()):
            raise NotYet(now() + RETRY_CLAIMED)
        model = active_model(session, now())
        repository.set_submissions_status(session, [w.submission_id for w in waiting], "matching")
    try:
        plan = plan_round(factory, period, waiting, model, progress)  # reads only: no write lock held
        progress("store", 0, plan.outcomes.height)
        with factory() as session:
            if not repository.lock_period(session, period, job_id):
                raise NotYet(now())  # the claim lapsed and another job took the round over
            step = _sqlite_step(session) if session.get_bind().dialect.name == "sqlite" else None
            summaries = write_round(session, plan, job_id=job_id, now=now(), step=step)
            repository.release_period(session, period, job_id, finished_round=True)
            session.commit()
    except BaseException:
        with factory.begin() as session:
            repository.release_period(session, period, job_id, finished_round=False)
        raise
    logger.info("matching round finished", extra={"period": period, "round_id": str(plan.round_id)})
    return summaries[submission_id]


def _settled(session: Session, submission_id: uuid.UUID) -> dict[str, Any] | None:
    """The answer for a list that needs no round: missing, or already matched (by this or another job)."""
    if repository.get_submission(session, submission_id) is None:
        return {"submission_id": str(submission_id), "skipped": "no_such_submission"}
    done = repository.finished_run(session, submission_id, HEALTH_LIST_RUN)
    if done is not None:
        return {**done.summary, "replayed": True}
    return None
