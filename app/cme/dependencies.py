"""Router dependencies of the CME API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.cme.config import CmeSettings, get_cme_settings
from app.cme.service import Officer, officer_from
from app.security.dependencies import CallerDep


async def current_officer(caller: CallerDep) -> Officer:
    """The LA officer behind the request; the LA (tenant) is the authenticated partner, nothing else."""
    return officer_from(caller)


OfficerDep = Annotated[Officer, Depends(current_officer)]
CmeSettingsDep = Annotated[CmeSettings, Depends(get_cme_settings)]
