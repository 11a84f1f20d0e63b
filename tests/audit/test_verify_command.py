"""`cme audit verify`, run in-process against the test database: the chain, and the chain against the
signed checkpoints kept outside the database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from app.audit import checkpoints
from app.audit import service as audit_service
from app.cli import main
from app.core.config import Settings, get_settings
from app.partners.models import PartnerKind
from app.security.service_key import ServiceSigner, load_or_create_service_signer
from tests.audit.conftest import write_events
from tests.cme.conftest import FROZEN_AT
from tests.matching.test_matching_api import send
from tests.submissions.conftest import PILOT_LA, child, payload
from tests.support.jws import verify_service_jws
from tests.support.partners import create_partner


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "service-key.pem"


@pytest.fixture(autouse=True)
def cli_settings(
    database_url: str, engine: Engine, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv("CME_DATABASE_URL", database_url)
    monkeypatch.setenv("CME_SERVICE_KEY_FILE", str(key_file))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _checkpoint(session: Session, signer: ServiceSigner, directory: Path) -> Path:
    row, _ = checkpoints.take_daily_checkpoint(session, signer, now=FROZEN_AT)
    session.commit()
    checkpoints.write_file(directory, row.day, row.jws)
    return directory / checkpoints.file_name(row.day)


def _verify(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    status = main(["audit", "verify", *argv])
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return status, report


def test_an_untouched_chain_agrees_with_its_checkpoints(
    session: Session, key_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signer = load_or_create_service_signer(key_file)
    write_events(session, 3, at=FROZEN_AT)
    _checkpoint(session, signer, tmp_path)
    status, report = _verify(capsys, "--checkpoint-dir", str(tmp_path))
    assert status == 0
    assert report["chain"] == {"ok": True, "from_seq": 1, "checked": 3, "first_bad_seq": None}
    assert [(c["seq"], c["ok"]) for c in report["checkpoints"]] == [(3, True)]


def test_deleted_newest_events_are_caught_by_the_checkpoint_not_by_the_chain(
    session: Session, key_file: Path, tmp_path: Path, superuser: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    signer = load_or_create_service_signer(key_file)
    write_events(session, 3, at=FROZEN_AT)
    path = _checkpoint(session, signer, tmp_path)
    superuser.execute(text("DELETE FROM audit_event WHERE seq >= 2"))
    superuser.commit()
    status, report = _verify(capsys, "--checkpoint", str(path))
    assert status == 1
    assert report["chain"]["ok"] is True  # what is left still links up
    # The first event missing is named (the checkpoint pins 3; the log now ends at 1).
    assert report["checkpoints"] == [
        {"file": str(path), "seq": 3, "ok": False, "first_bad_seq": 2, "finding": "truncated"}
    ]
    assert report["ok"] is False


def test_a_checkpoint_not_signed_by_the_service_proves_nothing(
    session: Session, key_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    load_or_create_service_signer(key_file)
    write_events(session, 2, at=FROZEN_AT)
    forged = _checkpoint(session, ServiceSigner(ec.generate_private_key(ec.SECP256R1())), tmp_path)
    status, report = _verify(capsys, "--checkpoint", str(forged))
    assert status == 1
    assert report["checkpoints"] == [
        {"file": str(forged), "ok": False, "error": "checkpoint-signature-invalid"}
    ]


def test_an_auditor_verifies_with_the_published_keys(
    session: Session, key_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the deployment's key file: the JWKS as /.well-known/jwks.json publishes it."""
    signer = load_or_create_service_signer(key_file)
    write_events(session, 2, at=FROZEN_AT)
    path = _checkpoint(session, signer, tmp_path)
    published = tmp_path / "jwks.json"
    published.write_text(json.dumps(signer.jwks()))
    key_file.unlink()
    status, report = _verify(capsys, "--checkpoint", str(path), "--jwks", str(published))
    assert (status, report["ok"]) == (0, True)
    assert main(["audit", "verify"]) == 1  # no key file and no --jwks: a clear error, not a new key
    assert json.loads(capsys.readouterr().err)["error"] == "service-key-missing"
    assert not key_file.exists()


