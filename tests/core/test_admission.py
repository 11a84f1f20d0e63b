"""Load behaviour: a bounded number of requests in progress (the rest wait briefly, then get 503); the
started app frozen out of the garbage collector."""

from __future__ import annotations

import asyncio
import gc

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.errors import PROBLEM_MEDIA_TYPE
from app.core.middleware import AdmissionLimitMiddleware


def _app(release: asyncio.Event, started: asyncio.Event, wait_seconds: float = 0.2) -> FastAPI:
    app = FastAPI()

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        started.set()
        await release.wait()
        return {"done": "yes"}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(AdmissionLimitMiddleware, limit=1, wait_seconds=wait_seconds)
    return app


@pytest.mark.anyio
async def test_a_request_beyond_the_limit_waits_then_gets_503_and_the_first_still_completes() -> None:
    release, started = asyncio.Event(), asyncio.Event()
    transport = httpx.ASGITransport(app=_app(release, started))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        first = asyncio.create_task(client.get("/slow"))
        await started.wait()
        refused = await client.get("/slow")
        assert refused.status_code == 503
        assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["type"] == "urn:cme-hub:problem:overloaded"
        # The liveness probe is never held back.
        assert (await client.get("/healthz")).status_code == 200
        release.set()
        assert (await first).status_code == 200
        # The slot is free again.
        assert (await client.get("/slow")).status_code == 200


@pytest.mark.anyio
async def test_a_waiting_request_is_admitted_when_a_slot_frees_in_time() -> None:
    release, started = asyncio.Event(), asyncio.Event()
    # A generous wait: this test is about being admitted, and a busy CI machine must not turn it into 503.
    transport = httpx.ASGITransport(app=_app(release, started, wait_seconds=10))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        first = asyncio.create_task(client.get("/slow"))
        await started.wait()
        second = asyncio.create_task(client.get("/slow"))
        await asyncio.sleep(0.05)
        release.set()
        assert (await first).status_code == 200
        assert (await second).status_code == 200


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_the_started_app_is_frozen_out_of_the_garbage_collector(app: FastAPI) -> None:
    """Start-up objects live as long as the process; full collections must not walk them per request."""
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    with TestClient(app):
        assert gc.get_freeze_count() > 0
