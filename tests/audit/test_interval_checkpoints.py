"""Audit checkpoints every few minutes (issue 11, item 5), each taken after the events since the previous one
verified: a log cut or rewritten below a checkpoint, or changed since it, is found at the next one, within
minutes, and the service signs no checkpoint over it. On PostgreSQL, tampering as a superuser would."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from app.audit import checkpoints, interval
from app.audit import service as audit_service
from app.audit.models import AuditIntervalCheckpoint
from app.cli import main
from app.core.config import Settings, get_settings
from app.core.db import make_session_factory
from app.jobs.worker import Worker
from app.security.service_key import ServiceSigner, load_or_create_service_signer
from app.wiring.jobs import default_ticks
from tests.audit.conftest import write_events

T0 = dt.datetime(2026, 12, 7, 14, 0, tzinfo=dt.UTC)
EVERY = dt.timedelta(minutes=5)


@pytest.fixture
def signer(tmp_path: Path) -> ServiceSigner:
    return load_or_create_service_signer(tmp_path / "keys" / "service-key.pem")


def _tick(
    engine: Engine, signer: ServiceSigner, at: dt.datetime, directory: Path | None = None
) -> interval.IntervalOutcome:
    return interval.run_tick(
        make_session_factory(engine), signer, now=at, interval=EVERY, directory=directory
    )


def _count(session: Session) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(AuditIntervalCheckpoint)) or 0


def _rewrite_from(superuser: Session, seq: int) -> None:
    """Edit event `seq` and recompute every later hash, as a superuser covering their tracks would."""
    rows = superuser.execute(text("SELECT * FROM audit_event ORDER BY seq")).mappings().all()
    previous = next((r["hash"] for r in rows if r["seq"] == seq - 1), audit_service.GENESIS_HASH)
    for row in rows:
        if row["seq"] < seq:
            continue
        pending = audit_service.PendingEvent(
            **{k: row[k] for k in audit_service.PendingEvent.__slots__ if k != "seq"}
        )
        if row["seq"] == seq:
            pending.action = "cme.record.read.forged"
        pending.seq = row["seq"]
        digest = audit_service.event_hash(previous, pending)
        superuser.execute(
            text("UPDATE audit_event SET action = :action, prev_hash = :prev, hash = :hash WHERE seq = :seq"),
            {"action": pending.action, "prev": previous, "hash": digest, "seq": row["seq"]},
        )
        previous = digest
    superuser.commit()


def test_the_head_is_signed_once_per_interval_and_copied_out(
    engine: Engine, session: Session, signer: ServiceSigner, tmp_path: Path
) -> None:
    write_events(session, 3, at=T0)
    first = _tick(engine, signer, T0, tmp_path)
    assert first.taken is not None and first.taken.seq == 3 and not first.broken
    assert checkpoints.signed_head(first.taken.jws, signer.jwks())[0] == 3  # signed by the service
    assert _tick(engine, signer, T0 + EVERY / 2, tmp_path).taken is None  # not due: nothing
    write_events(session, 2, at=T0)
    later = _tick(engine, signer, T0 + EVERY, tmp_path)
    assert later.taken is not None and later.taken.seq == 5 and later.trusted_seq == 3
    assert _count(session) == 2
    files = sorted(p.name for p in tmp_path.glob("audit-interval-checkpoint-*.jws"))
    assert files == [interval.file_name(T0), interval.file_name(T0 + EVERY)]


def test_every_workers_tick_takes_them(engine: Engine, session: Session, settings: Settings) -> None:
    write_events(session, 1, at=T0)
    for _ in range(2):  # two workers, one checkpoint
        Worker(make_session_factory(engine), {}, now=lambda: T0, ticks=default_ticks(settings)).tick()
    assert _count(session) == 1


def test_events_deleted_below_a_checkpoint_are_found_at_the_next_one(
    engine: Engine,
    session: Session,
    signer: ServiceSigner,
    superuser: Session,
    caplog: pytest.LogCaptureFixture,
) -> None:
    write_events(session, 3, at=T0)
    assert _tick(engine, signer, T0).taken is not None
    write_events(session, 2, at=T0)
    superuser.execute(text("DELETE FROM audit_event WHERE seq >= 2"))  # the chain alone still verifies
    superuser.commit()
    with caplog.at_level(logging.ERROR, logger=interval.__name__):
        found = _tick(engine, signer, T0 + EVERY)
    assert found.broken and found.first_bad_seq == 3 and found.taken is None
    assert "audit chain broken" in caplog.messages
    assert _count(session) == 1  # nothing signed over the cut log, on this tick or the next
    assert _tick(engine, signer, T0 + 2 * EVERY).first_bad_seq == 3


def test_a_rewrite_with_every_later_hash_recomputed_is_found_at_the_next_one(
    engine: Engine, session: Session, signer: ServiceSigner, superuser: Session
) -> None:
    write_events(session, 4, at=T0)
    assert _tick(engine, signer, T0).taken is not None
    _rewrite_from(superuser, 2)
    assert audit_service.verify_chain(session).ok  # consistent again on its own
    found = _tick(engine, signer, T0 + EVERY)
    assert found.first_bad_seq == 4 and found.taken is None


@pytest.mark.parametrize(
    ("tamper", "first_bad"),
    [
        ("DELETE FROM audit_event WHERE seq = 5", 5),  # a deletion since the checkpoint
        ("UPDATE audit_event SET action = 'forged' WHERE seq = 6", 6),  # an edit since
        (  # two events swapped
            "UPDATE audit_event SET seq = -5 WHERE seq = 5; UPDATE audit_event SET seq = 5 WHERE seq = 6;"
            " UPDATE audit_event SET seq = 6 WHERE seq = -5",
            5,
        ),
    ],
)
def test_a_change_among_the_events_since_the_checkpoint_is_found(
    engine: Engine, session: Session, signer: ServiceSigner, superuser: Session, tamper: str, first_bad: int
) -> None:
    write_events(session, 3, at=T0)
    assert _tick(engine, signer, T0).taken is not None
    write_events(session, 4, at=T0)
    superuser.execute(text(tamper))
    superuser.commit()
    assert _tick(engine, signer, T0 + EVERY).first_bad_seq == first_bad


def test_with_a_directory_the_copy_out_of_reach_is_trusted_not_the_rows(
    engine: Engine, session: Session, signer: ServiceSigner, superuser: Session, tmp_path: Path
) -> None:
    """The superuser cuts the log and deletes the checkpoint rows that name the cut events too: the file
    copied out of their reach still names them."""
    write_events(session, 3, at=T0)
    assert _tick(engine, signer, T0, tmp_path).taken is not None
    superuser.execute(text("DELETE FROM audit_event WHERE seq >= 2"))
    superuser.execute(text("DELETE FROM audit_interval_checkpoint"))
    superuser.commit()
    assert _tick(engine, signer, T0 + EVERY, tmp_path).first_bad_seq == 3
    assert _tick(engine, signer, T0 + EVERY).taken is not None  # from the rows alone it would pass


def test_a_forged_file_is_not_trusted(
    engine: Engine, session: Session, signer: ServiceSigner, tmp_path: Path
) -> None:
    write_events(session, 1, at=T0)
    (tmp_path / interval.file_name(T0)).write_text("eyJhbGciOiJFUzI1NiJ9.e30.c2ln\n", encoding="ascii")
    found = _tick(engine, signer, T0 + EVERY, tmp_path)
    assert found.broken and found.taken is None


def test_cme_audit_verify_reads_the_interval_files_too(
    engine: Engine,
    session: Session,
    signer: ServiceSigner,
    superuser: Session,
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    directory = tmp_path / "worm"
    directory.mkdir()
    write_events(session, 3, at=T0)
    assert _tick(engine, signer, T0, directory).taken is not None
    superuser.execute(text("DELETE FROM audit_event WHERE seq = 3"))  # the newest: the chain alone is fine
    superuser.commit()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(signer.jwks()))
    monkeypatch.setenv("CME_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        status = main(["audit", "verify", "--checkpoint-dir", str(directory), "--jwks", str(jwks)])
    finally:
        get_settings.cache_clear()
    report = json.loads(capsys.readouterr().out)
    assert status == 1 and report["chain"]["ok"] is True
    assert report["checkpoints"] == [
        {
            "file": str(directory / interval.file_name(T0)),
            "seq": 3,
            "ok": False,
            "first_bad_seq": 3,
            "finding": "truncated",
        }
    ]


def _watch(engine: Engine, signer: ServiceSigner, witness: interval.HeadWitness) -> int | None:
    return interval.watch_head(make_session_factory(engine), signer, witness, None).first_bad_seq


def test_the_newest_events_cut_off_between_checkpoints_are_found_at_the_next_tick(
    engine: Engine, session: Session, signer: ServiceSigner, superuser: Session
) -> None:
    """The gap a checkpoint leaves: events written since it, then deleted, leave a chain that verifies
    from the checkpoint on. The process saw them, so the next minute's tick finds them gone."""
    write_events(session, 3, at=T0)
    assert _tick(engine, signer, T0).taken is not None
    witness = interval.HeadWitness()
    assert _watch(engine, signer, witness) is None
    write_events(session, 3, at=T0)
    assert _watch(engine, signer, witness) is None and witness.seen is not None and witness.seen[0] == 6
    superuser.execute(text("DELETE FROM audit_event WHERE seq >= 5"))
    superuser.commit()
    assert audit_service.verify_chain(session, after=None).ok  # the chain alone cannot tell
    assert _watch(engine, signer, witness) == 5  # the first missing event
    assert _watch(engine, signer, witness) == 5  # and on every tick after, until someone acts


