"""Router dependencies and parameters the CME routes share (`app/cme/routes/`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Response

from app.cme.config import CmeSettings, get_cme_settings
from app.cme.models import CmeRecord
from app.cme.schemas import RecordRead
from app.cme.shared import Officer, etag, officer_from
from app.cme.views import record_read
from app.security.clock import ClockDep
from app.security.dependencies import CallerDep

PREFIX = "/v1/cme"


async def current_officer(caller: CallerDep) -> Officer:
    """The LA officer behind the request; the LA (tenant) is the authenticated partner, nothing else."""
    return officer_from(caller)


OfficerDep = Annotated[Officer, Depends(current_officer)]
CmeSettingsDep = Annotated[CmeSettings, Depends(get_cme_settings)]

Limit = Annotated[int, Query(ge=1, description="Page size; the server caps it at its configured maximum.")]
CursorParam = Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page.")]
District = Annotated[
    str | None,
    Query(pattern=r"^[A-Za-z]{1,2}[0-9][0-9A-Za-z]?$", description="Postcode district, e.g. CF10."),
]
YearGroup = Annotated[
    int | None, Query(ge=-3, le=14, description="National curriculum year in the current school year.")
]
IfMatch = Annotated[
    str | None,
    Header(description="ETag of the record as last read (required: 428 without it, 412 when stale)."),
]
_ETAG = {
    "description": "The record's version: send it back as If-Match to change the record.",
    "required": True,
    "schema": {"type": "string"},
}
_LOCATION = {"description": "The new CME record.", "required": True, "schema": {"type": "string"}}
# What `RecordReply` answers, declared: a record's answer carries its ETag; a record created from a
# candidate or transfer its Location too.
WITH_ETAG: dict[int | str, dict[str, Any]] = {200: {"headers": {"ETag": _ETAG}}}
CREATED_WITH_ETAG: dict[int | str, dict[str, Any]] = {
    201: {"headers": {"ETag": _ETAG, "Location": _LOCATION}}
}


@dataclass(frozen=True, slots=True)
class RecordReply:
    """The answer of a route that reads, changes or creates one record: the time the route acts at, and the
    record as the officer's role may see it with its ETag (and its Location when the route created it)."""

    officer: Officer
    now: dt.datetime
    response: Response

    def __call__(self, record: CmeRecord, *, created: bool = False) -> RecordRead:
        if created:
            self.response.headers["Location"] = f"{PREFIX}/records/{record.id}"
        self.response.headers["ETag"] = etag(record)
        return record_read(record, self.officer.role, self.now.date())


async def record_reply(officer: OfficerDep, clock: ClockDep, response: Response) -> RecordReply:
    return RecordReply(officer=officer, now=clock.now(), response=response)


RecordReplyDep = Annotated[RecordReply, Depends(record_reply)]
