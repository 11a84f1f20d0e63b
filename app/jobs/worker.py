"""The job worker: runs inside the API process by default, or as `cme worker` processes to scale out."""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from app.jobs import service

logger = logging.getLogger(__name__)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class JobContext:
    job_id: uuid.UUID
    payload: Mapping[str, Any]
    session_factory: sessionmaker[Session]
    now: Callable[[], dt.datetime]

    def progress(self, stage: str, done: int, total: int | None) -> None:
        """Record the stage the job is in and how far it is, in a short transaction of its own.

        A handler must not call this while it holds a write transaction open: on SQLite (one writer) the
        progress write would wait for the handler's own transaction.
        """
        with self.session_factory.begin() as session:
            service.report_progress(session, self.job_id, stage=stage, done=done, total=total, now=self.now())


class Deferred(Exception):
    """Raised by a handler that cannot do its work yet: the job goes back to the queue until `until`,
    without counting an attempt (a health list waiting for its period's matching round)."""

    def __init__(self, until: dt.datetime, stage: str) -> None:
        super().__init__(stage)
        self.until = until
        self.stage = stage


Handler = Callable[[JobContext], dict[str, Any]]
# How often a worker running a job says it is alive (well inside `service.LEASE`).
HEARTBEAT_SECONDS = 5.0
# Periodic work a domain asks every worker loop to do (e.g. make sure today's daily job exists).
Tick = Callable[[sessionmaker[Session], dt.datetime], object]
TICK_SECONDS = 60.0
# Told of every job run that ended: (kind, status, seconds, result). The top of the app wires it to the
# metrics (decision 0021: the jobs domain imports no observer).
JobObserver = Callable[[str, str, float, Mapping[str, Any] | None], None]


def _unobserved(kind: str, status: str, seconds: float, result: Mapping[str, Any] | None) -> None:
    return None


class Worker:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        handlers: Mapping[str, Handler],
        *,
        poll_seconds: float = 1.0,
        now: Callable[[], dt.datetime] = utcnow,
        ticks: Sequence[Tick] = (),
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        on_job_ran: JobObserver = _unobserved,
    ) -> None:
        self.session_factory = session_factory
        self.handlers = dict(handlers)
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.now = now
        self.ticks = tuple(ticks)
        self.on_job_ran = on_job_ran
        self._ticked_at: float | None = None
        self._next_due: float | None = None
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def run_once(self) -> bool:
        """Run one job if any is due; True when a job was run (whatever its outcome)."""
        with self.session_factory.begin() as session:
            job = service.claim_next(
                session, worker_id=self.worker_id, now=self.now(), kinds=frozenset(self.handlers)
            )
            if job is None:
                return False
            job_id, kind, payload = job.id, job.kind, dict(job.payload)
        context = JobContext(
            job_id=job_id, payload=payload, session_factory=self.session_factory, now=self.now
        )
        alive = threading.Event()
        beating = threading.Thread(
            target=self._heartbeat, args=(job_id, alive), name="cme-job-heartbeat", daemon=True
        )
        beating.start()
        started = time.monotonic()
        try:
            result = self.handlers[kind](context)
        except Deferred as deferred:
            self.on_job_ran(kind, "deferred", time.monotonic() - started, None)
            with self.session_factory.begin() as session:
                service.defer(session, job_id, until=deferred.until, stage=deferred.stage)
            # Look again when it is due, not at the next poll (a matching round waits seconds, not more).
            due_in = (deferred.until - self.now()).total_seconds()
            self._next_due = min(self._next_due or math.inf, time.monotonic() + max(due_in, 0.0))
            return True
        except Exception as exc:
            self.on_job_ran(kind, "failed", time.monotonic() - started, None)
            logger.exception("job failed", extra={"job_id": str(job_id), "kind": kind})
            with self.session_factory.begin() as session:
                service.fail(session, job_id, error=type(exc).__name__, now=self.now())
            return True
        finally:
            alive.set()
            beating.join()
        with self.session_factory.begin() as session:
            service.complete(session, job_id, result=result, now=self.now())
        self.on_job_ran(kind, "succeeded", time.monotonic() - started, result)
        return True

    def _heartbeat(self, job_id: uuid.UUID, done: threading.Event) -> None:
        """Until the job is done, renew its lease: a crashed worker's job is taken over within
        `service.LEASE`, a live one's never."""
        while not done.wait(self.heartbeat_seconds):
            try:
                with self.session_factory.begin() as session:
                    service.heartbeat(session, job_id, worker_id=self.worker_id, now=self.now())
            except Exception:
                logger.exception("job heartbeat failed", extra={"job_id": str(job_id)})

    def run_until_idle(self, max_jobs: int = 10_000) -> int:
        """Run due jobs until none is left (tests, CLI one-shot); returns how many ran."""
        ran = 0
        while ran < max_jobs and self.run_once():
            ran += 1
        return ran

    def tick(self) -> None:
        """Run the periodic domain work now, and at most once a minute after that."""
        started = time.monotonic()
        if self._ticked_at is not None and started - self._ticked_at < TICK_SECONDS:
            return
        self._ticked_at = started
        for tick in self.ticks:
            tick(self.session_factory, self.now())

    def run_forever(self, stop: threading.Event, wake: threading.Event | None = None) -> None:
        """Run jobs until `stop`; when idle, wait for the poll interval or until `wake` is set."""
        wake = wake or stop
        while not stop.is_set():
            wake.clear()
            try:
                self.tick()
                busy = self.run_once()
            except Exception:
                # The database may be briefly away; keep the worker alive and try again.
                logger.exception("worker loop error")
                busy = False
            if not busy:
                wake.wait(self._idle_seconds())

    def _idle_seconds(self) -> float:
        """The poll interval, or less when a job this worker deferred is due sooner."""
        if self._next_due is None:
            return self.poll_seconds
        left = self._next_due - time.monotonic()
        if left <= self.poll_seconds:
            self._next_due = None
        return min(self.poll_seconds, max(left, 0.0))


class BackgroundWorker:
    """A worker on a daemon thread, started and stopped with the app's lifespan."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self._stop = threading.Event()
        # Set when a transaction of this process that enqueued a job commits: the job starts at once
        # instead of at the next poll (up to a second later).
        self._wake = threading.Event()
        self._thread = threading.Thread(
            target=worker.run_forever, args=(self._stop, self._wake), name="cme-worker", daemon=True
        )

    def start(self) -> None:
        _WAKE.add(self._wake)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        _WAKE.discard(self._wake)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)


_WAKE: set[threading.Event] = set()


@event.listens_for(Session, "after_commit")
def _wake_workers(session: Session) -> None:
    if session.info.pop(service.ENQUEUED, False):
        for wake in list(_WAKE):
            wake.set()