def test_the_newest_events_rewritten_between_checkpoints_are_found_at_the_next_tick(
    engine: Engine, session: Session, signer: ServiceSigner, superuser: Session
) -> None:
    write_events(session, 3, at=T0)
    assert _tick(engine, signer, T0).taken is not None
    witness = interval.HeadWitness()
    write_events(session, 3, at=T0)
    assert _watch(engine, signer, witness) is None
    _rewrite_from(superuser, 5)
    session.rollback()
    assert audit_service.verify_chain(session).ok
    assert _watch(engine, signer, witness) == 6  # the witnessed head no longer holds its hash


def test_a_restarted_process_watches_from_the_trusted_checkpoint(
    engine: Engine, session: Session, signer: ServiceSigner, superuser: Session
) -> None:
    write_events(session, 3, at=T0)
    assert _tick(engine, signer, T0).taken is not None
    write_events(session, 3, at=T0)
    superuser.execute(text("UPDATE audit_event SET action = 'forged' WHERE seq = 5"))
    superuser.commit()
    assert _watch(engine, signer, interval.HeadWitness()) == 5  # no memory yet: checked from seq 3 on


def test_the_worker_tick_signs_nothing_over_a_log_its_witness_found_cut(
    engine: Engine,
    session: Session,
    settings: Settings,
    superuser: Session,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    tick = interval.tick_for(settings.model_copy(update={"service_key_file": tmp_path / "key.pem"}))
    factory = make_session_factory(engine)
    write_events(session, 2, at=T0)
    tick(factory, T0)  # the first checkpoint, and the witness sees seq 2
    write_events(session, 2, at=T0)
    tick(factory, T0 + dt.timedelta(minutes=1))  # not due: the witness alone sees seq 4
    superuser.execute(text("DELETE FROM audit_event WHERE seq = 4"))
    superuser.commit()
    with caplog.at_level(logging.ERROR, logger=interval.__name__):
        tick(factory, T0 + EVERY)  # due, and from seq 2 on the chain verifies: only the witness knows
    assert "audit chain broken" in caplog.messages
    assert [r.__dict__["first_bad_seq"] for r in caplog.records] == [4]
    assert _count(session) == 1  # the cut log was not signed
