"""Audit checkpoints every few minutes (issue 11, item 5; decision 0007), each one a check first.

Every worker's once-a-minute tick calls `tick`. Under an advisory lock (so however many workers tick, one
checkpoint per interval), once `CME_AUDIT_CHECKPOINT_INTERVAL_SECONDS` have passed since the newest
interval checkpoint:

1. The previous checkpoint is taken as trusted, once its signature verifies with the service key: the
   newest copy in `CME_AUDIT_CHECKPOINT_DIR` when that is set (out of the database superuser's reach),
   else the newest row. The event it names must still hold its hash, and every event after it must chain
   (`verify_chain(after=...)`). A log cut below the checkpoint (its event gone) or rewritten (an event at
   or below it changed and the later hashes recomputed, which changes its hash) is found here, within one
   interval, as are a deletion, an edit or a reorder among the events since.
2. Only then the head is signed and kept (`audit_interval_checkpoint`) and, after the commit, copied out.

A broken chain is logged as an error (`audit chain broken`, with the first bad seq) on every tick until
someone acts, and no checkpoint is signed over it: the service does not vouch for a log it found changed.

Events newer than the newest checkpoint are watched by each process's `HeadWitness`: every tick (once a
minute) it verifies the events since the head it saw last and remembers the new head, in memory, where
the database superuser cannot reach it. The newest events deleted, or edited with every later hash
recomputed, are then found at the next tick of any running process, not only at the next checkpoint.
"""

from __future__ import annotations

import datetime as dt
import logging
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.audit import service as audit
from app.audit.checkpoints import CheckpointSignatureInvalid, signed_head, write_named_file
from app.audit.models import AuditIntervalCheckpoint
from app.core.config import Settings
from app.jobs import daily
from app.jobs.worker import Tick
from app.security.service_key import ServiceSigner, load_or_create_service_signer

logger = logging.getLogger(__name__)
# Fixed key of the advisory lock that serialises interval checkpoints ("CMEICP").
INTERVAL_LOCK_KEY = 0x43_4D_45_49_43_50
FILE_PREFIX = "audit-interval-checkpoint-"


@dataclass(frozen=True, slots=True)
class IntervalOutcome:
    """What one tick did: `taken` (seq, signed_at, jws) or nothing due, or `broken` at `first_bad_seq`."""

    taken: AuditIntervalCheckpoint | None = None
    first_bad_seq: int | None = None
    trusted_seq: int | None = None

    @property
    def broken(self) -> bool:
        return self.first_bad_seq is not None


def file_name(signed_at: dt.datetime) -> str:
    return f"{FILE_PREFIX}{signed_at.astimezone(dt.UTC).strftime('%Y-%m-%dT%H-%M-%S.%fZ')}.jws"


def _newest_file(directory: Path) -> str | None:
    # The names sort by time (fixed-width UTC timestamps).
    files = sorted(directory.glob(f"{FILE_PREFIX}*.jws"))
    return files[-1].read_text(encoding="ascii") if files else None


def _trusted_head(session: Session, signer: ServiceSigner, directory: Path | None) -> tuple[int, str] | None:
    """(seq, hash) of the newest checkpoint whose signature is the service's: the copied-out one when
    there is a directory, else the newest row. None before the first one."""
    jws = _newest_file(directory) if directory is not None else None
    if jws is None:
        jws = session.scalars(
            select(AuditIntervalCheckpoint.jws).order_by(AuditIntervalCheckpoint.signed_at.desc()).limit(1)
        ).first()
    if jws is None:
        return None
    return signed_head(jws, signer.jwks())


