"""Checking a submission offline with the service's own rules, before anything is signed (`cme validate`).

Nothing here re-states a rule: the payload goes through the same steps intake takes once the signature is
checked (`strict_json.repeated_member` and `duplicate_member_path`, `service.parse_payload`, the record limit, the recipient the route
requires, `rules.assess_*_record`), so a file that passes here is refused by the service only for what
cannot be known offline (the signer's key, who the sender is, the legal window, the recipient's status).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from app.core import strict_json
from app.core.config import Settings
from app.core.errors import InvalidSubmission
from app.submissions.rules import Assessment, Fate, assess_education_record, assess_health_record
from app.submissions.schemas import (
    ENVELOPE_MEMBERS,
    EducationRecord,
    HealthRecord,
    HealthRegisterBulk,
    SubmissionKind,
    SubmissionPayload,
)

# The service's own steps (`_duplicate_item` names a member named twice the way intake's 422 does).
from app.submissions.service import _duplicate_item, parse_payload

Severity = Literal["error", "rejected", "flagged"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One finding: where (record index, field path) and what (a stable code), never the value."""

    severity: Severity
    record_index: int | None
    field: str | None
    code: str
    message: str


@dataclass(slots=True)
class Report:
    """What the service would make of a payload.

    `errors`: the service would refuse the whole submission (422, nothing stored). Otherwise every record
    gets a fate: `rejected` records are not stored, `flagged` ones are stored with their findings; the
    receipt names both.
    """

    kind: str | None = None
    sender: str | None = None
    submission_id: str | None = None
    record_count: int = 0
    accepted: int = 0
    flagged: int = 0
    rejected: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        """The service would refuse the submission as a whole."""
        return any(f.severity == "error" for f in self.findings)

    @property
    def bad(self) -> bool:
        """Any row the service would not store, or the whole file refused."""
        return self.refused or self.rejected > 0

    def as_json(self) -> dict[str, object]:
        return {
            "valid": not self.refused,
            "kind": self.kind,
            "sender": self.sender,
            "submission_id": self.submission_id,
            "record_count": self.record_count,
            "accepted": self.accepted,
            "flagged": self.flagged,
            "rejected": self.rejected,
            "findings": [
                {
                    "severity": f.severity,
                    "record_index": f.record_index,
                    "field": f.field,
                    "code": f.code,
                    "message": f.message,
                }
                for f in self.findings
            ],
        }


def _recipient_required(kind: SubmissionKind) -> bool:
    """What `policy.decide_route` requires of every health-list sender; an independent school's roll also
    names its LA, but offline nobody knows that the sender is one."""
    return kind is SubmissionKind.health_register


def _record_findings(index: int, assessment: Assessment) -> Iterable[Finding]:
    severity: Severity = "rejected" if assessment.fate is Fate.rejected else "flagged"
    for issue in assessment.issues:
        yield Finding(severity, index, issue.field, issue.code.value, issue.message)


def check_payload(payload: bytes, settings: Settings) -> Report:
    """Every finding the service's rules make on `payload` (the JSON a partner signs)."""
    report = Report()
    repeated = strict_json.repeated_member(payload, ENVELOPE_MEMBERS)
    if repeated is not None:
        report.findings.append(Finding("error", None, repeated, "duplicate_member", "Named more than once."))
        return report
    duplicate = strict_json.duplicate_member_path(payload)
    if duplicate is not None:
        item = _duplicate_item(duplicate)
        report.findings.append(Finding("error", item.record_index, item.field, item.code, item.message))
        return report
    try:
        submission = parse_payload(payload, settings, max_errors=None)
    except InvalidSubmission as exc:
        report.findings.extend(
            Finding("error", item.record_index, item.field, item.code, item.message) for item in exc.errors
        )
        return report
    return _assess(submission, settings, report)


def _assess(submission: SubmissionPayload | HealthRegisterBulk, settings: Settings, report: Report) -> Report:
    report.kind = submission.kind.value
    report.sender = submission.sender
    report.submission_id = str(submission.submission_id)
    report.record_count = len(submission.records)
    if report.record_count > settings.max_records:
        report.findings.append(
            Finding(
                "error",
                None,
                "records",
                "too_many_records",
                f"A submission may carry at most {settings.max_records} records.",
            )
        )
    if submission.recipient is None and _recipient_required(submission.kind):
        report.findings.append(
            Finding(
                "error",
                None,
                "recipient",
                "missing",
                "A health register must name its recipient, a pilot local authority.",
            )
        )
    as_of: dt.date = submission.as_of
    for index, record in enumerate(submission.records):
        if isinstance(record, HealthRecord):
            assessment = assess_health_record(record, as_of)
        elif isinstance(record, EducationRecord):
            assessment = assess_education_record(record, as_of)
        else:  # parse_payload without `bulk` always builds models
            raise TypeError(f"unexpected record type {type(record).__name__}")
        if assessment.fate is Fate.accepted:
            report.accepted += 1
            continue
        if assessment.fate is Fate.rejected:
            report.rejected += 1
        else:
            report.flagged += 1
        report.findings.extend(_record_findings(index, assessment))
    return report
