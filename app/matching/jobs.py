"""Job handlers of matching: `match_health_list` and `rematch_after_register_change` (ids-only payloads)."""

from __future__ import annotations

import uuid
from typing import Any

from app.core.gc_pause import gc_paused
from app.jobs.worker import Handler, JobContext
from app.matching import service

MATCH_HEALTH_LIST = "match_health_list"
REMATCH_AFTER_REGISTER_CHANGE = "rematch_after_register_change"


def match_health_list(context: JobContext) -> dict[str, Any]:
    submission_id = uuid.UUID(str(context.payload["submission_id"]))
    # Its own short transaction first, so the sender sees "matching" while the long one runs.
    with context.session_factory.begin() as session:
        earlier = service.begin_health_list(session, submission_id)
    if earlier is not None:
        return earlier
    # Loading a whole health list and every register creates millions of long-lived objects.
    with gc_paused(), context.session_factory.begin() as session:
        return service.match_health_list(
            session, submission_id, job_id=context.job_id, now=context.now(), progress=context.progress
        )


def rematch_after_register_change(context: JobContext) -> dict[str, Any]:
    with gc_paused(), context.session_factory.begin() as session:
        result = service.rematch_after_register_change(
            session, job_id=context.job_id, now=context.now(), progress=context.progress
        )
    return {"submission_id": str(context.payload.get("submission_id")), **result}


def handlers() -> dict[str, Handler]:
    return {
        MATCH_HEALTH_LIST: match_health_list,
        REMATCH_AFTER_REGISTER_CHANGE: rematch_after_register_change,
    }
