"""The one-command start: `cme serve` on the embedded SQLite default accepts a signed submission.

Runs the real CLI in subprocesses (no PostgreSQL involved), exactly as the README's walkthrough does.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

CME = [sys.executable, "-m", "app.cli"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CME_") and k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    # The embedded database's default home (one per user, whatever the working directory), kept in the test.
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    # The default window is the statutory one, which has ended; a deployment (here: the demo) sets its own.
    env["CME_LEGAL_WINDOW_END"] = "2100-01-01"
    # One health list is sent: match it at once rather than wait for the rest of its period's lists.
    env["CME_MATCH_ROUND_WAIT_SECONDS"] = "0"
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [*CME, "serve", "--port", str(port)], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError("the embedded service did not become ready")
        yield url, env, tmp_path
    finally:
        server.terminate()
        server.wait(20)
        log.close()


def _cme(env: dict[str, str], cwd: Path, *args: str) -> str:
    return subprocess.run([*CME, *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def _registered_key(env: dict[str, str], cwd: Path, partner: str, kid: str) -> str:
    """A fresh key pair for the partner, its public half registered; returns the private key's path."""
    _cme(env, cwd, "keys", "generate", "--partner", partner, "--kid", kid, "--out", "var/keys", "--register")
    return f"var/keys/{partner}-{kid}.pem"


def test_embedded_service_accepts_a_signed_submission_and_matches_it(
    embedded: tuple[str, dict[str, str], Path],
) -> None:
    url, env, cwd = embedded
    assert (cwd / "data" / "cme-hub" / "cme-hub.db").exists()  # created by the start, no server installed
    key = _registered_key(env, cwd, "W11000029", "smoke")
    _cme(env, cwd, "demo", "generate", "--children", "200", "--out", "var/demo")
    submission = next((cwd / "var/demo/submissions").glob("*-health_register-W11000029.json"))
    jws = _cme(env, cwd, "sign", "--partner", "W11000029", "--key", key, "--kid", "smoke", str(submission))
    (cwd / "health.jws").write_text(jws)
    token = _cme(env, cwd, "token", "--partner", "W11000029", "--key", key, "--kid", "smoke").strip()
    result = json.loads(_cme(env, cwd, "submit", "health.jws", "--token", token, "--url", url))
    records = json.loads(submission.read_text())["records"]
    receipt = result["receipt"]
    assert receipt["record_count"] == len(records) > 0
    assert receipt["accepted"] + receipt["flagged"] + receipt["rejected"] == len(records)
    # The in-process worker runs the matching job on the embedded database too.
    for _ in range(100):
        token = _cme(env, cwd, "token", "--partner", "W11000029", "--key", key, "--kid", "smoke").strip()
        job = httpx.get(
            f"{url}/v1/jobs/{result['job_id']}", headers={"Authorization": f"Bearer {token}"}
        ).json()
        if job["status"] == "succeeded":
            break
        time.sleep(0.2)
    assert job["status"] == "succeeded", job
    assert sum(job["result"]["outcomes"].values()) == receipt["accepted"] + receipt["flagged"]

    # An LA officer's real-time query on the embedded database: authenticated (jti burned through the
    # thread pool on SQLite), answered, and audited through a session.
    la_key = _registered_key(env, cwd, "W06000015", "la")
    child = {
        k: records[0][k] for k in ("given_name", "family_name", "date_of_birth", "address") if k in records[0]
    }
    for _ in range(100):
        token = _cme(
            env, cwd, "token", "--partner", "W06000015", "--key", la_key, "--kid", "la", "--officer", "o-1"
        ).strip()
        answer = httpx.post(
            f"{url}/v1/match", json={"records": [child]}, headers={"Authorization": f"Bearer {token}"}
        )
        if answer.status_code != 503:  # 503: the index is still being built
            break
        time.sleep(0.2)
    assert answer.status_code == 200, answer.text
    assert [result["record_index"] for result in answer.json()["results"]] == [0]
    with sqlite3.connect(cwd / "data" / "cme-hub" / "cme-hub.db") as db:
        audited = db.execute("SELECT count(*) FROM audit_event WHERE action = 'matching.realtime.query'")
        assert audited.fetchone() == (1,)
