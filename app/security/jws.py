"""Signed bodies and tokens checked against a partner's registered keys, looked up by (partner, kid) only."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.core.errors import Unauthorized
from app.core.jose_adapter import CompactJws, KeyAlg, parse_compact, verify_signature
from app.partners import service as partners_service
from app.partners.models import PartnerStatus
from app.partners.repository import SigningKeyStatus

SUBMISSION_TYP = "cme-submission+jws"
RECEIPT_TYP = "cme-receipt+jws"


@dataclass(frozen=True, slots=True)
class VerifiedJws:
    """A compact JWS whose signature was made with the registered key (partner_id, kid)."""

    partner_id: str
    kid: str
    alg: KeyAlg
    header: dict[str, Any]
    payload: bytes
    thumbprint: str  # RFC 7638 thumbprint of the registered public key
    content_sha256: str  # hex SHA-256 of the exact compact serialisation received


def require_usable(key: SigningKeyStatus | None, now: dt.datetime) -> SigningKeyStatus:
    """The key, if it exists, its partner is active and it is within its validity at `now`."""
    if key is None:
        raise Unauthorized("no key registered under this kid for this partner")
    if key.partner_status is not PartnerStatus.active:
        raise Unauthorized("partner suspended")
    if not key.usable_at(now):
        raise Unauthorized("key revoked or not yet valid")
    return key


def verify_parsed(
    session: Session, jws: CompactJws, *, expected_partner: str, now: dt.datetime
) -> SigningKeyStatus:
    """Check `jws` was signed by `expected_partner` with a key usable at `now`, else raise `Unauthorized`.

    The key's status is read on every call, so a revocation or suspension applies to the next request.
    """
    key = require_usable(partners_service.signing_key(session, expected_partner, jws.kid), now)
    verify_signature(jws, key.public_jwk, key.alg, partner_id=key.partner_id, jwk_thumbprint=key.thumbprint)
    return key


def verify_jws(
    session: Session,
    body: bytes,
    *,
    typ: str,
    expected_partner: str,
    now: dt.datetime | None = None,
) -> VerifiedJws:
    """Verify a compact JWS body (`application/jose`) signed by `expected_partner`, the authenticated caller.

    `now` (defaults to the system time) decides whether the key is within its validity.
    """
    jws = parse_compact(body, typ=typ)
    signer = verify_parsed(
        session, jws, expected_partner=expected_partner, now=now or dt.datetime.now(dt.UTC)
    )
    return VerifiedJws(
        partner_id=signer.partner_id,
        kid=signer.kid,
        alg=signer.alg,
        header=jws.header,
        payload=jws.payload(),
        thumbprint=signer.thumbprint,
        content_sha256=hashlib.sha256(body).hexdigest(),
    )
