"""The Makefile's two commands for a fresh machine (issue 12, item 4): `make run` takes a port, and
`make test` runs pytest through scripts/with_postgres.py (a throwaway PostgreSQL when none answers)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _dry_run(*args: str) -> list[str]:
    # -n prints the recipe without running it; -o keeps the venv's install step out of it. Run from
    # `make test`, the outer make's variables would make this one a sub-make that announces directories.
    env = {
        k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES"}
    }
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", ".venv/bin/.installed", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.splitlines()


def test_make_run_takes_a_port_and_defaults_to_8000() -> None:
    assert _dry_run("run") == [".venv/bin/cme serve --port 8000"]
    assert _dry_run("run", "PORT=8080") == [".venv/bin/cme serve --port 8080"]


def test_make_test_runs_pytest_through_with_postgres() -> None:
    assert ".venv/bin/python scripts/with_postgres.py .venv/bin/pytest" in _dry_run("test")
