"""`cme token` and `cme sign`: what a partner's system does, for curl and local trials."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

from app.core.config import get_settings
from app.core.errors import InvalidSubmission, ProblemError
from app.security.jose_adapter import sign_compact
from app.security.jws import SUBMISSION_TYP
from app.security.keyfiles import load_private_key
from app.security.roles import OfficerRole
from app.security.tokens import TOKEN_TYP

_DEFAULT_LIFETIME = 120


class LifetimeTooLong(ProblemError):
    status, slug, title = 400, "lifetime-too-long", "The service accepts no token that lives this long"


def _token(args: argparse.Namespace) -> int:
    settings = get_settings()
    if not 0 < args.lifetime <= settings.token_max_lifetime_seconds:
        # Said, not silently shortened: a caller who asked for 600 s would otherwise hold a 300 s token.
        raise LifetimeTooLong(
            f"--lifetime must be between 1 and {settings.token_max_lifetime_seconds} seconds."
        )
    iat = int(dt.datetime.now(dt.UTC).timestamp())
    claims: dict[str, Any] = {
        "iss": args.partner,
        "sub": args.partner,
        "aud": settings.audience,
        "iat": iat,
        "exp": iat + args.lifetime,
        "jti": str(uuid.uuid4()),
    }
    if args.officer is not None:
        claims["officer"] = {"id": args.officer, "role": args.role.value}
    payload = json.dumps(claims, separators=(",", ":")).encode("utf-8")
    print(sign_compact(payload, load_private_key(Path(args.key)), kid=args.kid, typ=TOKEN_TYP))
    return 0


def _sign(args: argparse.Namespace) -> int:
    data = Path(args.file).read_bytes()
    try:
        document = json.loads(data)  # sign only what parses; the bytes themselves are signed unchanged
    except ValueError as exc:
        raise InvalidSubmission("The file is not JSON.") from exc
    if isinstance(document, dict) and document.get("sender", args.partner) != args.partner:
        raise InvalidSubmission("The submission's sender is not the signing partner.")
    print(sign_compact(data, load_private_key(Path(args.key)), kid=args.kid, typ=SUBMISSION_TYP))
    return 0


def add_commands(subparsers: Any) -> None:
    token = subparsers.add_parser("token", help="Print a fresh bearer token signed with a partner's key.")
    token.add_argument("--partner", required=True)
    token.add_argument("--key", required=True, help="The partner's private key (PEM).")
    token.add_argument("--kid", required=True)
    token.add_argument("--officer", help="Acting officer's id (LA case systems only).")
    token.add_argument(
        "--role", type=OfficerRole, choices=list(OfficerRole), default=OfficerRole.case_officer
    )
    token.add_argument(
        "--lifetime",
        type=int,
        default=_DEFAULT_LIFETIME,
        help="Seconds, at most the service's token lifetime (300 by default); more is refused.",
    )
    token.set_defaults(handler=_token)

    sign = subparsers.add_parser("sign", help="Print the compact JWS of a JSON submission file.")
    sign.add_argument("--partner", required=True, help="The signing partner (its key must be registered).")
    sign.add_argument("--key", required=True, help="The partner's private key (PEM).")
    sign.add_argument("--kid", required=True)
    sign.add_argument("file")
    sign.set_defaults(handler=_sign)
