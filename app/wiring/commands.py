"""Operational `cme` sub-commands: serve, migrate, worker, openapi."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from typing import TYPE_CHECKING, Any

from app.core.config import get_settings
from app.core.db import make_engine, make_session_factory
from app.core.logging import configure_logging
from app.core.migrate import upgrade

if TYPE_CHECKING:
    from fastapi import FastAPI

logger = logging.getLogger(__name__)


def serve_app() -> FastAPI:
    """The app `cme serve` runs, built inside each server process: worker processes start fresh, so the
    logging set up by the parent does not reach them."""
    from app.main import create_app

    settings = get_settings()
    configure_logging(settings.log_level)
    return create_app(settings)


def _workers(value: str) -> int:
    count = int(value)
    if count < 1:
        raise argparse.ArgumentTypeError("at least one worker")
    return count


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = get_settings()
    configure_logging(settings.log_level)
    if args.migrate:
        upgrade(settings.database_url)
    if args.seed_demo:
        from app.partners.service import seed_if_empty

        engine = make_engine(settings.database_url)
        with make_session_factory(engine).begin() as session:
            seeded = seed_if_empty(session)
        engine.dispose()
        if seeded:
            logger.info("seeded the demo partner registry", extra={"count": seeded})
    # An import string and a factory: uvicorn's multi-process mode builds the app in each worker process.
    uvicorn.run(
        f"{__name__}:{serve_app.__name__}",
        factory=True,
        host=args.host,
        port=args.port,
        log_config=None,
        workers=args.workers,
        # A worker building its real-time matching index (CPU-bound, tens of seconds at Wales scale) can
        # miss uvicorn's default 5 s liveness ping and be killed mid-build; give it room.
        timeout_worker_healthcheck=300,
        # No `server: uvicorn` banner: which server (and so which advisories) is nobody's business.
        server_header=False,
    )
    return 0


def _migrate(args: argparse.Namespace) -> int:
    upgrade(get_settings().database_url, args.revision)
    return 0


def _worker(args: argparse.Namespace) -> int:
    from app.jobs.worker import Worker
    from app.observability import metrics
    from app.wiring.jobs import default_handlers, default_ticks

    settings = get_settings()
    configure_logging(settings.log_level)
    factory = make_session_factory(make_engine(settings.database_url))
    worker = Worker(
        factory,
        default_handlers(settings),
        poll_seconds=settings.worker_poll_seconds,
        ticks=default_ticks(settings),
        on_job_ran=metrics.job_ran,
    )
    if args.once:
        print(json.dumps({"jobs_run": worker.run_until_idle()}))
        return 0
    if args.metrics_port is not None:
        metrics.serve_worker_metrics(args.metrics_port, args.metrics_host)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker.run_forever(stop)
    return 0


def _openapi(args: argparse.Namespace) -> int:
    from app.main import openapi_document

    print(json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False))
    return 0


def add_commands(subparsers: Any) -> None:
    serve = subparsers.add_parser("serve", help="Run the API (and, by default, an in-process job worker).")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="Server processes (one per core; each runs its own matching index and job worker).",
    )
    serve.add_argument(
        "--no-migrate", dest="migrate", action="store_false", help="Do not apply migrations before starting."
    )
    serve.add_argument(
        "--no-seed-demo",
        dest="seed_demo",
        action="store_false",
        help="Do not seed the demo partner registry when it is empty.",
    )
    serve.set_defaults(handler=_serve)

    migrate = subparsers.add_parser("migrate", help="Apply database migrations.")
    migrate.add_argument("revision", nargs="?", default="head")
    migrate.set_defaults(handler=_migrate)

    worker = subparsers.add_parser("worker", help="Run a job worker process (scale out matching).")
    worker.add_argument("--once", action="store_true", help="Run due jobs until idle, then exit.")
    worker.add_argument(
        "--metrics-port",
        type=int,
        help="Expose this worker's job metrics (Prometheus, unauthenticated) on this port (decision 0020).",
    )
    worker.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="Where the worker's metrics listen: keep it a bind only the operator's scraper reaches.",
    )
    worker.set_defaults(handler=_worker)

    openapi = subparsers.add_parser("openapi", help="Print the OpenAPI document.")
    openapi.set_defaults(handler=_openapi)
