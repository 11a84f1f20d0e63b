"""`GET /metrics` (decision 0020) over real HTTP through the ASGI app against PostgreSQL: who may read it,
what it counts, and that no personal data reaches any label; the access log names the partner."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from app.core.config import Settings
from app.core.logging import JsonFormatter
from app.jobs.worker import Worker
from app.main import create_app
from app.observability import metrics
from app.partners.models import PartnerKind
from app.security.dependencies import authenticate
from app.wiring.jobs import default_handlers
from tests.support.partners import TestPartner, create_partner
from tests.support.tokens import auth_header, signed_body

TOKEN = "operator-scrape-token-0123456789"
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}
JOSE = {"Content-Type": "application/jose"}
PILOT_LA = "W06000001"
# Synthetic children whose every value is searched for in the metrics output.
CHILDREN: list[dict[str, Any]] = [
    {
        "given_name": "Gwenllian",
        "middle_names": "Eirlys",
        "family_name": "Prydderch",
        "date_of_birth": "2014-06-02",
        "address": {"lines": ["12 Heol Tegeingl"], "town": "Llangefni", "postcode": "LL77 7QX"},
        "nhs_number": "943 476 5919",
    },
    {
        "given_name": "Tomos",
        "family_name": "Llewellyn-Rhys",
        "date_of_birth": "2012-01-15",
        "address": {"lines": ["3 Stryd y Bont"], "town": "Caernarfon", "postcode": "LL55 1SR"},
    },
    {"given_name": "Nia", "family_name": "Trefor", "date_of_birth": "2030-02-01"},  # rejected
]


@pytest.fixture
def metrics_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"metrics_token": SecretStr(TOKEN), "nhs_number_enabled": True})


@pytest.fixture
def metrics_client(metrics_settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(metrics_settings)) as client:
        yield client


@pytest.fixture
def board(session: Any) -> TestPartner:
    create_partner(session, PILOT_LA, PartnerKind.local_authority)
    return create_partner(session, "W11000023", PartnerKind.local_health_board)


def scrape(client: TestClient) -> str:
    response: httpx.Response = client.get("/metrics", headers=OPERATOR)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith((name + "{", name + " ")):
            continue
        series, value = line.rsplit(" ", 1)
        found = dict(re.findall(r'(\w+)="([^"]*)"', series))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(value)
    return 0.0


def submit(client: TestClient, board: TestPartner, records: list[dict[str, Any]]) -> httpx.Response:
    body = {
        "submission_id": "0b4f6a52-6c1e-4c43-9a55-2f0f5d0b6f11",
        "kind": "health_register",
        "sender": board.id,
        "recipient": PILOT_LA,
        "as_of": "2025-04-30",
        "records": records,
    }
    response: httpx.Response = client.post(
        "/v1/submissions",
        content=signed_body(board.key, body),
        headers={**JOSE, **auth_header(board.key, board.id)},
    )
    return response


class TestWhoMayRead:
    def test_the_operator_token_reads_them(self, metrics_client: TestClient) -> None:
        assert "cme_http_request_duration_seconds" in scrape(metrics_client)

    def test_no_token_or_a_wrong_one_is_the_generic_401(self, metrics_client: TestClient) -> None:
        for headers in ({}, {"Authorization": "Bearer not-the-token"}, {"Authorization": f"Basic {TOKEN}"}):
            response = metrics_client.get("/metrics", headers=headers)
            assert response.status_code == 401, headers
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["type"] == "urn:cme-hub:problem:unauthorized"

    def test_a_partner_token_is_refused_by_the_table(
        self, metrics_client: TestClient, board: TestPartner
    ) -> None:
        response = metrics_client.get("/metrics", headers=auth_header(board.key, board.id))
        assert response.status_code == 403
        assert response.json()["type"] == "urn:cme-hub:problem:operation-not-allowed"

    def test_without_a_configured_token_nobody_reads_them(self, client: TestClient) -> None:
        assert client.get("/metrics", headers=OPERATOR).status_code == 401


def test_submissions_records_latency_and_match_outcomes_are_counted_without_personal_data(
    metrics_client: TestClient, metrics_settings: Settings, board: TestPartner, engine: Engine
) -> None:
    before = scrape(metrics_client)
    response = submit(metrics_client, board, CHILDREN)
    assert response.status_code == 201, response.text
    assert submit(metrics_client, board, CHILDREN).status_code == 200  # a retry: replayed
    queued = scrape(metrics_client)
    assert sample(queued, "cme_jobs", kind="match_health_list", status="queued") == 1
    from app.core.db import make_session_factory

    # Wired as `app.main` and `cme worker` wire it.
    worker = Worker(
        make_session_factory(engine), default_handlers(metrics_settings), on_job_ran=metrics.job_ran
    )
    assert worker.run_until_idle() == 1
    after = scrape(metrics_client)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("cme_submissions_total", kind="health_register", fate="stored") == 1
    assert delta("cme_submissions_total", kind="health_register", fate="replayed") == 1
    assert delta("cme_submission_records_total", kind="health_register", fate="accepted") == 2
    assert delta("cme_submission_records_total", kind="health_register", fate="rejected") == 1
    assert delta("cme_match_outcomes_total", outcome="unmatched") == 2  # no register holds them
    assert delta("cme_job_duration_seconds_count", kind="match_health_list", status="succeeded") == 1
    assert sample(after, "cme_jobs", kind="match_health_list", status="queued") == 0
    assert (
        delta("cme_http_request_duration_seconds_count", route="/v1/submissions", method="POST", status="201")
        == 1
    )
    # No value of any child (names, dates, postcodes, NHS number, address) and no partner id in any label.
    values = {v for child in CHILDREN for v in _strings(child)} | {"943 476 5919", "9434765919", board.id}
    values |= {"LL777QX", "LL551SR", "2014-06-02", "W06000001"}
    leaked = sorted(v for v in values if v.lower() in after.lower())
    assert leaked == []


def test_routes_are_labelled_by_template_never_by_raw_path(
    metrics_client: TestClient, board: TestPartner
) -> None:
    record = "6f1c3a52-3c1e-4c43-9a55-2f0f5d0b6f11"
    metrics_client.get(f"/v1/cme/records/{record}", headers=auth_header(board.key, board.id))
    metrics_client.get(f"/v1/cme/records/{record}")  # refused before routing: still the template
    metrics_client.get("/no/such/path/Prydderch")
    text = scrape(metrics_client)
    assert record not in text and "Prydderch" not in text
    assert (
        sample(
            text, "cme_http_request_duration_seconds_count", route="/v1/cme/records/{record_id}", status="403"
        )
        >= 1
    )
    assert (
        sample(
            text, "cme_http_request_duration_seconds_count", route="/v1/cme/records/{record_id}", status="401"
        )
        >= 1
    )
    assert sample(text, "cme_http_request_duration_seconds_count", route="unmatched", status="404") >= 1


def test_authentication_failures_are_counted_by_a_bounded_reason(
    metrics_client: TestClient, board: TestPartner
) -> None:
    before = scrape(metrics_client)
    expired = auth_header(board.key, board.id, claims={"exp": 1, "iat": 0})
    metrics_client.get("/v1/jobs/6f1c3a52-3c1e-4c43-9a55-2f0f5d0b6f11", headers=expired)
    header = {"typ": "cme-auth+jwt", "kid": "key-1", "alg": "ES256", "x-Prydderch": 1}
    odd = auth_header(board.key, board.id, header=header)
    metrics_client.get("/v1/jobs/6f1c3a52-3c1e-4c43-9a55-2f0f5d0b6f11", headers=odd)
    after = scrape(metrics_client)
    total = sum(
        float(line.rsplit(" ", 1)[1])
        for line in after.splitlines()
        if line.startswith("cme_authentication_failures_total{")
    ) - sum(
        float(line.rsplit(" ", 1)[1])
        for line in before.splitlines()
        if line.startswith("cme_authentication_failures_total{")
    )
    assert total == 2
    assert "Prydderch" not in after  # the header member's name stays out of the label
    counted = [line for line in after.splitlines() if line.startswith("cme_authentication_failures_total{")]
    assert sample(after, "cme_authentication_failures_total", reason="header parameters not allowed") >= 1, (
        counted
    )


def test_reason_labels_are_capped() -> None:
    labels = {metrics.reason_label(f"made-up reason {n}: detail") for n in range(metrics.MAX_REASONS + 10)}
    assert "other" in labels and len(labels) <= metrics.MAX_REASONS + 1


class _JsonLines(logging.Handler):
    """Formats each record as it is emitted (the request's context is bound then), as a server's would."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append({"logger": record.name, **json.loads(self.format(record))})


@pytest.fixture
def json_lines() -> Iterator[_JsonLines]:
    handler = _JsonLines()
    loggers = [logging.getLogger(name) for name in ("cme.access", "cme.errors")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    yield handler
    for lg, level in zip(loggers, levels, strict=True):
        lg.removeHandler(handler)
        lg.setLevel(level)


def test_the_access_log_names_the_partner(
    metrics_client: TestClient, board: TestPartner, json_lines: _JsonLines
) -> None:
    response = metrics_client.get(
        "/v1/jobs/6f1c3a52-3c1e-4c43-9a55-2f0f5d0b6f11",
        headers={**auth_header(board.key, board.id), "X-Request-ID": "trace-77"},
    )
    assert response.status_code == 404
    [line] = [e for e in json_lines.lines if e["logger"] == "cme.access" and e["request_id"] == "trace-77"]
    assert line["partner_id"] == board.id
    assert line["route"] == "/v1/jobs/{job_id}" and line["status"] == 404


def test_an_unexpected_error_is_logged_with_request_id_partner_route_and_where(
    app: FastAPI, board: TestPartner, json_lines: _JsonLines
) -> None:
    def boom() -> None:
        raise RuntimeError("Prydderch LL77 7QX")  # a message may hold data: it is not logged

    app.add_api_route("/v1/test-only/boom/{thing}", boom, dependencies=[Depends(authenticate)])
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get(
            "/v1/test-only/boom/1", headers={**auth_header(board.key, board.id), "X-Request-ID": "trace-500"}
        )
        assert response.status_code == 500
    [line] = [e for e in json_lines.lines if e["logger"] == "cme.errors" and e["request_id"] == "trace-500"]
    assert line["partner_id"] == board.id and line["route"] == "/v1/test-only/boom/{thing}"
    assert line["error"] == "RuntimeError"
    assert line["where"].startswith("app/")  # the innermost frame of the service's code: file, line, function
    assert "Prydderch" not in json.dumps(line)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
