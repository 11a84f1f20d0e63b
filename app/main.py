"""Application factory: settings, database, middleware, error handlers, routers."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from app.audit import router as audit_router
from app.audit.service import READS_WAIT_FOR_FLUSH, read_event_writer
from app.cme import router as cme_router
from app.core import health
from app.core.config import Settings, get_settings
from app.core.dates import bind_service_today
from app.core.db import make_engine, make_session_factory
from app.core.errors import PROBLEM_MEDIA_TYPE, install_error_handlers
from app.core.middleware import (
    AdmissionLimitMiddleware,
    BodySizeLimitMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
)
from app.core.openapi import refine as refine_openapi
from app.jobs import router as jobs_router
from app.jobs.worker import BackgroundWorker, Worker
from app.matching import router as matching_router
from app.matching.service import RealtimeIndexHolder
from app.observability import metrics
from app.observability import router as metrics_router
from app.security import router as security_router
from app.security.clock import ClockDep, SystemClock
from app.security.middleware import AuthenticateFirstMiddleware
from app.security.rate_limit import PartnerRateLimiter
from app.security.replay import jti_burner
from app.security.service_key import load_or_create_service_signer
from app.statistics import router as statistics_router
from app.submissions import router as submissions_router
from app.wiring.jobs import default_handlers, default_ticks


async def _bind_service_today(clock: ClockDep) -> None:
    """Before parameters and bodies are validated, so that date ranges follow the service clock. Async: a
    sync dependency would run in a worker thread, whose context does not reach validation."""
    bind_service_today(clock.now().date())


def _operation_id(route: APIRoute) -> str:
    return route.name


def _problem_only_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI documents 422 as its own JSON shape; we answer problem+json, so say so."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                if path != "/healthz":  # admission control (AdmissionLimitMiddleware) may answer any other
                    operation["responses"].setdefault("503", _OVERLOADED)
                if path.startswith("/v1/"):  # AuthenticateFirstMiddleware: the partner's rate limit
                    operation["responses"].setdefault("429", _RATE_LIMITED)
                if "requestBody" in operation:  # BodySizeLimitMiddleware: a body trickled in too slowly
                    operation["responses"].setdefault("408", _BODY_TOO_SLOW)
                invalid = operation.get("responses", {}).get("422")
                if invalid is not None and "application/json" in invalid.get("content", {}):
                    invalid["description"] = "Validation failed; `errors` names the field."
                    invalid["content"] = {
                        PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
                    }
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        refine_openapi(schema)
        app.openapi_schema = schema
    return app.openapi_schema


_OVERLOADED = {
    "description": "At capacity (`urn:cme-hub:problem:overloaded`, with Retry-After): try again shortly.",
    "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


_BODY_TOO_SLOW = {
    "description": "The body did not arrive whole within CME_BODY_READ_TIMEOUT_SECONDS "
    "(`urn:cme-hub:problem:request-timeout`).",
    "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}
_RATE_LIMITED = {
    "description": "This partner's rate limit is spent (`urn:cme-hub:problem:too-many-requests`, with "
    "Retry-After): retry later.",
    "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # More threads than cores and connections only queue inside the process, each holding a
        # connection and contending for the GIL (with the audit lock held, that convoy stalled the
        # whole process under load); waiting requests are cheaper in the event loop.
        to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        app.state.service_signer = load_or_create_service_signer(settings.service_key_file)
        engine = make_engine(settings.database_url)
        app.state.engine = engine
        app.state.session_factory = make_session_factory(
            engine, info={READS_WAIT_FOR_FLUSH: settings.audit_read_events_wait_for_flush}
        )
        app.state.jti_burner = jti_burner(
            settings.database_url, app.state.session_factory, max_connections=settings.request_threads
        )
        await app.state.jti_burner.open()
        app.state.read_audit = read_event_writer(
            settings.database_url,
            app.state.session_factory,
            max_connections=settings.request_threads,
            reads_wait_for_flush=settings.audit_read_events_wait_for_flush,
        )
        await app.state.read_audit.open()
        # The real-time matching index builds in the background from start-up; by default the job worker
        # runs in-process.
        app.state.match_index = RealtimeIndexHolder(app.state.session_factory)
        app.state.match_index.start()
        worker = BackgroundWorker(
            Worker(
                app.state.session_factory,
                default_handlers(settings),
                poll_seconds=settings.worker_poll_seconds,
                ticks=default_ticks(settings),
                on_job_ran=metrics.job_ran,
            )
        )
        if settings.run_worker_in_process:
            worker.start()
        # Everything loaded so far (modules, the app, the ORM and pydantic machinery) lives as long as the
        # process: frozen out of the collector, a full collection no longer walks it (tens of
        # milliseconds every few thousand requests, felt by every request waiting at that moment).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if settings.run_worker_in_process:
                worker.stop()
            app.state.match_index.stop()
            await app.state.read_audit.close()
            await app.state.jti_burner.close()
            engine.dispose()

    app = FastAPI(
        title="cme-hub",
        version="0.1.0",
        summary="Signed data exchange and matching for the Welsh Children Missing Education database pilot.",
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        dependencies=[Depends(_bind_service_today)],
    )
    app.state.settings = settings
    app.state.clock = SystemClock()  # tests swap in a frozen clock
    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        json_max_bytes=settings.max_json_body_bytes,
        large_paths=frozenset({"/v1/submissions"}),
        read_timeout=settings.body_read_timeout_seconds,
    )
    # Outside the body limit: a request whose bearer token does not verify, or whose partner is over its
    # rate, is refused before its body is looked at.
    app.add_middleware(
        AuthenticateFirstMiddleware,
        limiter=PartnerRateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
    )
    app.add_middleware(
        AdmissionLimitMiddleware, limit=settings.request_threads, wait_seconds=settings.admission_wait_seconds
    )
    app.add_middleware(RequestContextMiddleware, observe=metrics.observe_answered)
    # Outermost: the headers reach every response, the 500 that RequestContextMiddleware answers included.
    docs = (app.docs_url, app.swagger_ui_oauth2_redirect_url, app.redoc_url, app.openapi_url)
    app.add_middleware(
        SecurityHeadersMiddleware,
        hsts_seconds=settings.hsts_seconds,
        docs_paths=frozenset(path for path in docs if path is not None),
    )
    app.include_router(health.router)
    app.include_router(security_router.router)
    app.include_router(submissions_router.router)
    app.include_router(jobs_router.router)
    app.include_router(matching_router.router)
    app.include_router(cme_router.router)
    app.include_router(statistics_router.router)
    app.include_router(audit_router.router)
    app.include_router(metrics_router.router)
    app.openapi = lambda: _problem_only_openapi(app)  # type: ignore[method-assign]
    return app


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document, generated without touching a database (for `cme openapi` and the drift test)."""
    return create_app(Settings()).openapi()
