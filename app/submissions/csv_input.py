"""CSV files as submissions, for partners whose systems export CSV (docs/partners-csv.md).

One row per child, a header row naming the columns (any order, any subset of the kind's columns). The CSV
only carries the records: the envelope (kind, sender, recipient, as-of date, scope, submission id) comes
from the command line. A row becomes exactly the JSON record a partner would have written by hand: an
empty cell is left out, dates and the other values are passed on as text, so the service's own models
and rules judge them (`app.submissions.validation`) and their findings name the same record index and
field. Only the layout is checked here: a column this kind does not have is named before anything else.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from app.core.errors import InvalidSubmission, ProblemItem
from app.submissions.schemas import SubmissionKind

MAX_ADDRESS_LINES = 6
MAX_FORMER_NAMES = 10
# Re-sending the same CSV with the same envelope gives the same submission id, so a retry is idempotent.
SUBMISSION_ID_NAMESPACE = uuid.UUID("5b0c2f8e-2b4a-4d0e-9a7c-3c6f1d2e8a41")

_COMMON = ("given_name", "middle_names", "family_name", "date_of_birth", "town", "postcode", "nhs_number")
_ADDRESS_LINE = re.compile(r"address_line_([1-9][0-9]*)")
_FORMER = re.compile(r"former_(given|family)_name_([1-9][0-9]*)")
_EDUCATION = ("preferred_given_name", "preferred_family_name", "sex")

KIND_COLUMNS: Mapping[SubmissionKind, tuple[str, ...]] = {
    SubmissionKind.health_register: (*_COMMON, "address_is_last_known"),
    SubmissionKind.ehe_register: (*_COMMON, *_EDUCATION),
    SubmissionKind.school_roll: (*_COMMON, *_EDUCATION, "school_number", "school_name", "admission_date"),
    SubmissionKind.eotas_register: (*_COMMON, *_EDUCATION, "provision_type", "provision_name"),
}
_TRUE = frozenset({"true", "yes", "y", "1", "t"})
_FALSE = frozenset({"false", "no", "n", "0", "f"})


@dataclass(frozen=True, slots=True)
class Envelope:
    """The members of a submission that are not records."""

    kind: SubmissionKind
    sender: str
    as_of: str
    recipient: str | None = None
    scope: str | None = None
    submission_id: str | None = None


@dataclass(frozen=True, slots=True)
class CsvPayload:
    """The JSON payload made from a CSV file, and the file line each record started on."""

    payload: bytes
    lines: tuple[int, ...]


def layout_problem(column: str, kind: SubmissionKind) -> str | None:
    """Why `column` is not a column of `kind`'s layout, or None."""
    if column in KIND_COLUMNS[kind]:
        return None
    line = _ADDRESS_LINE.fullmatch(column)
    if line is not None:
        if int(line.group(1)) <= MAX_ADDRESS_LINES:
            return None
        return (
            f"At most {MAX_ADDRESS_LINES} address lines (address_line_1 to address_line_{MAX_ADDRESS_LINES})."
        )
    former = _FORMER.fullmatch(column)
    if former is not None:
        if int(former.group(2)) <= MAX_FORMER_NAMES:
            return None
        return f"At most {MAX_FORMER_NAMES} former names."
    return f"Not a column of a {kind.value} CSV (see docs/partners-csv.md)."


def _flag(value: str) -> bool | str:
    """A yes/no cell as a JSON boolean; anything else is passed on for the model to refuse by name."""
    lowered = value.lower()
    return True if lowered in _TRUE else False if lowered in _FALSE else value


