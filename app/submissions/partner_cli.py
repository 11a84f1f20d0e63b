"""What the partner commands share (`cme validate`, `cme sign`, `cme submit`, `cme schemas`): reading a
submission file (JSON, CSV or an already signed compact JWS), checking it offline with the service's own
rules (`app.submissions.validation`) and printing what was found, one line per finding."""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel

from app.core.config import get_settings
from app.core.errors import ProblemError, ProblemItem
from app.core.jose_adapter import compact_shape_problem
from app.submissions import csv_input
from app.submissions.schemas import (
    EheRegisterSubmission,
    EotasRegisterSubmission,
    HealthRegisterSubmission,
    SchoolRollSubmission,
    SubmissionKind,
)
from app.submissions.validation import Report, check_payload

SCHEMA_MODELS: dict[SubmissionKind, type[BaseModel]] = {
    SubmissionKind.health_register: HealthRegisterSubmission,
    SubmissionKind.school_roll: SchoolRollSubmission,
    SubmissionKind.ehe_register: EheRegisterSubmission,
    SubmissionKind.eotas_register: EotasRegisterSubmission,
}
SCHEMA_DIR = Path("openapi") / "schemas"


class FileUnreadable(ProblemError):
    status, slug, title = 400, "file-unreadable", "The file cannot be read"


class InputOptionMissing(ProblemError):
    status, slug, title = 400, "option-missing", "An option this input needs is missing"


class SubmissionRefused(ProblemError):
    """The offline check found what the service would refuse the whole file for."""

    status, slug, title = 422, "invalid-submission", "Invalid submission"


@dataclass(frozen=True, slots=True)
class LoadedInput:
    """A submission file read for checking: the payload the partner signs (or signed), what it was, and
    for CSV the line each record started on."""

    path: Path
    payload: bytes
    form: str  # "json", "csv" or "jws"
    compact: bytes | None = None  # the signed serialisation, when the file was one
    lines: tuple[int, ...] = ()


# --- Schemas ---------------------------------------------------------------------------------------------


def json_schema(kind: SubmissionKind) -> dict[str, Any]:
    """The JSON Schema of one kind's payload, generated from the model intake validates with."""
    schema = SCHEMA_MODELS[kind].model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:cme-hub:schema:submission:{kind.value}",
        **schema,
        "$comment": (
            "Generated from app/submissions/schemas.py (`make schemas`). The service also applies record "
            "rules no schema can state (each record's fate: accepted, flagged or rejected); "
            "`cme validate` applies them offline. nhs_number is refused unless the deployment enables it."
        ),
    }


