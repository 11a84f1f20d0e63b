"""Transfers (reg 6): the sending LA informs the receiving LA; a receiving pilot LA accepts or declines."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.cme import repository
from app.cme.domain import Purpose, TransferStatus, identity_key, postcode_district
from app.cme.exceptions import TransferNotAllowed, TransferNotFound
from app.cme.models import CmeRecord, CmeTransfer
from app.cme.records import CHILD_FIELDS, include
from app.cme.removal import RemovalAction, RemovalGround
from app.cme.schemas import ConfirmCandidate
from app.cme.shared import Officer, add_event, audit_event, flush_versioned, record_of
from app.partners import repository as partners_repository
from app.partners.models import PartnerKind
from app.security.service_key import ServiceSigner

TRANSFER_TYP = "cme-transfer+jws"
# Everything a record holds about the child (Sch 2 paras 1-6) and the flag that protects the address.
_SNAPSHOT_FIELDS = (
    *(name for name in CHILD_FIELDS if name not in ("identity_key", "postcode_district")),
    "parents", "education_providers", "additional_learning_needs", "additional_learning_provision", "sensitive",
)  # fmt: skip
# What the receiving LA sees of a pending transfer before it decides (Sch 2 paras 1-3).
_PARAS_1_TO_3 = ("given_name", "middle_names", "family_name", "date_of_birth", "postcode")


def _snapshot(record: CmeRecord) -> dict[str, Any]:
    """The record's data as JSON: what reg 6 tells the receiving LA about."""
    data = {name: getattr(record, name) for name in _SNAPSHOT_FIELDS}
    data["date_of_birth"] = record.date_of_birth.isoformat() if record.date_of_birth else None
    return data


@dataclass(frozen=True, slots=True)
class TransferOutcome:
    transfer: CmeTransfer
    package: str | None


def transfer_record(
    session: Session,
    officer: Officer,
    record_id: uuid.UUID,
    receiving_la: str,
    *,
    signer: ServiceSigner,
    now: dt.datetime,
) -> TransferOutcome:
    """Reg 6(a): inform the receiving LA of the child's CME record, which stops the 28-day clock.

    A receiving pilot LA gets an incoming transfer to accept or decline in its own database; any other
    Welsh or English LA gets a package signed by this service for the sending LA to pass on.
    """
    record = record_of(session, officer, record_id)
    if receiving_la == officer.la_id:
        raise TransferNotAllowed("The receiving LA must be another local authority.")
    event = repository.current_removal_event(session, record.id, RemovalGround.MOVED_TO_ANOTHER_LA)
    if event is None:
        raise TransferNotAllowed("Record the move (removal-events, moved_to_another_la) before transferring.")
    partner = partners_repository.get_partner(session, receiving_la)
    to_pilot = partner is not None and partner.kind is PartnerKind.local_authority and partner.is_pilot
    transfer = CmeTransfer(
        id=uuid.uuid4(),
        from_la=officer.la_id,
        to_la=receiving_la,
        record_id=record.id,
        created_at=now,
        created_by=officer.caller.officer_id,
    )
    package = None
    if to_pilot:
        transfer.status = TransferStatus.PENDING
        transfer.snapshot = _snapshot(record)
    else:
        claims = {"transfer_id": str(transfer.id), "from_la": officer.la_id, "to_la": receiving_la,
                  "issued_at": now.isoformat(), "regulation": 6, "record": _snapshot(record)}  # fmt: skip
        package = signer.sign(claims, typ=TRANSFER_TYP)
        transfer.status = TransferStatus.PACKAGE_ISSUED
        transfer.package_sha256 = hashlib.sha256(package.encode("ascii")).hexdigest()
    session.add(transfer)
    event.receiving_la = receiving_la
    repository.delete_duties(
        session, record.id, RemovalGround.MOVED_TO_ANOTHER_LA, RemovalAction.INFORM_RECEIVING_LA
    )
    add_event(session, la_id=officer.la_id, subject=record, action="receiving_la_informed", now=now,
              officer=officer, fields=[receiving_la])  # fmt: skip
    session.flush()
    audit_event(
        session, officer.caller, "cme.record.transfer", [record.id, transfer.id], Purpose.REMOVAL, now
    )
    return TransferOutcome(transfer=transfer, package=package)


def incoming_transfers(session: Session, officer: Officer, *, now: dt.datetime) -> Sequence[CmeTransfer]:
    """Transfers other LAs sent to the officer's LA that it has not decided yet."""
    transfers = repository.pending_transfers_to(session, officer.la_id)
    audit_event(
        session, officer.caller, "cme.transfer.list", [t.id for t in transfers], Purpose.IDENTIFY, now
    )
    return transfers


def paras_1_to_3(transfer: CmeTransfer) -> dict[str, Any]:
    """The child of a pending transfer as the receiving LA sees it before deciding: Sch 2 paras 1-3 only."""
    snapshot = transfer.snapshot or {}
    return {name: snapshot.get(name) for name in _PARAS_1_TO_3}


def _pending_transfer(session: Session, officer: Officer, transfer_id: uuid.UUID) -> CmeTransfer:
    transfer = repository.get_transfer_to(session, officer.la_id, transfer_id)
    if transfer is None or transfer.snapshot is None:
        raise TransferNotFound()
    return transfer


def _decide(transfer: CmeTransfer, officer: Officer, status: TransferStatus, now: dt.datetime) -> None:
    transfer.status = status
    transfer.decided_at = now
    transfer.decided_by = officer.caller.officer_id
    transfer.snapshot = None  # the data is now the receiving LA's record, or not held at all


def accept_transfer(
    session: Session,
    officer: Officer,
    transfer_id: uuid.UUID,
    decision: ConfirmCandidate,
    *,
    now: dt.datetime,
) -> CmeRecord:
    """The receiving pilot LA includes the child (its own reg 3 decision); the data becomes its record."""
    transfer = _pending_transfer(session, officer, transfer_id)
    values = dict(transfer.snapshot or {})
    dob = values.get("date_of_birth")
    values["date_of_birth"] = dt.date.fromisoformat(dob) if dob else None
    values["postcode_district"] = postcode_district(values.get("postcode"))
    values["identity_key"] = identity_key(
        values.get("given_name"), values.get("family_name"), values["date_of_birth"]
    )
    origin = {"source": "transfer", "transfer_id": str(transfer.id), "from_la": transfer.from_la,
              "at": transfer.created_at.isoformat()}  # fmt: skip
    record = include(session, officer, decision, now, values=values, origin=origin)
    _decide(transfer, officer, TransferStatus.ACCEPTED, now)
    transfer.new_record_id = record.id
    flush_versioned(session, TransferNotFound())
    audit_event(
        session, officer.caller, "cme.transfer.accept", [transfer.id, record.id], Purpose.IDENTIFY, now
    )
    return record


def decline_transfer(
    session: Session, officer: Officer, transfer_id: uuid.UUID, *, now: dt.datetime
) -> CmeTransfer:
    """The receiving pilot LA does not include the child; the data it was sent is deleted."""
    transfer = _pending_transfer(session, officer, transfer_id)
    _decide(transfer, officer, TransferStatus.DECLINED, now)
    flush_versioned(session, TransferNotFound())
    audit_event(session, officer.caller, "cme.transfer.decline", [transfer.id], Purpose.IDENTIFY, now)
    return transfer
