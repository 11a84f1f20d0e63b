"""Prometheus metrics (`GET /metrics`, app/observability/router.py; decision 0020): what an operator watches, never whom it is about.

Every label value comes from a small fixed set the code names (route templates, status codes, enums,
problem slugs, job kinds); nothing a caller sends becomes a label as it is (methods outside the standard
ones are `other`, authentication failure reasons are cut to their fixed prefix and capped). No name,
date, postcode, NHS number, partner id or submission id is ever a label (tests/observability/test_metrics.py sends
synthetic children and searches the output for them).

The metrics live in one registry per process. `cme serve --workers N` runs N processes, each with its own
counts; a scrape reaches one of them (sum in PromQL across `instance`/pod, or scrape each process). A
`cme worker` process counts its jobs in its own registry, exposed with `cme worker --metrics-port`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import start_http_server
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.logging import RequestFacts
from app.jobs.models import Job

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_JOB_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"
MAX_REASONS = 64

REQUEST_SECONDS = Histogram(
    "cme_http_request_duration_seconds",
    "Time to answer a request, by route template (never the raw path), method and status.",
    ["route", "method", "status"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
AUTH_FAILURES = Counter(
    "cme_authentication_failures",
    "Requests refused with the generic 401, by the reason that is logged (never returned).",
    ["reason"],
    registry=REGISTRY,
)
SUBMISSIONS = Counter(
    "cme_submissions",
    "Signed submissions by kind and fate: stored, replayed (a retry answered with the original receipt).",
    ["kind", "fate"],
    registry=REGISTRY,
)
SUBMISSIONS_REFUSED = Counter(
    "cme_submissions_refused",
    "Signed submissions refused after authentication, by problem type (nothing stored).",
    ["problem"],
    registry=REGISTRY,
)
SUBMISSION_RECORDS = Counter(
    "cme_submission_records",
    "Records of stored submissions by kind and fate (accepted, flagged, rejected); rate() is records/s.",
    ["kind", "fate"],
    registry=REGISTRY,
)
MATCH_OUTCOMES = Counter(
    "cme_match_outcomes",
    "Health-list records matched by the matching rounds, by outcome (matched, possible, unmatched).",
    ["outcome"],
    registry=REGISTRY,
)
JOB_SECONDS = Histogram(
    "cme_job_duration_seconds",
    "Time a worker spent running a job, by job kind and how the run ended (succeeded, failed, deferred).",
    ["kind", "status"],
    buckets=_JOB_BUCKETS,
    registry=REGISTRY,
)
JOBS = Gauge(
    "cme_jobs",
    "Jobs in the queue by kind and status (queued, running), read from the database at each scrape.",
    ["kind", "status"],
    registry=REGISTRY,
)

_reasons: set[str] = set()
_reasons_lock = threading.Lock()


def reason_label(reason: str) -> str:
    """A bounded label for an authentication failure reason: the fixed text before any detail (which may
    come from the request, e.g. a header member's name), and `other` once MAX_REASONS are known."""
    label = reason.split(":", 1)[0].strip()[:60] or "unknown"
    with _reasons_lock:
        if label in _reasons:
            return label
        if len(_reasons) >= MAX_REASONS:
            return "other"
        _reasons.add(label)
    return label


def authentication_failed(reason: str) -> None:
    AUTH_FAILURES.labels(reason=reason_label(reason)).inc()


def observe_answered(facts: RequestFacts, method: str, status: int | None, seconds: float) -> None:
    """`RequestContextMiddleware`'s observer (wired in app/main.py): one answered request's metrics."""
    if status == 401:
        authentication_failed(facts.auth_failure or "unknown")
    observe_request(facts.route, method, status, seconds)


def observe_request(route: str | None, method: str, status: int | None, seconds: float) -> None:
    REQUEST_SECONDS.labels(
        route=route or UNMATCHED_ROUTE,
        method=method if method in _METHODS else "other",
        status=str(status) if status is not None else "none",
    ).observe(seconds)


def submission_stored(kind: str, counts: Mapping[str, int]) -> None:
    SUBMISSIONS.labels(kind=kind, fate="stored").inc()
    for fate, count in counts.items():
        SUBMISSION_RECORDS.labels(kind=kind, fate=fate).inc(count)


def submission_replayed(kind: str) -> None:
    SUBMISSIONS.labels(kind=kind, fate="replayed").inc()


def submission_refused(problem: str) -> None:
    SUBMISSIONS_REFUSED.labels(problem=problem).inc()


def job_ran(kind: str, status: str, seconds: float, result: Mapping[str, Any] | None = None) -> None:
    """A job run ended; a matching round's outcome counts (not a replay's) are added up."""
    JOB_SECONDS.labels(kind=kind, status=status).observe(seconds)
    if result is None or result.get("replayed"):
        return
    outcomes = result.get("outcomes")
    if isinstance(outcomes, Mapping):
        for outcome in ("matched", "possible", "unmatched"):
            count = outcomes.get(outcome)
            if isinstance(count, int) and count > 0:
                MATCH_OUTCOMES.labels(outcome=outcome).inc(count)


def refresh_queue(session: Session) -> None:
    """Set the queue gauge from the job table (one grouped count over the unfinished jobs' index)."""
    rows = session.execute(
        select(Job.kind, Job.status, func.count())
        .where(Job.status.in_(("queued", "running")))
        .group_by(Job.kind, Job.status)
    ).all()
    JOBS.clear()
    for kind, status, count in rows:
        JOBS.labels(kind=kind, status=status).set(count)


def exposition() -> bytes:
    return generate_latest(REGISTRY)


def serve_worker_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Expose this process's registry on its own port (a `cme worker`): bind it where only the operator's
    scraper reaches (loopback by default)."""
    start_http_server(port, addr=host, registry=REGISTRY)
