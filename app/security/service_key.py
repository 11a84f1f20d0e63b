"""The service's own ES256 signing key (receipts, responses), published at /.well-known/jwks.json."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, Request

from app.core.jose_adapter import InvalidKey, KeyAlg, public_jwk, sign_compact, thumbprint


class ServiceSigner:
    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise InvalidKey("the service key must be an EC P-256 key")
        self._private_key = private_key
        self.public_jwk: dict[str, str] = public_jwk(private_key.public_key())
        self.kid = thumbprint(self.public_jwk)

    def sign(self, payload: dict[str, Any], typ: str) -> str:
        """Compact JWS (ES256) of `payload` serialised as compact JSON, with header {alg, kid, typ}."""
        data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return sign_compact(data, self._private_key, kid=self.kid, typ=typ)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [{**self.public_jwk, "kid": self.kid, "alg": KeyAlg.ES256.value, "use": "sig"}]}


def load_service_signer(path: Path) -> ServiceSigner:
    """The key at `path`, which must exist (a verifier must never mint a key of its own)."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidKey("the service key file does not hold an EC private key")
    return ServiceSigner(key)


def load_or_create_service_signer(path: Path) -> ServiceSigner:
    """Load the PEM key at `path`, creating it (mode 0600) on first start.

    The new key is written to a private temporary file and hard-linked into place, so that two processes
    starting together end up with the same key and nobody ever reads a half-written file.
    """
    if path.exists():
        return load_service_signer(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".service-key-")  # mode 0600
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process won the race: use its key
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return load_service_signer(path)


async def get_service_signer(request: Request) -> ServiceSigner:
    signer: ServiceSigner = request.app.state.service_signer
    return signer


ServiceSignerDep = Annotated[ServiceSigner, Depends(get_service_signer)]
