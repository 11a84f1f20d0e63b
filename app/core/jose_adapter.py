"""The only module that imports python-jose: compact JWS parsing, header rules, key checks, sign/verify.

python-jose does no `crit`, `typ` or `kid` processing, tries every key it is given and turns its own
algorithm allow-list off when `algorithms` is None (see docs/decisions/0001-jose-envelope.md). So the
protected header is parsed and judged here first, exactly one key is built for the algorithm that key was
registered with, and the header's `alg` must equal that algorithm before any signature check runs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk as jose_jwk
from jose import jws as jose_jws
from jose.backends.base import Key as JoseKey
from jose.exceptions import JOSEError

from app.core import strict_json
from app.core.errors import ProblemError, Unauthorized
from app.core.lru import LruCache


class InvalidKey(ProblemError):
    """A key offered for registration or signing is not one we accept (type, curve, size, private part)."""

    status, slug, title = 422, "invalid-key", "Key not acceptable"


MAX_HEADER_SEGMENT_BYTES = 4096
# Header parameters we understand; anything else (jku, x5u, jwk, x5c, crit, b64, zip, ...) is refused.
ALLOWED_HEADER_PARAMS = frozenset({"alg", "kid", "typ", "cty"})
_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_MIN_RSA_BITS = 2048
_P256_COORDINATE_BYTES = 32
# Constructed verification keys kept per process: far more than the registry's live keys.
VERIFIER_CACHE_SIZE = 1024


class KeyAlg(StrEnum):
    """The allow-list. Every registered key is bound to exactly one of these."""

    ES256 = "ES256"
    RS512 = "RS512"


_KTY_FOR_ALG = {KeyAlg.ES256: "EC", KeyAlg.RS512: "RSA"}

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _standard_alphabet_table() -> bytes:
    """Byte map from base64url to standard base64; every byte outside base64url maps to `!`, never valid."""
    table = bytearray(b"!" * 256)
    for char in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789":
        table[char] = char
    table[ord("-")], table[ord("_")] = ord("+"), ord("/")
    return bytes(table)


_TO_STANDARD_ALPHABET = _standard_alphabet_table()
_TRANSLATE_CHUNK_BYTES = 4 * 1024 * 1024


def _b64url_decode_strict(data: bytes, start: int, end: int, what: str) -> bytes:
    """Decode the unpadded base64url in `data[start:end]`, refusing any byte outside the alphabet.

    Bodies reach 130 MB, so the segment is translated chunk by chunk into one padded buffer that the strict
    decoder then reads: one full-size copy besides the decoded output (the stdlib route makes three).
    """
    length = end - start
    padded = bytearray(length + (-length % 4))
    view = memoryview(data)
    for offset in range(0, length, _TRANSLATE_CHUNK_BYTES):
        stop = min(offset + _TRANSLATE_CHUNK_BYTES, length)
        padded[offset:stop] = view[start + offset : start + stop].tobytes().translate(_TO_STANDARD_ALPHABET)
    padded[length:] = b"=" * (len(padded) - length)
    try:
        return binascii.a2b_base64(padded, strict_mode=True)
    except binascii.Error as exc:
        raise Unauthorized(f"{what}: not base64url") from exc


@dataclass(frozen=True, slots=True)
class CompactJws:
    """A compact JWS whose protected header passed the header rules; signature not yet checked.

    Offsets point into `data` so that nothing the size of the payload is copied until asked for.
    """

    data: bytes
    header: dict[str, Any]
    header_end: int
    payload_end: int

    @property
    def kid(self) -> str:
        kid: str = self.header["kid"]
        return kid

    @property
    def alg(self) -> str:
        alg: str = self.header["alg"]
        return alg

    def signing_input(self) -> memoryview:
        return memoryview(self.data)[: self.payload_end]

    def signature(self) -> bytes:
        return _b64url_decode_strict(self.data, self.payload_end + 1, len(self.data), "signature")

    def payload(self) -> bytes:
        return _b64url_decode_strict(self.data, self.header_end + 1, self.payload_end, "payload")


_B64URL_SEGMENT = re.compile(rb"[A-Za-z0-9_-]+")
_WHITESPACE = b" \t\r\n"


def strip_surrounding_whitespace(data: bytes | bytearray) -> bytes | bytearray:
    """`data` without leading and trailing whitespace (the newline a file or `echo` adds). A `bytearray` is
    trimmed in place, and only when there is something to trim: a 130 MB body is not copied for it."""
    if isinstance(data, bytes):
        return data.strip(_WHITESPACE)
    end = len(data)
    while end and data[end - 1] in _WHITESPACE:
        end -= 1
    del data[end:]
    start = 0
    while start < end and data[start] in _WHITESPACE:
        start += 1
    if start:
        del data[:start]
    return data


def compact_shape_problem(data: bytes | bytearray) -> str | None:
    """Why `data` is not shaped as a compact JWS (three base64url segments joined by two dots), or None.

    Only the header and signature segments are scanned; the payload segment (up to the body limit) is left
    to the strict decoder. A body that has the shape but fails the header rules or the signature is an
    authentication failure (`parse_compact`, `verify_signature`), not a shape problem.
    """
    if not data:
        return "The body is empty."
    header_end = data.find(b".", 0, MAX_HEADER_SEGMENT_BYTES + 1)
    payload_end = data.rfind(b".")
    if header_end <= 0 or payload_end == header_end:
        return "Expected three base64url segments joined by two dots (header.payload.signature)."
    if _B64URL_SEGMENT.fullmatch(data, 0, header_end) is None:
        return "The header segment is not base64url."
    if _B64URL_SEGMENT.fullmatch(data, payload_end + 1) is None:
        return "The signature segment is missing or not base64url."
    return None


def parse_compact(data: bytes, *, typ: str) -> CompactJws:
    """Split a compact JWS and apply the header rules; raise `Unauthorized` with the precise reason."""
    header_end = data.find(b".", 0, MAX_HEADER_SEGMENT_BYTES + 1)
    if header_end < 0:
        raise Unauthorized("header segment missing or too large")
    payload_end = data.rfind(b".")
    if payload_end == header_end:
        raise Unauthorized("not a compact JWS (two dots expected)")
    try:
        header = strict_json.loads(_b64url_decode_strict(data, 0, header_end, "header"))
    except strict_json.DuplicateMember as exc:
        raise Unauthorized(f"header member named twice: {exc.name[:40]}") from exc
    except (ValueError, RecursionError) as exc:  # nesting deeper than Python's recursion limit: not a header
        raise Unauthorized("header is not JSON") from exc
    check_header(header, typ=typ)
    # A third dot would sit inside the payload segment, where the strict decoder refuses it.
    return CompactJws(data=data, header=header, header_end=header_end, payload_end=payload_end)


def check_header(header: object, *, typ: str) -> None:
    if not isinstance(header, dict):
        raise Unauthorized("header is not a JSON object")
    unexpected = sorted(set(header) - ALLOWED_HEADER_PARAMS)
    if unexpected:
        raise Unauthorized(f"header parameters not allowed: {','.join(unexpected)[:80]}")
    if header.get("typ") != typ:
        raise Unauthorized("typ missing or wrong for this token kind")
    kid = header.get("kid")
    if not isinstance(kid, str) or not 1 <= len(kid) <= 128:
        raise Unauthorized("kid missing or malformed")
    if header.get("alg") not in set(KeyAlg):
        raise Unauthorized("alg not on the allow-list")
    if "cty" in header and not isinstance(header["cty"], str):
        raise Unauthorized("cty malformed")


# python-jose keys already built from registered JWKs. Building a key from its JWK (decoding, point
# check) costs about as much as the signature check itself, and the same few keys sign every request.
# Keyed by (partner, kid, alg, thumbprint of the JWK being used), so a replaced key under the same kid is
# a different entry. Only the construction is cached: whether the key may be used is checked per request.
_verifiers: LruCache[tuple[str, str, KeyAlg, str], JoseKey] = LruCache(VERIFIER_CACHE_SIZE)


def _verifier(
    partner_id: str, kid: str, public_jwk: Mapping[str, Any], alg: KeyAlg, jwk_thumbprint: str
) -> JoseKey:
    entry = (partner_id, kid, alg, jwk_thumbprint)
    key = _verifiers.get(entry)
    if key is None:
        key = jose_jwk.construct(dict(public_jwk), algorithm=alg.value)
        _verifiers.put(entry, key)
    return key


def verify_signature(
    jws: CompactJws, public_jwk: Mapping[str, Any], alg: KeyAlg, *, partner_id: str, jwk_thumbprint: str
) -> None:
    """Check the signature with the one key registered for (partner, kid), bound to `alg`;
    `jwk_thumbprint` is the key's registered RFC 7638 thumbprint (recomputing it cost more than the cache)."""
    if jws.alg != alg:
        raise Unauthorized("alg differs from the algorithm the key is registered for")
    try:
        key = _verifier(partner_id, jws.kid, public_jwk, alg, jwk_thumbprint)
        # Key.verify hands the signing input to cryptography, which reads any buffer in place; jose_jws.verify
        # would copy a 130 MB body several times. The memoryview is a bytes-like object, hence the cast.
        valid = bool(key.verify(cast(bytes, jws.signing_input()), jws.signature()))
    except (JOSEError, ValueError, KeyError) as exc:
        raise Unauthorized("signature could not be checked") from exc
    if not valid:
        raise Unauthorized("bad signature")


