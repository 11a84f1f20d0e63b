"""One typed settings object, read from the environment (prefix CME_) and an optional .env file."""

from __future__ import annotations

import datetime as dt
import json
import os
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.db import is_sqlite

MiB = 1024 * 1024


@cache
def wales_reference() -> dict[str, Any]:
    """The reference data shipped with the service (LAs, health boards, pilot flags)."""
    text = resources.files("app.core").joinpath("reference/wales-reference.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _default_pilot_las() -> list[str]:
    return list(wales_reference()["pilot"]["pilot_la_gss"])


def default_data_dir() -> Path:
    """Where the embedded database and the service key live unless configured: one absolute per-user
    directory ($XDG_DATA_HOME/cme-hub, else ~/.local/share/cme-hub), so `cme` finds the same database
    whichever directory it is started from."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser().absolute() / "cme-hub"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CME_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description=(
            "Directory of the embedded SQLite database and the service key when CME_DATABASE_URL and "
            "CME_SERVICE_KEY_FILE are not set. Default: $XDG_DATA_HOME/cme-hub, else ~/.local/share/cme-hub."
        ),
    )
    database_url: str = Field(
        default_factory=lambda data: f"sqlite:///{data['data_dir']}/cme-hub.db",
        validation_alias=AliasChoices("CME_DATABASE_URL", "DATABASE_URL"),
        description=(
            "SQLAlchemy URL. Defaults to an embedded SQLite file in `data_dir` (the same wherever `cme` is "
            "started); production and tests use PostgreSQL."
        ),
    )
    audience: str = Field(
        default="https://cme-hub.invalid",
        description="This service's identifier: the `aud` every partner token must carry.",
    )
    service_key_file: Path = Field(
        default_factory=lambda data: data["data_dir"] / "service-signing-key.pem",
        description="PEM file of the service's own ES256 key that signs receipts; created on first start.",
    )
    max_body_bytes: int = Field(
        default=256 * MiB, gt=0, description="Signed submissions (`POST /v1/submissions`) above this get 413."
    )
    max_json_body_bytes: int = Field(
        default=1 * MiB, gt=0, description="Every other request body above this gets 413."
    )
    max_records: int = Field(default=1_000_000, gt=0, description="Most records one submission may carry.")
    max_match_records: int = Field(default=100, gt=0, le=1000)
    token_max_lifetime_seconds: int = Field(default=300, gt=0, le=300)
    clock_skew_seconds: int = Field(default=10, ge=0, le=60)
    nhs_number_enabled: bool = Field(
        default=False, description="Accept the (non-Schedule 2) NHS number as an optional field."
    )
    run_worker_in_process: bool = Field(
        default=True, description="Run the job worker inside the API process (the embedded default)."
    )
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    audit_read_events_wait_for_flush: bool = Field(
        default=False,
        description=(
            "Make a request that only read (its audit event is its transaction's only write) wait for the "
            "WAL flush as changes always do. Off: such commits return before the flush (PostgreSQL "
            "synchronous_commit=off), so a database crash can lose the last fraction of a second of read "
            "events; never a change, never a gap in the chain (decision 0007)."
        ),
    )
    audit_checkpoint_dir: Path | None = Field(
        default=None,
        description=(
            "Directory (WORM storage, another host's mount) where the daily signed audit checkpoint is also "
            "written, one file per day, never overwritten: a copy the database superuser cannot rewrite."
        ),
    )
    audit_checkpoint_interval_seconds: int = Field(
        default=300,
        ge=60,
        description=(
            "Besides the daily checkpoint, the audit chain's head is signed this often (checked by the "
            "worker's once-a-minute tick): before each, the events since the previous one are verified, so a "
            "log cut or rewritten below a checkpoint is found within minutes (decision 0007)."
        ),
    )
    admission_wait_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How long a request may wait for one of the `request_threads` slots before it gets 503.",
    )
    request_threads: int = Field(
        default=16,
        ge=1,
        le=30,
        description=(
            "Requests handled at once per process (the thread pool of sync endpoints); at most the database "
            "pool's 30 connections, so no request waits for a connection while holding a thread."
        ),
    )
    match_round_wait_seconds: float = Field(
        default=900,
        ge=0,
        description=(
            "How long a period's matching round waits for the rest of its health lists after the first one "
            "arrives; it starts at once when every pilot LA's health board has sent its list (decision 0012)."
        ),
    )
    match_round_quiet_seconds: float = Field(
        default=5,
        ge=0,
        description=(
            "Once every pilot LA's health board has sent its list, the round starts when no further list "
            "(a GP practice's) has arrived for this long, and at the latest when the wait ends."
        ),
    )
    candidate_max_age_days: int = Field(
        default=30, ge=1, description="The daily job escalates an open CME candidate older than this, once."
    )
    hsts_seconds: int = Field(
        default=0,
        ge=0,
        description=(
            "When above 0, every response carries `Strict-Transport-Security: max-age=N`. Off by default: TLS "
            "is terminated in front of the service, which may set the header itself."
        ),
    )
    body_read_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        description=(
            "A request body not received whole this long after its headers (a client trickling it) is cut "
            "off with 408; 120 s lets a 256 MiB signed submission arrive at about 20 Mbit/s."
        ),
    )
    rate_limit_per_second: float = Field(
        default=400.0,
        ge=0,
        description=(
            "Requests per second each partner may make to /v1/, sustained (a token bucket per partner, in "
            "each process); beyond it 429 with Retry-After. 0 turns the limit off."
        ),
    )
    rate_limit_burst: int = Field(
        default=800,
        ge=1,
        description="Requests a partner may make at once before the sustained rate applies.",
    )
    log_level: str = "INFO"
    pilot_las: list[str] = Field(default_factory=_default_pilot_las)
    legal_window_start: dt.date = dt.date(2025, 4, 8)
    legal_window_end: dt.date = dt.date(2026, 4, 8)
    metrics_token: SecretStr | None = Field(
        default=None,
        description=(
            "The operator's scrape token for GET /metrics (`Authorization: Bearer <token>`); unset, nobody "
            "reads the metrics. No partner token is ever let in (decision 0020)."
        ),
    )

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @field_validator("database_url")
    @classmethod
    def _use_psycopg3(cls, value: str) -> str:
        # Plain postgresql:// would select psycopg2, which is not a dependency.
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.database_url)


@cache
def get_settings() -> Settings:
    return Settings()
