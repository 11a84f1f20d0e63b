"""`HealthRegisterBulk` (records as dicts) must accept exactly what `HealthRegisterSubmission` accepts.

The bulk schema is only an accelerator: what it refuses is validated again against the full schema, which
reports the errors. If it accepted something the full schema refuses, a bad payload would be stored.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from app.submissions.schemas import HealthRecord, HealthRegisterSubmission
from app.submissions.service import _bulk_health_adapter, _payload_adapter
from tests.submissions.conftest import child, payload

RECORD_VARIANTS: list[dict[str, Any]] = [
    {},
    {"given_name": "x" * 120},
    {"given_name": "x" * 121},
    {"given_name": ""},
    {"given_name": "   "},
    {"given_name": "  Ŵyn  "},
    {"given_name": None},
    {"given_name": 5},
    {"given_name": ["a"]},
    {"middle_names": None},
    {"family_name": "y" * 121},
    {"date_of_birth": "2014-02-30"},
    {"date_of_birth": "2014-06-02T00:00:00"},
    {"date_of_birth": "2014-06-02T10:00:00"},
    {"date_of_birth": 1400000000},
    {"date_of_birth": "02/06/2014"},
    {"date_of_birth": None},
    {"address": None},
    {"address": {}},
    {"address": []},
    {"address": "12 Heol y Felin"},
    {"address": {"lines": ["a"] * 6, "postcode": "LL77 7AA"}},
    {"address": {"lines": ["a"] * 7, "postcode": "LL77 7AA"}},
    {"address": {"lines": [""], "postcode": "LL77 7AA"}},
    {"address": {"lines": None, "postcode": "LL77 7AA"}},
    {"address": {"lines": "one line", "postcode": "LL77 7AA"}},
    {"address": {"postcode": "x" * 35}},
    {"address": {"postcode": "x" * 36}},
    {"address": {"postcode": " ll77 7aa "}},
    {"address": {"postcode": None, "town": None}},
    {"address": {"postcode": "LL77 7AA", "county": "Môn"}},
    {"former_names": []},
    {"former_names": None},
    {"former_names": [{}]},
    {"former_names": [{"given_name": "A", "surname": "B"}]},
    {"former_names": [{"given_name": "A"}] * 10},
    {"former_names": [{"given_name": "A"}] * 11},
    {"former_names": ["A"]},
    {"nhs_number": "9434765919"},
    {"nhs_number": None},
    {"nhs_number": ""},
    {"nhs_number": " 943 476 5919 "},
    {"nhs_number": "1" * 13},
    {"nhs_number": 9434765919},
    {"address_is_last_known": True},
    {"address_is_last_known": "true"},
    {"address_is_last_known": "yes"},
    {"address_is_last_known": 1},
    {"address_is_last_known": 2},
    {"address_is_last_known": None},
    {"sex": "F"},
    {"preferred_given_name": "Sî"},
    {"school": {"number": "6602001"}},
]


def outcome(adapter: Any, body: bytes, *, enabled: bool) -> tuple[bool, Any]:
    try:
        value = adapter.validate_json(body, context={"nhs_number_enabled": enabled})
    except ValidationError:
        return False, None
    return True, value


def as_model_records(bulk: Any) -> list[HealthRecord]:
    return [HealthRecord.model_validate(item, context={"nhs_number_enabled": True}) for item in bulk.records]


@pytest.mark.parametrize("enabled", [False, True], ids=["nhs-off", "nhs-on"])
@pytest.mark.parametrize("overrides", RECORD_VARIANTS, ids=lambda o: json.dumps(o, ensure_ascii=False)[:60])
def test_same_records_accepted_with_the_same_values(overrides: dict[str, Any], enabled: bool) -> None:
    body = json.dumps(payload("W11000023", [child(), child(**overrides)])).encode()
    full_ok, full = outcome(_payload_adapter, body, enabled=enabled)
    bulk_ok, bulk = outcome(_bulk_health_adapter, body, enabled=enabled)
    assert bulk_ok == full_ok
    if full_ok:
        assert isinstance(full, HealthRegisterSubmission)
        assert as_model_records(bulk) == full.records
        envelope = ("submission_id", "kind", "sender", "recipient", "as_of", "scope")
        assert [getattr(bulk, f) for f in envelope] == [getattr(full, f) for f in envelope]


@pytest.mark.parametrize(
    "change",
    [
        {"records": None},
        {"records": {}},
        {"records": [None]},
        {"records": ["x"]},
        {"records": []},
        {"as_of": "2025-02-30"},
        {"as_of": None},
        {"submission_id": "not-a-uuid"},
        {"sender": ""},
        {"recipient": None},
        {"scope": "s" * 36},
        {"extra": 1},
        {"kind": "school_roll"},
    ],
    ids=lambda c: json.dumps(c)[:40],
)
def test_same_envelopes_accepted(change: dict[str, Any]) -> None:
    document = payload("W11000023", [child()])
    document.update(change)
    body = json.dumps(document).encode()
    assert outcome(_bulk_health_adapter, body, enabled=False)[0] == (
        outcome(_payload_adapter, body, enabled=False)[0] and document["kind"] == "health_register"
    )


def test_the_bulk_schema_refuses_a_wrong_type() -> None:
    # The errors then come from the full schema: tests/submissions/test_intake.py checks them end to end.
    body = json.dumps(payload("W11000023", [child(), child(given_name=5)])).encode()
    assert not outcome(_bulk_health_adapter, body, enabled=False)[0]
