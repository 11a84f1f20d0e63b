"""Bearer tokens and signed submission bodies made with a partner's test key."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from app.core.config import Settings
from tests.support.keys import OMIT, TestKey, sign_compact

TOKEN_TYP = "cme-auth+jwt"
SUBMISSION_TYP = "cme-submission+jws"
DEFAULT_AUDIENCE: str = Settings.model_fields["audience"].default


def token_claims(
    partner_id: str, *, now: dt.datetime | None = None, lifetime: int = 60, audience: str = DEFAULT_AUDIENCE
) -> dict[str, Any]:
    """Valid claims for `partner_id` issued at `now` (default: the real time)."""
    iat = int((now or dt.datetime.now(dt.UTC)).timestamp())
    return {
        "iss": partner_id,
        "sub": partner_id,
        "aud": audience,
        "iat": iat,
        "exp": iat + lifetime,
        "jti": str(uuid.uuid4()),
    }


def bearer_token(
    key: TestKey,
    partner_id: str,
    *,
    now: dt.datetime | None = None,
    claims: dict[str, Any] | None = None,
    header: dict[str, Any] | None = None,
    hmac_secret: bytes | None = None,
) -> str:
    """A signed bearer token; `claims` and `header` override the valid defaults (OMIT removes a member)."""
    merged = token_claims(partner_id, now=now) | (claims or {})
    payload = {name: value for name, value in merged.items() if value is not OMIT}
    return sign_compact(payload, key, typ=TOKEN_TYP, header=header, hmac_secret=hmac_secret)


def auth_header(key: TestKey, partner_id: str, **overrides: Any) -> dict[str, str]:
    """`Authorization: Bearer ...` for a fresh token (each call has a new jti)."""
    return {"Authorization": f"Bearer {bearer_token(key, partner_id, **overrides)}"}


def signed_body(
    key: TestKey, payload: bytes | dict[str, Any], *, header: dict[str, Any] | None = None
) -> bytes:
    """A compact JWS submission body (`application/jose`) signed with `key`."""
    return sign_compact(payload, key, typ=SUBMISSION_TYP, header=header).encode("ascii")


__all__ = ["OMIT", "auth_header", "bearer_token", "signed_body", "token_claims"]