def test_from_a_trusted_checkpoint_only_the_events_after_it_are_recomputed(
    session: Session, key_file: Path, tmp_path: Path, superuser: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    signer = load_or_create_service_signer(key_file)
    write_events(session, 3, at=FROZEN_AT)
    first = _checkpoint(session, signer, tmp_path)
    write_events(session, 2, at=FROZEN_AT)
    status, report = _verify(capsys, "--from-checkpoint", str(first))
    assert status == 0
    assert report["chain"] == {"ok": True, "from_seq": 4, "checked": 2, "first_bad_seq": None}
    # An edit after the checkpoint is found; one before it is the earlier verification's business, but
    # the checkpoint's own event must still hold its hash.
    superuser.execute(text("UPDATE audit_event SET action = 'cme.record.correct' WHERE seq = 5"))
    superuser.commit()
    status, report = _verify(capsys, "--from-checkpoint", str(first))
    assert (status, report["chain"]["first_bad_seq"]) == (1, 5)
    superuser.execute(text("UPDATE audit_event SET hash = repeat('0', 64) WHERE seq = 3"))
    superuser.commit()
    status, report = _verify(capsys, "--from-checkpoint", str(first))
    assert (status, report["chain"]["first_bad_seq"], report["chain"]["checked"]) == (1, 3, 0)


def test_an_edit_with_every_later_hash_recomputed_is_caught_as_a_rewrite(
    session: Session, key_file: Path, tmp_path: Path, superuser: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    """The superuser edits event 2 and recomputes the chain from there: the chain alone is consistent again,
    the signed head held outside is not."""
    signer = load_or_create_service_signer(key_file)
    write_events(session, 3, at=FROZEN_AT)
    path = _checkpoint(session, signer, tmp_path)
    rows = superuser.execute(text("SELECT * FROM audit_event ORDER BY seq")).mappings().all()
    superuser.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
    previous = rows[0]["hash"]
    for row in rows[1:]:
        pending = audit_service.PendingEvent(
            **{k: row[k] for k in audit_service.PendingEvent.__slots__ if k != "seq"}
        )
        if row["seq"] == 2:
            pending.action = "cme.record.read.forged"
        pending.seq = row["seq"]
        digest = audit_service.event_hash(previous, pending)
        superuser.execute(
            text("UPDATE audit_event SET action = :action, prev_hash = :prev, hash = :hash WHERE seq = :seq"),
            {"action": pending.action, "prev": previous, "hash": digest, "seq": row["seq"]},
        )
        previous = digest
    superuser.execute(text("ALTER TABLE audit_event ENABLE TRIGGER USER"))
    superuser.commit()
    status, report = _verify(capsys, "--checkpoint", str(path))
    assert status == 1 and report["chain"]["ok"] is True  # recomputed: the chain alone sees nothing
    assert report["checkpoints"] == [
        {"file": str(path), "seq": 3, "ok": False, "first_bad_seq": 3, "finding": "rewritten"}
    ]


def test_a_signed_receipt_carries_the_head_a_partner_can_check_the_log_against(
    client: TestClient, session: Session, superuser: Session, key_file: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], settings: Settings,
) -> None:  # fmt: skip
    board = create_partner(session, "W11000023", PartnerKind.local_health_board)
    create_partner(session, PILOT_LA, PartnerKind.local_authority)
    write_events(session, 3, at=FROZEN_AT)
    sent = send(client, board, payload(board.id, [child()]))
    assert sent.status_code == 201, sent.text
    claims = verify_service_jws(client, sent.json()["receipt_jws"], "cme-receipt+jws")
    seq = claims["audit_head"]["seq"]
    assert seq >= 3 and claims["audit_head"] == sent.json()["receipt"]["audit_head"]
    receipt = tmp_path / "receipt.jws"
    receipt.write_text(sent.json()["receipt_jws"])
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(client.get("/.well-known/jwks.json").json()))
    status, report = _verify(capsys, "--receipt", str(receipt), "--jwks", str(jwks))
    assert status == 0 and report["checkpoints"][0]["ok"] is True
    superuser.execute(text(f"DELETE FROM audit_event WHERE seq >= {seq - 1}"))
    superuser.commit()
    status, report = _verify(capsys, "--receipt", str(receipt), "--jwks", str(jwks))
    assert status == 1
    assert report["checkpoints"][0] | {"file": None} == {
        "file": None,
        "seq": seq,
        "ok": False,
        "first_bad_seq": seq - 1,
        "finding": "truncated",
    }
