"""A response carrying children's data is never stored by a cache, nor sniffed (issue 11, item 6)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.cme.conftest import Headers, make_record


def test_a_child_s_record_is_never_stored_nor_sniffed(
    session: Session, client: TestClient, headers: Headers
) -> None:
    record_id = make_record(session, client, headers)
    for path in (f"/v1/cme/records/{record_id}", "/v1/cme/records"):
        response = client.get(path, headers=headers())
        assert response.status_code == 200
        assert response.json()  # the child's data is in it
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
