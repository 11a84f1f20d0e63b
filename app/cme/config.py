"""Policy settings of the CME lifecycle, read from the environment (prefix CME_)."""

from __future__ import annotations

import datetime as dt
from functools import cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.cme.clocks import DEFAULT_ASAP_WORKING_DAYS, ClockSettings


class CmeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CME_", env_file=".env", extra="ignore")

    asap_working_days: int = Field(
        default=DEFAULT_ASAP_WORKING_DAYS,
        ge=1,
        le=60,
        description="Working days allowed for duties 'as soon as reasonably practicable' (a policy target).",
    )
    extra_holidays: list[dt.date] = Field(
        default_factory=list,
        description="One-off bank holidays by proclamation, skipped by working-day clocks.",
    )
    max_page_size: int = Field(default=200, ge=1, le=1000, description="Largest `limit` a list answers.")

    @property
    def clocks(self) -> ClockSettings:
        return ClockSettings(
            asap_working_days=self.asap_working_days, extra_holidays=frozenset(self.extra_holidays)
        )


@cache
def get_cme_settings() -> CmeSettings:
    return CmeSettings()
