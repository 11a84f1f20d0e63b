"""Checking a compact JWS the service signed, independently of the service's own code: ES256 with the
key its JWKS publishes, as a partner or an auditor would."""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from fastapi.testclient import TestClient


def b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def verify_service_jws(client: TestClient, jws: str, typ: str) -> dict[str, Any]:
    """The claims of `jws` after checking its header (ES256, `typ`) and its signature against the key of
    `/.well-known/jwks.json` its `kid` names; raises if the signature is bad."""
    header_b64, payload_b64, signature_b64 = jws.split(".")
    header = json.loads(b64url_decode(header_b64))
    assert (header["alg"], header["typ"]) == ("ES256", typ)
    jwk = next(k for k in client.get("/.well-known/jwks.json").json()["keys"] if k["kid"] == header["kid"])
    public = ec.EllipticCurvePublicNumbers(
        int.from_bytes(b64url_decode(jwk["x"]), "big"),
        int.from_bytes(b64url_decode(jwk["y"]), "big"),
        ec.SECP256R1(),
    ).public_key()
    raw = b64url_decode(signature_b64)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(der, f"{header_b64}.{payload_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    claims: dict[str, Any] = json.loads(b64url_decode(payload_b64))
    return claims
