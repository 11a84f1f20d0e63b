"""Pure lifecycle rules: identity keys, role visibility (Sch 2 paras 4 and 6), year groups, cursors."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from app.cme.domain import (
    Cursor,
    CursorError,
    birth_range_for_year,
    editable_fields_denied,
    hidden_fields,
    identity_key,
    postcode_district,
)
from app.core.csa import national_curriculum_year
from app.security.roles import OfficerRole as Role

DOB = dt.date(2014, 3, 2)
AT = dt.datetime(2025, 10, 6, 9, 30, 0, 123456, tzinfo=dt.UTC)


class TestIdentityKey:
    def test_r3_same_child_despite_case_accents_and_hyphens(self) -> None:
        assert identity_key("Siân", "Jones-Evans", DOB) == identity_key("sian", "JONES EVANS", DOB)

    def test_different_dob_or_name_is_another_child(self) -> None:
        key = identity_key("Sian", "Jones", DOB)
        assert key != identity_key("Sian", "Jones", DOB + dt.timedelta(days=1))
        assert key != identity_key("Sioned", "Jones", DOB)

    @pytest.mark.parametrize("missing", ["given", "family", "dob"])
    def test_no_key_without_both_names_and_dob(self, missing: str) -> None:
        args = {"given": "Sian", "family": "Jones", "dob": DOB} | {missing: None}
        assert identity_key(args["given"], args["family"], args["dob"]) is None  # type: ignore[arg-type]

    def test_key_holds_no_readable_name(self) -> None:
        key = identity_key("Sian", "Jones", DOB)
        assert key is not None and "jones" not in key and len(key) == 64


class TestVisibility:
    def test_sch2_para4_6_contacts_and_aln_hidden_from_case_officers(self) -> None:
        assert hidden_fields(Role.case_officer, sensitive=False) == {"parents", "additional_learning_needs"}
        assert hidden_fields(Role.designated_officer, sensitive=False) == set()
        assert hidden_fields(Role.data_protection_officer, sensitive=False) == set()

    def test_sensitive_address_seen_by_designated_officers_only(self) -> None:
        assert "address" in hidden_fields(Role.case_officer, sensitive=True)
        assert "address" in hidden_fields(Role.data_protection_officer, sensitive=True)
        assert "address" not in hidden_fields(Role.designated_officer, sensitive=True)

    def test_only_designated_officers_set_the_sensitive_flag(self) -> None:
        requested = ["family_name", "sensitive"]
        assert editable_fields_denied(Role.case_officer, sensitive=False, requested=requested) == [
            "sensitive"
        ]
        assert editable_fields_denied(Role.designated_officer, sensitive=False, requested=requested) == []

    def test_case_officer_may_not_change_hidden_fields(self) -> None:
        denied = editable_fields_denied(
            Role.case_officer, sensitive=True, requested=["address", "parents", "town"]
        )
        assert denied == ["address", "parents"]


class TestYearGroups:
    @pytest.mark.parametrize("year_group", [-1, 0, 1, 6, 11, 12])
    def test_birth_range_is_the_inverse_of_national_curriculum_year(self, year_group: int) -> None:
        on = dt.date(2025, 10, 6)
        first, last = birth_range_for_year(year_group, on)
        assert national_curriculum_year(first, on) == year_group
        assert national_curriculum_year(last, on) == year_group
        assert national_curriculum_year(first - dt.timedelta(days=1), on) == year_group + 1
        assert national_curriculum_year(last + dt.timedelta(days=1), on) == year_group - 1

    def test_school_year_turns_on_1_september(self) -> None:
        assert birth_range_for_year(6, dt.date(2025, 8, 31)) == (dt.date(2013, 9, 1), dt.date(2014, 8, 31))
        assert birth_range_for_year(6, dt.date(2025, 9, 1)) == (dt.date(2014, 9, 1), dt.date(2015, 8, 31))


def test_postcode_district_of_well_formed_postcodes_only() -> None:
    assert postcode_district("cf10 1aa") == "CF10"
    assert postcode_district("SA311AA") == "SA31"
    assert postcode_district("not a postcode") is None
    assert postcode_district(None) is None


class TestCursor:
    def test_round_trip(self) -> None:
        cursor = Cursor(la_id="W06000001", sort="created_at", key=AT, id=uuid.uuid4())
        assert Cursor.decode(cursor.encode(), la_id="W06000001", sort="created_at") == cursor

    def test_r12_cursor_of_another_la_is_refused(self) -> None:
        token = Cursor(la_id="W06000002", sort="created_at", key=AT, id=uuid.uuid4())
        with pytest.raises(CursorError):
            Cursor.decode(token.encode(), la_id="W06000001", sort="created_at")

    def test_cursor_for_another_sort_order_is_refused(self) -> None:
        token = Cursor(la_id="W06000001", sort="created_at", key=AT, id=uuid.uuid4())
        with pytest.raises(CursorError):
            Cursor.decode(token.encode(), la_id="W06000001", sort="-created_at")

    @pytest.mark.parametrize(
        "token",
        [
            "",
            "!!!",
            "bm90IGpzb24",  # not json
            "WzEsMl0",  # [1,2]
            # the right LA and sort, but a sort key that is not a timestamp
            "WyJXMDYwMDAwMDEiLCAiY3JlYXRlZF9hdCIsICJ5ZXN0ZXJkYXkiLCAiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwIl0",
        ],
    )
    def test_garbage_is_refused(self, token: str) -> None:
        with pytest.raises(CursorError):
            Cursor.decode(token, la_id="W06000001", sort="created_at")
