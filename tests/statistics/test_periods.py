"""Which days a request counts: whole months that have ended, never up to today."""

from __future__ import annotations

import datetime as dt

import pytest

from app.statistics.periods import InvalidReportingMonth, Period, Window, reporting_window

START = dt.date(2025, 4, 8)


def _window(
    as_of: str | None, period: Period = Period.cumulative, today: dt.date = dt.date(2025, 10, 6)
) -> Window:
    return reporting_window(as_of, period, today=today, service_start=START)


class TestReportingWindow:
    def test_default_is_the_last_month_ended_before_today(self) -> None:
        assert _window(None) == Window(first=None, last=dt.date(2025, 9, 30))
        assert _window(None, today=dt.date(2025, 10, 31)) == Window(first=None, last=dt.date(2025, 9, 30))
        assert _window(None, today=dt.date(2026, 1, 1)) == Window(first=None, last=dt.date(2025, 12, 31))

    def test_a_named_month_ends_on_its_last_day(self) -> None:
        assert _window("2025-04").last == dt.date(2025, 4, 30)
        assert _window("2026-02", today=dt.date(2026, 3, 1)).last == dt.date(2026, 2, 28)

    def test_a_monthly_window_starts_on_the_first(self) -> None:
        window = _window("2025-08", Period.month)
        assert window == Window(first=dt.date(2025, 8, 1), last=dt.date(2025, 8, 31))
        assert window.start == dt.datetime(2025, 8, 1, tzinfo=dt.UTC)
        assert window.end == dt.datetime(2025, 9, 1, tzinfo=dt.UTC)

    @pytest.mark.parametrize(
        ("as_of", "code"),
        [("2025-10", "month_not_ended"), ("2025-11", "month_not_ended"), ("2025-03", "before_service")],
    )
    def test_a_month_not_ended_or_before_the_service_is_refused(self, as_of: str, code: str) -> None:
        with pytest.raises(InvalidReportingMonth) as refused:
            _window(as_of)
        assert [(item.field, item.code) for item in refused.value.errors] == [("query.as_of", code)]
