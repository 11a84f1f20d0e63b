from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class JobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    status: str
    attempts: int
    stage: str | None = Field(
        description="What the job is doing: for a health list `waiting_for_round`, then `load`, `link`, "
        "`store`, `done`; progress counts the stage's rows."
    )
    progress_done: int
    progress_total: int | None
    result: dict[str, Any] | None
    error: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
