"""Who is calling, as a plain value: services take this, never a FastAPI dependency module (decision 0021).

`app.security.tokens` builds it from a verified token; `app.security.dependencies` hands it to routers.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.partners.models import PartnerKind
from app.security.roles import OfficerRole


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the authenticated partner and, for LA case systems, the acting officer."""

    partner_id: str
    partner_kind: PartnerKind
    kid: str
    jti: str
    officer_id: str | None
    officer_role: OfficerRole | None
