"""Each data-item rule of the inbound schemas and of the record-level assessment, without HTTP."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from app.submissions.rules import Fate, IssueCode, assess_education_record, assess_health_record
from app.submissions.schemas import (
    EducationRecord,
    EotasRecord,
    HealthRecord,
    SchoolRollRecord,
    SubmissionPayload,
)
from tests.submissions.conftest import AS_OF, child, payload, pupil

ENABLED = {"nhs_number_enabled": True}


def health(**overrides: Any) -> HealthRecord:
    return HealthRecord.model_validate(child(**overrides), context=ENABLED)


def codes(record: HealthRecord) -> tuple[Fate, list[IssueCode]]:
    assessment = assess_health_record(record, AS_OF)
    return assessment.fate, [issue.code for issue in assessment.issues]


def education_codes(**overrides: Any) -> tuple[Fate, list[IssueCode], bool]:
    """Fate, findings and whether the birth date is stored, of a school-roll record."""
    record = SchoolRollRecord.model_validate(pupil(**overrides), context=ENABLED)
    assessment = assess_education_record(record, AS_OF)
    return assessment.fate, [issue.code for issue in assessment.issues], assessment.keeps_date_of_birth


class TestSchemaRules:
    @pytest.mark.parametrize(
        ("overrides", "location"),
        [
            ({"given_name": "x" * 121}, ("given_name",)),
            ({"given_name": ""}, ("given_name",)),
            ({"date_of_birth": "2014-02-30"}, ("date_of_birth",)),
            ({"address": {"lines": ["a"] * 7, "postcode": "LL77 7AA"}}, ("address", "lines")),
            ({"address": {"postcode": "x" * 36}}, ("address", "postcode")),
            ({"former_names": [{"given_name": "A", "surname": "B"}]}, ("former_names", 0, "surname")),
            ({"sex": "F"}, ("sex",)),  # health lists carry no sex: not a Schedule 2 para 1-3 item
        ],
    )
    def test_structural_rules(self, overrides: dict[str, Any], location: tuple[Any, ...]) -> None:
        with pytest.raises(ValidationError) as raised:
            HealthRecord.model_validate(child(**overrides))
        assert raised.value.errors()[0]["loc"] == location

    def test_names_keep_welsh_letters_and_are_trimmed(self) -> None:
        record = health(given_name="  Ŵyn ", family_name="ap Siôn", middle_names="Gwenllïan")
        assert (record.given_name, record.family_name, record.middle_names) == ("Ŵyn", "ap Siôn", "Gwenllïan")

    def test_nhs_number_needs_the_deployment_switch(self) -> None:
        with pytest.raises(ValidationError):
            HealthRecord.model_validate(child(nhs_number="9434765919"))
        assert health(nhs_number="9434765919").nhs_number == "9434765919"

    @pytest.mark.parametrize("number", ["660200", "66020011", "66O2001"])
    def test_school_number_is_seven_digits(self, number: str) -> None:
        with pytest.raises(ValidationError):
            SchoolRollRecord.model_validate(pupil(school={"number": number}))

    def test_eotas_provision_type_is_an_enumeration(self) -> None:
        record = child(sex="M", provision={"type": "pupil_referral_unit"})
        assert EotasRecord.model_validate(record).provision.type == "pupil_referral_unit"
        with pytest.raises(ValidationError):
            EotasRecord.model_validate(child(provision={"type": "tutor"}))

    def test_payload_requires_submission_id_and_as_of(self) -> None:
        adapter: TypeAdapter[Any] = TypeAdapter(SubmissionPayload)
        body = payload("W11000023", [child()])
        del body["as_of"]
        with pytest.raises(ValidationError) as raised:
            adapter.validate_python(body)
        assert raised.value.errors()[0]["loc"] == ("health_register", "as_of")


class TestRecordRules:
    def test_a_clean_record_is_accepted(self) -> None:
        assert codes(health()) == (Fate.accepted, [])

    @pytest.mark.parametrize(
        ("dob", "fate"),
        [
            ("2020-04-30", Fate.rejected),  # 5 on the as-of date, CSA starts on 31 Aug 2025
            ("2019-08-31", Fate.accepted),  # 5 on a prescribed day: CSA from that day
            (
                "2008-07-01",
                Fate.rejected,
            ),  # 16 in the summer holiday: CSA ended on the June 2024 leaving date
            ("2008-09-02", Fate.accepted),  # 16 once the 2024/25 school year began: CSA until June 2025
            ("2008-06-01", Fate.rejected),  # 16 before the 2024 leaving date: CSA ended 28 Jun 2024
        ],
    )
    def test_health_list_holds_only_children_of_compulsory_school_age(self, dob: str, fate: Fate) -> None:
        assert codes(health(date_of_birth=dob))[0] is fate

    def test_postcode_is_normalised_or_flagged(self) -> None:
        spaced = assess_health_record(health(address={"postcode": " ll777aa "}), AS_OF)
        assert spaced.postcode_norm == "LL77 7AA" and spaced.fate is Fate.accepted
        assert codes(health(address={"postcode": "LL77"})) == (Fate.flagged, [IssueCode.invalid_postcode])

    def test_invalid_nhs_number_is_flagged_and_not_kept(self) -> None:
        assessment = assess_health_record(health(nhs_number="9434765918"), AS_OF)
        assert assessment.fate is Fate.flagged and assessment.nhs_number is None

    def test_several_findings_are_all_reported(self) -> None:
        fate, found = codes(health(family_name=None, address=None, date_of_birth=None))
        assert fate is Fate.rejected
        assert found == [IssueCode.partial_name, IssueCode.missing_date_of_birth, IssueCode.missing_postcode]

    def test_admission_in_the_future_is_flagged(self) -> None:
        record = SchoolRollRecord.model_validate(
            pupil(admission_date=(AS_OF + dt.timedelta(days=3)).isoformat())
        )
        assessment = assess_education_record(record, AS_OF)
        assert [i.code for i in assessment.issues] == [IssueCode.admission_date_in_future]


class TestEducationRecordRules:
    """Decision 0004: an education record is refused only when it identifies nobody. Refusing any other
    would leave the child it describes looking unknown to education, and so wrongly flagged as missing."""

    def test_a_clean_record_is_accepted(self) -> None:
        assert education_codes() == (Fate.accepted, [], True)

    @pytest.mark.parametrize(
        ("overrides", "expected"),
        [
            ({"date_of_birth": None}, [IssueCode.missing_date_of_birth]),
            ({"address": None}, [IssueCode.missing_postcode]),
            (
                {"date_of_birth": None, "address": None},
                [IssueCode.missing_date_of_birth, IssueCode.missing_postcode],
            ),
            ({"family_name": None}, [IssueCode.partial_name]),
            (
                {"given_name": None, "date_of_birth": None},
                [IssueCode.partial_name, IssueCode.missing_date_of_birth],
            ),
            ({"date_of_birth": "2008-06-01"}, [IssueCode.outside_compulsory_school_age]),
            ({"given_name": None, "family_name": None, "nhs_number": "9434765919"}, [IssueCode.missing_name]),
        ],
    )
    def test_an_incomplete_record_is_kept_flagged(
        self, overrides: dict[str, Any], expected: list[IssueCode]
    ) -> None:
        assert education_codes(**overrides) == (Fate.flagged, expected, True)

    @pytest.mark.parametrize(
        ("dob", "code"),
        [
            ("2025-05-01", IssueCode.date_of_birth_in_future),  # the day after the as-of date
            ("2023-05-01", IssueCode.implausible_date_of_birth),  # 2 only the next day
            ("2004-04-30", IssueCode.implausible_date_of_birth),  # 21 on the as-of date
            ("1900-01-01", IssueCode.implausible_date_of_birth),  # a placeholder
        ],
    )
    def test_a_birth_date_that_cannot_be_the_childs_is_flagged_and_not_stored(
        self, dob: str, code: IssueCode
    ) -> None:
        assert education_codes(date_of_birth=dob) == (Fate.flagged, [code], False)
        record = SchoolRollRecord.model_validate(pupil(date_of_birth=dob))
        [issue] = assess_education_record(record, AS_OF).issues
        assert issue.message.endswith("; it was not stored.")

    @pytest.mark.parametrize("dob", ["2023-04-30", "2004-05-01"])  # 2 that day; 20, 21 the next
    def test_the_plausible_ages_are_two_to_twenty_inclusive(self, dob: str) -> None:
        assert education_codes(date_of_birth=dob) == (
            Fate.flagged,
            [IssueCode.outside_compulsory_school_age],
            True,
        )

    @pytest.mark.parametrize(
        ("overrides", "expected"),
        [
            ({"given_name": None, "family_name": None}, [IssueCode.missing_name]),
            (
                {"given_name": None, "family_name": None, "date_of_birth": None, "address": None},
                [IssueCode.missing_name, IssueCode.missing_date_of_birth, IssueCode.missing_postcode],
            ),
            # An NHS number that fails its check is not stored, so it identifies nobody either.
            (
                {"given_name": None, "family_name": None, "nhs_number": "9434765918"},
                [IssueCode.missing_name, IssueCode.invalid_nhs_number],
            ),
        ],
    )
    def test_only_a_record_that_identifies_nobody_is_rejected(
        self, overrides: dict[str, Any], expected: list[IssueCode]
    ) -> None:
        assert education_codes(**overrides) == (Fate.rejected, expected, True)

    @pytest.mark.parametrize("kind", [EducationRecord, EotasRecord])
    def test_every_education_register_follows_the_rule(self, kind: type[EducationRecord]) -> None:
        fields = child(date_of_birth=None, address=None, sex="F")
        if kind is EotasRecord:
            fields["provision"] = {"type": "pupil_referral_unit"}
        assessment = assess_education_record(kind.model_validate(fields), AS_OF)
        assert assessment.fate is Fate.flagged


class TestHealthRecordRulesAreUnchanged:
    """A health row is refused only where the law or the question requires it: without a birth date or
    with one after the as-of date, compulsory school age cannot be established and the row must not be
    held (R3.5); without a name it cannot be acted on. Refusing a health row never makes a known child
    look missing: it can only leave a child unfound, which the receipt names for the sender to correct."""

    @pytest.mark.parametrize(
        ("overrides", "code"),
        [
            ({"date_of_birth": None}, IssueCode.missing_date_of_birth),
            ({"date_of_birth": "2025-05-01"}, IssueCode.date_of_birth_in_future),
            ({"given_name": None, "family_name": None}, IssueCode.missing_name),
            ({"date_of_birth": "1990-01-01"}, IssueCode.outside_compulsory_school_age),
        ],
    )
    def test_rejected(self, overrides: dict[str, Any], code: IssueCode) -> None:
        fate, found = codes(health(**overrides))
        assert fate is Fate.rejected and code in found
