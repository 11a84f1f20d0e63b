"""The import graph's floors (issue 13 item 4, decision 0021): `app.core` imports no domain, composition
lives in `app.wiring` (beside `app.main` and `app.cli`), and services take the plain `Caller`."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"
ABOVE_CORE = (
    "app.audit",
    "app.cme",
    "app.jobs",
    "app.matching",
    "app.observability",
    "app.partners",
    "app.security",
    "app.statistics",
    "app.submissions",
    "app.synthetic",
    "app.wiring",
    "app.main",
    "app.cli",
)


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return names


def _under(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def test_core_imports_no_domain() -> None:
    upward = [
        f"{path.relative_to(APP)}: {name}"
        for path in sorted((APP / "core").rglob("*.py"))
        for name in _imports(path)
        if _under(name, ABOVE_CORE)
    ]
    assert upward == []


def test_only_the_top_imports_composition() -> None:
    top = {APP / "main.py", APP / "cli.py"}
    importers = [
        str(path.relative_to(APP))
        for path in sorted(APP.rglob("*.py"))
        if path not in top
        and path.parent != APP / "wiring"
        and any(_under(name, ("app.wiring", "app.main", "app.cli")) for name in _imports(path))
    ]
    assert importers == []


def test_services_take_the_plain_caller() -> None:
    services = [
        path
        for path in sorted(APP.rglob("*.py"))
        if path.name not in {"router.py", "dependencies.py"} and path.parent.name != "wiring"
    ]
    through_fastapi = [
        str(path.relative_to(APP)) for path in services if "app.security.dependencies" in _imports(path)
    ]
    assert through_fastapi == []


def _domain_imports(domain: str) -> set[str]:
    return {name for path in (APP / domain).rglob("*.py") for name in _imports(path)}


def test_no_back_edges_between_the_flow_domains() -> None:
    """Intake feeds matching, matching feeds cme: matching may call cme, never the other way."""
    assert not any(_under(name, ("app.matching",)) for name in _domain_imports("cme"))
    assert not any(_under(name, ("app.matching", "app.cme")) for name in _domain_imports("submissions"))


def test_security_reads_only_the_partner_registry() -> None:
    """Authentication needs the partners' keys; which roles exist and who may call live in security itself
    (the CME domain reads its role sets from there), and the partner-side `cme sign` is intake tooling."""
    sideways = sorted(
        name
        for name in _domain_imports("security")
        if _under(name, ABOVE_CORE) and not _under(name, ("app.security", "app.partners"))
    )
    assert sideways == []


def test_jobs_import_no_observer() -> None:
    """The worker is told of each run by an observer the top wires to the metrics, so the metrics may read
    the job table without a loop between the two domains."""
    assert not any(_under(name, ("app.observability",)) for name in _domain_imports("jobs"))


def test_partners_import_no_security() -> None:
    """The registry checks a key with the JOSE primitives of `app.core`; security authenticates with the
    registry. An edge back from partners to security would make the two one package."""
    assert not any(_under(name, ("app.security",)) for name in _domain_imports("partners"))
