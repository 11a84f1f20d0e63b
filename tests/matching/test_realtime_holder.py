"""The real-time index holder: built in the background, refused with 503 (not waited on) while warming."""

from __future__ import annotations

import gc
import threading

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import make_session_factory
from app.matching.service import RealtimeIndex, RealtimeIndexHolder
from app.partners.models import PartnerKind
from tests.submissions.conftest import PILOT_LA, child
from tests.support.partners import create_partner
from tests.support.tokens import auth_header

OFFICER = {"officer": {"id": "officer-7", "role": "case_officer"}}


class HeldBuild(RealtimeIndexHolder):
    """A holder whose build waits for the test to let it go: a stand-in for a 500,000-record build."""

    def __init__(self, factory: sessionmaker[Session], freeze_from_records: int = 10_000) -> None:
        super().__init__(
            factory, check_seconds=0, first_wait_seconds=0.05, freeze_from_records=freeze_from_records
        )
        self.release = threading.Event()

    def _build(self) -> RealtimeIndex:
        assert self.release.wait(30)
        return super()._build()


def test_a_request_during_the_first_build_is_refused_then_served(
    engine: Engine, session: Session, client: TestClient
) -> None:
    la = create_partner(session, PILOT_LA, PartnerKind.local_authority)
    holder = HeldBuild(make_session_factory(engine))
    client.app.state.match_index = holder  # type: ignore[attr-defined]
    holder.start()

    warming = client.post(
        "/v1/match", json={"records": [child()]}, headers=auth_header(la.key, la.id, claims=OFFICER)
    )
    assert warming.status_code == 503
    assert warming.headers["Retry-After"] == "5"
    assert warming.json()["type"].endswith("match-index-warming")

    holder.release.set()
    holder.wait_for_rebuild()
    served = client.post(
        "/v1/match", json={"records": [child()]}, headers=auth_header(la.key, la.id, claims=OFFICER)
    )
    assert served.status_code == 200, served.text
    assert served.json()["results"] == [{"record_index": 0, "candidates": []}]


def test_an_unchanged_register_keeps_its_index(engine: Engine) -> None:
    holder = HeldBuild(make_session_factory(engine))
    holder.release.set()
    holder.start()
    holder.wait_for_rebuild()
    first = holder.current()
    holder.current()  # reads the register fingerprint (check_seconds=0): unchanged, so no rebuild starts
    holder.wait_for_rebuild()
    assert holder.current() is first


def test_a_large_index_is_frozen_out_of_the_garbage_collector(engine: Engine) -> None:
    """Full collections would walk the index's per-record lists on every pass (a pause per request)."""
    holder = HeldBuild(make_session_factory(engine), freeze_from_records=0)
    holder.release.set()
    try:
        holder.start()
        holder.wait_for_rebuild()
        meta = holder.current().meta
        tracked = {id(o) for o in gc.get_objects()}  # the collector's generations, not the frozen objects
        assert gc.get_freeze_count() > 0
        assert not any(id(values) in tracked for values in meta.values())
    finally:
        gc.unfreeze()


def test_answering_hands_out_the_index_only_when_no_wait_or_read_is_due(engine: Engine) -> None:
    holder = RealtimeIndexHolder(make_session_factory(engine), check_seconds=3600)
    assert holder.answering() is None  # nothing built: `current` must wait for the first build
    holder.start()
    holder.wait_for_rebuild()
    assert holder.answering() is None  # built but never answered: `current` checks the fingerprint first
    index = holder.current()
    assert holder.answering() is index
    due = RealtimeIndexHolder(make_session_factory(engine), check_seconds=0)
    due.start()
    due.wait_for_rebuild()
    due.current()
    assert due.answering() is None  # the fingerprint check is due on every call


class MovingRegisters(RealtimeIndexHolder):
    """A holder whose register fingerprint the test moves, counting who reads it."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        super().__init__(factory, check_seconds=0.05)
        self.generation = 0
        self.reads: list[str] = []

    def _fingerprint(self) -> tuple[int, int | None]:
        self.reads.append(threading.current_thread().name)
        return self.generation, None

    def _build(self) -> RealtimeIndex:
        index = super()._build()
        index.fingerprint = (self.generation, None)
        return index


def test_the_watcher_reads_the_registers_so_requests_never_have_to(engine: Engine) -> None:
    """Requests a second or more apart each found the check due and paid for a database read; the watcher
    thread keeps the check fresh, and starts the rebuild when the registers move."""
    holder = MovingRegisters(make_session_factory(engine))
    holder.start()
    try:
        holder.wait_for_rebuild()
        first = holder.current()
        threading.Event().wait(0.3)  # several check periods with no request at all
        assert holder.answering() is first  # still the fast path: no wait, no read for the request
        assert holder.reads.count("cme-match-watch") >= 2
        holder.generation = 1
        for _ in range(100):
            threading.Event().wait(0.05)
            holder.wait_for_rebuild()
            if holder.answering() is not first:
                break
        replaced = holder.answering()
        assert replaced is not None and replaced is not first and replaced.fingerprint == (1, None)
    finally:
        holder.stop()
    assert holder._watcher is not None and not holder._watcher.is_alive()
