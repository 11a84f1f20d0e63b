"""`cme model ...`: the active match model, a model re-estimated from review decisions, activation.

`estimate-from-reviews` never activates: it writes the proposed model to a file and a report to stdout,
and audits that it did (`match_model.estimated`). `activate FILE` is the operator's separate, audited step
(`match_model.activated`). Decision 0019.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.core.errors import ProblemError
from app.matching import labels, service
from app.matching.params import MatchModel
from app.partners.commands import in_transaction, print_json


class InvalidModelFile(ProblemError):
    status, slug, title = 400, "invalid-model", "Not a match model"


class InvalidOption(ProblemError):
    status, slug, title = 400, "invalid-option", "Invalid option"


class FileUnusable(ProblemError):
    status, slug, title = 400, "file-error", "The file could not be used"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _operator(args: argparse.Namespace) -> str:
    if args.operator:
        return str(args.operator)
    try:
        return os.environ.get("CME_OPERATOR") or getpass.getuser()
    except (KeyError, OSError):  # no login name (a container with no passwd entry)
        return "unknown"


def _show(args: argparse.Namespace) -> int:
    def read(session: Session) -> tuple[dict[str, Any], MatchModel]:
        return service.model_status(session), service.stored_active_model(session)

    status, model = in_transaction(read)
    if args.out is not None:
        _write(Path(args.out), model)
        status["out"] = args.out
    print_json(status)
    return 0


def _write(path: Path, model: MatchModel) -> None:
    try:
        path.write_text(model.model_dump_json(indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise FileUnusable(f"{path}: {exc.strerror or type(exc).__name__}.") from None


def _one_line(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "the model"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def read_model_file(path: Path) -> MatchModel:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise FileUnusable(f"{path}: {reason}.") from None
    try:
        return MatchModel.model_validate_json(text)
    except ValidationError as exc:
        raise InvalidModelFile(f"{path} is not a match model: {_one_line(exc)}.") from None


def _activate(args: argparse.Namespace) -> int:
    model = read_model_file(Path(args.file))
    operator = _operator(args)
    done = in_transaction(lambda s: service.activate_model(s, model, now=_now(), operator=operator))
    print_json(
        {
            "activated": done.changed,
            "already_active": not done.changed,
            "version": model.version,
            "content_hash": model.content_hash,
            "previous_hash": done.previous,
        }
    )
    return 0


def _estimate(args: argparse.Namespace) -> int:
    try:
        rules = labels.Rules(
            min_decisions=args.min_decisions, min_las=args.min_las, max_la_share=args.max_la_share
        )
    except ValueError as exc:
        raise InvalidOption(str(exc)) from None
    if not 0 < args.prior_strength < float("inf"):
        raise InvalidOption("--prior-strength must be a positive number of pseudo-counts.")
    out = Path(args.out)
    operator = _operator(args)

    def work(session: Session) -> dict[str, Any]:
        proposal = service.estimate_from_reviews(
            session, now=_now(), operator=operator, rules=rules, prior_strength=args.prior_strength
        )
        _write(out, proposal.model)  # before the commit: a file not written rolls the audit event back
        return {**proposal.report, "out": str(out), "activated": False}

    print(json.dumps(in_transaction(work), indent=2, ensure_ascii=False))
    return 0


def add_commands(subparsers: Any) -> None:
    model = subparsers.add_parser("model", help="The match model: show, estimate from reviews, activate.")
    commands = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")

    show = commands.add_parser(
        "show", help="The active model's version, content hash and when it was stored."
    )
    show.add_argument(
        "--out", help="Also write the active model's parameters to this file (JSON, as `activate` reads)."
    )
    show.set_defaults(handler=_show)

    estimate = commands.add_parser(
        "estimate-from-reviews",
        help="Re-estimate m from officers' review decisions (the active model as prior); write the proposed "
        "model to --out and a report to stdout. Never activates.",
    )
    estimate.add_argument("--out", required=True, help="File for the proposed model (JSON).")
    estimate.add_argument(
        "--min-decisions", type=int, default=labels.DEFAULT_RULES.min_decisions, help="Default: %(default)s."
    )
    estimate.add_argument(
        "--min-las",
        type=int,
        default=labels.DEFAULT_RULES.min_las,
        help="Fewest LAs deciding. Default: %(default)s.",
    )
    estimate.add_argument(
        "--max-la-share",
        type=float,
        default=labels.DEFAULT_RULES.max_la_share,
        help="Largest share of decisions (and of confirmed ones) one LA may supply. Default: %(default)s.",
    )
    estimate.add_argument(
        "--prior-strength",
        type=float,
        default=labels.PRIOR_STRENGTH,
        help="How many confirmed pairs the active model's m counts for. Default: %(default)s.",
    )
    estimate.add_argument("--operator", help="Who runs this, for the audit log (default: the login name).")
    estimate.set_defaults(handler=_estimate)

    activate = commands.add_parser(
        "activate", help="Store a model file and make it the only active model (audited; idempotent)."
    )
    activate.add_argument("file", help="A match model as JSON (e.g. from estimate-from-reviews).")
    activate.add_argument("--operator", help="Who runs this, for the audit log (default: the login name).")
    activate.set_defaults(handler=_activate)
