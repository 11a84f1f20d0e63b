"""The partner CLI against a running service (uvicorn on loopback, PostgreSQL, the in-process job worker):
bad rows are reported before anything is sent, a good list is accepted, its receipt verified and its job
waited for, CSV goes the same way, and every failure is one clear line (issue 12, item 2)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.cli import main
from app.core.config import Settings
from app.main import create_app
from app.submissions.models import Submission
from tests.submissions.conftest import AS_OF, PILOT_LA, child, payload
from tests.submissions.test_intake import count
from tests.support.keys import new_key
from tests.support.partners import TestPartner
from tests.support.server import serving


@pytest.fixture
def url(settings: Settings, engine: Engine) -> Iterator[str]:
    app = create_app(settings.model_copy(update={"run_worker_in_process": True}))
    with serving(app) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def key_file(tmp_path: Path, health_board: TestPartner) -> Path:
    path = tmp_path / "board.pem"
    path.write_bytes(health_board.key.private_pem())
    return path


def credentials(board: TestPartner, key_file: Path) -> list[str]:
    return ["--partner", board.id, "--key", str(key_file), "--kid", board.key.kid]


def write(tmp_path: Path, document: dict[str, Any], name: str = "list.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_bad_rows_are_reported_before_anything_is_sent(
    url: str,
    tmp_path: Path,
    session: Session,
    health_board: TestPartner,
    pilot_la: TestPartner,
    key_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    document = payload(health_board.id, [child(), child(date_of_birth="2014-02-30"), child(postcde="X")])
    path = write(tmp_path, document)
    assert main(["submit", str(path), "--url", url, *credentials(health_board, key_file)]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert any("record 1: date_of_birth: date_from_datetime_parsing [error]" in line for line in err)
    assert any("record 2: postcde: extra_forbidden [error]" in line for line in err)
    assert json.loads(err[-1])["error"] == "invalid-submission"
    assert captured.out == ""
    assert count(session, Submission) == 0  # never sent


def test_a_good_list_is_accepted_its_receipt_verified_and_its_job_waited_for(
    url: str,
    tmp_path: Path,
    session: Session,
    health_board: TestPartner,
    pilot_la: TestPartner,
    key_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    records = [
        child(),
        child(given_name="Dafydd", date_of_birth="2012-01-15"),
        child(date_of_birth="2030-01-01"),
    ]
    path = write(tmp_path, payload(health_board.id, records))
    assert main(["submit", str(path), "--url", url, "--progress", *credentials(health_board, key_file)]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["receipt_verified"] is True
    receipt = result["receipt"]
    assert (receipt["record_count"], receipt["accepted"], receipt["rejected"]) == (3, 2, 1)
    assert result["job"]["status"] == "succeeded"
    assert sum(result["job"]["result"]["outcomes"].values()) == 2
    summary = captured.err.strip().splitlines()[-1]
    assert summary.startswith(f"submission {result['submission_id']} stored: 3 record(s), 2 accepted")
    assert "receipt signature verified" in summary and "succeeded" in summary
    assert count(session, Submission) == 1

    # Sent again: a retry, answered with the original receipt (verified again).
    assert main(["submit", str(path), "--url", url, "--no-wait", *credentials(health_board, key_file)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["receipt"] == receipt and again["receipt_verified"] is True
    assert count(session, Submission) == 1


def test_a_csv_list_goes_the_same_way(
    url: str,
    tmp_path: Path,
    health_board: TestPartner,
    pilot_la: TestPartner,
    key_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    csv = tmp_path / "list.csv"
    csv.write_text(
        "given_name,family_name,date_of_birth,address_line_1,town,postcode\n"
        "Siân,Prys-Jones,2014-06-02,12 Heol y Felin,Llangefni,LL77 7AA\n"
        "Dafydd,Rhys,2012-01-15,3 Stryd Fawr,Bangor,LL57 1AA\n",
        encoding="utf-8",
    )
    envelope = ["--kind", "health_register", "--recipient", PILOT_LA, "--as-of", AS_OF.isoformat()]
    argv = ["submit", str(csv), "--url", url, "--no-wait", *credentials(health_board, key_file), *envelope]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["receipt"]["accepted"] == 2 and result["receipt_verified"] is True


def test_a_signed_file_with_its_trailing_newline_goes_with_one_token(
    url: str,
    tmp_path: Path,
    health_board: TestPartner,
    pilot_la: TestPartner,
    key_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write(tmp_path, payload(health_board.id, [child()]))
    assert main(["sign", *credentials(health_board, key_file), str(path)]) == 0
    signed = tmp_path / "list.jws"
    signed.write_text(capsys.readouterr().out)  # as `cme sign > list.jws` leaves it: a trailing newline
    assert signed.read_text().endswith("\n")
    assert main(["token", *credentials(health_board, key_file)]) == 0
    token = capsys.readouterr().out.strip()
    assert main(["submit", str(signed), "--url", url, "--token", token]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["receipt_verified"] is True
    assert "not waiting for the job" in captured.err  # a token is good for one request
    assert json.loads(captured.out)["job"] is None


def test_a_large_body_shows_progress_on_stderr(
    url: str,
    tmp_path: Path,
    health_board: TestPartner,
    pilot_la: TestPartner,
    key_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    records = [child(given_name=f"Plentyn{n}", middle_names="X" * 100) for n in range(5000)]
    path = write(tmp_path, payload(health_board.id, records))
    argv = [
        "submit",
        str(path),
        "--url",
        url,
        "--no-wait",
        "--progress",
        *credentials(health_board, key_file),
    ]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "sending" in err and "(100%)" in err


def test_failures_are_one_line(
    url: str,
    tmp_path: Path,
    health_board: TestPartner,
    pilot_la: TestPartner,
    key_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write(tmp_path, payload(health_board.id, [child()]))
    stranger = tmp_path / "stranger.pem"
    stranger.write_bytes(new_key("ES256", "key-1").private_pem())  # not the registered key
    argv = ["submit", str(path), "--url", url, "--partner", health_board.id, "--key", str(stranger)]
    assert main([*argv, "--kid", "key-1"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.err.strip().splitlines()[-1]) == {
        "error": "submission-not-accepted",
        "detail": "HTTP 401 unauthorized: The request could not be authenticated.",
    }
    # Not signed and no key to sign it with.
    assert main(["submit", str(path), "--url", url, "--token", "a.b.c"]) == 1
    assert json.loads(capsys.readouterr().err)["error"] == "credentials-missing"
    # A submission id used before with other content: the service's 409 in one line.
    first = payload(health_board.id, [child()], submission_id=uuid.uuid4())
    assert main(["submit", str(write(tmp_path, first)), "--url", url, "--no-wait",
                 *credentials(health_board, key_file)]) == 0  # fmt: skip
    capsys.readouterr()
    second = {**first, "records": [child(given_name="Arall")]}
    assert main(["submit", str(write(tmp_path, second)), "--url", url, "--no-wait",
                 *credentials(health_board, key_file)]) == 1  # fmt: skip
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert json.loads(line)["error"] == "submission-not-accepted" and "409" in line
