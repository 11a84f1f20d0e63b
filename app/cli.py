"""The `cme` admin command. Each domain contributes its sub-commands through `add_commands(subparsers)`.

A sub-command sets `handler` (a function of the parsed arguments returning the exit status) with
`set_defaults`. Expected errors (`ProblemError`) print as one JSON line on stderr with exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from app.audit import commands as audit_commands
from app.core import commands as core_commands
from app.core.errors import ProblemError
from app.partners import commands as partners_commands
from app.security import commands as security_commands
from app.submissions import commands as submissions_commands

COMMAND_MODULES: tuple[Callable[[Any], None], ...] = (
    core_commands.add_commands,
    audit_commands.add_commands,
    partners_commands.add_commands,
    security_commands.add_commands,
    submissions_commands.add_commands,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cme", description="Administer the cme-hub service.")
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
        print(json.dumps({"error": exc.slug, "detail": exc.detail or exc.title}), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
