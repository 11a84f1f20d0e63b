"""The daily signed checkpoint of the audit chain (decision 0007): taken, kept, copied out, read.

A once-a-day job (`audit_checkpoint`, chained like every daily job, `app.jobs.daily`) signs the chain's
head with the service key (`service.checkpoint`) and keeps it in `audit_checkpoint`, one row per UTC date,
taken under an advisory lock so however many workers run it, a day gets one checkpoint. When
`CME_AUDIT_CHECKPOINT_DIR` is set the JWS is also written there, one file per day, never overwritten: the
row can be rewritten by the database superuser the checkpoint guards against, the file on WORM storage
cannot. The data protection officer reads the checkpoints through the API (audited).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.audit import service as audit
from app.audit.models import AuditCheckpoint
from app.audit.schemas import CheckpointPage, CheckpointRead
from app.core.config import Settings
from app.core.errors import InvalidCursor, ProblemError
from app.core.jose_adapter import KeyAlg, parse_compact, thumbprint, verify_signature
from app.jobs import daily
from app.jobs.worker import Handler, JobContext
from app.security.caller import Caller
from app.security.jws import RECEIPT_TYP
from app.security.service_key import ServiceSigner, load_or_create_service_signer

CHECKPOINT_KIND = "audit_checkpoint"
# Fixed key of the advisory lock that serialises scheduling and taking of checkpoints ("CMECKP").
CHECKPOINT_LOCK_KEY = 0x43_4D_45_43_4B_50
# The purpose of the audit event a read of the checkpoints writes (fixed, never the caller's).
PURPOSE = "audit_integrity"
# The verifier cache of `verify_signature` is keyed by owner and key; the service's own keys are their own.
SERVICE_KEY_OWNER = "cme-hub-service"


class CheckpointFileConflict(RuntimeError):
    """The day's file exists and holds another checkpoint: it is left alone, and the job fails loudly."""


def take_daily_checkpoint(
    session: Session, signer: ServiceSigner, *, now: dt.datetime
) -> tuple[AuditCheckpoint, bool]:
    """The checkpoint of `now`'s UTC date, signed now if the day has none; True when taken by this call.

    Under the lock (until the caller's transaction ends), so two workers make one; the primary key on the
    day is the backstop.
    """
    daily.lock(session, CHECKPOINT_LOCK_KEY)
    day = now.astimezone(dt.UTC).date()
    existing = session.get(AuditCheckpoint, day)
    if existing is not None:
        return existing, False
    jws = audit.checkpoint(session, signer, now=now)
    # Store exactly what was signed: the columns are read back from the JWS itself.
    claims = json.loads(parse_compact(jws.encode("ascii"), typ=audit.CHECKPOINT_TYP).payload())
    row = AuditCheckpoint(day=day, seq=claims["seq"], hash=claims["hash"], signed_at=now, jws=jws)
    session.add(row)
    session.flush()
    return row, True


def file_name(day: dt.date) -> str:
    return f"audit-checkpoint-{day.isoformat()}.jws"


def write_file(directory: Path, day: dt.date, jws: str) -> bool:
    """Write the day's checkpoint to `directory`, atomically and never over an existing file; True if written.

    A complete temporary file is hard-linked to its name: atomic, and refused by the kernel when the name
    exists, where a rename would silently replace the file. A file already holding the same JWS (a retried
    job) is success. The directory is not created: a checkpoint written to a local directory because the
    WORM mount was missing would not be out of the superuser's reach.
    """
    return write_named_file(directory, file_name(day), jws)


def write_named_file(directory: Path, name: str, jws: str) -> bool:
    """`write_file` under any name (the interval checkpoints' files too)."""
    path = directory / name
    content = (jws + "\n").encode("ascii")
    if not path.exists():
        descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".checkpoint-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.link(temporary, path)
            _fsync_directory(directory)
            return True
        except FileExistsError:
            pass  # written meanwhile by another process: compared below
        finally:
            os.unlink(temporary)
    if path.read_bytes() != content:
        raise CheckpointFileConflict(f"{path} holds another checkpoint; left as it is")
    return False


