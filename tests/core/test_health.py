from __future__ import annotations

from fastapi.testclient import TestClient


def test_healthz_reports_process_up(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


def test_readyz_reports_database_reachable(client: TestClient) -> None:
    response = client.get("/readyz", headers={"X-Request-ID": "probe-1"})
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}
    assert response.headers["x-request-id"] == "probe-1"


def test_unknown_path_is_problem_json(client: TestClient) -> None:
    response = client.get("/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:cme-hub:problem:not-found"
    assert body["status"] == 404
    assert body["request_id"] == response.headers["x-request-id"]
