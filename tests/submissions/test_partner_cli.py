"""The partner CLI offline (issue 12, item 2): `cme validate` reports every bad row with the service's own
rules, `cme sign` refuses what the service would refuse, CSV input follows its documented layout, and the
published JSON Schemas are the models' (regenerate with `make schemas`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from app.cli import main
from app.core.config import Settings
from app.submissions.csv_input import KIND_COLUMNS, Envelope, csv_payload
from app.submissions.partner_cli import schema_text
from app.submissions.schemas import SubmissionKind
from app.submissions.service import parse_payload
from tests.submissions.conftest import AS_OF, PILOT_LA, child, payload, pupil
from tests.support.keys import new_key

SCHEMAS = Path(__file__).resolve().parents[2] / "openapi" / "schemas"
BOARD = "W11000023"


def write(tmp_path: Path, document: dict[str, Any], name: str = "list.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def bad_list() -> dict[str, Any]:
    """A bad date, a misspelt field and no as_of: the service refuses the whole file."""
    document = payload(BOARD, [child(), child(), child(date_of_birth="2014-13-01"), child(famly_name="X")])
    del document["as_of"]
    return document


class TestValidate:
    def test_a_good_file_passes(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["validate", str(write(tmp_path, payload(BOARD, [child(), child()])))]) == 0
        out = capsys.readouterr().out.strip().splitlines()
        assert out == [f"{tmp_path / 'list.json'}: OK: health_register, 2 record(s): 2 accepted, 0 flagged "
                       "(stored, with findings), 0 rejected (not stored)."]  # fmt: skip

    def test_every_structural_error_is_named_by_record_field_and_code(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["validate", "--json", str(write(tmp_path, bad_list()))]) == 1
        report = json.loads(capsys.readouterr().out)
        assert report["valid"] is False
        found = {(f["record_index"], f["field"], f["code"], f["severity"]) for f in report["findings"]}
        assert found == {
            (None, "as_of", "missing", "error"),
            (2, "date_of_birth", "date_from_datetime_parsing", "error"),
            (3, "famly_name", "extra_forbidden", "error"),
        }

    def test_the_report_is_the_services_own_422(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The same rules, not a copy: what the service's parser lists is what the CLI lists."""
        document = bad_list()
        try:
            parse_payload(json.dumps(document).encode(), Settings(), max_errors=None)
        except Exception as exc:
            expected = {(e.record_index, e.field, e.code) for e in exc.errors}  # type: ignore[attr-defined]
        main(["validate", "--json", str(write(tmp_path, document))])
        report = json.loads(capsys.readouterr().out)
        assert {(f["record_index"], f["field"], f["code"]) for f in report["findings"]} == expected

    def test_rejected_and_flagged_rows_are_named_and_rejected_ones_fail(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        records = [child(), child(family_name=None), child(date_of_birth="2030-01-01"), child(address=None)]
        assert main(["validate", str(write(tmp_path, payload(BOARD, records)))]) == 1
        lines = capsys.readouterr().out.strip().splitlines()
        assert any("record 1: family_name: partial_name [flagged]" in line for line in lines)
        assert any("record 2: date_of_birth: date_of_birth_in_future [rejected]" in line for line in lines)
        assert any("record 3: address.postcode: missing_postcode [flagged]" in line for line in lines)
        assert lines[-1].endswith("1 accepted, 2 flagged (stored, with findings), 1 rejected (not stored).")

    def test_a_health_list_without_recipient_is_refused_offline_too(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert (
            main(["validate", "--json", str(write(tmp_path, payload(BOARD, [child()], recipient=None)))]) == 1
        )
        findings = json.loads(capsys.readouterr().out)["findings"]
        assert [(f["field"], f["code"]) for f in findings] == [("recipient", "missing")]

    def test_a_member_named_twice_inside_a_record_is_named_as_intake_names_it(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        text = json.dumps(payload(BOARD, [child(), child()])).replace(
            '"family_name": "Prys-Jones",', '"family_name": "Prys-Jones", "family_name": "Jones",', 1
        )
        (tmp_path / "twice.json").write_text(text, encoding="utf-8")
        assert text.count('"family_name"') == 3
        assert main(["validate", "--json", str(tmp_path / "twice.json")]) == 1
        findings = json.loads(capsys.readouterr().out)["findings"]
        assert [(f["record_index"], f["field"], f["code"]) for f in findings] == [
            (0, "family_name", "duplicate_member")
        ]

    def test_a_file_that_is_not_there_or_not_json_is_one_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["validate", str(tmp_path / "missing.json")]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and json.loads(err[0])["error"] == "file-unreadable"
        (tmp_path / "empty.json").write_text("")
        assert main(["validate", str(tmp_path / "empty.json")]) == 1
        assert "json_invalid" in capsys.readouterr().out


class TestSign:
    @pytest.fixture
    def key(self, tmp_path: Path) -> Path:
        path = tmp_path / "key.pem"
        path.write_bytes(new_key("ES256", "k").private_pem())
        return path

    def test_an_invalid_file_is_refused_with_the_same_report(
        self, tmp_path: Path, key: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = write(tmp_path, bad_list())
        assert main(["sign", "--partner", BOARD, "--key", str(key), "--kid", "k", str(path)]) == 1
        captured = capsys.readouterr()
        assert captured.out == ""  # nothing signed
        err = captured.err.strip().splitlines()
        assert any("record 2: date_of_birth: date_from_datetime_parsing [error]" in line for line in err)
        assert any("file: as_of: missing [error]" in line for line in err)
        assert any("record 3: famly_name: extra_forbidden [error]" in line for line in err)
        assert json.loads(err[-1])["error"] == "invalid-submission"

    def test_a_valid_csv_is_signed_as_the_json_it_stands_for(
        self, tmp_path: Path, key: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        csv = tmp_path / "list.csv"
        csv.write_text(
            "given_name,family_name,date_of_birth,address_line_1,town,postcode\n"
            "Siân,Prys-Jones,2014-06-02,12 Heol y Felin,Llangefni,LL77 7AA\n",
            encoding="utf-8",
        )
        argv = ["sign", "--partner", BOARD, "--key", str(key), "--kid", "k", str(csv)]
        envelope = ["--kind", "health_register", "--recipient", PILOT_LA, "--as-of", AS_OF.isoformat()]
        assert main([*argv, *envelope]) == 0
        compact = capsys.readouterr().out.strip()
        import base64

        segment = compact.split(".")[1]
        signed = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        assert signed["sender"] == BOARD and signed["recipient"] == PILOT_LA
        assert signed["records"] == [
            {
                "given_name": "Siân",
                "family_name": "Prys-Jones",
                "date_of_birth": "2014-06-02",
                "address": {"lines": ["12 Heol y Felin"], "town": "Llangefni", "postcode": "LL77 7AA"},
            }
        ]
        assert main([*argv, *envelope]) == 0  # the same file again: the same submission id (a retry)
        again = capsys.readouterr().out.strip().split(".")[1]
        assert (
            json.loads(base64.urlsafe_b64decode(again + "=" * (-len(again) % 4)))["submission_id"]
            == (signed["submission_id"])
        )

    def test_a_csv_without_its_envelope_options_says_which_are_missing(
        self, tmp_path: Path, key: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        csv = tmp_path / "list.csv"
        csv.write_text("given_name\nSiân\n", encoding="utf-8")
        assert main(["sign", "--partner", BOARD, "--key", str(key), "--kid", "k", str(csv)]) == 1
        error = json.loads(capsys.readouterr().err)
        assert (
            error["error"] == "option-missing"
            and "--kind" in error["detail"]
            and "--as-of" in error["detail"]
        )


class TestCsv:
    def envelope(self, kind: SubmissionKind) -> Envelope:
        return Envelope(kind=kind, sender="W06000001", as_of=AS_OF.isoformat(), recipient=None)

    def test_every_kind_s_columns_make_the_json_record(self) -> None:
        text = (
            "given_name,middle_names,family_name,former_given_name_1,former_family_name_1,date_of_birth,"
            "address_line_1,address_line_2,town,postcode,sex,preferred_given_name,school_number,school_name,"
            "admission_date\n"
            'Siân,Gwenllïan,Prys-Jones,,Jones,2014-06-02,"Fflat 2, Tŷ Coch",Heol y Felin,Llangefni,LL77 7AA,F,'
            "Sian,6602001,Ysgol Synthetig,2019-09-01\n"
            ",,,,,,,,,,,,,,\n"  # a row of empty cells is no record
        )
        made = csv_payload(text.encode("utf-8-sig"), self.envelope(SubmissionKind.school_roll))
        document = json.loads(made.payload)
        assert made.lines == (2,)
        assert document["records"] == [
            pupil(
                middle_names="Gwenllïan",
                former_names=[{"family_name": "Jones"}],
                address={
                    "lines": ["Fflat 2, Tŷ Coch", "Heol y Felin"],
                    "town": "Llangefni",
                    "postcode": "LL77 7AA",
                },
                preferred_given_name="Sian",
                school={"number": "6602001", "name": "Ysgol Synthetig"},
                admission_date="2019-09-01",
            )
        ]
        parse_payload(made.payload, Settings())  # the service's parser takes it as it is

    def test_an_unknown_or_repeated_column_is_named_before_anything_else(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        csv = tmp_path / "roll.csv"
        csv.write_text("given_name,famly_name,given_name,address_line_7\nA,B,C,D\n", encoding="utf-8")
        argv = [
            "validate",
            str(csv),
            "--kind",
            "ehe_register",
            "--sender",
            "W06000001",
            "--as-of",
            "2025-04-30",
        ]
        assert main(argv) == 1
        error = json.loads(capsys.readouterr().err)
        assert error["error"] == "invalid-submission"
        assert "famly_name" in error["detail"] and "address_line_7" in error["detail"]
        assert "given_name" in error["detail"]  # named twice

    def test_bad_rows_are_named_with_their_csv_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        csv = tmp_path / "list.txt"  # --csv: whatever the extension
        csv.write_text(
            "given_name,family_name,date_of_birth,postcode,address_is_last_known\n"
            "Siân,Prys-Jones,2014-06-02,LL77 7AA,yes\n"
            '"Multi\nline",Jones,2014-02-30,LL77 7AA,no\n'
            "Ann,Evans,2014-06-02,LL77 7AA,perhaps\n",
            encoding="utf-8",
        )
        argv = ["validate", "--csv", str(csv), "--kind", "health_register", "--sender", BOARD,
                "--recipient", PILOT_LA, "--as-of", "2025-04-30"]  # fmt: skip
        assert main(argv) == 1
        out = capsys.readouterr().out
        assert "record 1 (CSV line 3): date_of_birth: date_from_datetime_parsing [error]" in out
        assert "record 2 (CSV line 5): address_is_last_known: bool_parsing [error]" in out

    def test_a_csv_that_is_not_utf8_is_one_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        csv = tmp_path / "list.csv"
        csv.write_bytes("given_name\nSi\xe2n\n".encode("latin-1"))
        argv = ["validate", str(csv), "--kind", "health_register", "--sender", BOARD, "--as-of", "2025-04-30"]
        assert main(argv) == 1
        assert "UTF-8" in json.loads(capsys.readouterr().err)["detail"]

    def test_the_documented_layout_lists_every_column(self) -> None:
        guide = (Path(__file__).resolve().parents[2] / "docs" / "partners-csv.md").read_text(encoding="utf-8")
        for columns in KIND_COLUMNS.values():
            for column in columns:
                assert f"`{column}`" in guide, column


class TestJsonSchemas:
    @pytest.mark.parametrize("kind", list(SubmissionKind))
    def test_the_committed_schema_is_the_models(self, kind: SubmissionKind) -> None:
        committed = (SCHEMAS / f"{kind.value}.schema.json").read_text(encoding="utf-8")
        assert committed == schema_text(kind), "openapi/schemas is stale: run `make schemas` and commit it"

    def test_the_schemas_accept_a_good_list_and_refuse_a_misspelt_field(self) -> None:
        health = json.loads((SCHEMAS / "health_register.schema.json").read_text(encoding="utf-8"))
        roll = json.loads((SCHEMAS / "school_roll.schema.json").read_text(encoding="utf-8"))
        assert jsonschema_rs.validator_for(health).is_valid(payload(BOARD, [child()]))
        assert not jsonschema_rs.validator_for(health).is_valid(payload(BOARD, [child(famly_name="X")]))
        assert not jsonschema_rs.validator_for(health).is_valid(
            {k: v for k, v in payload(BOARD, [child()]).items() if k != "as_of"}
        )
        assert jsonschema_rs.validator_for(roll).is_valid(payload("W06000001", [pupil()], kind="school_roll"))


def test_a_usage_error_is_one_line_too(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["validate", "list.json", "--no-such-flag"])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and json.loads(err[0])["error"] == "usage" and "--no-such-flag" in err[0]
