"""Pydantic shapes of partners and keys (CLI input/output and any future admin API)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.jose_adapter import KeyAlg
from app.partners.models import PartnerKind, PartnerStatus

# Official identifiers: ONS GSS codes for LAs (W06) and health boards (W11), NHS Wales ODS codes for GP
# practices, Welsh Government school numbers (LA number + establishment number) for independent schools.
PARTNER_ID_PATTERNS: dict[PartnerKind, re.Pattern[str]] = {
    PartnerKind.local_authority: re.compile(r"W06[0-9]{6}"),
    PartnerKind.local_health_board: re.compile(r"W11[0-9]{6}"),
    PartnerKind.gp_practice: re.compile(r"W[0-9]{5}"),
    PartnerKind.independent_school: re.compile(r"[0-9]{7}"),
    PartnerKind.welsh_government: re.compile(r"WG"),
}
# Which kinds of partner may be named as the area a partner of the given kind sits in.
AREA_KINDS: dict[PartnerKind, frozenset[PartnerKind]] = {
    PartnerKind.gp_practice: frozenset({PartnerKind.local_health_board, PartnerKind.local_authority}),
    PartnerKind.independent_school: frozenset({PartnerKind.local_authority}),
}
KID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class PartnerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    id: str = Field(min_length=2, max_length=16)
    kind: PartnerKind
    name: str = Field(min_length=1, max_length=200)
    area_id: str | None = Field(default=None, description="LA or health board a practice or school sits in.")

    @model_validator(mode="after")
    def _id_fits_kind(self) -> Self:
        if not PARTNER_ID_PATTERNS[self.kind].fullmatch(self.id):
            raise ValueError(f"id is not a valid identifier for a {self.kind}")
        if self.area_id is not None and self.kind not in AREA_KINDS:
            raise ValueError(f"a {self.kind} does not sit in another partner's area")
        return self


class SeedFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partners: list[PartnerCreate]


class PartnerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: PartnerKind
    name: str
    status: PartnerStatus
    is_pilot: bool
    gss_code: str | None
    area_id: str | None
    created_at: dt.datetime


class PartnerKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    partner_id: str
    kid: str
    alg: KeyAlg
    kty: str
    crv: str | None
    thumbprint: str
    public_jwk: dict[str, Any]
    not_before: dt.datetime
    revoked_at: dt.datetime | None
    created_at: dt.datetime
