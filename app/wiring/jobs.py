"""The job kinds this service runs, gathered from the domains that own them."""

from __future__ import annotations

from app.audit import checkpoints as audit_checkpoints
from app.audit import interval as audit_interval
from app.cme import scheduler as cme_scheduler
from app.core.config import Settings, get_settings
from app.jobs.worker import Handler, Tick
from app.matching import jobs as matching_jobs
from app.security import replay


def default_handlers(settings: Settings | None = None) -> dict[str, Handler]:
    settings = settings or get_settings()
    return {
        **matching_jobs.handlers(settings),
        **cme_scheduler.handlers(),
        **audit_checkpoints.handlers(settings),
    }


def default_ticks(settings: Settings | None = None) -> list[Tick]:
    settings = settings or get_settings()
    return [
        lambda factory, now: cme_scheduler.tick(factory, now=now),
        audit_checkpoints.tick,
        audit_interval.tick_for(settings),
        replay.purge_tick,
    ]
