"""`cme serve --workers N` hands uvicorn an importable app factory, so each worker process builds its own app."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from app.cli import main
from app.wiring import commands


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    return calls


@pytest.fixture
def logging_setups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record log set-ups instead of replacing the test run's own log handlers."""
    levels: list[str] = []
    monkeypatch.setattr(commands, "configure_logging", levels.append)
    return levels


def test_workers_reach_uvicorn_with_an_importable_factory(
    uvicorn_calls: list[tuple[tuple[Any, ...], dict[str, Any]]], logging_setups: list[str]
) -> None:
    assert main(["serve", "--workers", "2", "--no-migrate", "--no-seed-demo"]) == 0
    [(args, kwargs)] = uvicorn_calls
    assert (kwargs["workers"], kwargs["factory"]) == (2, True)
    module_name, _, factory_name = args[0].partition(":")
    factory = getattr(importlib.import_module(module_name), factory_name)
    logging_setups.clear()
    assert isinstance(factory(), FastAPI)
    # A worker process does not inherit the parent's logging set-up: the factory makes its own.
    assert len(logging_setups) == 1


def test_one_worker_by_default(
    uvicorn_calls: list[tuple[tuple[Any, ...], dict[str, Any]]], logging_setups: list[str]
) -> None:
    assert main(["serve", "--no-migrate", "--no-seed-demo"]) == 0
    assert uvicorn_calls[0][1]["workers"] == 1


def test_zero_workers_is_refused(uvicorn_calls: list[tuple[tuple[Any, ...], dict[str, Any]]]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--workers", "0"])
    assert uvicorn_calls == []
