"""The service over real HTTP: uvicorn on a free loopback port, against the session's test database."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from app.core.config import Settings
from app.main import create_app
from tests.support.partners import PILOT_LAS
from tests.support.server import serving


@dataclass(frozen=True)
class LiveServer:
    url: str
    settings: Settings


@pytest.fixture
def live_server(database_url: str, engine: Engine, tmp_path: Path) -> Iterator[LiveServer]:
    """The app served by uvicorn on loopback (`tests.support.server.serving`), with its job worker, on the
    real clock; stopped before the tables are truncated. Health lists are matched as soon as the worker
    takes them."""
    settings = Settings(
        database_url=database_url,
        service_key_file=tmp_path / "service-key" / "service-signing-key.pem",
        run_worker_in_process=True,
        worker_poll_seconds=0.1,
        legal_window_start=dt.date(2020, 1, 1),
        legal_window_end=dt.date(2100, 1, 1),
        match_round_wait_seconds=0,
        match_round_quiet_seconds=0,
        pilot_las=list(PILOT_LAS),
    )
    with serving(create_app(settings)) as port:
        yield LiveServer(url=f"http://127.0.0.1:{port}", settings=settings)


REPO = Path(__file__).resolve().parents[2]
OPENAPI = REPO / "openapi" / "openapi.json"
CLIENT_CONFIG = REPO / "openapi" / "client-config.yaml"
CLIENT_PACKAGE = "cme_hub_client"


@dataclass(frozen=True)
class GeneratedClient:
    root: Path  # holds the package directory
    output: str  # what the generator printed


@pytest.fixture(scope="session")
def generated_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GeneratedClient]:
    """A client generated from the committed openapi/openapi.json exactly as `make client` does, importable
    as `cme_hub_client` for the session."""
    out = tmp_path_factory.mktemp("generated") / "client"
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [
            str(bin_dir / "openapi-python-client"),
            "generate",
            "--path",
            str(OPENAPI),
            "--config",
            str(CLIENT_CONFIG),
            "--output-path",
            str(out),
            "--meta",
            "setup",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(out))
    try:
        yield GeneratedClient(root=out, output=done.stdout + done.stderr)
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == CLIENT_PACKAGE or m.startswith(CLIENT_PACKAGE + ".")]:
            del sys.modules[name]