@dataclass(frozen=True, slots=True)
class ValidatedJwk:
    """A public JWK reduced to its required members, with the type facts stored beside it."""

    jwk: dict[str, str]
    alg: KeyAlg
    kty: str
    crv: str | None
    thumbprint: str


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) over the required members in lexicographic order."""
    required = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("e", "kty", "n")
    canonical = json.dumps({m: jwk[m] for m in required}, separators=(",", ":"), sort_keys=True)
    return b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())


def _coordinate(jwk: Mapping[str, Any], member: str) -> int:
    value = jwk.get(member)
    if not isinstance(value, str):
        raise InvalidKey(f"JWK member {member} missing")
    try:
        encoded = value.encode("ascii")
        raw = _b64url_decode_strict(encoded, 0, len(encoded), member)
    except (Unauthorized, UnicodeEncodeError) as exc:
        raise InvalidKey(f"JWK member {member} is not base64url") from exc
    if member in {"x", "y"} and len(raw) != _P256_COORDINATE_BYTES:
        raise InvalidKey(f"JWK member {member} has the wrong length for P-256")
    return int.from_bytes(raw, "big")


def public_key_from_jwk(jwk: Mapping[str, Any], alg: KeyAlg) -> PublicKey:
    """The cryptography public key of a JWK, refusing anything but the key type bound to `alg`."""
    if _PRIVATE_JWK_MEMBERS & set(jwk):
        raise InvalidKey("private key material given where a public key is expected")
    if jwk.get("kty") != _KTY_FOR_ALG[alg]:
        raise InvalidKey(f"{alg} keys must have kty {_KTY_FOR_ALG[alg]}")
    if "alg" in jwk and jwk["alg"] != alg:
        raise InvalidKey("the JWK names a different alg")
    if "use" in jwk and jwk["use"] != "sig":
        raise InvalidKey("the JWK is not a signing key")
    try:
        if alg is KeyAlg.ES256:
            if jwk.get("crv") != "P-256":
                raise InvalidKey("ES256 keys must be on curve P-256")
            numbers = ec.EllipticCurvePublicNumbers(
                _coordinate(jwk, "x"), _coordinate(jwk, "y"), ec.SECP256R1()
            )
            return numbers.public_key()
        rsa_key = rsa.RSAPublicNumbers(_coordinate(jwk, "e"), _coordinate(jwk, "n")).public_key()
    except ValueError as exc:  # point not on the curve, bad RSA numbers
        raise InvalidKey("the JWK does not describe a valid public key") from exc
    if rsa_key.key_size < _MIN_RSA_BITS:
        raise InvalidKey(f"RSA keys must have at least {_MIN_RSA_BITS} bits")
    return rsa_key


def public_jwk(key: PublicKey) -> dict[str, str]:
    """The minimal public JWK of a cryptography key (ES256 on P-256, or RSA)."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise InvalidKey("EC keys must be on curve P-256")
        numbers = key.public_numbers()
        size = _P256_COORDINATE_BYTES
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url_encode(numbers.x.to_bytes(size, "big")),
            "y": b64url_encode(numbers.y.to_bytes(size, "big")),
        }
    rsa_numbers = key.public_numbers()
    return {
        "kty": "RSA",
        "n": b64url_encode(rsa_numbers.n.to_bytes((rsa_numbers.n.bit_length() + 7) // 8, "big")),
        "e": b64url_encode(rsa_numbers.e.to_bytes((rsa_numbers.e.bit_length() + 7) // 8, "big")),
    }


def validate_public_jwk(jwk: object, alg: KeyAlg) -> ValidatedJwk:
    """Check a partner's public JWK for registration and reduce it to its canonical members."""
    if not isinstance(jwk, Mapping):
        raise InvalidKey("a JWK must be a JSON object")
    canonical = public_jwk(public_key_from_jwk(jwk, alg))
    try:
        jose_jwk.construct(canonical, algorithm=alg.value)
    except JOSEError as exc:
        raise InvalidKey("python-jose cannot use this key") from exc
    return ValidatedJwk(
        jwk=canonical,
        alg=alg,
        kty=canonical["kty"],
        crv=canonical.get("crv"),
        thumbprint=thumbprint(canonical),
    )


def alg_for_private_key(key: PrivateKey) -> KeyAlg:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise InvalidKey("EC keys must be on curve P-256")
        return KeyAlg.ES256
    if key.key_size < _MIN_RSA_BITS:
        raise InvalidKey(f"RSA keys must have at least {_MIN_RSA_BITS} bits")
    return KeyAlg.RS512


def sign_compact(payload: bytes, key: PrivateKey, *, kid: str, typ: str) -> str:
    """Compact JWS of `payload` with protected header {alg, kid, typ}; alg follows from the key type."""
    alg = alg_for_private_key(key)
    # python-jose takes cryptography key objects as they are; its type stubs only list the serialised forms.
    jose_key = jose_jwk.construct(cast(Any, key), algorithm=alg.value)
    signed: str = jose_jws.sign(payload, jose_key, headers={"kid": kid, "typ": typ}, algorithm=alg.value)
    return signed
