"""Bearer-token authentication through real HTTP: every refusal is one generic 401, for the right reason."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.jose_adapter import b64url_encode
from app.jobs.worker import Worker
from app.main import create_app
from app.partners import service as partners_service
from app.partners.models import PartnerKey, PartnerKind, PartnerStatus
from app.security.models import SeenJti
from app.wiring.jobs import default_ticks
from tests.security.conftest import FAILS_AFTER_AUTH, WHOAMI, add_test_routes
from tests.support.clock import FrozenClock
from tests.support.keys import OMIT, b64url, new_key
from tests.support.partners import TestPartner, create_partner, register_test_key
from tests.support.tokens import auth_header, bearer_token

GENERIC_401 = {
    "type": "urn:cme-hub:problem:unauthorized",
    "title": "Authentication failed",
    "status": 401,
    "detail": "The request could not be authenticated.",
}


@pytest.fixture
def la(session: Session) -> TestPartner:
    return create_partner(session, "W06000001", PartnerKind.local_authority)


@pytest.fixture
def refusals(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="app.core.errors")
    return caplog


def get_whoami(client: TestClient, token: str) -> Response:
    response: Response = client.get(WHOAMI, headers={"Authorization": f"Bearer {token}"})
    return response


def assert_refused(response: Response, refusals: pytest.LogCaptureFixture, reason: str) -> None:
    """401 with exactly the generic problem (no hint of the reason), and the reason in the log."""
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert {k: body[k] for k in GENERIC_401} == GENERIC_401
    assert set(body) <= {*GENERIC_401, "instance", "request_id", "errors"}
    assert body.get("errors", []) == []
    logged = [r.__dict__["reason"] for r in refusals.records if r.getMessage() == "authentication refused"]
    assert logged, "no refusal was logged"
    assert reason in logged[-1]


class TestAccepted:
    def test_good_es256_token_names_the_caller(self, client: TestClient, la: TestPartner) -> None:
        token = bearer_token(la.key, la.id)
        response = get_whoami(client, token)
        assert response.status_code == 200
        body = response.json()
        assert body["partner_id"] == la.id
        assert body["partner_kind"] == "local_authority"
        assert body["kid"] == la.key.kid
        assert uuid.UUID(body["jti"])
        assert body["officer_id"] is None
        assert body["officer_role"] is None

    def test_rs512_partner_is_accepted(self, client: TestClient, session: Session) -> None:
        board = create_partner(session, "W11000023", PartnerKind.local_health_board, alg="RS512", kid="rsa-1")
        response = get_whoami(client, bearer_token(board.key, board.id))
        assert response.status_code == 200
        assert response.json()["partner_kind"] == "local_health_board"

    def test_la_may_name_an_officer(self, client: TestClient, la: TestPartner) -> None:
        officer = {"id": "officer-17", "role": "designated_officer"}
        response = get_whoami(client, bearer_token(la.key, la.id, claims={"officer": officer}))
        assert response.status_code == 200
        assert (response.json()["officer_id"], response.json()["officer_role"]) == (
            "officer-17",
            "designated_officer",
        )

    def test_welsh_government_gets_the_statistics_role(self, client: TestClient, session: Session) -> None:
        wg = create_partner(session, "WG", PartnerKind.welsh_government)
        response = get_whoami(client, bearer_token(wg.key, wg.id))
        assert response.status_code == 200
        assert response.json()["officer_role"] == "statistics"


class TestKeys:
    def test_signature_by_another_key_under_the_registered_kid(
        self, client: TestClient, la: TestPartner, refusals: pytest.LogCaptureFixture
    ) -> None:
        impostor = new_key("ES256", la.key.kid)
        assert_refused(get_whoami(client, bearer_token(impostor, la.id)), refusals, "bad signature")

    def test_unknown_kid(
        self, client: TestClient, la: TestPartner, refusals: pytest.LogCaptureFixture
    ) -> None:
        token = bearer_token(la.key, la.id, header={"kid": "no-such-key"})
        assert_refused(get_whoami(client, token), refusals, "no key registered")

    def test_another_partners_kid_is_not_looked_up(
        self, client: TestClient, session: Session, la: TestPartner, refusals: pytest.LogCaptureFixture
    ) -> None:
        other = create_partner(session, "W06000002", PartnerKind.local_authority, kid="other-key")
        # Signed correctly with the other partner's key, but claiming to be `la`.
        token = bearer_token(other.key, la.id)
        assert_refused(get_whoami(client, token), refusals, "no key registered")

    def test_revoked_key(
        self, client: TestClient, session: Session, la: TestPartner, refusals: pytest.LogCaptureFixture
    ) -> None:
        partners_service.revoke_key(session, la.id, la.key.kid, now=dt.datetime.now(dt.UTC))
        session.commit()
        assert_refused(get_whoami(client, bearer_token(la.key, la.id)), refusals, "revoked or not yet valid")

    def test_key_not_yet_valid(
        self, client: TestClient, session: Session, la: TestPartner, refusals: pytest.LogCaptureFixture
    ) -> None:
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        future_key = register_test_key(session, la.id, kid="key-next", not_before=later)
        token = bearer_token(future_key, la.id)
        assert_refused(get_whoami(client, token), refusals, "revoked or not yet valid")

    def test_suspended_partner(
        self, client: TestClient, session: Session, la: TestPartner, refusals: pytest.LogCaptureFixture
    ) -> None:
        partners_service.set_status(session, la.id, PartnerStatus.suspended)
        session.commit()
        assert_refused(get_whoami(client, bearer_token(la.key, la.id)), refusals, "partner suspended")

    def test_rotation_overlap_then_revocation(
        self, client: TestClient, session: Session, la: TestPartner
    ) -> None:
        new = register_test_key(session, la.id, kid="key-2")
        assert get_whoami(client, bearer_token(la.key, la.id)).status_code == 200
        assert get_whoami(client, bearer_token(new, la.id)).status_code == 200
        partners_service.revoke_key(session, la.id, la.key.kid, now=dt.datetime.now(dt.UTC))
        session.commit()
        assert get_whoami(client, bearer_token(la.key, la.id)).status_code == 401
        assert get_whoami(client, bearer_token(new, la.id)).status_code == 200

    def test_suspension_applies_to_the_next_request_after_a_cached_key(
        self, client: TestClient, session: Session, la: TestPartner, refusals: pytest.LogCaptureFixture
    ) -> None:
        assert get_whoami(client, bearer_token(la.key, la.id)).status_code == 200
        partners_service.set_status(session, la.id, PartnerStatus.suspended)
        session.commit()
        assert_refused(get_whoami(client, bearer_token(la.key, la.id)), refusals, "partner suspended")

    def test_key_replaced_under_the_same_kid_is_not_served_from_the_cache(
        self, client: TestClient, session: Session, la: TestPartner, refusals: pytest.LogCaptureFixture
    ) -> None:
        assert get_whoami(client, bearer_token(la.key, la.id)).status_code == 200
        replacement = new_key("ES256", la.key.kid)
        session.execute(
            update(PartnerKey)
            .where(PartnerKey.partner_id == la.id, PartnerKey.kid == la.key.kid)
            .values(public_jwk=replacement.public_jwk, thumbprint=replacement.thumbprint)
        )
        session.commit()
        assert get_whoami(client, bearer_token(replacement, la.id)).status_code == 200
        assert_refused(get_whoami(client, bearer_token(la.key, la.id)), refusals, "bad signature")


class TestAlgorithms:
    def test_alg_none(self, client: TestClient, la: TestPartner, refusals: pytest.LogCaptureFixture) -> None:
        token = bearer_token(la.key, la.id, header={"alg": "none"})
        assert token.endswith(".")
        assert_refused(get_whoami(client, token), refusals, "alg not on the allow-list")

    @pytest.mark.parametrize("secret_form", ["pem", "jwk"])
    def test_hs256_keyed_with_the_public_key(
        self, client: TestClient, la: TestPartner, refusals: pytest.LogCaptureFixture, secret_form: str
    ) -> None:
        secret = la.key.public_pem() if secret_form == "pem" else json.dumps(la.key.public_jwk).encode()
        token = bearer_token(la.key, la.id, header={"alg": "HS256"}, hmac_secret=secret)
        assert_refused(get_whoami(client, token), refusals, "alg not on the allow-list")

    def test_rs256_on_an_es256_key(
        self, client: TestClient, la: TestPartner, refusals: pytest.LogCaptureFixture
    ) -> None:
        rsa_key = new_key("RS512", la.key.kid)
        token = bearer_token(rsa_key, la.id, header={"alg": "RS256"})
        assert_refused(get_whoami(client, token), refusals, "alg not on the allow-list")

    def test_allowed_alg_other_than_the_keys_own(
        self, client: TestClient, la: TestPartner, refusals: pytest.LogCaptureFixture
    ) -> None:
        rsa_key = new_key("RS512", la.key.kid)
        token = bearer_token(rsa_key, la.id)  # RS512, but la's key is registered as ES256
        assert_refused(get_whoami(client, token), refusals, "alg differs")


class TestTimeWindow:
    def test_expired(
        self, client: TestClient, la: TestPartner, clock: FrozenClock, refusals: pytest.LogCaptureFixture
    ) -> None:
        now = int(clock.now().timestamp())
        token = bearer_token(la.key, la.id, claims={"iat": now - 120, "exp": now - 11})
        assert_refused(get_whoami(client, token), refusals, "expired")

    def test_expired_within_the_skew_is_accepted(
        self, client: TestClient, la: TestPartner, clock: FrozenClock
    ) -> None:
        now = int(clock.now().timestamp())
        token = bearer_token(la.key, la.id, claims={"iat": now - 120, "exp": now - 9})
        assert get_whoami(client, token).status_code == 200

    def test_lifetime_over_300_seconds(
        self, client: TestClient, la: TestPartner, clock: FrozenClock, refusals: pytest.LogCaptureFixture
    ) -> None:
        now = int(clock.now().timestamp())
        token = bearer_token(la.key, la.id, claims={"iat": now, "exp": now + 301})
        assert_refused(get_whoami(client, token), refusals, "max lifetime")

    def test_lifetime_of_exactly_300_seconds_is_accepted(
        self, client: TestClient, la: TestPartner, clock: FrozenClock
    ) -> None:
        now = int(clock.now().timestamp())
        token = bearer_token(la.key, la.id, claims={"iat": now, "exp": now + 300})
        assert get_whoami(client, token).status_code == 200

    def test_iat_9_seconds_ahead_is_accepted(
        self, client: TestClient, la: TestPartner, clock: FrozenClock
    ) -> None:
        token = bearer_token(la.key, la.id, now=clock.now() + dt.timedelta(seconds=9))
        assert get_whoami(client, token).status_code == 200

    @pytest.mark.parametrize("ahead", [11, 61])
    def test_iat_too_far_ahead(
        self,
        client: TestClient,
        la: TestPartner,
        clock: FrozenClock,
        refusals: pytest.LogCaptureFixture,
        ahead: int,
    ) -> None:
        token = bearer_token(la.key, la.id, now=clock.now() + dt.timedelta(seconds=ahead))
        assert_refused(get_whoami(client, token), refusals, "iat in the future")

    def test_nbf_in_the_future(
        self, client: TestClient, la: TestPartner, clock: FrozenClock, refusals: pytest.LogCaptureFixture
    ) -> None:
        now = int(clock.now().timestamp())
        token = bearer_token(la.key, la.id, claims={"nbf": now + 30})
        assert_refused(get_whoami(client, token), refusals, "nbf")


class TestClaimsAndHeader:
    def test_a_header_nested_deeper_than_the_parser_goes_is_a_401_not_a_500(
        self, client: TestClient, refusals: pytest.LogCaptureFixture
    ) -> None:
        """Before any key is looked up: 1,500 nested arrays fit in the 4 KiB header segment and exceed
        Python's recursion limit in the JSON decoder, which raised RecursionError (a 500)."""
        deep = b'{"alg":"ES256","typ":"x","kid":"k","a":' + b"[" * 1500 + b"]" * 1500 + b"}"
        token = ".".join(b64url_encode(part) for part in (deep, b"{}", b"x" * 64))
        assert_refused(get_whoami(client, token), refusals, "header is not JSON")

    def test_wrong_audience(
        self, client: TestClient, la: TestPartner, refusals: pytest.LogCaptureFixture
    ) -> None:
        token = bearer_token(la.key, la.id, claims={"aud": "https://other.invalid"})
        assert_refused(get_whoami(client, token), refusals, "aud")

    def test_audience_as_a_list_is_not_exact(
        self, client: TestClient, la: TestPartner, settings: Settings, refusals: pytest.LogCaptureFixture
    ) -> None:
        token = bearer_token(la.key, la.id, claims={"aud": [settings.audience]})
        assert_refused(get_whoami(client, token), refusals, "aud")

    @pytest.mark.parametrize(
        ("claim", "reason"), [("jti", "jti"), ("aud", "aud"), ("iat", "iat"), ("exp", "exp")]
    )
    def test_missing_claim(
        self, client: TestClient, la: TestPartner, refusals: pytest.LogCaptureFixture, claim: str, reason: str
    ) -> None:
        token = bearer_token(la.key, la.id, claims={claim: OMIT})
        assert_refused(get_whoami(client, token), refusals, reason)

    def test_jti_not_a_uuid(
        self, client: TestClient, la: TestPartner, refusals: pytest.LogCaptureFixture
    ) -> None:
        token = bearer_token(la.key, la.id, claims={"jti": "12345"})
        assert_refused(get_whoami(client, token), refusals, "jti is not a UUID")

    def test_sub_differs_from_iss(
        self, client: TestClient, la: TestPartner, refusals: pytest.LogCaptureFixture
    ) -> None:
        token = bearer_token(la.key, la.id, claims={"sub": "W06000002"})
        assert_refused(get_whoami(client, token), refusals, "sub differs")

    @pytest.mark.parametrize("typ", ["JWT", "cme-submission+jws", OMIT])
    def test_wrong_or_missing_typ(
        self, client: TestClient, la: TestPartner, refusals: pytest.LogCaptureFixture, typ: Any
    ) -> None:
        token = bearer_token(la.key, la.id, header={"typ": typ})
        assert_refused(get_whoami(client, token), refusals, "typ")

    def test_missing_kid(
        self, client: TestClient, la: TestPartner, refusals: pytest.LogCaptureFixture
    ) -> None:
        token = bearer_token(la.key, la.id, header={"kid": OMIT})
        assert_refused(get_whoami(client, token), refusals, "kid")

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("jku", "https://attacker.invalid/jwks.json"),
            ("x5u", "https://attacker.invalid/cert.pem"),
            ("x5c", ["MIIB"]),
            ("crit", ["exp"]),
            ("b64", False),
        ],
    )
    def test_header_parameters_that_could_bring_their_own_key_or_semantics(
        self, client: TestClient, la: TestPartner, refusals: pytest.LogCaptureFixture, name: str, value: Any
    ) -> None:
        token = bearer_token(la.key, la.id, header={name: value})
        assert_refused(get_whoami(client, token), refusals, f"not allowed: {name}")

    def test_embedded_jwk_header_with_the_attackers_own_key(
        self, client: TestClient, la: TestPartner, refusals: pytest.LogCaptureFixture
    ) -> None:
        attacker = new_key("ES256", la.key.kid)
        token = bearer_token(attacker, la.id, header={"jwk": attacker.public_jwk})
        assert_refused(get_whoami(client, token), refusals, "not allowed: jwk")

    def test_officer_from_a_partner_that_is_not_an_la(
        self, client: TestClient, session: Session, refusals: pytest.LogCaptureFixture
    ) -> None:
        board = create_partner(session, "W11000023", PartnerKind.local_health_board)
        token = bearer_token(board.key, board.id, claims={"officer": {"id": "x1", "role": "case_officer"}})
        assert_refused(get_whoami(client, token), refusals, "only local authorities")

    @pytest.mark.parametrize(
        "officer", [{"id": "o1", "role": "superuser"}, {"id": "", "role": "case_officer"}, {"id": "o1"}, "o1"]
    )
    def test_malformed_officer(
        self, client: TestClient, la: TestPartner, refusals: pytest.LogCaptureFixture, officer: Any
    ) -> None:
        token = bearer_token(la.key, la.id, claims={"officer": officer})
        assert_refused(get_whoami(client, token), refusals, "officer")

    def test_no_authorization_header(self, client: TestClient, refusals: pytest.LogCaptureFixture) -> None:
        assert_refused(client.get(WHOAMI), refusals, "no bearer token")

    def test_basic_scheme(
        self, client: TestClient, la: TestPartner, refusals: pytest.LogCaptureFixture
    ) -> None:
        response = client.get(WHOAMI, headers={"Authorization": f"Basic {b64url(b'user:pass')}"})
        assert_refused(response, refusals, "no bearer token")


