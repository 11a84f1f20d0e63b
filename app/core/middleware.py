"""Pure ASGI middleware (BaseHTTPMiddleware would break context variables)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
import time
import uuid
import weakref
from collections.abc import Callable
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import (
    Overloaded,
    PayloadTooLarge,
    ProblemError,
    RequestTimeout,
    internal_error_response,
    problem_response,
)
from app.core.logging import RequestFacts, request_facts_var, request_id_var

logger = logging.getLogger("cme.access")
error_logger = logging.getLogger("cme.errors")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

RequestObserver = Callable[[RequestFacts, str, "int | None", float], None]
"""Told of every answered request (its facts, method, status, seconds); the app passes the metrics one."""


class RequestContextMiddleware:
    """Binds a request id (taken from a well-formed X-Request-ID or made up), echoes it, logs the outcome.

    It also answers an unexpected exception, while the id is still bound: a 500 problem carrying the id in
    its body and header, and one log line with it. (Starlette's own last-resort handler sits outside every
    middleware, where the id is gone; it now only sees an exception raised after the response started,
    which nothing can answer any more.)
    """

    def __init__(self, app: ASGIApp, observe: RequestObserver | None = None) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else str(uuid.uuid4())
        token = request_id_var.set(request_id)
        facts = RequestFacts()
        facts_token = request_facts_var.set(facts)
        started = time.perf_counter()
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            facts.route = route_template(scope)  # the error's log line names its route too
            error_logger.exception("unhandled error")
            if status is not None:
                raise
            await internal_error_response(scope["path"])(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            facts.route = route_template(scope)
            if self.observe is not None:
                self.observe(facts, scope["method"], status, seconds)
            # The partner (an id, never a personal field) once authenticated; `route` is the template.
            logger.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                },
            )
            request_facts_var.reset(facts_token)
            request_id_var.reset(token)


def route_template(scope: Scope) -> str | None:
    """The path template of the route that answered (`/v1/cme/records/{record_id}`), never the raw path;
    for a request answered before routing (refused by a middleware), the template it would have reached;
    None when no route matches."""
    template = getattr(scope.get("route"), "path_format", None)
    if isinstance(template, str):
        return template
    app = scope.get("app")
    if app is None or not hasattr(app, "openapi"):
        return None
    for pattern, documented in _documented_templates(app):
        if pattern.fullmatch(scope["path"]):
            return documented
    return None


_templates: weakref.WeakKeyDictionary[Any, list[tuple[re.Pattern[str], str]]] = weakref.WeakKeyDictionary()


def _documented_templates(app: Any) -> list[tuple[re.Pattern[str], str]]:
    """The app's documented path templates as patterns (a `{name}` segment matches one path segment)."""
    known = _templates.get(app)
    if known is None:
        known = [
            (re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path))), path)
            for path in app.openapi().get("paths", {})
        ]
        _templates[app] = known
    return known


class _BodyTooLarge(StarletteHTTPException):
    """Raised from `receive` once a body passes its route's limit. An HTTP exception, so that the framework's
    body parsing lets it through (it turns any other error into a 400) and the app answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _limited_to(limit), {"Connection": "close"})


def _limited_to(limit: int) -> str:
    return f"Request bodies are limited to {limit} bytes here."


class _BodyTooSlow(StarletteHTTPException):
    """Raised from `receive` once a body has not arrived whole within the read timeout (answered 408)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            408, f"The request body must arrive whole within {seconds:g} seconds.", {"Connection": "close"}
        )


