"""JSON log lines, each carrying the request id of the request that caused it."""

from __future__ import annotations

import datetime as dt
import json
import logging
import traceback
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


@dataclass(slots=True)
class RequestFacts:
    """What is learnt about a request while it is answered, for its access log line and metrics: set once
    per request by `RequestContextMiddleware` and filled in from wherever it is learnt (a mutable object, so
    that what a thread-pool call notes is seen too). Never personal data: a partner id, a route template."""

    partner_id: str | None = None
    route: str | None = None
    # The reason of the last authentication failure raised while answering (logged and counted, never
    # returned): the one behind a 401.
    auth_failure: str | None = None


request_facts_var: ContextVar[RequestFacts | None] = ContextVar("request_facts", default=None)


def note_partner(partner_id: str) -> None:
    """The authenticated partner of the current request (its access log names it)."""
    facts = request_facts_var.get()
    if facts is not None:
        facts.partner_id = partner_id


def note_auth_failure(reason: str) -> None:
    facts = request_facts_var.get()
    if facts is not None:
        facts.auth_failure = reason


_APP_ROOT = Path(__file__).resolve().parents[1]


def _where(record: logging.LogRecord) -> str | None:
    """The innermost frame of the service's own code in the exception's traceback: file, line and function,
    never a value (an exception's message can hold a row's data, so it is not logged either)."""
    if not record.exc_info or record.exc_info[2] is None:
        return None
    where = None
    for frame in traceback.extract_tb(record.exc_info[2]):
        path = Path(frame.filename)
        if path.is_relative_to(_APP_ROOT):
            where = f"app/{path.relative_to(_APP_ROOT).as_posix()}:{frame.lineno} in {frame.name}"
    return where


# Extra attributes we allow into log lines; anything else (possibly personal data) is not emitted.
_ALLOWED_EXTRAS = (
    "reason",
    "partner_id",
    "submission_id",
    "job_id",
    "status",
    "path",
    "method",
    "duration_ms",
    "records",
    "kind",
    "count",
    "route",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        for key in _ALLOWED_EXTRAS:
            if key in record.__dict__:
                line[key] = record.__dict__[key]
        facts = request_facts_var.get()
        if facts is not None:  # every line a request causes names its partner and route, once known
            if facts.partner_id is not None:
                line.setdefault("partner_id", facts.partner_id)
            if facts.route is not None:
                line.setdefault("route", facts.route)
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__
            where = _where(record)
            if where is not None:
                line["where"] = where
        return json.dumps(line, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # uvicorn's access log prints the full URL; our middleware logs method, path and status instead.
    logging.getLogger("uvicorn.access").disabled = True
