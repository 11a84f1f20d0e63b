"""The deployment files (issue 12, item 4): docker-compose.yml runs PostgreSQL, the one-off migration, the
API and a worker with health checks, and the Dockerfile is multi-stage with a HEALTHCHECK. Every command
they run is one `cme` accepts, and every CME_ variable they set is a setting the service reads.

`docker compose config` validates the file where the compose plugin is installed; the structural checks
run everywhere."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.cli import build_parser
from app.core.config import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is not None:
        plugin = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if plugin.returncode == 0:
            return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone else None


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _settings_env_names() -> set[str]:
    names = {f"CME_{name.upper()}" for name in Settings.model_fields}
    return names | {"DATABASE_URL"}


def _assert_cme_command(argv: list[str]) -> None:
    assert argv[0] == "cme", argv
    build_parser().parse_args(argv[1:])  # exits (SystemExit) on an unknown command or flag


@pytest.mark.skipif(_compose_command() is None, reason="docker compose is not installed on this machine")
def test_docker_compose_config_accepts_the_file() -> None:
    command = _compose_command()
    assert command is not None
    result = subprocess.run(
        [*command, "-f", str(COMPOSE), "config", "--quiet"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_compose_runs_postgres_the_migration_the_api_and_a_worker(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"db", "migrate", "api", "worker"}
    assert services["db"]["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])

    assert services["migrate"]["command"] == ["cme", "migrate"]
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert services[name]["image"] == services["migrate"]["image"]
        _assert_cme_command(services[name]["command"])
    assert services["worker"]["command"] == ["cme", "worker"]

    api = services["api"]
    assert api["command"][:2] == ["cme", "serve"]
    assert "--no-migrate" in api["command"]  # migrations are the release step, not each replica's start
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    # TLS is terminated in front: the plain-HTTP port is published on loopback only.
    assert all(str(port).startswith("127.0.0.1:") for port in api["ports"])
    # The worker serves no HTTP, so the image's HTTP check is switched off for it, not left failing.
    assert services["worker"]["healthcheck"] == {"disable": True}


def test_compose_sets_only_settings_the_service_reads(compose: dict[str, Any]) -> None:
    known = _settings_env_names()
    for name, service in compose["services"].items():
        for variable in service.get("environment", {}):
            if variable.startswith("CME_"):
                assert variable in known, f"{name}: {variable} is not a setting (app/core/config.py)"
    environment = compose["services"]["api"]["environment"]
    assert environment["CME_RUN_WORKER_IN_PROCESS"] == "false"  # jobs run in the worker service
    assert environment["CME_DATABASE_URL"].startswith("postgresql://")


def test_the_dockerfile_is_multi_stage_with_a_healthcheck_and_a_non_root_user() -> None:
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM \S+ AS (\S+)$", text, flags=re.MULTILINE)
    assert len(stages) >= 2, stages
    assert re.search(r"^COPY --from=build ", text, flags=re.MULTILINE)
    healthcheck = re.search(r"^HEALTHCHECK .*?\n(?:\s+.*\n)*", text, flags=re.MULTILINE)
    assert healthcheck is not None and "/healthz" in healthcheck.group(0)
    assert re.search(r"^USER (?!root)\S+$", text, flags=re.MULTILINE)
    [cmd] = re.findall(r"^CMD (\[.*\])$", text, flags=re.MULTILINE)
    _assert_cme_command(yaml.safe_load(cmd))
    # The settings the image fixes are settings.
    for variable in re.findall(r"\b(CME_[A-Z_]+)=", text):
        assert variable in _settings_env_names(), variable
