"""Response bodies of the audit API."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class CheckpointRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    day: dt.date = Field(description="The UTC date the checkpoint was taken on (one a day).")
    seq: int = Field(description="Seq of the newest audit event when signed (0: the log was empty).")
    hash: str = Field(description="Hash of that event (64 zeros for an empty log).")
    signed_at: dt.datetime
    jws: str = Field(
        description=(
            "Compact JWS (ES256, typ `cme-audit-checkpoint+jws`) of {seq, hash, signed_at}, signed with the "
            "service key published at /.well-known/jwks.json."
        )
    )


class CheckpointPage(BaseModel):
    items: list[CheckpointRead]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