class TestTamper:
    @pytest.mark.parametrize("segment", [0, 1, 2])
    def test_one_changed_character(
        self, client: TestClient, la: TestPartner, refusals: pytest.LogCaptureFixture, segment: int
    ) -> None:
        parts = bearer_token(la.key, la.id).split(".")
        # Change a character in the middle of the segment to another base64url character.
        middle = len(parts[segment]) // 2
        swapped = "A" if parts[segment][middle] != "A" else "B"
        parts[segment] = parts[segment][:middle] + swapped + parts[segment][middle + 1 :]
        response = get_whoami(client, ".".join(parts))
        assert response.status_code == 401
        assert {k: response.json()[k] for k in GENERIC_401} == GENERIC_401

    def test_payload_replaced_under_the_original_signature(
        self, client: TestClient, la: TestPartner, refusals: pytest.LogCaptureFixture
    ) -> None:
        genuine = bearer_token(la.key, la.id).split(".")
        forged = bearer_token(la.key, la.id, claims={"officer": {"id": "o1", "role": "case_officer"}}).split(
            "."
        )
        token = ".".join([genuine[0], forged[1], genuine[2]])
        assert_refused(get_whoami(client, token), refusals, "bad signature")


class TestReplay:
    def test_same_token_twice(
        self,
        client: TestClient,
        session: Session,
        la: TestPartner,
        refusals: pytest.LogCaptureFixture,
    ) -> None:
        token = bearer_token(la.key, la.id)
        assert get_whoami(client, token).status_code == 200
        assert_refused(get_whoami(client, token), refusals, "jti replayed")
        assert session.scalar(select(func.count()).select_from(SeenJti)) == 1

    def test_jti_in_another_spelling_of_the_same_uuid(
        self, client: TestClient, la: TestPartner, refusals: pytest.LogCaptureFixture
    ) -> None:
        jti = uuid.uuid4()
        assert get_whoami(client, bearer_token(la.key, la.id, claims={"jti": str(jti)})).status_code == 200
        token = bearer_token(la.key, la.id, claims={"jti": str(jti).upper()})
        assert_refused(get_whoami(client, token), refusals, "jti replayed")

    def test_same_jti_from_two_partners_is_not_a_replay(
        self, client: TestClient, session: Session, la: TestPartner
    ) -> None:
        other = create_partner(session, "W06000002", PartnerKind.local_authority)
        jti = str(uuid.uuid4())
        assert get_whoami(client, bearer_token(la.key, la.id, claims={"jti": jti})).status_code == 200
        assert get_whoami(client, bearer_token(other.key, other.id, claims={"jti": jti})).status_code == 200

    def test_replay_refused_by_a_second_app_on_the_same_database(
        self, client: TestClient, settings: Settings, la: TestPartner, refusals: pytest.LogCaptureFixture
    ) -> None:
        second_app = create_app(settings)
        add_test_routes(second_app)
        token = bearer_token(la.key, la.id)
        assert get_whoami(client, token).status_code == 200
        with TestClient(second_app) as second_client:
            assert_refused(get_whoami(second_client, token), refusals, "jti replayed")

    def test_a_failed_request_still_burns_its_token(
        self, client: TestClient, la: TestPartner, refusals: pytest.LogCaptureFixture
    ) -> None:
        headers = auth_header(la.key, la.id)
        assert client.post(FAILS_AFTER_AUTH, headers=headers).status_code == 409
        assert_refused(client.get(WHOAMI, headers=headers), refusals, "jti replayed")

    def test_expired_rows_are_purged_by_the_worker_tick(
        self, client: TestClient, session: Session, la: TestPartner, clock: FrozenClock
    ) -> None:
        assert get_whoami(client, bearer_token(la.key, la.id, now=clock.now())).status_code == 200
        clock.advance(400)  # past exp + skew of the first token
        assert get_whoami(client, bearer_token(la.key, la.id, now=clock.now())).status_code == 200
        session.expire_all()
        assert len(session.scalars(select(SeenJti)).all()) == 2  # requests do not purge: the tick does
        Worker(client.app.state.session_factory, {}, now=clock.now, ticks=default_ticks()).tick()  # type: ignore[attr-defined]
        session.expire_all()
        rows = session.scalars(select(SeenJti)).all()
        assert len(rows) == 1
        assert rows[0].expires_at > clock.now()
