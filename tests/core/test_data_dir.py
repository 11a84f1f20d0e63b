"""The CLI finds its embedded database the same way wherever it is started (issue 12, item 4).

Before: `cme` run outside the checkout silently created an empty `var/cme-hub.db` under the current
directory. Now the default lives in one absolute per-user directory ($XDG_DATA_HOME/cme-hub, else
~/.local/share/cme-hub), CME_DATA_DIR or CME_DATABASE_URL choose another, and a new empty database is
announced in one line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.config import Settings, default_data_dir

CME = [sys.executable, "-m", "app.cli"]
ROOT = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CME_") and k not in {"DATABASE_URL", "XDG_DATA_HOME", "HOME"}
    }
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def _cme(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CME, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_default_is_one_absolute_per_user_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("CME_DATA_DIR", "CME_DATABASE_URL", "DATABASE_URL", "CME_SERVICE_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    settings = Settings(_env_file=None)
    assert settings.data_dir == tmp_path / "xdg" / "cme-hub"
    assert settings.database_url == f"sqlite:///{tmp_path}/xdg/cme-hub/cme-hub.db"
    assert settings.service_key_file == tmp_path / "xdg" / "cme-hub" / "service-signing-key.pem"

    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home" / ".local" / "share" / "cme-hub"

    # CME_DATA_DIR moves both; a relative one is made absolute once, when the settings are read.
    monkeypatch.setenv("CME_DATA_DIR", "data")
    settings = Settings(_env_file=None)
    assert settings.data_dir == tmp_path / "data"
    assert settings.database_url == f"sqlite:///{tmp_path}/data/cme-hub.db"
    # CME_DATABASE_URL wins over the directory.
    monkeypatch.setenv("CME_DATABASE_URL", "postgresql://cme@db:5432/cme")
    assert Settings(_env_file=None).database_url == "postgresql+psycopg://cme@db:5432/cme"


def test_the_cli_uses_the_same_database_from_any_directory(tmp_path: Path) -> None:
    env = _env(XDG_DATA_HOME=str(tmp_path / "xdg"), HOME=str(tmp_path / "home"))
    database = tmp_path / "xdg" / "cme-hub" / "cme-hub.db"
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()

    migrated = _cme(first, env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert database.exists()
    # Said once, in one line, naming where.
    [line] = [line for line in migrated.stderr.splitlines() if "new empty" in line]
    assert str(database) in line
    assert not (first / "var").exists()

    added = _cme(
        first, env, "partners", "add", "--id", "W97999", "--kind", "gp_practice", "--name", "Practice"
    )
    assert added.returncode == 0, added.stderr
    assert "new empty" not in added.stderr

    listed = _cme(second, env, "partners", "list", "--kind", "gp_practice")
    assert listed.returncode == 0, listed.stderr
    assert "new empty" not in listed.stderr
    assert [p["id"] for p in json.loads(listed.stdout)] == ["W97999"]
    assert not (second / "var").exists()


def test_cme_database_url_overrides_the_default(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.db"
    env = _env(XDG_DATA_HOME=str(tmp_path / "xdg"), CME_DATABASE_URL=f"sqlite:///{elsewhere}")
    migrated = _cme(tmp_path, env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert elsewhere.exists()
    assert not (tmp_path / "xdg").exists()


def test_a_database_without_tables_is_said_in_one_line_not_a_traceback(tmp_path: Path) -> None:
    env = _env(XDG_DATA_HOME=str(tmp_path / "xdg"), HOME=str(tmp_path / "home"))
    for attempt in range(2):  # the first run creates the empty file, the second finds it
        listed = _cme(tmp_path, env, "keys", "list", "--partner", "W11000029")
        assert listed.returncode == 1
        assert "Traceback" not in listed.stderr
        error = json.loads(listed.stderr.strip().splitlines()[-1])
        assert error["error"] == "database-not-set-up"
        assert "cme migrate" in error["detail"] and str(tmp_path / "xdg") in error["detail"]
        assert ("new empty" in listed.stderr) == (attempt == 0)
