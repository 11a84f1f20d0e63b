"""Security headers on every response (issue 11, item 6; decision 0014), and no server banner."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app
from tests.test_smoke_embedded import embedded  # noqa: F401  (the real `cme serve` on SQLite)

COMMON = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}


def _common(response: httpx.Response) -> dict[str, str | None]:
    return {name: response.headers.get(name) for name in COMMON}


def test_a_problem_from_the_api_is_never_stored_nor_sniffed(client: TestClient) -> None:
    response = client.get("/v1/cme/records")  # unauthenticated: a problem, still under /v1/
    assert response.status_code == 401
    assert _common(response) == COMMON
    assert response.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in response.headers  # off unless configured


def test_a_500_carries_the_headers_too(app: FastAPI) -> None:
    def boom() -> None:
        raise RuntimeError("unexpected")

    app.add_api_route("/v1/test-only/boom", boom)
    shaped = {"Authorization": "Bearer aGVhZGVy.Y2xhaW1z.c2lnbmF0dXJl"}  # past the bearer check
    response = TestClient(app, raise_server_exceptions=False).get("/v1/test-only/boom", headers=shaped)
    assert response.status_code == 500
    assert _common(response) == COMMON
    assert response.headers["cache-control"] == "no-store"


def test_operations_routes_get_the_common_headers_without_no_store(client: TestClient) -> None:
    response = client.get("/healthz")
    assert _common(response) == COMMON
    assert "cache-control" not in response.headers
    assert "x-frame-options" not in response.headers and "content-security-policy" not in response.headers


def test_hsts_when_configured(settings: Settings) -> None:
    with TestClient(create_app(settings.model_copy(update={"hsts_seconds": 31536000}))) as client:
        response = client.get("/healthz")
    assert response.headers["strict-transport-security"] == "max-age=31536000"


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
def test_the_docs_refuse_framing_and_load_only_what_they_need(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert _common(response) == COMMON
    assert response.headers["x-frame-options"] == "DENY"
    policy = dict(d.split(" ", 1) for d in response.headers["content-security-policy"].split("; "))
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    # Every script the page loads is allowed, each inline one by its hash only, and nothing else.
    page = response.content
    external = {f"https://{host.decode()}" for host in re.findall(rb'<script src="https://([^/"]+)/', page)}
    inline = {
        f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in re.findall(rb"<script>(.*?)</script>", page, re.DOTALL)
    }
    assert external <= {"https://cdn.jsdelivr.net"}
    assert set(policy["script-src"].split()) == {"https://cdn.jsdelivr.net"} | inline
    if path == "/docs":
        assert inline  # Swagger UI starts from one inline script
    for stylesheet in re.findall(rb'<link[^>]+href="https://([^/"]+)/', page):
        allowed = policy["style-src"].split() + policy["img-src"].split()
        assert f"https://{stylesheet.decode()}" in allowed


def test_the_real_server_announces_no_banner(embedded: tuple[str, dict[str, str], object]) -> None:  # noqa: F811
    url, _, _ = embedded
    response = httpx.get(f"{url}/v1/cme/records")
    assert "server" not in response.headers
    assert "date" in response.headers
    assert _common(response) == COMMON
    assert response.headers["cache-control"] == "no-store"
    assert "x-request-id" in response.headers
