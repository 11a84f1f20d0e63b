"""The job kinds this service runs, gathered from the domains that own them."""

from __future__ import annotations

from app.cme import scheduler as cme_scheduler
from app.jobs.worker import Handler, Tick
from app.matching import jobs as matching_jobs
from app.security import replay


def default_handlers() -> dict[str, Handler]:
    return {**matching_jobs.handlers(), **cme_scheduler.handlers()}


def default_ticks() -> list[Tick]:
    return [lambda factory, now: cme_scheduler.tick(factory, now=now), replay.purge_tick]