def _record(row: Mapping[str, str]) -> dict[str, Any]:
    cells = {name: value.strip() for name, value in row.items() if value is not None and value.strip()}
    record: dict[str, Any] = {}
    address: dict[str, Any] = {}
    lines: dict[int, str] = {}
    former: dict[int, dict[str, str]] = {}
    for name, value in cells.items():
        line = _ADDRESS_LINE.fullmatch(name)
        former_name = _FORMER.fullmatch(name)
        if line is not None:
            lines[int(line.group(1))] = value
        elif former_name is not None:
            former.setdefault(int(former_name.group(2)), {})[f"{former_name.group(1)}_name"] = value
        elif name in ("town", "postcode"):
            address[name] = value
        elif name == "address_is_last_known":
            record[name] = _flag(value)
        elif name in ("school_number", "school_name"):
            record.setdefault("school", {})[name.removeprefix("school_")] = value
        elif name in ("provision_type", "provision_name"):
            record.setdefault("provision", {})[name.removeprefix("provision_")] = value
        else:
            record[name] = value
    if lines:
        address["lines"] = [lines[n] for n in sorted(lines)]
    if address:
        record["address"] = address
    if former:
        record["former_names"] = [former[n] for n in sorted(former)]
    return record


def _rows(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    _ = reader.fieldnames  # reads the header row
    rows = iter(reader)
    while True:
        line = reader.line_num + 1  # where the next row starts (a quoted cell may span lines)
        row = next(rows, None)
        if row is None:
            return
        if None in row:
            raise InvalidSubmission(
                f"Line {line} has more cells than the header has columns.",
                errors=[ProblemItem(field=None, code="csv_extra_cells", message=f"CSV line {line}.")],
            )
        if any(value and value.strip() for value in row.values()):  # a row of empty cells is no record
            yield line, row


def decode(data: bytes) -> str:
    """The text of a CSV file: UTF-8, with or without the byte order mark spreadsheets write."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidSubmission(
            f"The CSV file is not UTF-8 (byte {exc.start}); export it as 'CSV UTF-8'.",
            errors=[ProblemItem(code="csv_not_utf8", message="Not UTF-8 encoded.")],
        ) from None


def csv_payload(data: bytes, envelope: Envelope) -> CsvPayload:
    """The submission payload (JSON bytes, ready to validate and sign) of a CSV file of `envelope.kind`."""
    text = decode(data)
    header = next(csv.reader(io.StringIO(text, newline="")), [])
    columns = [name.strip() for name in header]
    problems = [
        ProblemItem(field=name or "(empty)", code="unknown_column", message=problem)
        for name in columns
        if (problem := layout_problem(name, envelope.kind)) is not None
    ]
    duplicates = sorted({name for name in columns if columns.count(name) > 1})
    problems += [
        ProblemItem(field=name, code="duplicate_column", message="Named more than once in the header.")
        for name in duplicates
    ]
    if not columns:
        problems.append(ProblemItem(code="csv_no_header", message="The first line must name the columns."))
    if problems:
        named = "; ".join(f"{p.field or '-'}: {p.message}" for p in problems)
        raise InvalidSubmission(
            f"The CSV header does not follow the {envelope.kind.value} layout: {named}", errors=problems
        )
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    try:
        for line, row in _rows(text):
            records.append(_record({name.strip(): value for name, value in row.items()}))
            lines.append(line)
    except csv.Error as exc:
        raise InvalidSubmission(
            f"The CSV file cannot be read: {exc}.",
            errors=[ProblemItem(code="csv_malformed", message=str(exc))],
        ) from None
    submission_id = envelope.submission_id or str(
        uuid.uuid5(
            SUBMISSION_ID_NAMESPACE,
            "|".join(
                [
                    hashlib.sha256(data).hexdigest(),
                    envelope.kind.value,
                    envelope.sender,
                    envelope.recipient or "",
                    envelope.as_of,
                    envelope.scope or "",
                ]
            ),
        )
    )
    payload: dict[str, Any] = {
        "submission_id": submission_id,
        "kind": envelope.kind.value,
        "sender": envelope.sender,
        "as_of": envelope.as_of,
    }
    if envelope.recipient is not None:
        payload["recipient"] = envelope.recipient
    if envelope.scope is not None:
        payload["scope"] = envelope.scope
    payload["records"] = records
    encoded = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return CsvPayload(payload=encoded, lines=tuple(lines))
