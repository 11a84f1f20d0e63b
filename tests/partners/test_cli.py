"""The `cme` admin command, run in-process against the test database."""

from __future__ import annotations

import json
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.cli import main
from app.core.config import get_settings
from app.security.jws import SUBMISSION_TYP, verify_jws
from tests.security.conftest import WHOAMI, add_test_routes
from tests.support.keys import new_key


@pytest.fixture(autouse=True)
def cli_database(database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CME_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    """Run `cme argv...`; return its JSON output (or the printed text when it is not JSON)."""
    assert main(list(argv)) == 0
    out = capsys.readouterr().out
    try:
        return json.loads(out)
    except ValueError:
        return out.strip()


def run_failing(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(list(argv)) == 1
    error: dict[str, Any] = json.loads(capsys.readouterr().err)
    return error


class TestPartners:
    def test_seed_is_idempotent_and_flags_pilot_las(self, capsys: pytest.CaptureFixture[str]) -> None:
        first = run(capsys, "partners", "seed")
        assert len(first["created"]) == 22 + 7 + 1 + 4 + 1
        assert first["already_present"] == []
        second = run(capsys, "partners", "seed")
        assert second["created"] == []
        assert sorted(second["already_present"]) == sorted(first["created"])
        las = {p["id"]: p for p in run(capsys, "partners", "list", "--kind", "local_authority")}
        assert len(las) == 22
        assert las["W06000001"]["is_pilot"] is True
        assert las["W06000003"]["is_pilot"] is False
        assert las["W06000001"]["gss_code"] == "W06000001"
        assert sum(p["is_pilot"] for p in las.values()) == len(get_settings().pilot_las)

    def test_add_suspend_activate(self, capsys: pytest.CaptureFixture[str]) -> None:
        run(capsys, "partners", "add", "--id", "W06000001", "--kind", "local_authority", "--name", "Test LA")
        school = run(
            capsys, "partners", "add", "--id", "9996001", "--kind", "independent_school",
            "--name", "Test school", "--area", "W06000001",
        )  # fmt: skip
        assert school["area_id"] == "W06000001"
        assert run(capsys, "partners", "suspend", "9996001")["status"] == "suspended"
        assert run(capsys, "partners", "activate", "9996001")["status"] == "active"

    @pytest.mark.parametrize(
        ("partner_id", "kind"),
        [("W11000023", "local_authority"), ("W0600001", "local_authority"), ("123456", "independent_school"),
         ("A81001", "gp_practice"), ("WALES", "welsh_government")],
    )  # fmt: skip
    def test_id_must_fit_the_kind(
        self, capsys: pytest.CaptureFixture[str], partner_id: str, kind: str
    ) -> None:
        error = run_failing(capsys, "partners", "add", "--id", partner_id, "--kind", kind, "--name", "X")
        assert error["error"] == "invalid-partner"

    def test_duplicate_partner(self, capsys: pytest.CaptureFixture[str]) -> None:
        run(capsys, "partners", "add", "--id", "WG", "--kind", "welsh_government", "--name", "WG")
        assert (
            run_failing(
                capsys, "partners", "add", "--id", "WG", "--kind", "welsh_government", "--name", "WG"
            )["error"]
            == "conflict"
        )

    def test_unknown_partner(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert run_failing(capsys, "partners", "suspend", "W06000009")["error"] == "not-found"


class TestKeys:
    @pytest.fixture(autouse=True)
    def _partner(self, capsys: pytest.CaptureFixture[str]) -> None:
        run(capsys, "partners", "add", "--id", "W06000001", "--kind", "local_authority", "--name", "Test LA")

    def test_add_list_revoke(self, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        key = new_key("RS512")
        jwk_file = tmp_path / "key.json"
        jwk_file.write_text(json.dumps(key.public_jwk))
        added = run(capsys, "keys", "add", "--partner", "W06000001", "--jwk", str(jwk_file))
        assert added["alg"] == "RS512"
        assert added["kid"] == key.thumbprint == added["thumbprint"]
        listed = run(capsys, "keys", "list", "--partner", "W06000001")
        assert [k["kid"] for k in listed] == [key.thumbprint]
        assert listed[0]["revoked_at"] is None
        revoked = run(capsys, "keys", "revoke", "--partner", "W06000001", f"--kid={key.thumbprint}")
        assert revoked["revoked_at"] is not None

    def test_private_key_offered_as_public_is_refused(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        key = new_key("ES256")
        private_jwk = {**key.public_jwk, "d": "AAAA"}
        jwk_file = tmp_path / "key.json"
        jwk_file.write_text(json.dumps(private_jwk))
        error = run_failing(capsys, "keys", "add", "--partner", "W06000001", "--jwk", str(jwk_file))
        assert error["error"] == "invalid-key"
        assert run(capsys, "keys", "list", "--partner", "W06000001") == []

    def test_generate_token_and_sign_work_end_to_end(
        self,
        capsys: pytest.CaptureFixture[str],
        tmp_path: Path,
        app: FastAPI,
        client: TestClient,
        session: Session,
    ) -> None:
        generated = run(
            capsys, "keys", "generate", "--partner", "W06000001", "--kid", "trial-1", "--out", str(tmp_path),
            "--register",
        )  # fmt: skip
        private_path = Path(generated["private_key"])
        assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
        public = json.loads(Path(generated["public_jwk"]).read_text())
        assert "d" not in public
        assert generated["registered"]["kid"] == "trial-1"

        token = run(
            capsys, "token", "--partner", "W06000001", "--key", str(private_path), "--kid", "trial-1",
            "--officer", "officer-9", "--role", "case_officer",
        )  # fmt: skip
        add_test_routes(app)
        whoami = client.get(WHOAMI, headers={"Authorization": f"Bearer {token}"})
        assert whoami.status_code == 200
        assert whoami.json()["officer_id"] == "officer-9"

        submission = tmp_path / "submission.json"
        # A valid (empty) school roll: `cme sign` refuses a file the service would refuse.
        submission.write_bytes(
            b'{"submission_id": "6f1c3a52-3c1e-4c43-9a55-2f0f5d0b6f11", "kind": "school_roll", '
            b'"sender": "W06000001", "as_of": "2025-04-30", "records": []}'
        )
        compact = run(
            capsys,
            "sign",
            "--partner",
            "W06000001",
            "--key",
            str(private_path),
            "--kid",
            "trial-1",
            str(submission),
        )
        verified = verify_jws(session, compact.encode(), typ=SUBMISSION_TYP, expected_partner="W06000001")
        assert verified.payload == submission.read_bytes()
        assert verified.kid == "trial-1"

    def test_sign_refuses_another_senders_file(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        generated = run(capsys, "keys", "generate", "--partner", "W06000001", "--out", str(tmp_path))
        assert "registered" not in generated
        submission = tmp_path / "submission.json"
        submission.write_text('{"sender": "W06000002"}')
        # `--kid=`: a thumbprint kid starts with "-" one time in 64, which argparse would take for an option.
        error = run_failing(
            capsys, "sign", "--partner", "W06000001", "--key", generated["private_key"], f"--kid={generated['kid']}",
            str(submission),
        )  # fmt: skip
        assert error["error"] == "invalid-submission"


class TestPartnerCliErrors:
    """Issue 12: the partner CLI says what went wrong in one line instead of doing something else."""

    def test_a_token_longer_than_the_service_accepts_is_refused_not_shortened(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        key = tmp_path / "key.pem"
        key.write_bytes(new_key("ES256", "k").private_pem())
        assert (
            main(["token", "--partner", "W06000001", "--key", str(key), "--kid", "k", "--lifetime", "600"])
            == 1
        )
        captured = capsys.readouterr()
        assert captured.out == "" and json.loads(captured.err)["error"] == "lifetime-too-long"

    def test_submit_with_no_service_listening_says_so_in_one_line(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        body = tmp_path / "list.jws"
        body.write_text("a.b.c\n")
        with socket.socket() as sock:  # a port nothing listens on
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        # --no-validate: this body is no submission, and `cme submit` checks one before it connects.
        argv = ["submit", str(body), "--token", "a.b.c", "--url", f"http://127.0.0.1:{port}", "--no-validate"]
        status = main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert status == 1 and len(err) == 1
        assert json.loads(err[0])["error"] == "service-unreachable"

    def test_generating_a_key_again_with_the_same_kid_says_what_to_do(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        argv = [
            "keys",
            "generate",
            "--partner",
            "W97999",
            "--kid",
            "again",
            "--out",
            str(tmp_path),
            "--register",
        ]
        assert main(argv) == 1  # the partner is not registered: the files are written, the registration fails
        capsys.readouterr()
        assert main(argv) == 1
        error = json.loads(capsys.readouterr().err)
        assert error["error"] == "key-file-exists" and "cme keys add" in error["detail"]