def schema_text(kind: SubmissionKind) -> str:
    return json.dumps(json_schema(kind), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --- Input -----------------------------------------------------------------------------------------------


def add_input_options(parser: argparse.ArgumentParser, *, sender_option: bool = True) -> None:
    """Options for CSV files, whose envelope is not in the file."""
    group = parser.add_argument_group(
        "CSV input", "A .csv file (or --csv) carries only the records; these give the rest."
    )
    group.add_argument("--csv", action="store_true", help="Read FILE as CSV whatever its extension.")
    group.add_argument("--kind", type=SubmissionKind, choices=list(SubmissionKind))
    if sender_option:
        group.add_argument("--sender", help="The sending partner's id.")
    group.add_argument("--recipient", help="The recipient LA's id (health lists, independent schools).")
    group.add_argument("--as-of", dest="as_of", help="The date the list describes (YYYY-MM-DD).")
    group.add_argument("--scope", help="The part of the sender's register this snapshot replaces.")
    group.add_argument(
        "--submission-id",
        dest="submission_id",
        help="Default: derived from the file and these options, so sending the same file again is a retry.",
    )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise FileUnreadable(f"{path}: {exc.strerror or type(exc).__name__}.") from None


def _jws_payload(compact: bytes) -> bytes:
    """The payload a compact JWS carries; nothing when it does not decode (the check then says so)."""
    segment = compact.split(b".")[1]
    try:
        return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return b""


def load_input(
    args: argparse.Namespace, *, sender: str | None = None, allow_jws: bool = False
) -> LoadedInput:
    """The file named by `args.file` as a payload: CSV (by --csv or extension) with the envelope options,
    JSON as it is, or (where `allow_jws`) the payload of a compact JWS."""
    path = Path(args.file)
    data = _read(path)
    if args.csv or path.suffix.lower() == ".csv":
        missing = [
            option
            for option, value in (("--kind", args.kind), ("--as-of", args.as_of), ("--sender", sender))
            if not value
        ]
        if missing:
            raise InputOptionMissing(
                f"A CSV file needs {', '.join(missing)} (the envelope is not in the file)."
            )
        converted = csv_input.csv_payload(
            data,
            csv_input.Envelope(
                kind=args.kind,
                sender=str(sender),
                as_of=args.as_of,
                recipient=args.recipient,
                scope=args.scope,
                submission_id=args.submission_id,
            ),
        )
        return LoadedInput(path=path, payload=converted.payload, form="csv", lines=converted.lines)
    stripped = data.strip()
    if allow_jws and stripped and not stripped.startswith(b"{") and compact_shape_problem(stripped) is None:
        return LoadedInput(path=path, payload=_jws_payload(stripped), form="jws", compact=stripped)
    return LoadedInput(path=path, payload=data, form="json")


def check(loaded: LoadedInput, *, sender: str | None = None) -> Report:
    """The offline report on a loaded file; a JSON file naming another sender than the signer is refused."""
    if sender is not None:
        try:
            document = json.loads(loaded.payload)
        except ValueError:
            document = None  # the report names it
        named = document.get("sender", sender) if isinstance(document, dict) else sender
        if named != sender:
            raise SubmissionRefused(
                f"The submission's sender ({named}) is not the signing partner ({sender}).",
                errors=[ProblemItem(field="sender", code="sender_mismatch", message="Not the signer.")],
            )
    return check_payload(loaded.payload, get_settings())


# --- Output ----------------------------------------------------------------------------------------------


def _where(loaded: LoadedInput, record_index: int | None) -> str:
    if record_index is None:
        return "file"
    if loaded.lines and 0 <= record_index < len(loaded.lines):
        return f"record {record_index} (CSV line {loaded.lines[record_index]})"
    return f"record {record_index}"


def print_report(report: Report, loaded: LoadedInput, out: TextIO, *, as_json: bool = False) -> None:
    """Every finding on one line each (record index, field, code, severity, message), then a summary."""
    if as_json:
        document = report.as_json()
        if loaded.lines:
            document["csv_lines"] = list(loaded.lines)
        print(json.dumps(document, ensure_ascii=False), file=out)
        return
    for finding in report.findings:
        print(
            f"{loaded.path}: {_where(loaded, finding.record_index)}: {finding.field or '-'}: "
            f"{finding.code} [{finding.severity}] {finding.message}",
            file=out,
        )
    print(summary_line(report, loaded), file=out)


def summary_line(report: Report, loaded: LoadedInput) -> str:
    errors = sum(1 for f in report.findings if f.severity == "error")
    if report.refused:
        return (
            f"{loaded.path}: INVALID: {errors} error(s); the service would refuse the whole file "
            "and store nothing."
        )
    verdict = "OK" if not report.bad else "BAD ROWS"
    return (
        f"{loaded.path}: {verdict}: {report.kind}, {report.record_count} record(s): {report.accepted} "
        f"accepted, {report.flagged} flagged (stored, with findings), {report.rejected} rejected (not stored)."
    )


def refuse_if_invalid(report: Report, loaded: LoadedInput, what: str) -> None:
    """Print the report to stderr and raise when the service would refuse the file as a whole."""
    if report.refused:
        print_report(report, loaded, sys.stderr)
        raise SubmissionRefused(f"{loaded.path}: not {what}: the report above names every error.")
    if report.findings:  # rejected and flagged rows: the receipt will name them too
        print_report(report, loaded, sys.stderr)