class BodySizeLimitMiddleware:
    """Answers 413 as soon as a body is known to exceed its route's limit, before it is read whole: signed
    submissions may be large (`max_bytes`), every other body is a small JSON document (`json_max_bytes`).
    A declared length is judged at once; a chunked body as it arrives.

    And 408 when the body has not arrived whole `read_timeout` seconds after the request reached this
    middleware: a client trickling a body (a few bytes now and then, each inside any per-read timeout)
    holds a request slot no longer than that. Once the body is complete, `receive` is passed through as it
    is (a streaming response listens on it for the client going away)."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        json_max_bytes: int,
        large_paths: frozenset[str],
        read_timeout: float = 120.0,
    ) -> None:
        self.app = app
        self.large_max_bytes = max_bytes
        self.json_max_bytes = json_max_bytes
        self.large_paths = large_paths
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.large_max_bytes if scope["path"] in self.large_paths else self.json_max_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(scope, receive, send, PayloadTooLarge(_limited_to(limit)))
            return
        received = 0
        started = False
        complete = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.read_timeout

        async def counting_receive() -> Message:
            nonlocal received, complete
            if complete:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):  # no task per call, unlike wait_for
                    message = await receive()
            except TimeoutError:
                raise _BodyTooSlow(self.read_timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
                complete = not message.get("more_body", False)
                if not complete and loop.time() > deadline:
                    raise _BodyTooSlow(self.read_timeout)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._reject(scope, receive, send, PayloadTooLarge(_limited_to(limit)))
        except _BodyTooSlow as slow:
            if started:
                raise
            await self._reject(scope, receive, send, RequestTimeout(slow.detail))

    async def _reject(self, scope: Scope, receive: Receive, send: Send, error: ProblemError) -> None:
        response = problem_response(
            error.status,
            error.slug,
            error.title,
            detail=error.detail,
            instance=scope["path"],
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


class AdmissionLimitMiddleware:
    """At most `limit` requests in progress per process; the rest wait in the event loop, where waiting
    costs nothing, and after `wait_seconds` get 503 with Retry-After instead of queueing without bound.

    Without it, every request accepted went on into the thread pool: under overload hundreds were in
    flight, each holding a database connection while waiting for a thread to run its commit, until the
    pool ran out and requests failed with 500 after minutes. The liveness probe is never held back.
    """

    def __init__(self, app: ASGIApp, limit: int, wait_seconds: float) -> None:
        self.app = app
        self.wait_seconds = wait_seconds
        self._slots = asyncio.Semaphore(limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz":
            await self.app(scope, receive, send)
            return
        try:
            await asyncio.wait_for(self._slots.acquire(), self.wait_seconds)
        except TimeoutError:
            error = Overloaded("The service is at capacity; retry shortly.")
            response = problem_response(
                error.status, error.slug, error.title, detail=error.detail, instance=scope["path"],
                headers={"Retry-After": "1"},
            )  # fmt: skip
            await response(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._slots.release()


# The docs pages (FastAPI's defaults) load Swagger UI and ReDoc from jsDelivr, ReDoc's fonts from Google and
# the favicon from fastapi.tiangolo.com; each page starts with an inline script, allowed by its hash only.
_DOCS_POLICY = (
    "default-src 'none'",
    "script-src https://cdn.jsdelivr.net",
    "style-src https://cdn.jsdelivr.net https://fonts.googleapis.com 'unsafe-inline'",
    "font-src https://fonts.gstatic.com",
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.jsdelivr.net",
    "connect-src 'self'",
    "worker-src blob:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
)
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def docs_content_security_policy(page: bytes) -> str:
    """The docs pages' policy, the page's own inline scripts allowed by their SHA-256 (no 'unsafe-inline')."""
    hashes = [
        f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(page)
    ]
    return "; ".join(" ".join([d, *hashes]) if d.startswith("script-src") else d for d in _DOCS_POLICY)


class SecurityHeadersMiddleware:
    """Headers every response carries (decision 0014): no MIME sniffing, no referrer, HSTS when configured
    (TLS ends in front of the service), `no-store` on every API response (`/v1/`, problems included: any of
    them may carry a child's data); the docs pages also refuse framing and get a content security policy."""

    def __init__(self, app: ASGIApp, *, hsts_seconds: int, docs_paths: frozenset[str]) -> None:
        self.app = app
        self.docs_paths = docs_paths
        self.always = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
        if hsts_seconds:
            self.always.append((b"strict-transport-security", f"max-age={hsts_seconds}".encode()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in self.docs_paths:
            await self._docs(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = self._with_common(message)
                if path.startswith("/v1/"):
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _with_common(self, start: Message) -> MutableHeaders:
        start["headers"] = [*start.get("headers", []), *self.always]
        return MutableHeaders(scope=start)

    async def _docs(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The docs pages are small: held whole, so that their inline scripts can be hashed into the policy."""
        start: Message | None = None
        body = bytearray()

        async def hold(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body", False):
                return
            headers = self._with_common(start)
            headers["X-Frame-Options"] = "DENY"
            headers["Content-Security-Policy"] = docs_content_security_policy(bytes(body))
            await send(start)
            await send({"type": "http.response.body", "body": bytes(body)})

        await self.app(scope, receive, hold)
