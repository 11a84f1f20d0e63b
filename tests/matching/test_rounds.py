"""Matching rounds: every health list of a period is matched together (decision 0012).

Two pilot LAs of one health board. Gethin lives in the first LA and crosses the border to a school of the
second; a namesake, born the same day, lives in the second LA and is on no register. Matched list by list,
the second LA's list would give the namesake Gethin's school record whenever it came first, and Gethin's
own row could take the same record again. In a round the record goes to the child it describes, whatever
the order, and the namesake becomes the second LA's candidate.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app.cme.models import CmeCandidate
from app.core.config import Settings
from app.core.db import make_session_factory
from app.jobs import service as jobs_service
from app.jobs.models import Job
from app.jobs.worker import Worker, utcnow
from app.matching import repository, rounds
from app.matching.models import MatchOutcome, MatchRun
from app.partners.models import PartnerKind
from app.submissions.models import Submission
from app.wiring.jobs import default_handlers
from tests.matching.test_matching_api import as_officer, on_roll, send
from tests.submissions.conftest import OTHER_PILOT_LA, PILOT_LA, child, payload
from tests.support.partners import TestPartner, create_partner
from tests.support.tokens import auth_header

GETHIN = child(
    given_name="Gethin",
    middle_names=None,
    family_name="Parry",
    date_of_birth="2013-05-17",
    address={"lines": ["4 Lon Glai"], "town": "Llangefni", "postcode": "LL77 7PZ"},
)
NAMESAKE = GETHIN | {"address": {"lines": ["19 Ffordd Eryri"], "town": "Caernarfon", "postcode": "LL55 1RR"}}
OTHER = child(
    given_name="Lowri",
    middle_names=None,
    family_name="Owen",
    date_of_birth="2012-02-02",
    address={"lines": ["2 Stryd y Bont"], "town": "Caernarfon", "postcode": "LL55 2AA"},
)


class Pilot:
    def __init__(self, session: Session, client: TestClient) -> None:
        self.client = client
        self.board = create_partner(session, "W11000023", PartnerKind.local_health_board)
        self.first = create_partner(session, PILOT_LA, PartnerKind.local_authority)
        self.second = create_partner(session, OTHER_PILOT_LA, PartnerKind.local_authority)
        # Gethin is on a school roll of the second LA.
        roll = payload(self.second.id, [on_roll(GETHIN, "6612001")], kind="school_roll", recipient=None)
        assert send(client, self.second, roll).status_code == 201

    def health_list(self, recipient: TestPartner, records: list[dict[str, Any]]) -> dict[str, Any]:
        body = payload(self.board.id, records, recipient=recipient.id)
        response = send(self.client, self.board, body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def candidates(self, la: TestPartner) -> list[dict[str, Any]]:
        response = self.client.get("/v1/cme/candidates", headers=as_officer(la))
        assert response.status_code == 200, response.text
        return list(response.json()["items"])


@pytest.fixture
def pilot(session: Session, client: TestClient, engine: Engine, settings: Settings) -> Pilot:
    made = Pilot(session, client)
    assert worker(engine, settings).run_until_idle() == 1  # the register's re-match job
    return made


def worker(
    engine: Engine, settings: Settings, *, wait: float = 0, quiet: float = 0, at: dt.datetime | None = None
) -> Worker:
    timing = {"match_round_wait_seconds": wait, "match_round_quiet_seconds": quiet}
    handlers = default_handlers(settings.model_copy(update=timing))
    return Worker(make_session_factory(engine), handlers, now=(lambda: at) if at else utcnow)


def decisions(session: Session) -> dict[tuple[str, int], tuple[str, int | None]]:
    """(recipient LA, record index) -> (outcome, education record) for every outcome stored."""
    session.expire_all()
    rows = session.scalars(select(MatchOutcome))
    return {(o.recipient_la, o.record_index): (o.outcome, o.education_child_id) for o in rows}


@pytest.mark.parametrize("second_first", [False, True], ids=["first-la-first", "second-la-first"])
def test_a_record_goes_to_the_child_it_describes_whatever_the_order_of_the_lists(
    pilot: Pilot, session: Session, engine: Engine, settings: Settings, second_first: bool
) -> None:
    sends = [(pilot.first, [GETHIN]), (pilot.second, [NAMESAKE, OTHER])]
    for recipient, records in reversed(sends) if second_first else sends:
        pilot.health_list(recipient, records)
    worker(engine, settings).run_until_idle()

    found = decisions(session)
    (gethins_record,) = {e for _, e in found.values() if e is not None}
    assert found[(PILOT_LA, 0)] == ("matched", gethins_record)
    assert found[(OTHER_PILOT_LA, 0)] == ("unmatched", None)  # the namesake: nobody in education knows him
    assert found[(OTHER_PILOT_LA, 1)] == ("unmatched", None)
    names = sorted(c["address"]["town"] for c in pilot.candidates(pilot.second))
    assert names == ["Caernarfon", "Caernarfon"]
    assert pilot.candidates(pilot.first) == []
    # Both lists were matched in one round; no record is the match of two rows of the period.
    assert len(set(session.scalars(select(MatchRun.round_id)))) == 1
    held = session.execute(
        select(MatchOutcome.education_child_id, func.count())
        .where(MatchOutcome.outcome != "unmatched")
        .group_by(MatchOutcome.education_child_id)
    ).all()
    assert all(n == 1 for _, n in held)


def test_a_list_waits_for_the_rest_of_its_period_then_every_list_completes(
    pilot: Pilot, session: Session, engine: Engine, settings: Settings, client: TestClient
) -> None:
    first = pilot.health_list(pilot.first, [GETHIN])
    assert worker(engine, settings, wait=3600).run_until_idle() == 1  # deferred, not run
    session.expire_all()
    job = session.get(Job, uuid.UUID(first["job_id"]))
    assert job is not None and job.status == "queued" and job.stage == rounds.WAITING and job.attempts == 0
    assert job.run_after > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=59)
    assert session.scalar(select(func.count()).select_from(MatchOutcome)) == 0

    # The second LA's list completes the period (both pilot LAs of the board): once the quiet time has
    # passed with no further list, the round runs and finishes the first list's job too.
    second = pilot.health_list(pilot.second, [NAMESAKE, OTHER])
    assert worker(engine, settings, wait=3600, quiet=60).run_until_idle() == 1  # it waits for the quiet
    quiet_over = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=61)
    assert worker(engine, settings, wait=3600, quiet=60, at=quiet_over).run_until_idle() == 1
    for sent in (first, second):
        response = client.get(
            f"/v1/jobs/{sent['job_id']}", headers=auth_header(pilot.board.key, pilot.board.id)
        )
        body = response.json()
        assert body["status"] == "succeeded" and body["stage"] == "done", body
        assert body["result"]["round_lists"] == 2
    assert {
        s.status for s in session.scalars(select(Submission).where(Submission.kind == "health_register"))
    } == {"matched"}


def test_a_list_waiting_past_the_configured_wait_is_matched_without_the_others(
    pilot: Pilot, session: Session, engine: Engine, settings: Settings
) -> None:
    pilot.health_list(pilot.first, [GETHIN])
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=61)
    assert worker(engine, settings, wait=60, at=later).run_until_idle() == 1
    assert decisions(session)[(PILOT_LA, 0)][0] == "matched"


def test_a_late_list_cannot_take_a_record_an_earlier_round_gave_away(
    pilot: Pilot, session: Session, engine: Engine, settings: Settings
) -> None:
    pilot.health_list(pilot.first, [GETHIN])
    worker(engine, settings).run_until_idle()
    late = pilot.health_list(pilot.second, [NAMESAKE])
    worker(engine, settings).run_until_idle()

    found = decisions(session)
    outcome = session.scalars(
        select(MatchOutcome).where(MatchOutcome.submission_id == uuid.UUID(late["submission_id"]))
    ).one()
    # Not a second match of Gethin's record, and not silently dropped either: an officer decides.
    assert found[(PILOT_LA, 0)][0] == "matched"
    assert outcome.outcome == "possible" and outcome.evidence["reason"] == rounds.TAKEN_IN_PERIOD
    assert outcome.review_status == "pending"
    assert len(set(session.scalars(select(MatchRun.round_id)))) == 2


def test_lists_of_another_period_are_matched_in_their_own_round(
    pilot: Pilot, session: Session, engine: Engine, settings: Settings
) -> None:
    pilot.health_list(pilot.first, [GETHIN])
    body = payload(pilot.board.id, [NAMESAKE], recipient=pilot.second.id, as_of="2025-05-31")
    assert send(pilot.client, pilot.board, body).status_code == 201
    worker(engine, settings).run_until_idle()
    periods = {r.period: r.round_id for r in session.scalars(select(MatchRun))}
    assert set(periods) == {"2025-04", "2025-05"} and len(set(periods.values())) == 2


def test_a_crash_in_the_round_leaves_nothing_and_the_retry_completes(
    pilot: Pilot, session: Session, engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    pilot.health_list(pilot.first, [GETHIN])
    pilot.health_list(pilot.second, [NAMESAKE, OTHER])

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("worker died")

    with monkeypatch.context() as patch:
        patch.setattr(repository, "delete_staging_rows", crash)
        worker(engine, settings).run_until_idle()
    assert session.scalar(select(func.count()).select_from(MatchOutcome)) == 0
    assert session.scalar(select(func.count()).select_from(CmeCandidate)) == 0
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    worker(engine, settings, at=later).run_until_idle()
    assert len(decisions(session)) == 3
    assert session.scalar(select(func.count()).select_from(CmeCandidate)) == 2


def test_round_opens_when_every_expected_list_is_in_and_quiet_or_after_the_wait() -> None:
    at = dt.datetime(2025, 4, 30, 9, tzinfo=dt.UTC)
    waiting = [
        rounds.WaitingList(uuid.uuid4(), "W11000023", "W06000001", dt.date(2025, 4, 30), at),
        rounds.WaitingList(
            uuid.uuid4(), "W11000023", "W06000002", dt.date(2025, 4, 30), at + dt.timedelta(hours=1)
        ),
    ]
    expected = {("W11000023", "W06000001"), ("W11000023", "W06000002")}
    timing = rounds.RoundTiming(wait=dt.timedelta(hours=6), quiet=dt.timedelta(seconds=10))
    last = at + dt.timedelta(hours=1)
    # Every expected list in: the round runs once no list has come for the quiet time...
    assert rounds.opens_at(waiting, expected, expected, timing) == last + timing.quiet
    # ...but never later than the wait after the first.
    late = [
        *waiting,
        rounds.WaitingList(uuid.uuid4(), "W97001", "W06000001", dt.date(2025, 4, 30), at + timing.wait),
    ]
    assert rounds.opens_at(late, expected, expected, timing) == at + timing.wait
    # Not every expected list in: the wait.
    assert rounds.opens_at(waiting, {("W11000023", "W06000001")}, expected, timing) == at + timing.wait
    assert rounds.canonical_order(waiting[::-1]) == waiting


def test_the_job_reports_each_stage_with_its_counts(
    pilot: Pilot, session: Session, engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = pilot.health_list(pilot.first, [GETHIN])
    pilot.health_list(pilot.second, [NAMESAKE, OTHER])
    reported: list[tuple[str, int, int | None]] = []
    report = jobs_service.report_progress

    def record(
        session: Session, job_id: uuid.UUID, *, stage: str, done: int, total: int | None, now: dt.datetime
    ) -> None:
        reported.append((stage, done, total))
        report(session, job_id, stage=stage, done=done, total=total, now=now)

    monkeypatch.setattr(jobs_service, "report_progress", record)
    worker(engine, settings).run_until_idle()
    assert reported == [("load", 0, 3), ("link", 0, 3), ("store", 0, 3)]
    session.expire_all()
    job = session.get(Job, uuid.UUID(sent["job_id"]))
    assert job is not None and (job.stage, job.progress_done, job.progress_total) == ("done", 3, 3)
    assert job.result is not None
    assert set(job.result["seconds"]) == {"load", "link", "candidates", "outcomes", "minimise", "total"}


def test_the_registers_frame_is_kept_until_a_register_changes(
    pilot: Pilot, engine: Engine, client: TestClient
) -> None:
    frames = rounds.RegisterFrame()
    factory = make_session_factory(engine)
    first = frames.get(factory)
    assert frames.get(factory) is first and first.height == 1  # Gethin's roll
    roll = payload(pilot.first.id, [on_roll(OTHER, "6602001")], kind="school_roll", recipient=None)
    assert send(client, pilot.first, roll).status_code == 201
    second = frames.get(factory)
    assert second is not first and second.height == 2
    frames.warm(factory)  # built already: the warm-up finds it
    assert frames.get(factory) is second
