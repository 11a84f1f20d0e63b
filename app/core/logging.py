"""JSON log lines, each carrying the request id of the request that caused it."""

from __future__ import annotations

import datetime as dt
import json
import logging
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

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
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__
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
