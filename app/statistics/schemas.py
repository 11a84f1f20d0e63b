"""Response models of the statistics API."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from app.statistics.periods import Period


class CellRead(BaseModel):
    value: int | float | None = Field(description="The figure; null when suppressed.")
    suppressed: bool = Field(description="True when the figure is withheld (under 5, or could reveal one).")


class AreaStatistics(BaseModel):
    area: str = Field(description="GSS code: an LA (W06...) or Wales (W92000004).")
    name: str
    measures: dict[str, CellRead] = Field(description="One cell per measure, in the order of `measures`.")


class Suppression(BaseModel):
    threshold: int = Field(description="Counts under this are withheld.")
    rounding: int = Field(description="Every published count is rounded to the nearest multiple of this.")
    rule: str


class StatisticsRead(BaseModel):
    as_of: dt.date = Field(description="The month end the figures are as of (the last day counted).")
    period: Period = Field(
        description="`cumulative`: everything up to `as_of`; `month`: only what happened in the month of `as_of`."
    )
    generated_at: dt.datetime
    measures: list[str] = Field(description="Measure names, in column order.")
    suppression: Suppression
    areas: list[AreaStatistics]
