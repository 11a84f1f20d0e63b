"""`make test` on a machine with no PostgreSQL running: scripts/with_postgres.py starts a throwaway cluster
(initdb + pg_ctl on a free port in a temporary directory), runs the command against it and removes it;
with no server binaries either it says in one line how to get one (issue 12, item 4)."""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "with_postgres.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("with_postgres", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


with_postgres = _load()


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.skipif(
    with_postgres.server_bindir() is None, reason="no PostgreSQL server binaries (initdb) here"
)
def test_with_no_server_reachable_it_starts_a_throwaway_cluster_and_removes_it() -> None:
    unreachable = f"postgresql://postgres@127.0.0.1:{_unused_port()}/postgres"
    # The command the script runs: it must find a working server at the DSN it is given, and create a
    # database there as conftest.py does; its exit status is passed through.
    probe = textwrap.dedent(
        """
        import os, sys, psycopg
        dsn = os.environ["CME_TEST_ADMIN_DSN"]
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute('CREATE DATABASE "cme_probe"')
            print(dsn, conn.execute("SHOW server_version").fetchone()[0])
        sys.exit(7)
        """
    )
    env = {**os.environ, "CME_TEST_ADMIN_DSN": unreachable}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), sys.executable, "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 7, result.stderr
    dsn, version = result.stdout.split(maxsplit=1)
    assert version.strip()
    assert dsn != unreachable and dsn.startswith("postgresql://postgres@127.0.0.1:")
    [line] = [line for line in result.stderr.splitlines() if "throwaway" in line]
    found = re.search(r"in (\S+) on 127\.0\.0\.1:(\d+)", line)
    assert found is not None, line
    directory, port = Path(found.group(1)), int(found.group(2))
    assert dsn.endswith(f":{port}/postgres")
    # Stopped and removed afterwards.
    assert not directory.exists()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_a_reachable_server_is_used_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(with_postgres, "reachable", lambda dsn: True)
    monkeypatch.setattr(with_postgres, "throwaway_cluster", None)  # must not be reached
    monkeypatch.setenv("CME_TEST_ADMIN_DSN", "postgresql://someone@db.example:5432/postgres")
    command = [
        sys.executable,
        "-c",
        "import os, sys; sys.exit(0 if os.environ['CME_TEST_ADMIN_DSN'].startswith('postgresql://someone@') else 1)",
    ]
    assert with_postgres.run(command) == 0


def test_with_no_server_and_no_binaries_it_says_how_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(with_postgres, "reachable", lambda dsn: False)
    monkeypatch.setattr(with_postgres, "server_bindir", lambda: None)
    assert with_postgres.run([sys.executable, "-c", "raise SystemExit(0)"]) == 3
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "no PostgreSQL at" in line and "CME_TEST_ADMIN_DSN" in line
