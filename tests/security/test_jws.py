"""Unit tests of the signed-body verifier and the key checks behind the JOSE fence."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.orm import Session

from app.core.errors import Unauthorized
from app.core.jose_adapter import (
    MAX_HEADER_SEGMENT_BYTES,
    CompactJws,
    InvalidKey,
    KeyAlg,
    public_jwk,
    thumbprint,
    validate_public_jwk,
    verify_signature,
)
from app.partners.models import PartnerKind
from app.security.jws import SUBMISSION_TYP, verify_jws
from tests.support.keys import b64url, new_key, sign_compact
from tests.support.partners import TestPartner, create_partner
from tests.support.tokens import signed_body

PAYLOAD = {"submission_id": "7c0d7d4e-8c55-4a4e-9d7e-0f4a8f2f3b10", "records": [{"n": i} for i in range(50)]}


@pytest.fixture
def board(session: Session) -> TestPartner:
    return create_partner(session, "W11000023", PartnerKind.local_health_board)


def reason_of(excinfo: pytest.ExceptionInfo[Unauthorized]) -> str:
    return excinfo.value.reason


class TestVerifyJws:
    def test_returns_header_payload_thumbprint_and_digest(self, session: Session, board: TestPartner) -> None:
        body = signed_body(board.key, PAYLOAD)
        verified = verify_jws(session, body, typ=SUBMISSION_TYP, expected_partner=board.id)
        assert verified.partner_id == board.id
        assert verified.kid == board.key.kid
        assert verified.alg is KeyAlg.ES256
        assert verified.header == {"typ": SUBMISSION_TYP, "alg": "ES256", "kid": board.key.kid}
        assert json.loads(verified.payload) == PAYLOAD
        assert verified.thumbprint == board.key.thumbprint
        assert verified.content_sha256 == hashlib.sha256(body).hexdigest()

    def test_payload_bytes_are_returned_exactly_as_signed(self, session: Session, board: TestPartner) -> None:
        raw = b'{ "b": 1,\n  "a": "\\u00e9" }'
        verified = verify_jws(
            session, signed_body(board.key, raw), typ=SUBMISSION_TYP, expected_partner=board.id
        )
        assert verified.payload == raw

    def test_signer_must_be_the_expected_partner(self, session: Session, board: TestPartner) -> None:
        other = create_partner(session, "W11000024", PartnerKind.local_health_board, kid=board.key.kid)
        with pytest.raises(Unauthorized) as excinfo:
            verify_jws(
                session, signed_body(other.key, PAYLOAD), typ=SUBMISSION_TYP, expected_partner=board.id
            )
        assert reason_of(excinfo) == "bad signature"

    def test_a_bearer_token_is_not_a_submission(self, session: Session, board: TestPartner) -> None:
        body = sign_compact(PAYLOAD, board.key, typ="cme-auth+jwt").encode()
        with pytest.raises(Unauthorized) as excinfo:
            verify_jws(session, body, typ=SUBMISSION_TYP, expected_partner=board.id)
        assert "typ" in reason_of(excinfo)

    def test_key_not_yet_valid_at_the_given_time(self, session: Session, board: TestPartner) -> None:
        an_hour_before_registration = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
        with pytest.raises(Unauthorized) as excinfo:
            verify_jws(
                session,
                signed_body(board.key, PAYLOAD),
                typ=SUBMISSION_TYP,
                expected_partner=board.id,
                now=an_hour_before_registration,
            )
        assert "not yet valid" in reason_of(excinfo)

    @pytest.mark.parametrize("position", ["header", "payload", "signature"])
    def test_flipped_byte(self, session: Session, board: TestPartner, position: str) -> None:
        body = bytearray(signed_body(board.key, PAYLOAD))
        first_dot = body.index(b".")
        last_dot = body.rindex(b".")
        index = {
            "header": first_dot // 2,
            "payload": (first_dot + last_dot) // 2,
            "signature": last_dot + 10,
        }[position]
        body[index] = ord("A") if body[index] != ord("A") else ord("B")
        with pytest.raises(Unauthorized):
            verify_jws(session, bytes(body), typ=SUBMISSION_TYP, expected_partner=board.id)

    @pytest.mark.parametrize(
        "mangle",
        [
            lambda b: b + b"\n",  # trailing newline: not part of the base64url alphabet
            lambda b: b.replace(b".", b".x.", 1),  # a third dot
            lambda b: b.split(b".")[0] + b"." + b.split(b".")[1],  # no signature segment
            lambda b: b.replace(b"-", b"+").replace(b"_", b"/"),  # standard base64, not base64url
        ],
        ids=["trailing-newline", "three-dots", "two-segments", "standard-base64"],
    )
    def test_malformed_serialisation(self, session: Session, board: TestPartner, mangle: Any) -> None:
        # This payload's base64url holds both '-' and '_', so the standard-alphabet swap always changes the
        # serialisation (it did not depend on the random signature bytes to do so).
        body = signed_body(board.key, {"x": "~~~???>>>" * 5})
        mangled = mangle(body)
        assert mangled != body
        with pytest.raises(Unauthorized):
            verify_jws(session, mangled, typ=SUBMISSION_TYP, expected_partner=board.id)

    def test_oversized_header(self, session: Session, board: TestPartner) -> None:
        body = signed_body(board.key, PAYLOAD, header={"cty": "x" * MAX_HEADER_SEGMENT_BYTES})
        with pytest.raises(Unauthorized) as excinfo:
            verify_jws(session, body, typ=SUBMISSION_TYP, expected_partner=board.id)
        assert "too large" in reason_of(excinfo)

    def test_rs512_body(self, session: Session) -> None:
        practice = create_partner(session, "W97001", PartnerKind.gp_practice, alg="RS512")
        body = signed_body(practice.key, PAYLOAD)
        assert verify_jws(session, body, typ=SUBMISSION_TYP, expected_partner=practice.id).alg is KeyAlg.RS512


class TestVerifySignatureDefenceInDepth:
    """Even a header that slipped past the header rules cannot choose the algorithm."""

    @pytest.mark.parametrize("alg", ["HS256", "none", "RS512", "ES384"])
    def test_header_alg_must_equal_the_registered_alg(self, alg: str) -> None:
        key = new_key("ES256")
        data = sign_compact(PAYLOAD, key, typ=SUBMISSION_TYP).encode()
        header_end, payload_end = data.index(b"."), data.rindex(b".")
        forged = CompactJws(
            data=data, header={"alg": alg, "kid": key.kid, "typ": SUBMISSION_TYP},
            header_end=header_end, payload_end=payload_end,
        )  # fmt: skip
        with pytest.raises(Unauthorized) as excinfo:
            verify_signature(
                forged,
                key.public_jwk,
                KeyAlg.ES256,
                partner_id="W97001",
                jwk_thumbprint=thumbprint(key.public_jwk),
            )
        assert "alg differs" in excinfo.value.reason


class TestPublicKeyValidation:
    def test_rfc7638_thumbprint_known_answer(self) -> None:
        # RFC 7638 section 3.1.
        jwk = {
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRX"
            "jBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8"
            "KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_x"
            "BniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29",
        }
        assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

    def test_es256_key_is_reduced_to_its_required_members(self) -> None:
        key = new_key("ES256")
        validated = validate_public_jwk(
            {**key.public_jwk, "kid": "k", "use": "sig", "ext": True}, KeyAlg.ES256
        )
        assert validated.jwk == key.public_jwk
        assert (validated.kty, validated.crv, validated.thumbprint) == ("EC", "P-256", key.thumbprint)

    @pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "k"])
    def test_private_members_are_refused(self, member: str) -> None:
        jwk = {**new_key("ES256").public_jwk, member: "AQAB"}
        with pytest.raises(InvalidKey, match="private"):
            validate_public_jwk(jwk, KeyAlg.ES256)

    def test_p384_key_is_refused(self) -> None:
        other_curve = public_jwk_p384()
        with pytest.raises(InvalidKey):
            validate_public_jwk(other_curve, KeyAlg.ES256)

    def test_rsa_key_under_2048_bits_is_refused(self) -> None:
        with pytest.raises(InvalidKey, match="2048"):
            validate_public_jwk(new_key("RS512", rsa_bits=1024).public_jwk, KeyAlg.RS512)

    @pytest.mark.parametrize(
        ("jwk_alg", "registered"), [(KeyAlg.ES256, KeyAlg.RS512), (KeyAlg.RS512, KeyAlg.ES256)]
    )
    def test_key_type_must_fit_the_algorithm(self, jwk_alg: KeyAlg, registered: KeyAlg) -> None:
        with pytest.raises(InvalidKey, match="kty"):
            validate_public_jwk(new_key(jwk_alg.value).public_jwk, registered)

    def test_jwk_naming_another_alg_is_refused(self) -> None:
        with pytest.raises(InvalidKey, match="different alg"):
            validate_public_jwk({**new_key("ES256").public_jwk, "alg": "ES384"}, KeyAlg.ES256)

    def test_point_not_on_the_curve_is_refused(self) -> None:
        jwk = dict(new_key("ES256").public_jwk)
        y = int.from_bytes(base64.urlsafe_b64decode(jwk["y"] + "="), "big")
        jwk["y"] = b64url((y ^ 1).to_bytes(32, "big"))
        with pytest.raises(InvalidKey, match="valid public key"):
            validate_public_jwk(jwk, KeyAlg.ES256)

    def test_not_an_object(self) -> None:
        with pytest.raises(InvalidKey):
            validate_public_jwk("-----BEGIN PUBLIC KEY-----", KeyAlg.ES256)


def public_jwk_p384() -> dict[str, str]:
    numbers = ec.generate_private_key(ec.SECP384R1()).public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-384",
        "x": b64url(numbers.x.to_bytes(48, "big")),
        "y": b64url(numbers.y.to_bytes(48, "big")),
    }


def test_public_jwk_refuses_other_curves() -> None:
    with pytest.raises(InvalidKey):
        public_jwk(ec.generate_private_key(ec.SECP384R1()).public_key())