def _fsync_directory(directory: Path) -> None:
    """Make the new name itself durable (the file's data already is)."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def run_checkpoint_job(
    context: JobContext, *, signer: ServiceSigner, directory: Path | None
) -> dict[str, Any]:
    """The `audit_checkpoint` handler: schedule tomorrow first (a failing day does not end the chain), then
    take today's checkpoint and, once it is committed, copy it out.

    The copy follows the commit so that a retry (the row exists, the file does not yet) writes the very JWS
    the table holds.
    """
    now = context.now()
    with context.session_factory.begin() as session:
        schedule_day(session, now.date() + dt.timedelta(days=1), now=now)
    with context.session_factory.begin() as session:
        row, taken = take_daily_checkpoint(session, signer, now=now)
        day, seq, jws = row.day, row.seq, row.jws
    written = directory is not None and write_file(directory, day, jws)
    return {"day": day.isoformat(), "seq": seq, "taken": taken, "file_written": written}


def schedule_day(session: Session, day: dt.date, *, now: dt.datetime) -> None:
    daily.schedule_day(session, CHECKPOINT_KIND, day, lock_key=CHECKPOINT_LOCK_KEY, now=now)


def tick(session_factory: sessionmaker[Session], now: dt.datetime) -> None:
    """Make sure today's checkpoint job exists (idempotent; safe from any number of processes)."""
    with session_factory.begin() as session:
        schedule_day(session, now.date(), now=now)


def handlers(settings: Settings) -> dict[str, Handler]:
    def run(context: JobContext) -> dict[str, Any]:
        # The key file the API's signer was loaded from: the JWKS it publishes verifies these checkpoints.
        signer = load_or_create_service_signer(settings.service_key_file)
        return run_checkpoint_job(context, signer=signer, directory=settings.audit_checkpoint_dir)

    return {CHECKPOINT_KIND: run}


# --- Verifying ----------------------------------------------------------------------------------------


class CheckpointSignatureInvalid(ProblemError):
    status, slug, title = 422, "checkpoint-signature-invalid", "The checkpoint is not signed by the service"


def signed_claims(jws: str, jwks: Mapping[str, Any], *, typ: str) -> dict[str, Any]:
    """The claims of a JWS the service signed (a checkpoint, a receipt), once its signature is checked by a
    key of `jwks` (the service's published keys, as the holder has them). A document that is not the
    service's proves nothing: `CheckpointSignatureInvalid`."""
    try:
        parsed = parse_compact(jws.strip().encode("ascii"), typ=typ)
        key = next(k for k in jwks.get("keys", []) if k.get("kid") == parsed.kid)
        verify_signature(
            parsed, key, KeyAlg.ES256, partner_id=SERVICE_KEY_OWNER, jwk_thumbprint=thumbprint(key)
        )
        claims = json.loads(parsed.payload())
        if not isinstance(claims, dict):
            raise TypeError("claims are not an object")
        return claims
    except (ProblemError, StopIteration, UnicodeError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointSignatureInvalid(f"{type(exc).__name__}: the document does not verify") from exc


def signed_head(jws: str, jwks: Mapping[str, Any]) -> tuple[int, str]:
    """The (seq, hash) a signed checkpoint names."""
    claims = signed_claims(jws, jwks, typ=audit.CHECKPOINT_TYP)
    try:
        return int(claims["seq"]), str(claims["hash"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointSignatureInvalid("the checkpoint names no head") from exc


def receipt_head(jws: str, jwks: Mapping[str, Any]) -> tuple[int, str]:
    """The audit head a signed receipt carries (receipts since 2026-12-07)."""
    claims = signed_claims(jws, jwks, typ=RECEIPT_TYP)
    try:
        return int(claims["audit_head"]["seq"]), str(claims["audit_head"]["hash"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointSignatureInvalid("the receipt carries no audit head") from exc


# --- Reading -------------------------------------------------------------------------------------------


def _encode_cursor(day: dt.date) -> str:
    return base64.urlsafe_b64encode(day.isoformat().encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> dt.date:
    try:
        return dt.date.fromisoformat(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor("The cursor was not issued by this endpoint.") from None


def list_checkpoints(
    session: Session, caller: Caller, *, cursor: str | None, limit: int, now: dt.datetime
) -> CheckpointPage:
    """The checkpoints, newest first; the read is audited (days shown). Only the data protection officer gets
    here: the authorisation table (`app.security.authorization`, operation `list_audit_checkpoints`) says so,
    and nothing here checks it again."""
    query = select(AuditCheckpoint).order_by(AuditCheckpoint.day.desc()).limit(limit + 1)
    if cursor is not None:
        query = query.where(AuditCheckpoint.day < _decode_cursor(cursor))
    rows = session.scalars(query).all()
    page = rows[:limit]
    audit.record(
        session,
        actor=caller,
        action="audit.checkpoint.list",
        object_type="audit_checkpoint",
        object_ids=[row.day.isoformat() for row in page],
        purpose=PURPOSE,
        now=now,
    )
    return CheckpointPage(
        items=[CheckpointRead.model_validate(row) for row in page],
        next_cursor=_encode_cursor(page[-1].day) if len(rows) > limit else None,
    )
