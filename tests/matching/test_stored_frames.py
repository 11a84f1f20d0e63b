"""A round reads stored rows as text (COPY on PostgreSQL) and decodes them in polars: the frame must be the
one the row objects give, also for incomplete rows (no birth date, no address, former names)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.db import make_engine, make_session_factory
from app.matching import repository
from app.matching.frames import columns_to_frame, text_columns
from app.matching.service import rows_to_frame
from app.partners.models import PartnerKind
from tests.matching.test_matching_api import on_roll, send
from tests.matching.test_rounds_sqlite import embedded as embedded  # the SQLite app fixture
from tests.submissions.conftest import PILOT_LA, child, payload
from tests.support.partners import TestPartner, create_partner

RECORDS = [
    on_roll(child(), "6602001"),
    on_roll(
        child(given_name="Osian", former_names=[{"given_name": "Ossie", "family_name": "Huws"}]), "6602001"
    ),
    on_roll(child(given_name="Mali", former_names=[{"given_name": None, "family_name": "Lloyd"}]), "6602001"),
    on_roll(child(given_name="Cai", date_of_birth=None), "6602001"),
    on_roll(child(given_name="Efa", middle_names='Wyn, "Efa"\\Jên'), "6602001"),
]


def both_ways(session: Session) -> tuple[pl.DataFrame, pl.DataFrame]:
    as_text = columns_to_frame(text_columns(repository.education_table(session), la_column="la_id"))
    as_rows = rows_to_frame(
        repository.education_rows(session), repository.EDUCATION_MATCH_COLUMNS, la_column="la_id"
    )
    return as_text, as_rows


def test_text_and_rows_give_the_same_frame_on_postgresql(client: TestClient, session: Session) -> None:
    la = create_partner(session, PILOT_LA, PartnerKind.local_authority)
    no_address = {k: v for k, v in child(given_name="Gwil").items() if k != "address"}
    records = [*RECORDS, {**no_address, "school": {"number": "6602001", "name": "Ysgol"}}]
    assert send(client, la, payload(la.id, records, kind="school_roll", recipient=None)).status_code == 201
    as_text, as_rows = both_ways(session)
    assert as_text.height == len(records)
    assert as_text.equals(as_rows)


def test_text_and_rows_give_the_same_frame_on_sqlite(
    embedded: tuple[TestClient, TestPartner, TestPartner], tmp_path: Path
) -> None:
    client, _, la = embedded
    assert send(client, la, payload(la.id, RECORDS, kind="school_roll", recipient=None)).status_code == 201
    engine = make_engine(f"sqlite:///{tmp_path / 'cme.db'}")
    try:
        with make_session_factory(engine)() as session:
            as_text, as_rows = both_ways(session)
    finally:
        engine.dispose()
    assert as_text.height == len(RECORDS)
    assert as_text.equals(as_rows)
