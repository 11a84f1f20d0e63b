"""Cheap refusal (issue 11, item 8, in part): tokens naming keys this process does not know read the
registry in the thread pool, a few at a time; beyond that they are refused at once with 503, and tokens of
keys the process knows are not held up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.partners.models import PartnerKind
from app.security import tokens
from tests.security.conftest import WHOAMI, add_test_routes
from tests.support.keys import new_key
from tests.support.partners import create_partner, register_test_key
from tests.support.tokens import auth_header


@pytest.fixture
def whoami(app: FastAPI, client: TestClient) -> TestClient:
    add_test_routes(app)
    return client


@pytest.fixture
def lookups_busy() -> Iterator[None]:
    """Every registry look-up slot taken, as by a flood of tokens naming unknown keys."""
    for _ in range(tokens.REGISTRY_LOOKUPS):
        assert tokens._lookups.acquire(blocking=False)
    yield
    for _ in range(tokens.REGISTRY_LOOKUPS):
        tokens._lookups.release()


def test_a_known_keys_token_passes_while_unknown_ones_are_refused_at_once(
    whoami: TestClient, session: Session, request: pytest.FixtureRequest
) -> None:
    la = create_partner(session, "W06000001", PartnerKind.local_authority)
    assert whoami.get(WHOAMI, headers=auth_header(la.key, la.id)).status_code == 200  # now known here
    fresh = register_test_key(session, la.id, kid="rotated")  # registered, not yet known to this process
    request.getfixturevalue("lookups_busy")
    refused = whoami.get(WHOAMI, headers=auth_header(fresh, la.id))
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert refused.json()["type"] == "urn:cme-hub:problem:overloaded"
    assert whoami.get(WHOAMI, headers=auth_header(la.key, la.id)).status_code == 200


def test_with_a_slot_free_an_unknown_key_is_looked_up_as_before(whoami: TestClient, session: Session) -> None:
    la = create_partner(session, "W06000002", PartnerKind.local_authority)
    fresh = register_test_key(session, la.id, kid="new-key")
    assert whoami.get(WHOAMI, headers=auth_header(fresh, la.id)).status_code == 200


def test_a_forged_token_naming_a_partners_kid_does_not_push_the_partner_off_the_fast_path(
    whoami: TestClient, session: Session, request: pytest.FixtureRequest
) -> None:
    """A token signed by another key under the LA's own kid fails against the key this process knows. It
    used to make the process forget that key, so the LA's next request needed a registry look-up: with the
    look-ups taken by a flood, the LA itself got 503. Now the forged one alone pays."""
    la = create_partner(session, "W06000003", PartnerKind.local_authority)
    assert whoami.get(WHOAMI, headers=auth_header(la.key, la.id)).status_code == 200  # now known here
    forged = auth_header(new_key("ES256", la.key.kid), la.id)
    assert whoami.get(WHOAMI, headers=forged).status_code == 401  # read the registry: a bad signature
    request.getfixturevalue("lookups_busy")
    assert whoami.get(WHOAMI, headers=auth_header(new_key("ES256", la.key.kid), la.id)).status_code == 503
    assert whoami.get(WHOAMI, headers=auth_header(la.key, la.id)).status_code == 200
