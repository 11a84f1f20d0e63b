"""Bearer tokens: a short-lived JWT each partner signs with its own registered key, one per request.

Header: typ `cme-auth+jwt`, kid, alg (the key's registered algorithm).
Claims: iss = sub = partner id, aud = this service (exact), iat, exp (exp - iat <= the configured maximum),
jti (a UUID, refused the second time), and optionally `officer` = {"id", "role"} from an LA case system.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import uuid
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.core import strict_json
from app.core.config import Settings
from app.core.errors import Overloaded, Unauthorized
from app.core.jose_adapter import CompactJws, parse_compact, verify_signature
from app.core.logging import note_partner
from app.core.lru import LruCache
from app.partners import service as partners_service
from app.partners.models import PartnerKind
from app.partners.repository import SigningKeyStatus
from app.security.caller import Caller
from app.security.jws import require_usable, verify_parsed
from app.security.replay import JtiBurn, JtiBurner
from app.security.roles import OfficerRole

TOKEN_TYP = "cme-auth+jwt"
MAX_TOKEN_BYTES = 8192
_OFFICER_ID = re.compile(r"[A-Za-z0-9._:@-]{1,64}")
KNOWN_KEYS_SIZE = 1024


# Keys (partner, kid) this process has seen usable. Only what cannot change under a (partner, kid,
# thumbprint) is relied on from here: the JWK, its algorithm and the partner's kind. Whether the key may
# still be used is checked by the jti burn itself (`app.security.replay`), in the same round trip, on every
# request.
_known_keys: LruCache[tuple[str, str], SigningKeyStatus] = LruCache(KNOWN_KEYS_SIZE)


def _numeric_date(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name)
    # bool is an int in Python; a JSON true is not a date.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unauthorized(f"{name} missing or not a number")
    return float(value)


def _unverified_claims(payload: bytes) -> dict[str, Any]:
    try:
        claims = strict_json.loads(payload)
    except strict_json.DuplicateMember as exc:
        raise Unauthorized(f"claim named twice: {exc.name[:40]}") from exc
    except (ValueError, RecursionError) as exc:  # as in `jose_adapter.parse_compact`
        raise Unauthorized("claims are not JSON") from exc
    if not isinstance(claims, dict):
        raise Unauthorized("claims are not a JSON object")
    return claims


def _check_times(claims: dict[str, Any], settings: Settings, now: dt.datetime) -> float:
    """Check iat/exp against `now` and the configured skew and lifetime; return exp."""
    iat = _numeric_date(claims, "iat")
    exp = _numeric_date(claims, "exp")
    skew = settings.clock_skew_seconds
    current = now.timestamp()
    if exp <= iat or exp - iat > settings.token_max_lifetime_seconds:
        raise Unauthorized("exp - iat outside (0, max lifetime]")
    if iat > current + skew:
        raise Unauthorized("iat in the future beyond the allowed skew")
    if current > exp + skew:
        raise Unauthorized("token expired")
    if "nbf" in claims and _numeric_date(claims, "nbf") > current + skew:
        raise Unauthorized("token not yet valid (nbf)")
    return exp


def _jti(claims: dict[str, Any]) -> str:
    value = claims.get("jti")
    if not isinstance(value, str):
        raise Unauthorized("jti missing")
    try:
        # Canonical form, so that case or brace variants of one UUID count as the same token.
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise Unauthorized("jti is not a UUID") from exc


def _officer(claims: dict[str, Any], kind: PartnerKind) -> tuple[str | None, OfficerRole | None]:
    officer = claims.get("officer")
    if officer is None:
        return None, OfficerRole.statistics if kind is PartnerKind.welsh_government else None
    if kind is not PartnerKind.local_authority:
        raise Unauthorized("only local authorities may name an officer")
    if not isinstance(officer, dict) or set(officer) != {"id", "role"}:
        raise Unauthorized("officer claim malformed")
    officer_id, role = officer["id"], officer["role"]
    if not isinstance(officer_id, str) or not _OFFICER_ID.fullmatch(officer_id):
        raise Unauthorized("officer id malformed")
    if role not in set(OfficerRole):
        raise Unauthorized("officer role unknown")
    return officer_id, OfficerRole(role)


async def authenticate_token(
    token: str, *, settings: Settings, now: dt.datetime, burner: JtiBurner, sessions: sessionmaker[Session]
) -> Caller:
    """Verify a bearer token and burn its jti; raise `Unauthorized` (reason logged only) on any failure.

    The common case does no blocking I/O: the signing key is known to this process, the signature and
    claims are checked in the event loop, and the burn (which also re-checks the key, see `replay`) is one
    asynchronous round trip. Only an unknown key or a refused burn reads the registry, in the thread pool,
    on a session from `sessions`. The jti, once burned, stays burned whatever the request then does.
    """
    data = token.encode("ascii", errors="replace")
    if len(data) > MAX_TOKEN_BYTES:
        raise Unauthorized("token too large")
    jws = parse_compact(data, typ=TOKEN_TYP)
    claims = _unverified_claims(jws.payload())
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise Unauthorized("iss missing")
    signer = _known_signer(jws, issuer)
    if signer is None:
        signer = await _look_up(sessions, jws, issuer, now)
    # From here the claims are the partner's own.
    if claims.get("sub") != issuer:
        raise Unauthorized("sub differs from iss")
    if claims.get("aud") != settings.audience:
        raise Unauthorized("aud missing or not this service")
    exp = _check_times(claims, settings, now)
    jti = _jti(claims)
    officer_id, officer_role = _officer(claims, signer.partner_kind)
    expires_at = dt.datetime.fromtimestamp(exp + settings.clock_skew_seconds, dt.UTC)
    burn = JtiBurn(
        partner_id=issuer,
        kid=signer.kid,
        thumbprint=signer.thumbprint,
        jti=jti,
        expires_at=expires_at,
        now=now,
    )
    burned = await burner.burn(burn)
    if not burned:
        await run_in_threadpool(_explain_refused_burn, sessions, signer, now)
    note_partner(signer.partner_id)  # the access log names the partner
    return Caller(
        partner_id=signer.partner_id,
        partner_kind=signer.partner_kind,
        kid=signer.kid,
        jti=jti,
        officer_id=officer_id,
        officer_role=officer_role,
    )


def _known_signer(jws: CompactJws, issuer: str) -> SigningKeyStatus | None:
    """The key this process knows under (issuer, kid), if the signature checks with it; else None, and the
    registry is read (the key may have been replaced under the same kid)."""
    known = _known_keys.get((issuer, jws.kid))
    if known is None:
        return None
    try:
        verify_signature(
            jws, known.public_jwk, known.alg, partner_id=known.partner_id, jwk_thumbprint=known.thumbprint
        )
    except Unauthorized:
        # Not forgotten here: a forged token naming this partner's kid would otherwise push the partner's
        # own requests onto the registry path (a few look-ups at once, then 503). The registry decides; a
        # key replaced under the same kid is put over this one by `_registered_signer`.
        return None
    return known


# Tokens naming a key this process does not know read the registry in the thread pool; a flood of them
# (every one naming an unknown key) must not take the threads and connections valid requests need. At most
# this many look-ups run at once; beyond that the answer is an immediate 503, not a queue.
REGISTRY_LOOKUPS = 4
_lookups = threading.BoundedSemaphore(REGISTRY_LOOKUPS)


async def _look_up(
    sessions: sessionmaker[Session], jws: CompactJws, issuer: str, now: dt.datetime
) -> SigningKeyStatus:
    if not _lookups.acquire(blocking=False):  # never blocks the event loop
        raise Overloaded(
            "Too many tokens with keys unknown here; try again shortly.", headers={"Retry-After": "1"}
        )
    try:
        return await run_in_threadpool(_registered_signer, sessions, jws, issuer, now)
    finally:
        _lookups.release()


def _registered_signer(
    sessions: sessionmaker[Session], jws: CompactJws, issuer: str, now: dt.datetime
) -> SigningKeyStatus:
    """The registered key, read and checked afresh, then known to this process."""
    with sessions() as session:
        signer = verify_parsed(session, jws, expected_partner=issuer, now=now)
    _known_keys.put((signer.partner_id, signer.kid), signer)
    return signer


def _explain_refused_burn(
    sessions: sessionmaker[Session], signer: SigningKeyStatus, now: dt.datetime
) -> None:
    """The burn stored nothing: say whether the key stopped being usable or the jti was replayed."""
    _known_keys.forget((signer.partner_id, signer.kid))
    with sessions() as session:
        current = require_usable(partners_service.signing_key(session, signer.partner_id, signer.kid), now)
    if current.thumbprint != signer.thumbprint:
        raise Unauthorized("key replaced under this kid")
    raise Unauthorized("jti replayed")
