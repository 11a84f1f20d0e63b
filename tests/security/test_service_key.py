"""The service's own signing key: created once with private permissions, published as public JWKS only."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.core.jose_adapter import thumbprint
from app.security.service_key import load_or_create_service_signer


def b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def test_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "service.pem"
    first = load_or_create_service_signer(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["service.pem"]  # no temporary file left behind
    second = load_or_create_service_signer(path)
    assert second.kid == first.kid == thumbprint(first.public_jwk)


def test_signature_verifies_with_the_published_key(tmp_path: Path) -> None:
    signer = load_or_create_service_signer(tmp_path / "service.pem")
    compact = signer.sign({"receipt": "r-1", "n": 3}, typ="cme-receipt+jws")
    header_b64, payload_b64, signature_b64 = compact.split(".")
    header = json.loads(b64url_decode(header_b64))
    assert header == {"alg": "ES256", "kid": signer.kid, "typ": "cme-receipt+jws"}
    assert json.loads(b64url_decode(payload_b64)) == {"receipt": "r-1", "n": 3}
    raw = b64url_decode(signature_b64)
    assert len(raw) == 64  # raw R||S, not DER
    jwk = signer.jwks()["keys"][0]
    public = ec.EllipticCurvePublicNumbers(
        int.from_bytes(b64url_decode(jwk["x"]), "big"),
        int.from_bytes(b64url_decode(jwk["y"]), "big"),
        ec.SECP256R1(),
    ).public_key()
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(der, f"{header_b64}.{payload_b64}".encode(), ec.ECDSA(hashes.SHA256()))


def test_jwks_route_serves_only_the_public_key(client: TestClient, settings: Settings) -> None:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    (key,) = response.json()["keys"]
    assert set(key) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")
    assert key["kid"] == load_or_create_service_signer(settings.service_key_file).kid
