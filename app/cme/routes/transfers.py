"""Transfers (reg 6): inform the receiving LA; a receiving pilot LA lists, accepts or declines."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from app.cme import transfers
from app.cme.dependencies import CREATED_WITH_ETAG, PREFIX, OfficerDep, RecordReplyDep
from app.cme.schemas import (
    ConfirmCandidate,
    IncomingTransfer,
    IncomingTransferList,
    RecordRead,
    TransferCreate,
    TransferRead,
)
from app.core.dependencies import SessionDep
from app.core.errors import problem_responses
from app.security.clock import ClockDep
from app.security.service_key import ServiceSignerDep

router = APIRouter(prefix=PREFIX)


@router.post(
    "/records/{record_id}/transfers",
    operation_id="transfer_cme_record",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404, 409),
)
def transfer_record(
    record_id: uuid.UUID,
    body: TransferCreate,
    officer: OfficerDep,
    session: SessionDep,
    clock: ClockDep,
    signer: ServiceSignerDep,
) -> TransferRead:
    """Reg 6(a): inform the receiving LA (a pilot LA gets an incoming transfer, others a signed package)."""
    outcome = transfers.transfer_record(
        session, officer, record_id, body.receiving_la, signer=signer, now=clock.now()
    )
    return TransferRead.model_validate(outcome.transfer).model_copy(update={"package": outcome.package})


@router.get("/transfers", operation_id="list_cme_incoming_transfers")
def list_incoming_transfers(
    officer: OfficerDep, session: SessionDep, clock: ClockDep
) -> IncomingTransferList:
    """Records other LAs sent to this LA under reg 6, waiting for its decision."""
    return IncomingTransferList(
        items=[
            IncomingTransfer(id=t.id, from_la=t.from_la, created_at=t.created_at, **transfers.paras_1_to_3(t))
            for t in transfers.incoming_transfers(session, officer, now=clock.now())
        ]
    )


@router.post(
    "/transfers/{transfer_id}/accept",
    operation_id="accept_cme_transfer",
    status_code=status.HTTP_201_CREATED,
    responses={**CREATED_WITH_ETAG, **problem_responses(404, 409)},
)
def accept_transfer(
    transfer_id: uuid.UUID,
    decision: ConfirmCandidate,
    officer: OfficerDep,
    session: SessionDep,
    reply: RecordReplyDep,
) -> RecordRead:
    """The receiving LA affirms reg 3 for the child: the transferred data becomes its CME record (409 when
    the child is not of compulsory school age today: decline the transfer instead)."""
    record = transfers.accept_transfer(session, officer, transfer_id, decision, now=reply.now)
    return reply(record, created=True)


@router.post(
    "/transfers/{transfer_id}/decline", operation_id="decline_cme_transfer", responses=problem_responses(404)
)
def decline_transfer(
    transfer_id: uuid.UUID, officer: OfficerDep, session: SessionDep, clock: ClockDep
) -> TransferRead:
    """The receiving LA does not include the child; the transferred data is deleted."""
    return TransferRead.model_validate(
        transfers.decline_transfer(session, officer, transfer_id, now=clock.now())
    )
