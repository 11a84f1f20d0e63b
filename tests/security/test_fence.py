"""Architecture rules of the security domain."""

from __future__ import annotations

import ast
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

import app
from app.security.dependencies import authenticated_router

APP_ROOT = Path(app.__file__).parent


def test_only_the_adapter_imports_python_jose() -> None:
    importers = set()
    for path in APP_ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [alias.name for alias in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )  # fmt: skip
            if any(name == "jose" or name.startswith("jose.") for name in names):
                importers.add(path.relative_to(APP_ROOT).as_posix())
    assert importers == {"core/jose_adapter.py"}


def test_authenticated_router_denies_routes_that_do_not_ask_for_the_caller(app: FastAPI) -> None:
    router = authenticated_router(prefix="/_test/guarded")

    @router.get("/open-looking")
    def open_looking() -> dict[str, str]:
        return {"ok": "yes"}

    app.include_router(router)
    with TestClient(app) as client:
        response = client.get("/_test/guarded/open-looking")
    assert response.status_code == 401
    assert response.json()["type"] == "urn:cme-hub:problem:unauthorized"
    assert "401" in app.openapi()["paths"]["/_test/guarded/open-looking"]["get"]["responses"]
