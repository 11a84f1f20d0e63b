"""Job handlers of matching: `match_health_list` and `rematch_after_register_change` (ids-only payloads)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from app.core.config import Settings
from app.core.gc_pause import gc_paused
from app.jobs.worker import Deferred, Handler, JobContext
from app.matching import rounds, service

MATCH_HEALTH_LIST = "match_health_list"
REMATCH_AFTER_REGISTER_CHANGE = "rematch_after_register_change"


def match_health_list(timing: rounds.RoundTiming) -> Handler:
    def handle(context: JobContext) -> dict[str, Any]:
        submission_id = uuid.UUID(str(context.payload["submission_id"]))
        try:
            # Loading every list of the period and every register creates millions of long-lived objects.
            with gc_paused():
                return rounds.match_health_list(
                    context.session_factory,
                    submission_id,
                    timing=timing,
                    job_id=context.job_id,
                    now=context.now,
                    progress=context.progress,
                )
        except rounds.NotYet as not_yet:
            raise Deferred(not_yet.until, rounds.WAITING) from None

    return handle


def rematch_after_register_change(context: JobContext) -> dict[str, Any]:
    with gc_paused():
        result = service.rematch_after_register_change(
            context.session_factory, job_id=context.job_id, now=context.now(), progress=context.progress
        )
    return {"submission_id": str(context.payload.get("submission_id")), **result}


def handlers(settings: Settings) -> dict[str, Handler]:
    return {
        MATCH_HEALTH_LIST: match_health_list(
            rounds.RoundTiming(
                wait=dt.timedelta(seconds=settings.match_round_wait_seconds),
                quiet=dt.timedelta(seconds=settings.match_round_quiet_seconds),
            )
        ),
        REMATCH_AFTER_REGISTER_CHANGE: rematch_after_register_change,
    }
