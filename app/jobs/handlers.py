"""The job kinds this service runs, gathered from the domains that own them."""

from __future__ import annotations

from app.jobs.worker import Handler


def default_handlers() -> dict[str, Handler]:
    return {}
