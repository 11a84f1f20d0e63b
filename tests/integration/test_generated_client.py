"""A client generated from the committed `openapi/openapi.json` (openapi-python-client 0.29, as `make client`
makes it) covers every operation, and plays an LA case system's day over real HTTP (issue 12, item 1).

The service runs under uvicorn on a loopback port with its job worker; every request carries a fresh
signed bearer token (an `httpx.Auth` mints one per request, as docs/clients.md shows: the service burns
each jti, so a reused token would be refused). The school roll goes in through the generated function, as
the compact JWS in a JSON string; the health list as the JWS itself (`application/jose`); the jobs are followed, the candidates paged, one
confirmed and corrected with If-Match (and refused with 412 on the stale tag), its history read,
statistics read as JSON and CSV, and a child matched in real time.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import time
import uuid
from collections.abc import Generator
from typing import Any

import httpx
from sqlalchemy.orm import Session

from app.partners.models import PartnerKind
from tests.integration.conftest import CLIENT_PACKAGE, OPENAPI, GeneratedClient, LiveServer
from tests.submissions.conftest import child, payload, pupil
from tests.support.partners import PILOT_LAS, TestPartner, create_partner
from tests.support.tokens import bearer_token, signed_body

LA = PILOT_LAS[0]
HEALTH_BOARD = "W11000023"
SCHOOL = {"number": "6602001", "name": "Ysgol Gynradd Synthetig"}
# Synthetic children: Siân is on the LA's school roll; Tomos and Anwen are on no register.
SIAN = child()
TOMOS = child(
    given_name="Tomos",
    middle_names=None,
    family_name="Evans",
    date_of_birth="2013-11-11",
    address={"lines": ["1 Lon Isaf"], "town": "Rhyl", "postcode": "LL18 1AA"},
)
ANWEN = child(
    given_name="Anwen",
    middle_names=None,
    family_name="Morgan",
    date_of_birth="2012-05-20",
    address={"lines": ["4 Heol Fawr"], "town": "Aberaeron", "postcode": "SA46 0AA"},
)
CONFIRM = {
    "ordinarily_resident": True,
    "not_registered_pupil": True,
    "education_may_not_be_suitable": True,
    "basis": "The family told the attendance officer the child attends no school.",
}


def _api(name: str) -> Any:
    return importlib.import_module(f"{CLIENT_PACKAGE}.{name}")


class FreshToken(httpx.Auth):
    """A new signed bearer token (new jti) on every request."""

    def __init__(self, partner: TestPartner, claims: dict[str, Any]) -> None:
        self.partner = partner
        self.claims = claims
        self.issued = 0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.issued += 1
        request.headers["Authorization"] = (
            f"Bearer {bearer_token(self.partner.key, self.partner.id, claims=self.claims)}"
        )
        yield request


def _client(server: LiveServer, partner: TestPartner, role: str | None = None) -> Any:
    claims = {"officer": {"id": "officer-1", "role": role}} if role else {}
    return _api("client").AuthenticatedClient(
        base_url=server.url,
        token="minted-per-request",  # replaced by FreshToken on every request
        httpx_args={"auth": FreshToken(partner, claims)},
        raise_on_unexpected_status=True,
    )


def _wait_for_job(client: Any, job_id: uuid.UUID) -> Any:
    get_job = _api("api.jobs.get_job")
    deadline = time.monotonic() + 60
    while True:
        job = get_job.sync(job_id, client=client)
        if job.status in ("succeeded", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def test_the_generated_client_has_every_operation(generated_client: GeneratedClient) -> None:
    document = json.loads(OPENAPI.read_text(encoding="utf-8"))
    operations = {spec["operationId"] for item in document["paths"].values() for spec in item.values()}
    api = generated_client.root / CLIENT_PACKAGE / "api"
    generated = {path.stem for path in api.rglob("*.py") if path.stem != "__init__"}
    assert generated == operations
    # The one thing it skips: the application/jose body of POST /v1/submissions, a content type it does
    # not know; the operation takes the same JWS as a JSON string (application/json).
    warnings = [line for line in generated_client.output.splitlines() if line.startswith("WARNING")]
    assert warnings == ["WARNING parsing POST /v1/submissions within submissions."], generated_client.output
    assert "Unsupported content type application/jose" in generated_client.output


def test_an_la_case_system_day(
    live_server: LiveServer, generated_client: GeneratedClient, session: Session
) -> None:
    la = create_partner(session, LA, PartnerKind.local_authority)
    board = create_partner(session, HEALTH_BOARD, PartnerKind.local_health_board)
    with (
        _client(live_server, la) as la_system,
        _client(live_server, la, "case_officer") as officer,
        _client(live_server, la, "statistics") as statistician,
        _client(live_server, board) as health_board,
    ):
        _day(la, board, la_system, officer, statistician, health_board)


def _day(
    la: TestPartner, board: TestPartner, la_system: Any, officer: Any, statistician: Any, health_board: Any
) -> None:
    types = _api("types")
    models = _api("models")
    create_submission = _api("api.submissions.create_submission")
    today = dt.datetime.now(dt.UTC).date()

    # The LA's case system sends its school roll: the compact JWS as a JSON string.
    roll = payload(la.id, [pupil(**SIAN, school=SCHOOL)], kind="school_roll", recipient=None)
    roll["as_of"] = today.isoformat()
    sent = create_submission.sync_detailed(client=la_system, body=signed_body(la.key, roll).decode("ascii"))
    assert sent.status_code == 201, sent.content
    assert isinstance(sent.parsed, models.SubmissionStatus)
    assert sent.parsed.receipt.accepted == 1
    assert _wait_for_job(la_system, sent.parsed.job_id).status == "succeeded"

    # The health board sends its list as the JWS itself (application/jose), through the generated client's
    # httpx client; the answer parses with the generated model all the same.
    health = payload(board.id, [SIAN, TOMOS, ANWEN], recipient=la.id)
    health["as_of"] = today.isoformat()
    raw = health_board.get_httpx_client().post(
        "/v1/submissions",
        content=signed_body(board.key, health),
        headers={"Content-Type": "application/jose"},
    )
    assert raw.status_code == 201, raw.text
    listed = models.SubmissionStatus.from_dict(raw.json())
    assert listed.receipt.record_count == 3
    job = _wait_for_job(health_board, listed.job_id)
    assert job.status == "succeeded", job.error

    # Page through the candidates one at a time.
    list_candidates = _api("api.cme.list_cme_candidates")
    seen: list[Any] = []
    cursor: Any = types.UNSET
    while True:
        page = list_candidates.sync(client=officer, limit=1, cursor=cursor)
        assert isinstance(page, models.CandidatePage)
        seen += page.items
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert sorted(candidate.given_name for candidate in seen) == ["Anwen", "Tomos"]
    tomos = next(candidate for candidate in seen if candidate.given_name == "Tomos")

    # Confirm one: a CME record, with its ETag and Location.
    confirmed = _api("api.cme.confirm_cme_candidate").sync_detailed(
        tomos.id, client=officer, body=models.ConfirmCandidate.from_dict(CONFIRM)
    )
    assert confirmed.status_code == 201, confirmed.content
    record_id = confirmed.parsed.id
    assert confirmed.headers["Location"] == f"/v1/cme/records/{record_id}"
    read = _api("api.cme.get_cme_record").sync_detailed(record_id, client=officer)
    assert read.status_code == 200 and read.parsed.given_name == "Tomos"
    first_tag = read.headers["ETag"]
    assert first_tag == confirmed.headers["ETag"]

    # Correct it with If-Match; the stale tag is then refused with 412 as problem+json.
    correct = _api("api.cme.correct_cme_record")
    patch = models.RecordPatch(reason="The family confirmed the spelling.", given_name="Tomas")
    corrected = correct.sync_detailed(record_id, client=officer, body=patch, if_match=first_tag)
    assert corrected.status_code == 200, corrected.content
    assert corrected.parsed.given_name == "Tomas"
    assert corrected.headers["ETag"] != first_tag
    stale = correct.sync_detailed(record_id, client=officer, body=patch, if_match=first_tag)
    assert stale.status_code == 412
    assert isinstance(stale.parsed, models.Problem)
    assert stale.parsed.type_ == "urn:cme-hub:problem:precondition-failed"
    assert stale.headers["Content-Type"] == "application/problem+json"

    history = _api("api.cme.get_cme_record_history").sync(record_id, client=officer)
    assert isinstance(history, models.History)
    assert len(history.events) >= 2

    missing = _api("api.cme.get_cme_record").sync_detailed(uuid.uuid4(), client=officer)
    assert missing.status_code == 404 and isinstance(missing.parsed, models.Problem)

    # Statistics, as JSON and as CSV, for the LA's statistics role.
    figures = _api("api.statistics.get_statistics").sync(client=statistician)
    assert isinstance(figures, models.StatisticsRead)
    assert [area.area for area in figures.areas][:1] == [la.id]
    csv_text = _api("api.statistics.get_statistics_csv").sync(client=statistician)
    assert isinstance(csv_text, str)
    header, *rows = csv_text.splitlines()
    assert header.startswith("area,name,as_of,period,")
    assert rows and rows[0].startswith(f"{la.id},")

    # Real-time matching: Siân is on this LA's roll.
    matched = _api("api.matching.match_records").sync(
        client=officer, body=models.MatchRequest.from_dict({"records": [SIAN, TOMOS]})
    )
    assert isinstance(matched, models.MatchResponse)
    sian, tomos_result = matched.results
    assert sian.candidates[0].la_id == la.id and sian.candidates[0].outcome == "matched"
    assert tomos_result.candidates == []

    # Every request above carried a token of its own (the service refuses a jti seen before).
    assert sum(client.get_httpx_client().auth.issued for client in (la_system, officer)) >= 10
