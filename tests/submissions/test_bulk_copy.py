"""The bulk path of intake: ready-made COPY lines, chunked COPY from a writer thread, the fast rules path."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.jobs.models import Job
from app.submissions import repository, service
from app.submissions.models import HealthChild, Submission
from app.submissions.rules import _assess_health_in_full, assess_health_record
from app.submissions.schemas import HealthRecord
from app.synthetic.population import PopulationConfig, generate
from tests.submissions.conftest import AS_OF, child, payload
from tests.submissions.test_intake import send
from tests.support.partners import TestPartner

STORED_COLUMNS = (
    "record_index", "recipient_la", "given_name", "middle_names", "family_name", "former_names",
    "date_of_birth", "address_lines", "town", "postcode", "postcode_norm", "address_is_last_known",
    "nhs_number", "flags",
)  # fmt: skip


def stored_rows(session: Session, submission_id: str) -> list[tuple[Any, ...]]:
    session.expire_all()
    rows = session.scalars(
        select(HealthChild)
        .where(HealthChild.submission_id == uuid.UUID(submission_id))
        .order_by(HealthChild.record_index)
    )
    return [tuple(getattr(row, name) for name in STORED_COLUMNS) for row in rows]


def count(session: Session, model: type[Any]) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


# Values that COPY's text format or the JSON encoder must escape, as JSON text would carry them.
# Control characters are refused at validation (tests/submissions/test_intake.py); what is left to escape
# is the backslash, including sequences that COPY would read as a tab, a line break or a null.
AWKWARD = [
    child(given_name="Tab\\there", family_name="Back\\slash"),
    child(middle_names='Quote "Q"', address={"lines": ['1 "Y" Stryd', "Line\\nTwo"], "postcode": "LL77 7AA"}),
    child(former_names=[{"given_name": "Carriage\\rReturn", "family_name": "\\N"}]),
    child(address={"lines": ["\\."], "town": "Bell\\a", "postcode": "LL77 7AA"}),
    child(given_name="Siân", family_name="Prys-Jones", address_is_last_known=True),
    child(given_name=None, address=None),  # flagged twice: partial name, no postcode
]


class TestCopyLinesSafe:
    @pytest.mark.parametrize(
        ("text", "safe"),
        [
            ('{"a": "plain Siân"}', True),
            ('{"a": "\\u00e2 \\u0175 \\/"}', True),  # ensure_ascii JSON and an escaped solidus
            ('{"a": "\\t"}', False),
            ('{"a": "\\n"}', False),
            ('{"a": "\\r"}', False),
            ('{"a": "\\\\"}', False),
            ('{"a": "\\""}', False),
            ('{"a": "\\b\\f"}', False),
            ('{"a": "\\u0009"}', False),
            ('{"a": "\\u001F"}', False),
            ('{"a": "\\u005c"}', False),
            ('{"a": "\\u005C"}', False),
            ('{"a": "\\u0022"}', False),
            ('{"a": "\\u00e9 then \\t"}', False),
        ],
    )
    def test_only_escapes_of_special_characters_are_unsafe(self, text: str, safe: bool) -> None:
        assert service.copy_lines_safe(text.encode()) is safe

    def test_python_json_escapes_are_seen(self) -> None:
        for value in ("a\tb", "a\\b", 'a"b', "a\x00b", "a\x1fb"):
            assert not service.copy_lines_safe(json.dumps({"v": value}).encode())
        assert service.copy_lines_safe(json.dumps({"v": "Siân Ŵ"}).encode())  # \u escapes of letters


class TestBothRowPathsStoreTheSame:
    def test_dict_lines_model_lines_and_value_tuples_give_identical_rows(
        self,
        client: TestClient,
        session: Session,
        health_board: TestPartner,
        pilot_la: TestPartner,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        records = [
            child(),
            child(middle_names=None, former_names=[{"given_name": "Alys"}, {"family_name": "Puw"}]),
            child(address={"lines": [], "postcode": "ll777aa"}, address_is_last_known=True),
            child(address={"postcode": "LL77 7AA"}, address_is_last_known=False),
            child(address={"lines": ["Fferm"], "town": "Bala", "postcode": "NOT A CODE"}),
            child(family_name=None),
            child(date_of_birth="2008-01-01"),  # rejected, not stored
            child(given_name="  Ŵyn ", family_name="ap Siôn"),
        ]
        used: list[str] = []
        real_item_lines, real_lines, real_rows = (
            service._health_item_lines, service._health_lines, service._health_rows,
        )  # fmt: skip

        def spy(name: str, real: Any) -> Any:
            def wrapper(*args: Any) -> Any:
                used.append(name)
                return real(*args)

            return wrapper

        monkeypatch.setattr(service, "_health_item_lines", spy("dict lines", real_item_lines))
        monkeypatch.setattr(service, "_health_lines", spy("model lines", real_lines))
        monkeypatch.setattr(service, "_health_rows", spy("tuples", real_rows))
        real_parse = service.parse_payload
        outcomes = []
        for path in ("dict lines", "model lines", "tuples"):
            if path == "model lines":
                monkeypatch.setattr(service, "parse_payload", lambda p, s, bulk: real_parse(p, s))
            if path == "tuples":
                monkeypatch.setattr(service, "copy_lines_safe", lambda payload: False)
            body = payload(health_board.id, records)
            response = send(client, health_board, body)
            assert response.status_code == 201, response.text
            assert used[-1] == path
            outcomes.append((stored_rows(session, body["submission_id"]), response.json()["receipt"]))
        rows = outcomes[0][0]
        assert [row[0] for row in rows] == [0, 1, 2, 3, 4, 5, 7]
        assert rows[1][5] == [
            {"given_name": "Alys", "family_name": None},
            {"given_name": None, "family_name": "Puw"},
        ]
        assert rows[6][2:5] == ("Ŵyn", "Gwenllïan", "ap Siôn")
        for other_rows, other_receipt in outcomes[1:]:
            assert other_rows == rows
            assert other_receipt["records"] == outcomes[0][1]["records"]
            counts = ("accepted", "flagged", "rejected")
            assert [other_receipt[c] for c in counts] == [outcomes[0][1][c] for c in counts]

    def test_values_that_need_escaping_are_stored_exactly(
        self, client: TestClient, session: Session, health_board: TestPartner, pilot_la: TestPartner
    ) -> None:
        body = payload(health_board.id, AWKWARD)
        assert not service.copy_lines_safe(json.dumps(body).encode())
        response = send(client, health_board, body)
        assert response.status_code == 201, response.text
        rows = {row[0]: row for row in stored_rows(session, body["submission_id"])}
        assert rows[0][2:5] == ("Tab\\there", "Gwenllïan", "Back\\slash")
        assert rows[1][3] == 'Quote "Q"' and rows[1][7] == ['1 "Y" Stryd', "Line\\nTwo"]
        assert rows[2][5] == [{"given_name": "Carriage\\rReturn", "family_name": "\\N"}]
        assert rows[3][7:9] == (["\\."], "Bell\\a")
        assert rows[4][2] == "Siân" and rows[4][11] is True
        assert rows[5][9:11] == (None, None) and rows[5][13] == ["partial_name", "missing_postcode"]


class TestChunkedCopy:
    def test_many_chunks_store_every_row_and_the_outcome(
        self,
        client: TestClient,
        session: Session,
        health_board: TestPartner,
        pilot_la: TestPartner,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(repository, "_COPY_CHUNK_ROWS", 7)
        monkeypatch.setattr(repository, "_COPY_QUEUE_CHUNKS", 1)
        records = [child(given_name=f"Plentyn{i}") for i in range(100)]
        records[50] = child(date_of_birth=None)  # rejected
        records[60] = child(family_name=None)  # flagged
        body = payload(health_board.id, records)
        response = send(client, health_board, body)
        assert response.status_code == 201, response.text
        rows = stored_rows(session, body["submission_id"])
        assert [row[0] for row in rows] == [i for i in range(100) if i != 50]
        assert rows[0][2] == "Plentyn0" and rows[-1][2] == "Plentyn99"
        stored = session.get(Submission, uuid.UUID(body["submission_id"]))
        assert stored is not None
        assert (stored.accepted_count, stored.flagged_count, stored.rejected_count) == (98, 1, 1)
        assert stored.receipt == response.json()["receipt"]
        assert stored.receipt_jws == response.json()["receipt_jws"]

    @pytest.mark.parametrize("escaped", [False, True], ids=["lines", "tuples"])
    def test_a_database_error_in_a_later_chunk_leaves_nothing(
        self,
        client: TestClient,
        session: Session,
        health_board: TestPartner,
        pilot_la: TestPartner,
        monkeypatch: pytest.MonkeyPatch,
        escaped: bool,
    ) -> None:
        monkeypatch.setattr(repository, "_COPY_CHUNK_ROWS", 10)
        real_rows, real_lines = service._health_rows, service._health_item_lines

        def broken_at_150(rows: Iterator[Any]) -> Iterator[Any]:
            for i, row in enumerate(rows):
                # A value PostgreSQL refuses (a recipient longer than its column) in the 16th chunk.
                if i == 150:
                    too_long = "X" * 30
                    yield (
                        row.replace(pilot_la.id, too_long)
                        if isinstance(row, str)
                        else (*row[:2], too_long, *row[3:])
                    )
                else:
                    yield row

        monkeypatch.setattr(service, "_health_rows", lambda *a: broken_at_150(real_rows(*a)))
        monkeypatch.setattr(service, "_health_item_lines", lambda *a: broken_at_150(real_lines(*a)))
        records = [child(given_name=f"Plentyn{i}") for i in range(300)]
        if escaped:
            records[0] = child(given_name="Back\\slash")
        body = payload(health_board.id, records)
        failing_client = TestClient(client.app, raise_server_exceptions=False)
        response = send(failing_client, health_board, body)
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert (count(session, Submission), count(session, HealthChild), count(session, Job)) == (0, 0, 0)
        assert count(session, AuditEvent) == 0

        monkeypatch.setattr(service, "_health_rows", real_rows)
        monkeypatch.setattr(service, "_health_item_lines", real_lines)
        assert send(client, health_board, body).status_code == 201
        assert count(session, HealthChild) == 300


class TestFastRulesPath:
    def test_same_assessment_as_the_full_rules(self) -> None:
        population = generate(PopulationConfig(children=3000, seed=11))
        records = [HealthRecord.model_validate(r) for r in population.health_records]
        variations: tuple[dict[str, Any], ...] = (
            {},
            {"nhs_number": "9434765919"},
            {"nhs_number": "9434765918"},
            {"date_of_birth": "2025-04-30"},
            {"date_of_birth": "2025-05-01"},
            {"date_of_birth": "2008-01-01"},
            {"address": {"lines": [], "postcode": "ll77 7aa"}},
            {"address": {"lines": []}},
            {"given_name": None},
            {"family_name": None},
        )
        extra = [
            HealthRecord.model_validate(child(**overrides), context={"nhs_number_enabled": True})
            for overrides in variations
        ]
        for as_of in (AS_OF, dt.date(2025, 9, 1)):
            for record in records + extra:
                assert assess_health_record(record, as_of) == _assess_health_in_full(record, as_of)


class TestBodyIsReleased:
    def test_the_signed_body_is_emptied_once_verified(
        self,
        client: TestClient,
        health_board: TestPartner,
        pilot_la: TestPartner,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        seen: list[bytes | bytearray] = []
        real_ingest, real_parse = service.ingest, service.parse_payload

        def spy_ingest(*args: Any, **kwargs: Any) -> Any:
            seen.append(kwargs["body"])
            return real_ingest(*args, **kwargs)

        def spy_parse(*args: Any, **kwargs: Any) -> Any:
            assert len(seen[0]) == 0  # emptied before the records are validated
            return real_parse(*args, **kwargs)

        monkeypatch.setattr(service, "ingest", spy_ingest)
        monkeypatch.setattr(service, "parse_payload", spy_parse)
        response = send(client, health_board, payload(health_board.id, [child()]))
        assert response.status_code == 201, response.text
        assert isinstance(seen[0], bytearray) and len(seen[0]) == 0


class TestRecordsAreConsumed:
    def test_every_record_in_order_and_the_list_emptied(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(service, "_RELEASE_BATCH", 3)
        records = list(range(10))
        seen, left = [], []
        for record in service._consumed(records):
            seen.append(record)
            left.append(len(records))
        assert seen == list(range(10))
        assert left == [7, 7, 7, 4, 4, 4, 1, 1, 1, 0]  # taken out a batch at a time
        assert records == []
