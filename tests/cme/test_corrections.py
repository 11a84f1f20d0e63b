"""Reg 5 corrections: If-Match (428 without, 412 stale), a required reason, provenance per changed field."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.cme import records, repository
from app.cme.schemas import RecordPatch
from app.cme.shared import officer_from
from app.core.db import make_session_factory
from app.core.errors import PreconditionFailed
from app.partners.models import PartnerKind
from app.security.caller import Caller
from app.security.roles import OfficerRole
from tests.cme.conftest import FROZEN_AT, LA_A, Headers, make_record


@pytest.fixture
def record(session: Session, client: TestClient, headers: Headers) -> tuple[str, str]:
    record_id = make_record(session, client, headers)
    response = client.get(f"/v1/cme/records/{record_id}", headers=headers())
    return record_id, response.headers["ETag"]


FIX = {"reason": "Parent confirmed the spelling by phone", "family_name": "Prydderch"}


def test_r5_1_correction_with_current_etag_updates_field_and_provenance(
    client: TestClient, headers: Headers, record: tuple[str, str]
) -> None:
    record_id, etag = record
    response = client.patch(f"/v1/cme/records/{record_id}", json=FIX, headers=headers() | {"If-Match": etag})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["family_name"] == "Prydderch" and body["given_name"] == "Elin"
    assert response.headers["ETag"] == f'"{body["version"]}"' != etag
    assert body["provenance"]["family_name"] == {
        "source": "officer",
        "at": "2025-10-06T09:30:00Z",
        "officer_id": "officer-1",
        "role": "case_officer",
        "submission_id": None,
        "transfer_id": None,
        "from_la": None,
    }
    assert body["provenance"]["given_name"]["source"] == "submission"


def test_r5_2_reason_and_changed_field_names_are_in_the_history(
    client: TestClient, headers: Headers, record: tuple[str, str]
) -> None:
    record_id, etag = record
    client.patch(f"/v1/cme/records/{record_id}", json=FIX, headers=headers() | {"If-Match": etag})
    events = client.get(f"/v1/cme/records/{record_id}/history", headers=headers()).json()["events"]
    assert [(e["action"], e["reason"], e["fields"]) for e in events][-1] == (
        "corrected",
        FIX["reason"],
        ["family_name"],
    )


def test_r5_missing_if_match_is_428(client: TestClient, headers: Headers, record: tuple[str, str]) -> None:
    record_id, _ = record
    response = client.patch(f"/v1/cme/records/{record_id}", json=FIX, headers=headers())
    assert response.status_code == 428
    assert response.json()["type"] == "urn:cme-hub:problem:precondition-required"


@pytest.mark.parametrize("if_match", ['"999"', "*", "1", 'W/"1"'])
def test_r5_stale_or_wildcard_etag_is_412_and_changes_nothing(
    if_match: str, client: TestClient, headers: Headers, record: tuple[str, str]
) -> None:
    record_id, _ = record
    response = client.patch(
        f"/v1/cme/records/{record_id}", json=FIX, headers=headers() | {"If-Match": if_match}
    )
    assert response.status_code == 412
    assert client.get(f"/v1/cme/records/{record_id}", headers=headers()).json()["family_name"] == "Pritchard"


def test_r5_second_writer_with_the_old_etag_loses(
    client: TestClient, headers: Headers, record: tuple[str, str]
) -> None:
    record_id, etag = record
    first = client.patch(f"/v1/cme/records/{record_id}", json=FIX, headers=headers() | {"If-Match": etag})
    second = client.patch(
        f"/v1/cme/records/{record_id}",
        json={"reason": "Typo", "family_name": "Pritchard-Jones"},
        headers=headers(officer_id="officer-2") | {"If-Match": etag},
    )
    assert (first.status_code, second.status_code) == (200, 412)


def test_r5_reason_is_required(client: TestClient, headers: Headers, record: tuple[str, str]) -> None:
    record_id, etag = record
    response = client.patch(
        f"/v1/cme/records/{record_id}", json={"family_name": "X"}, headers=headers() | {"If-Match": etag}
    )
    assert response.status_code == 422


def test_r5_unknown_fields_are_refused(client: TestClient, headers: Headers, record: tuple[str, str]) -> None:
    record_id, etag = record
    body = FIX | {"nhs_number": "9434765919"}
    response = client.patch(f"/v1/cme/records/{record_id}", json=body, headers=headers() | {"If-Match": etag})
    assert response.status_code == 422


def test_dob_correction_moves_the_reg11_date_and_year_group(
    client: TestClient, headers: Headers, record: tuple[str, str]
) -> None:
    record_id, etag = record
    body = {"reason": "Birth certificate seen", "date_of_birth": "2014-09-01"}
    response = client.patch(f"/v1/cme/records/{record_id}", json=body, headers=headers() | {"If-Match": etag})
    assert response.status_code == 200
    corrected = response.json()
    # Born 1 September 2014: 16 on 1 Sept 2030, after that year's SLD -> leaves at the SLD of 2031.
    assert (corrected["csa_removal_on"], corrected["national_curriculum_year"]) == ("2031-06-28", 6)


def test_address_cleared_with_null_is_now_unknown(
    client: TestClient, headers: Headers, record: tuple[str, str]
) -> None:
    record_id, etag = record
    body = {"reason": "Family no longer at this address", "address": None}
    response = client.patch(f"/v1/cme/records/{record_id}", json=body, headers=headers() | {"If-Match": etag})
    assert response.status_code == 200
    assert response.json()["address"] is None
    assert client.get("/v1/cme/records?postcode_district=CF10", headers=headers()).json()["items"] == []


@pytest.mark.parametrize(
    "change",
    [
        {"parents": [{"name": "Rhian"}]},
        {"additional_learning_needs": {"needs": "Dyslexia"}},
        {"sensitive": True},
    ],
)
def test_case_officer_cannot_change_contacts_aln_or_the_sensitive_flag(
    change: dict[str, object], client: TestClient, headers: Headers, record: tuple[str, str]
) -> None:
    record_id, etag = record
    body = {"reason": "Update from family"} | change
    response = client.patch(f"/v1/cme/records/{record_id}", json=body, headers=headers() | {"If-Match": etag})
    assert response.status_code == 403


def test_data_protection_officer_cannot_correct(
    client: TestClient, headers: Headers, record: tuple[str, str]
) -> None:
    record_id, etag = record
    dpo = headers(LA_A, "data_protection_officer") | {"If-Match": etag}
    assert client.patch(f"/v1/cme/records/{record_id}", json=FIX, headers=dpo).status_code == 403


def test_suspected_inaccurate_flag_drives_the_work_queue(
    client: TestClient, headers: Headers, record: tuple[str, str]
) -> None:
    record_id, etag = record
    body = {"reason": "Health address differs from council tax record", "suspected_inaccurate": True}
    assert (
        client.patch(
            f"/v1/cme/records/{record_id}", json=body, headers=headers() | {"If-Match": etag}
        ).status_code
        == 200
    )
    queue = client.get("/v1/cme/records?suspected_inaccurate=true", headers=headers()).json()["items"]
    assert [item["id"] for item in queue] == [record_id]
    assert queue[0]["flags"] == {"sensitive": False, "suspected_inaccurate": True, "restricted": False}
    assert dt.date.fromisoformat(queue[0]["date_of_birth"]) == dt.date(2014, 3, 2)


def test_r5_concurrent_writers_passing_the_etag_check_together_one_gets_412(
    engine: Engine, client: TestClient, headers: Headers, record: tuple[str, str]
) -> None:
    """Both read version 1 and pass If-Match; the row version in the UPDATE stops the second one."""
    record_id, etag = record
    caller = Caller(partner_id=LA_A, partner_kind=PartnerKind.local_authority, kid="key-1", jti="j",
                    officer_id="officer-1", officer_role=OfficerRole.case_officer)  # fmt: skip
    officer = officer_from(caller)
    factory = make_session_factory(engine)
    with factory() as first, factory() as second:
        # The second writer has the record loaded (version 1) before the first one commits.
        assert repository.get_record(second, LA_A, uuid.UUID(record_id)) is not None
        one = records.correct_record(
            first, officer, uuid.UUID(record_id), RecordPatch(**FIX), if_match=etag, now=FROZEN_AT
        )
        first.commit()
        two_patch = RecordPatch(reason="Typo in the surname", family_name="Pritchard-Jones")
        with pytest.raises(PreconditionFailed):
            records.correct_record(
                second, officer, uuid.UUID(record_id), two_patch, if_match=etag, now=FROZEN_AT
            )
    assert one.family_name == "Prydderch"
    assert client.get(f"/v1/cme/records/{record_id}", headers=headers()).json()["family_name"] == "Prydderch"
