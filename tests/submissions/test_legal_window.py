"""R1.1/R1.2: health lists are taken only inside the configured legal window; education registers always."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.submissions.models import EducationChild, HealthChild, Submission
from app.submissions.service import LONDON
from tests.submissions.conftest import child, payload, pupil
from tests.submissions.test_intake import count, send
from tests.support.clock import FrozenClock
from tests.support.partners import TestPartner

DAY = dt.timedelta(days=1)


def _today_with_window(app: Any, start_offset: int, end_offset: int) -> dt.date:
    """Freeze the service clock now and set the window in days around today (UK time); answer today."""
    frozen = FrozenClock(dt.datetime.now(dt.UTC))
    app.state.clock = frozen
    today = frozen.now().astimezone(LONDON).date()
    window = {"legal_window_start": today + start_offset * DAY, "legal_window_end": today + end_offset * DAY}
    app.state.settings = app.state.settings.model_copy(update=window)
    return today


@pytest.mark.parametrize(
    ("start_offset", "end_offset"),
    [(0, 30), (-30, 0)],
    ids=["first-day-of-the-window", "last-day-of-the-window"],
)
def test_health_list_inside_the_window_is_stored(
    app: Any,
    client: TestClient,
    session: Session,
    health_board: TestPartner,
    pilot_la: TestPartner,
    start_offset: int,
    end_offset: int,
) -> None:
    _today_with_window(app, start_offset, end_offset)
    response = send(client, health_board, payload(health_board.id, [child()]))
    assert response.status_code == 201, response.text
    assert count(session, HealthChild) == 1


@pytest.mark.parametrize(
    ("start_offset", "end_offset"),
    [(1, 30), (-30, -1)],
    ids=["day-before-the-start", "day-after-the-end"],
)
def test_health_list_outside_the_window_is_refused_and_nothing_stored(
    app: Any,
    client: TestClient,
    session: Session,
    health_board: TestPartner,
    pilot_la: TestPartner,
    start_offset: int,
    end_offset: int,
) -> None:
    today = _today_with_window(app, start_offset, end_offset)
    response = send(client, health_board, payload(health_board.id, [child()]))
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"] == "urn:cme-hub:problem:outside-legal-window"
    assert str(today) in problem["detail"]
    assert (count(session, Submission), count(session, HealthChild)) == (0, 0)


def test_education_registers_are_not_gated(
    app: Any, client: TestClient, session: Session, pilot_la: TestPartner
) -> None:
    _today_with_window(app, -30, -1)
    response = send(client, pilot_la, payload(pilot_la.id, [pupil()], kind="school_roll", recipient=None))
    assert response.status_code == 201, response.text
    assert count(session, EducationChild) == 1
