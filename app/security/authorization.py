"""Authorisation as data: which kind of caller may call which operation (issue 11, item 1).

One table, `RULES`: OpenAPI operation id -> `Rule` (the caller kinds allowed, whether only pilot LAs, and
what a refused caller is told). `authorize` applies it to every authenticated request (see
`app.security.dependencies`): an operation without a row is refused to everyone (deny by default).

The table says only *who may call*. The tenant is never in it and never in the request: every service
scopes what it reads and changes to the authenticated partner (`Caller.partner_id`), so another LA's
objects answer 404. Rules beyond "who may call" stay in the services (which fields a role sees, the
submission routes of reg 4, the LA a statistics role may ask for).

Roles per law as the project reads it (docs/decisions/0006-cme-lifecycle.md, 0008, 0009, 0012):
- CME database (a pilot LA's only: reg 3; a non-pilot LA gets a signed package, reg 6): case and
  designated officers read and write; the data protection officer reads, and alone
  answers subject access and erases; restriction is for designated and data protection officers.
- Matching (the health list: reg 4 sends it to pilot LAs only): reviews and dual registrations are read by
  the CME readers of a pilot LA and decided by its writers; the real-time match is casework of case and
  designated officers of a pilot LA.
- The statistics role (an LA's or the Welsh Government's) sees statistics only; audit checkpoints are for
  the data protection officer.
- An LA token naming no officer is the LA's case system itself: it sends the LA's registers and follows
  their jobs, and reads no child's data.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal

from app.core.errors import Forbidden, NotFound
from app.partners.models import PartnerKind
from app.security.caller import Caller
from app.security.roles import (
    ERASURE_ROLES,
    READ_ROLES,
    RESTRICTION_ROLES,
    SUBJECT_ACCESS_ROLES,
    WRITE_ROLES,
    OfficerRole,
)


class CallerKind(StrEnum):
    """Who is calling, as far as the table cares: the partner's kind and, for an LA, the officer's role."""

    health_board = "local_health_board"
    gp_practice = "gp_practice"
    independent_school = "independent_school"
    welsh_government = "welsh_government"
    la_system = "la_system"  # an LA token naming no officer
    la_case_officer = "la_case_officer"
    la_designated_officer = "la_designated_officer"
    la_data_protection_officer = "la_data_protection_officer"
    la_statistics = "la_statistics"


_LA_OFFICER: Final[dict[OfficerRole, CallerKind]] = {
    OfficerRole.case_officer: CallerKind.la_case_officer,
    OfficerRole.designated_officer: CallerKind.la_designated_officer,
    OfficerRole.data_protection_officer: CallerKind.la_data_protection_officer,
    OfficerRole.statistics: CallerKind.la_statistics,
}
_OTHER_PARTNER: Final[dict[PartnerKind, CallerKind]] = {
    PartnerKind.local_health_board: CallerKind.health_board,
    PartnerKind.gp_practice: CallerKind.gp_practice,
    PartnerKind.independent_school: CallerKind.independent_school,
    PartnerKind.welsh_government: CallerKind.welsh_government,
}
LA_KINDS: Final = frozenset({CallerKind.la_system, *_LA_OFFICER.values()})


def caller_kind(caller: Caller) -> CallerKind:
    if caller.partner_kind is PartnerKind.local_authority:
        return CallerKind.la_system if caller.officer_role is None else _LA_OFFICER[caller.officer_role]
    return _OTHER_PARTNER[caller.partner_kind]


class OperationNotAllowed(Forbidden):
    slug, title = "operation-not-allowed", "This caller may not use this operation"


@dataclass(frozen=True, slots=True)
class Rule:
    """Who may call one operation. `public`: no credential at all (the table still lists it)."""

    allowed: frozenset[CallerKind]
    pilot_las_only: bool = False
    # What a refused caller is told: 404 where the operation documents no 403 (it reads one object, and a
    # refused caller learns no more than a caller asking for an id that does not exist).
    refusal: Literal[403, 404] = 403
    public: bool = False

    def allows(self, kind: CallerKind, *, pilot: bool) -> bool:
        if kind not in self.allowed:
            return False
        return not (self.pilot_las_only and kind in LA_KINDS and not pilot)


def _officers(roles: Iterable[OfficerRole]) -> frozenset[CallerKind]:
    return frozenset(_LA_OFFICER[role] for role in roles)


PUBLIC: Final = Rule(allowed=frozenset(CallerKind), public=True)
SENDERS: Final = frozenset(
    {CallerKind.health_board, CallerKind.gp_practice, CallerKind.independent_school, CallerKind.la_system}
) | _officers(WRITE_ROLES)
# Reg 3: only a pilot LA operates a CME database; a non-pilot LA is sent a signed package (reg 6), never
# access (R12.2), so it has nothing here to read or change.
CME_READ: Final = Rule(_officers(READ_ROLES), pilot_las_only=True)
CME_WRITE: Final = Rule(_officers(WRITE_ROLES), pilot_las_only=True)
SUBJECT_ACCESS: Final = Rule(_officers(SUBJECT_ACCESS_ROLES), pilot_las_only=True)
ERASURE: Final = Rule(_officers(ERASURE_ROLES), pilot_las_only=True)
REVIEW_READ: Final = Rule(_officers(READ_ROLES), pilot_las_only=True)
REVIEW_DECIDE: Final = Rule(_officers(WRITE_ROLES), pilot_las_only=True)

RULES: Final[dict[str, Rule]] = {
    # Public: keys and probes.
    "jwks": PUBLIC,
    "healthz": PUBLIC,
    "readyz": PUBLIC,
    # Intake and its jobs: the partners that send (reg 4 health lists, registers); each sees its own only.
    "create_submission": Rule(SENDERS),
    "get_submission": Rule(SENDERS, refusal=404),
    "get_job": Rule(SENDERS | _officers(READ_ROLES), refusal=404),
    # Matching: pilot LAs only.
    "match_records": REVIEW_DECIDE,
    "list_match_reviews": REVIEW_READ,
    "get_match_review": REVIEW_READ,
    "decide_match_review": REVIEW_DECIDE,
    "list_dual_registrations": REVIEW_READ,
    # The CME database (decision 0006).
    "list_cme_candidates": CME_READ,
    "get_cme_candidate": CME_READ,
    "get_cme_candidate_history": CME_READ,
    "confirm_cme_candidate": CME_WRITE,
    "resolve_cme_candidate": CME_WRITE,
    "erase_cme_candidate": ERASURE,
    "list_cme_due": CME_READ,
    "list_cme_records": CME_READ,
    "get_cme_record": CME_READ,
    "get_cme_record_history": CME_READ,
    "correct_cme_record": CME_WRITE,
    "erase_cme_record": ERASURE,
    "remove_cme_record": CME_WRITE,
    "create_cme_removal_event": CME_WRITE,
    "set_cme_record_restriction": Rule(_officers(RESTRICTION_ROLES), pilot_las_only=True),
    "export_cme_record_for_subject_access": SUBJECT_ACCESS,
    "transfer_cme_record": CME_WRITE,
    "list_cme_incoming_transfers": CME_READ,
    "accept_cme_transfer": CME_WRITE,
    "decline_cme_transfer": CME_WRITE,
    "record_cme_subject_access_request": SUBJECT_ACCESS,
    "get_cme_subject_access_request": SUBJECT_ACCESS,
    "answer_cme_subject_access_request": SUBJECT_ACCESS,
    "extend_cme_subject_access_request": SUBJECT_ACCESS,
    # Oversight.
    "get_statistics": Rule(frozenset({CallerKind.welsh_government, CallerKind.la_statistics})),
    "get_statistics_csv": Rule(frozenset({CallerKind.welsh_government, CallerKind.la_statistics})),
    # The only check of this role: `app.audit.checkpoints` does not repeat it.
    "list_audit_checkpoints": Rule(_officers({OfficerRole.data_protection_officer})),
    # Operations: the metrics describe every partner's traffic, so no partner reads them; the operator's
    # scrape token is outside the partner model (app/observability/router.py, decision 0020).
    "metrics": Rule(frozenset()),
}


def authorize(caller: Caller, operation_id: str | None, *, pilot_las: Collection[str]) -> None:
    """Refuse (403, or 404 where the rule says) unless the table lets this caller use this operation."""
    rule = RULES.get(operation_id) if operation_id is not None else None
    if rule is None:
        raise OperationNotAllowed("No caller may use this operation.")
    if not rule.allows(caller_kind(caller), pilot=caller.partner_id in pilot_las):
        if rule.refusal == 404:
            raise NotFound("Not found.")
        raise OperationNotAllowed("This caller may not use this operation.")
