"""Key files for partners' own use: generated key pairs, and private keys read for signing."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app.core.errors import ProblemError
from app.core.jose_adapter import InvalidKey, KeyAlg, PrivateKey, alg_for_private_key, public_jwk, thumbprint


class KeyFileExists(ProblemError):
    """Key files of this partner and kid are already there (an earlier run wrote them): never overwritten."""

    status, slug, title = 409, "key-file-exists", "Key files with this id already exist"


_RSA_BITS = 3072


@dataclass(frozen=True, slots=True)
class KeyFiles:
    kid: str
    jwk: dict[str, str]
    private_pem: Path
    public_jwk: Path


def generate_key_files(directory: Path, *, partner_id: str, alg: KeyAlg, kid: str | None = None) -> KeyFiles:
    """Write `<partner>-<kid>.pem` (private, mode 0600) and `<partner>-<kid>.jwk.json` (public) into `directory`."""
    private_key: PrivateKey = (
        ec.generate_private_key(ec.SECP256R1())
        if alg is KeyAlg.ES256
        else rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
    )
    jwk = public_jwk(private_key.public_key())
    chosen_kid = kid or thumbprint(jwk)
    jwk = {**jwk, "kid": chosen_kid, "alg": alg.value, "use": "sig"}
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{partner_id}-{chosen_kid}"
    private_path = directory / f"{stem}.pem"
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # O_EXCL: never overwrite an existing private key.
    try:
        descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileExists(
            f"{private_path} exists (an earlier run wrote it). Register it with `cme keys add`, or choose "
            "another --kid; an existing private key is never overwritten."
        ) from None
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    public_path = directory / f"{stem}.jwk.json"
    public_path.write_text(json.dumps(jwk, indent=2) + "\n", encoding="utf-8")
    return KeyFiles(kid=chosen_kid, jwk=jwk, private_pem=private_path, public_jwk=public_path)


def load_private_key(path: Path) -> PrivateKey:
    """An unencrypted PEM private key (EC P-256 or RSA >= 2048 bits)."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise InvalidKey("not an unencrypted PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise InvalidKey("only EC P-256 and RSA private keys can sign")
    alg_for_private_key(key)  # refuses other curves and short RSA keys
    return key
