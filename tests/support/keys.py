"""Real key pairs and an independent compact-JWS signer for tests.

The signer is written with `cryptography` and `hmac` directly (not python-jose, which only app/security
may import), so tests can also forge what a correct library would never produce: `alg: none`, HS256 keyed
with a public key, a header with `jku`, a signature made by the wrong key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from app.core.jose_adapter import public_jwk, thumbprint

Alg = Literal["ES256", "RS512"]
OMIT: Any = object()
"""Pass as a header or claim value to leave that member out."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class TestKey:
    """A private key with the algorithm and kid it is (to be) registered under."""

    __test__ = False  # not a pytest test class

    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    alg: Alg
    kid: str
    public_jwk: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "public_jwk", public_jwk(self.private_key.public_key()))

    @property
    def thumbprint(self) -> str:
        return thumbprint(self.public_jwk)

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def new_key(alg: Alg = "ES256", kid: str = "key-1", *, rsa_bits: int = 2048) -> TestKey:
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if alg == "ES256":
        private_key = ec.generate_private_key(ec.SECP256R1())
    else:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    return TestKey(private_key=private_key, alg=alg, kid=kid)


def _signature(signing_input: bytes, alg: str, key: TestKey | None, hmac_secret: bytes | None) -> bytes:
    if alg == "none":
        return b""
    if alg.startswith("HS"):
        assert hmac_secret is not None, "HS* needs hmac_secret"
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
        return hmac.new(hmac_secret, signing_input, digest).digest()
    assert key is not None, f"{alg} needs a key"
    hash_alg = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]
    if alg.startswith("ES"):
        assert isinstance(key.private_key, ec.EllipticCurvePrivateKey)
        r, s = decode_dss_signature(key.private_key.sign(signing_input, ec.ECDSA(hash_alg)))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert isinstance(key.private_key, rsa.RSAPrivateKey)
    pad = padding.PKCS1v15() if alg.startswith("RS") else padding.PSS(padding.MGF1(hash_alg), 32)
    return key.private_key.sign(signing_input, pad, hash_alg)


def sign_compact(
    payload: bytes | dict[str, Any],
    key: TestKey | None,
    *,
    typ: str,
    header: dict[str, Any] | None = None,
    hmac_secret: bytes | None = None,
    header_json: bytes | None = None,
) -> str:
    """Compact JWS. Header defaults to {alg: key.alg, kid: key.kid, typ}; `header` overrides (OMIT removes).
    `header_json` replaces the encoded header outright (a header no dict can hold, e.g. a member twice);
    the signature then follows `header`'s or the key's `alg`.

    The signature follows the header's final `alg` (ES256/384/512, RS*, PS*, HS* with `hmac_secret`, none).
    """
    base: dict[str, Any] = {"typ": typ}
    if key is not None:
        base |= {"alg": key.alg, "kid": key.kid}
    merged = {name: value for name, value in (base | (header or {})).items() if value is not OMIT}
    body = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
    encoded_header = header_json if header_json is not None else json.dumps(merged).encode()
    signing_input = f"{b64url(encoded_header)}.{b64url(body)}".encode("ascii")
    signature = _signature(
        signing_input, str(merged.get("alg", key.alg if key else "none")), key, hmac_secret
    )
    return f"{signing_input.decode('ascii')}.{b64url(signature)}"
