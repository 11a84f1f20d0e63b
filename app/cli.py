"""The `cme` admin command. Each domain contributes its sub-commands through `add_commands(subparsers)`.

A sub-command sets `handler` (a function of the parsed arguments returning the exit status) with
`set_defaults`. Every error prints as one JSON line on stderr (`{"error": slug, "detail": ...}`) with exit
status 1, never a traceback (`CME_DEBUG=1` re-raises unexpected ones).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from app.audit import commands as audit_commands
from app.core.errors import ProblemError
from app.matching import commands as matching_commands
from app.partners import commands as partners_commands
from app.security import commands as security_commands
from app.submissions import commands as submissions_commands
from app.wiring import commands as wiring_commands

COMMAND_MODULES: tuple[Callable[[Any], None], ...] = (
    wiring_commands.add_commands,
    audit_commands.add_commands,
    partners_commands.add_commands,
    security_commands.add_commands,
    submissions_commands.add_commands,
    matching_commands.add_commands,
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line too (exit status 2, as argparse's own)."""

    def error(self, message: str) -> NoReturn:
        _error("usage", f"{self.prog}: {message} (`{self.prog} --help` lists the options)")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cme", description="Administer the cme-hub service.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_commands in COMMAND_MODULES:
        add_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ProblemError as exc:
        return _error(exc.slug, exc.detail or exc.title)
    except KeyboardInterrupt:
        return _error("interrupted", "Stopped by the user.", status=130)
    except OSError as exc:  # a file or socket the command needed
        where = f"{exc.filename}: " if exc.filename else ""
        return _error("os-error", f"{where}{exc.strerror or type(exc).__name__}.")
    except Exception as exc:
        if _schema_missing(exc):
            return _error("database-not-set-up", _schema_missing_detail())
        # Every error is one line, never a traceback; CME_DEBUG=1 shows the traceback for a bug report.
        if os.environ.get("CME_DEBUG"):
            raise
        return _error("unexpected-error", f"{type(exc).__name__}: {exc} (CME_DEBUG=1 shows where)")


def _schema_missing(exc: Exception) -> bool:
    """A database without the service's tables: a new empty one, or one `cme migrate` never reached."""
    from sqlalchemy.exc import DBAPIError

    return isinstance(exc, DBAPIError) and (
        "no such table" in str(exc.orig) or type(exc.orig).__name__ == "UndefinedTable"
    )


def _schema_missing_detail() -> str:
    from sqlalchemy import make_url

    from app.core.config import get_settings

    url = make_url(get_settings().database_url).render_as_string(hide_password=True)
    return (
        f"The database {url} has no tables yet: run `cme migrate` (or start `cme serve`) first, or point "
        "CME_DATABASE_URL (or CME_DATA_DIR) at the service's database."
    )


def _error(slug: str, detail: str, *, status: int = 1) -> int:
    print(json.dumps({"error": slug, "detail": detail}, ensure_ascii=False), file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