def take_interval_checkpoint(
    session: Session,
    signer: ServiceSigner,
    *,
    now: dt.datetime,
    interval: dt.timedelta,
    directory: Path | None = None,
) -> IntervalOutcome:
    """Check the chain since the trusted checkpoint and sign the head, if an interval has passed since the
    newest one; under the lock until the caller's transaction ends."""
    daily.lock(session, INTERVAL_LOCK_KEY)
    newest = session.scalars(
        select(AuditIntervalCheckpoint.signed_at).order_by(AuditIntervalCheckpoint.signed_at.desc()).limit(1)
    ).first()
    if newest is not None and now - newest < interval:
        return IntervalOutcome()
    try:
        trusted = _trusted_head(session, signer, directory)
    except CheckpointSignatureInvalid:
        # A checkpoint the service did not sign stands where its last one should: treat the log as
        # unvouched for from the start.
        logger.error("audit checkpoint not signed by the service", extra={"directory": str(directory)})
        return IntervalOutcome(first_bad_seq=0)
    found = audit.verify_chain(session, after=trusted)
    if not found.ok:
        logger.error(
            "audit chain broken",
            extra={"first_bad_seq": found.first_bad_seq, "trusted_seq": trusted[0] if trusted else None},
        )
        return IntervalOutcome(first_bad_seq=found.first_bad_seq, trusted_seq=trusted[0] if trusted else None)
    jws = audit.checkpoint(session, signer, now=now)
    seq, head_hash = signed_head(jws, signer.jwks())
    row = AuditIntervalCheckpoint(signed_at=now, seq=seq, hash=head_hash, jws=jws)
    session.add(row)
    session.flush()
    return IntervalOutcome(taken=row, trusted_seq=trusted[0] if trusted else None)


class HeadWitness:
    """The newest head this process has verified, `(seq, hash)`, kept in memory between ticks.

    Events are only ever appended (triggers refuse the service's own updates and deletes), so a head once
    seen must still be there, and the chain must run on from it. The first check of a process starts from
    the trusted checkpoint (or the chain's start), so a restart leaves no gap, only the window between one
    tick and the next during which new events are not yet seen.
    """

    def __init__(self) -> None:
        self.seen: tuple[int, str] | None = None

    def check(self, session: Session, trusted: tuple[int, str] | None) -> audit.ChainVerification:
        start = self.seen if self.seen is not None else trusted
        found = audit.verify_chain(session, after=start)
        if found.ok:
            self.seen = ((start[0] if start else 0) + found.checked, found.head_hash)
            return found
        if start is not None and found.first_bad_seq == start[0]:
            # The witnessed event itself is gone or changed: name the first missing one for a cut log.
            found = replace(
                found, first_bad_seq=audit.check_head(session, seq=start[0], hash=start[1])["first_bad_seq"]
            )
        logger.error(
            "audit chain broken",
            extra={"first_bad_seq": found.first_bad_seq, "witnessed_seq": start[0] if start else None},
        )
        return found


def watch_head(
    session_factory: sessionmaker[Session],
    signer: ServiceSigner,
    witness: HeadWitness,
    directory: Path | None,
) -> audit.ChainVerification:
    """One tick of the witness, in a transaction of its own that writes nothing (so takes no lock)."""
    with session_factory.begin() as session:
        trusted = None
        # A forged checkpoint is reported by the checkpoint path; the witness then starts from the chain's start.
        if witness.seen is None:
            with suppress(CheckpointSignatureInvalid):
                trusted = _trusted_head(session, signer, directory)
        return witness.check(session, trusted)


def run_tick(
    session_factory: sessionmaker[Session],
    signer: ServiceSigner,
    *,
    now: dt.datetime,
    interval: dt.timedelta,
    directory: Path | None,
) -> IntervalOutcome:
    """One tick: check and take (committed), then copy the new checkpoint out."""
    with session_factory.begin() as session:
        outcome = take_interval_checkpoint(session, signer, now=now, interval=interval, directory=directory)
        taken = outcome.taken
        signed_at, jws = (taken.signed_at, taken.jws) if taken is not None else (None, None)
    if directory is not None and signed_at is not None and jws is not None:
        write_named_file(directory, file_name(signed_at), jws)
    return outcome


def tick_for(settings: Settings) -> Tick:
    """The worker tick, with the deployment's key file, interval and directory."""
    interval = dt.timedelta(seconds=settings.audit_checkpoint_interval_seconds)
    witness = HeadWitness()

    def tick(session_factory: sessionmaker[Session], now: dt.datetime) -> None:
        signer = load_or_create_service_signer(settings.service_key_file)
        # Nothing is signed over a log the witness found changed, even where the checkpoint's own check
        # (from the last checkpoint on) could not see it: the newest events cut off.
        if watch_head(session_factory, signer, witness, settings.audit_checkpoint_dir).ok:
            run_tick(
                session_factory, signer, now=now, interval=interval, directory=settings.audit_checkpoint_dir
            )

    return tick
