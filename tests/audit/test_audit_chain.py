"""R12.3: the audit log is a hash chain written in the caller's transaction; tampering is detected."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.core.db import make_engine
from app.partners.models import PartnerKind
from app.security.caller import Caller
from app.security.roles import OfficerRole
from app.security.service_key import ServiceSigner

AT = dt.datetime(2025, 10, 6, 9, 30, 0, 123456, tzinfo=dt.UTC)
OFFICER = Caller(
    partner_id="W06000001",
    partner_kind=PartnerKind.local_authority,
    kid="key-1",
    jti="jti-1",
    officer_id="officer-1",
    officer_role=OfficerRole.case_officer,
)


def _write(session: Session, count: int) -> None:
    for n in range(count):
        audit.record(
            session, actor=OFFICER, action="cme.record.read", object_type="cme_record", object_ids=[f"id-{n}"],
            purpose="reg12_casework", now=AT + dt.timedelta(seconds=n),
        )  # fmt: skip
    session.commit()


def test_chain_links_each_event_to_the_previous_one(session: Session) -> None:
    _write(session, 3)
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [row.seq for row in rows] == [1, 2, 3]
    assert rows[0].prev_hash == audit.GENESIS_HASH
    assert [row.prev_hash for row in rows[1:]] == [row.hash for row in rows[:-1]]
    expected = hashlib.sha256(
        (rows[1].prev_hash + audit.canonical_json(audit.event_body(rows[1]))).encode()
    ).hexdigest()
    assert rows[1].hash == expected
    result = audit.verify_chain(session)
    assert result.ok and result.checked == 3 and result.head_hash == rows[2].hash


def test_server_side_hashes_agree_with_python_for_unicode_nulls_and_many_ids(session: Session) -> None:
    """PostgreSQL computes each hash in SQL; the verifier recomputes it in Python: they must agree."""
    audit.record(
        session, actor=None, action="cme.record.read", object_type="cme_record",
        object_ids=[f"id-{n}" for n in range(50)], purpose="adolygiad-ŵŷ-“quoted”\\", now=AT,
    )  # fmt: skip
    audit.record(session, actor=OFFICER, action="x", object_type="y", object_ids=[], now=AT)
    session.commit()
    assert audit.verify_chain(session).ok
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == 2


def test_concurrent_writers_build_one_gapless_chain(database_url: str, engine: Engine) -> None:
    """Eight threads committing at once: the advisory lock keeps seq gapless and every link valid."""
    # An engine of its own, disposed at the end, so its eight connections do not linger in the shared
    # pool; the shared `engine` is requested so that the tables are cleaned afterwards.
    own = make_engine(database_url)
    factory = sessionmaker(bind=own)

    def writer(worker: int) -> None:
        for n in range(20):
            with factory.begin() as session:
                for k in range(1 + n % 2):
                    audit.record(
                        session, actor=OFFICER, action="cme.record.read", object_type="cme_record",
                        object_ids=[f"w{worker}-{n}-{k}"], now=AT,
                    )  # fmt: skip

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with factory() as session:
        result = audit.verify_chain(session)
        assert result.ok and result.checked == 8 * 30
        assert session.scalar(select(func.max(AuditEvent.seq))) == 8 * 30
    own.dispose()


def test_event_carries_actor_purpose_and_ids_only(session: Session) -> None:
    _write(session, 1)
    row = session.scalars(select(AuditEvent)).one()
    assert (row.partner_id, row.officer_id, row.role) == ("W06000001", "officer-1", "case_officer")
    assert (row.action, row.purpose, row.object_ids) == ("cme.record.read", "reg12_casework", ["id-0"])
    assert row.occurred_at == AT


def test_event_is_rolled_back_with_the_callers_transaction(session: Session) -> None:
    audit.record(
        session, actor=None, action="cme.record.read", object_type="cme_record", object_ids=["x"], now=AT
    )
    session.rollback()
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_event_is_chained_as_its_transaction_commits(session: Session) -> None:
    """The chain lock is taken at commit, not while the request still builds its response."""
    audit.record(
        session, actor=None, action="cme.record.read", object_type="cme_record", object_ids=["x"], now=AT
    )
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0
    session.commit()
    assert session.scalars(select(AuditEvent.object_ids)).all() == [["x"]]


def test_events_queued_before_a_rollback_do_not_reach_the_next_transaction(session: Session) -> None:
    audit.record(
        session, actor=None, action="cme.record.read", object_type="cme_record", object_ids=["gone"], now=AT
    )
    session.rollback()
    _write(session, 1)
    assert session.scalars(select(AuditEvent.object_ids)).all() == [["id-0"]]


def test_a_savepoint_release_leaves_the_events_to_the_outer_commit(session: Session, engine: Engine) -> None:
    with session.begin_nested():
        audit.record(
            session, actor=None, action="cme.record.read", object_type="cme_record", object_ids=["x"], now=AT
        )
    with Session(engine) as other:
        other.execute(text("SET lock_timeout = '1s'"))
        # Not locked yet: another writer can still append while this transaction goes on.
        _write(other, 1)
    session.commit()
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [row.object_ids for row in rows] == [["id-0"], ["x"]]
    assert audit.verify_chain(session).ok


def test_canonical_json_is_key_order_independent() -> None:
    assert audit.canonical_json({"b": 1, "a": [1, "ŵ"]}) == audit.canonical_json({"a": [1, "ŵ"], "b": 1})
    assert audit.canonical_json({"b": 1, "a": "ŵ"}) == '{"a":"ŵ","b":1}'


def test_application_cannot_update_or_delete_events(session: Session) -> None:
    _write(session, 1)
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(text("UPDATE audit_event SET action = 'x'"))
    session.rollback()
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(text("DELETE FROM audit_event"))
    session.rollback()
    assert audit.verify_chain(session).ok


def test_superuser_edit_is_reported_at_the_edited_seq(session: Session, superuser: Session) -> None:
    _write(session, 5)
    superuser.execute(text("UPDATE audit_event SET officer_id = 'someone-else' WHERE seq = 3"))
    superuser.commit()
    result = audit.verify_chain(session)
    assert (result.ok, result.first_bad_seq, result.checked) == (False, 3, 2)


def test_superuser_delete_is_reported_at_the_missing_seq(session: Session, superuser: Session) -> None:
    _write(session, 5)
    superuser.execute(text("DELETE FROM audit_event WHERE seq = 4"))
    superuser.commit()
    assert audit.verify_chain(session).first_bad_seq == 4


def test_superuser_deleting_the_tail_is_not_detectable_by_the_chain_alone(
    session: Session, superuser: Session
) -> None:
    """Known limit (decision 0007): truncating the tail leaves a valid chain; checkpoints (below) catch it."""
    _write(session, 3)
    superuser.execute(text("DELETE FROM audit_event WHERE seq = 3"))
    superuser.commit()
    assert audit.verify_chain(session).ok


def test_superuser_reorder_is_reported(session: Session, superuser: Session) -> None:
    _write(session, 4)
    superuser.execute(text("UPDATE audit_event SET seq = -seq WHERE seq IN (2, 3)"))
    superuser.execute(text("UPDATE audit_event SET seq = 3 WHERE seq = -2"))
    superuser.execute(text("UPDATE audit_event SET seq = 2 WHERE seq = -3"))
    superuser.commit()
    assert audit.verify_chain(session).first_bad_seq == 2


def test_superuser_rewriting_a_hash_consistently_still_breaks_the_next_link(
    session: Session, superuser: Session
) -> None:
    _write(session, 3)
    row = session.scalars(select(AuditEvent).where(AuditEvent.seq == 2)).one()
    forged = AuditEvent(**{column: getattr(row, column) for column in ("seq", "occurred_at", "partner_id",
                         "role", "action", "purpose", "object_type", "object_ids", "request_id", "prev_hash")},
                        officer_id="someone-else")  # fmt: skip
    new_hash = audit.event_hash(row.prev_hash, forged)
    superuser.execute(
        text("UPDATE audit_event SET officer_id = 'someone-else', hash = :h WHERE seq = 2"), {"h": new_hash}
    )
    superuser.commit()
    assert audit.verify_chain(session).first_bad_seq == 3


class TestCheckpoints:
    """SECURITY-ANCHORS §3.5: signed checkpoints kept outside the database catch what the chain cannot."""

    @pytest.fixture
    def signer(self) -> ServiceSigner:
        return ServiceSigner(ec.generate_private_key(ec.SECP256R1()))

    def _claims(self, token: str) -> dict[str, Any]:
        payload = token.split(".")[1]
        claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return claims

    def test_checkpoint_signs_the_head(self, session: Session, signer: ServiceSigner) -> None:
        assert self._claims(audit.checkpoint(session, signer, now=AT))["seq"] == 0
        _write(session, 3)
        claims = self._claims(audit.checkpoint(session, signer, now=AT))
        head = session.scalars(select(AuditEvent).where(AuditEvent.seq == 3)).one()
        assert (claims["seq"], claims["hash"], claims["signed_at"]) == (3, head.hash, AT.isoformat())
        assert audit.check_head(session, seq=3, hash=claims["hash"])["ok"]

    def test_deleted_tail_is_caught_by_the_checkpoint(
        self, session: Session, superuser: Session, signer: ServiceSigner
    ) -> None:
        _write(session, 3)
        claims = self._claims(audit.checkpoint(session, signer, now=AT))
        superuser.execute(text("DELETE FROM audit_event WHERE seq = 3"))
        superuser.commit()
        assert audit.verify_chain(session).ok
        assert audit.check_head(session, seq=3, hash=claims["hash"])["first_bad_seq"] == 3

    def test_recomputed_chain_is_caught_by_the_checkpoint(
        self, session: Session, superuser: Session, signer: ServiceSigner
    ) -> None:
        _write(session, 3)
        claims = self._claims(audit.checkpoint(session, signer, now=AT))
        superuser.execute(text("UPDATE audit_event SET officer_id = 'someone-else' WHERE seq = 2"))
        superuser.commit()
        # Rehash from the edited row on, as a careful superuser would.
        rows = superuser.execute(text("SELECT * FROM audit_event ORDER BY seq")).all()
        prev = audit.GENESIS_HASH
        for row in rows:
            new_hash = audit.event_hash(prev, row)
            superuser.execute(
                text("UPDATE audit_event SET prev_hash = :p, hash = :h WHERE seq = :s"),
                {"p": prev, "h": new_hash, "s": row.seq},
            )
            prev = new_hash
        superuser.commit()
        assert audit.verify_chain(session).ok
        assert audit.check_head(session, seq=3, hash=claims["hash"])["first_bad_seq"] == 3


class TestReadOnlyCommits:
    """R12.3 with decision 0007: a transaction whose only write is its audit events may skip the WAL
    flush wait when the app's policy says so; a transaction that changed anything never does."""

    def _chain_query(self, engine: Engine, *, policy: bool | None, change: bool) -> str:
        """The query the chaining sends (lock, inserts, COMMIT), as sent."""
        sent: list[str] = []

        class Recording(psycopg.Cursor[Any]):
            def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
                sent.append(query.as_string(self.connection) if hasattr(query, "as_string") else str(query))
                return super().execute(query, *args, **kwargs)

        info = {} if policy is None else {audit.READS_WAIT_FOR_FLUSH: policy}
        with sessionmaker(bind=engine, info=info).begin() as session:
            driver = session.connection().connection.driver_connection
            assert isinstance(driver, psycopg.Connection)
            driver.cursor_factory = Recording
            if change:
                session.execute(text("CREATE TEMP TABLE touched (x int)"))
            audit.record(
                session, actor=OFFICER, action="cme.record.read", object_type="cme_record", object_ids=["a"]
            )
        driver.cursor_factory = psycopg.Cursor
        (query,) = [q for q in sent if "audit_append(" in q]
        return query

    def test_the_app_policy_asks_the_server_to_skip_the_wait_for_reads(self, engine: Engine) -> None:
        query = self._chain_query(engine, policy=False, change=False)
        assert query.endswith("true::boolean); COMMIT")  # skip if nothing else written; lock released at once
        for policy in (True, None):  # configured to wait, or no policy (CLI, scripts): always wait
            assert self._chain_query(engine, policy=policy, change=False).endswith("false::boolean); COMMIT")
        with sessionmaker(bind=engine)() as session:
            assert audit.verify_chain(session).ok

    @pytest.mark.parametrize(("change", "expected"), [(False, "off"), (True, "on")])
    def test_the_server_skips_it_only_when_nothing_was_written(
        self, engine: Engine, change: bool, expected: str
    ) -> None:
        with engine.connect() as connection:
            if change:
                connection.execute(text("CREATE TEMP TABLE touched (x int)"))
            none = "'{}'"  # no events: only the flush policy and the lock
            connection.execute(text(f"SELECT audit_append({', '.join([none] * 10)}, true)"))
            assert connection.execute(text("SHOW synchronous_commit")).scalar() == expected
            connection.rollback()
