"""Partners with real registered keys, committed to the test database."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.core.jose_adapter import KeyAlg
from app.partners import service as partners_service
from app.partners.models import PartnerKind, PartnerStatus
from app.partners.schemas import PartnerCreate
from tests.support.keys import Alg, TestKey, new_key

PILOT_LAS = ("W06000001", "W06000002")


@dataclass(frozen=True)
class TestPartner:
    __test__ = False

    id: str
    kind: PartnerKind
    key: TestKey


def register_test_key(
    session: Session,
    partner_id: str,
    *,
    alg: Alg = "ES256",
    kid: str = "key-1",
    not_before: dt.datetime | None = None,
) -> TestKey:
    """Generate a key pair, register its public half for `partner_id` and commit."""
    key = new_key(alg, kid)
    now = dt.datetime.now(dt.UTC)
    partners_service.register_key(
        session,
        partner_id,
        key.public_jwk,
        alg=KeyAlg(alg),
        kid=kid,
        not_before=not_before or now - dt.timedelta(hours=1),
        now=now,
    )
    session.commit()
    return key


def create_partner(
    session: Session,
    partner_id: str = "W06000001",
    kind: PartnerKind = PartnerKind.local_authority,
    *,
    name: str = "Test partner",
    alg: Alg = "ES256",
    kid: str = "key-1",
    status: PartnerStatus = PartnerStatus.active,
) -> TestPartner:
    """Create a partner with one fresh key pair (registered an hour ago) and commit."""
    now = dt.datetime.now(dt.UTC)
    partners_service.create_partner(
        session, PartnerCreate(id=partner_id, kind=kind, name=name), pilot_las=PILOT_LAS, now=now
    )
    if status is not PartnerStatus.active:
        partners_service.set_status(session, partner_id, status)
    session.commit()
    return TestPartner(id=partner_id, kind=kind, key=register_test_key(session, partner_id, alg=alg, kid=kid))
