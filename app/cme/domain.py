"""Pure rules of the CME lifecycle: states, outcomes, who may see and do what, identity keys, cursors.

No session, no HTTP: the service applies these, the tests check them with plain values.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from app.core import folding, identifiers
from app.core.csa import CSA_START_AGE
from app.security.roles import OfficerRole


class CandidateStatus(StrEnum):
    OPEN = "open"
    CONFIRMED = "confirmed"
    RESOLVED = "resolved"


class Resolution(StrEnum):
    """Why a candidate did not become a record (R3.5): each fails one reg 3 condition or CSA."""

    ON_SCHOOL_ROLL = "on_school_roll"  # reg 3(b)
    EDUCATION_SUITABLE = "education_suitable"  # reg 3(c)
    NOT_RESIDENT = "not_resident"  # reg 3(a)
    NOT_COMPULSORY_SCHOOL_AGE = "not_compulsory_school_age"  # reg 2 "child"
    MOVED_AWAY = "moved_away"  # reg 3(a), now elsewhere


class RecordStatus(StrEnum):
    ACTIVE = "active"
    TRANSFER_PENDING = "transfer_pending"  # aware of a (likely) move, reg 6


class TransferStatus(StrEnum):
    PENDING = "pending"  # sent to a pilot LA, not yet decided there
    ACCEPTED = "accepted"
    DECLINED = "declined"
    PACKAGE_ISSUED = "package_issued"  # signed package handed to the sending LA for a non-pilot LA
    ERASED = "erased"  # the sent record was erased (UK GDPR art. 17): its data and package hash are gone


# GSS codes of the LAs reg 6 can send to: Welsh councils (W06) and English county, unitary, metropolitan,
# London borough and district councils (E06-E10).
RECEIVING_LA_CODE = r"^(W06|E0[6-9]|E10)[0-9]{6}$"


class ExtensionReason(StrEnum):
    """Why a subject access request's deadline was extended by two months (UK GDPR art. 12(3))."""

    COMPLEX = "complex"
    NUMEROUS = "numerous"


class SubjectType(StrEnum):
    CANDIDATE = "candidate"
    RECORD = "record"


class Purpose(StrEnum):
    """Why data was read or changed, on every audit event (R12.3); set by the route, not the caller."""

    IDENTIFY = "reg3_identification"  # candidates and inclusion decisions
    CASEWORK = "reg12_casework"  # reading records to secure suitable education
    ACCURACY = "reg5_accuracy"
    REMOVAL = "reg6_11_removal"
    DATA_SUBJECT_RIGHTS = (
        "data_subject_rights"  # subject access, erasure, restriction (UK GDPR arts 15, 17, 18)
    )


# Schedule 2 paras 4 and 6 (parent contacts, additional learning needs).
CONTACTS_AND_ALN_ROLES = frozenset({OfficerRole.designated_officer, OfficerRole.data_protection_officer})
SENSITIVE_ADDRESS_ROLES = frozenset({OfficerRole.designated_officer})

ADDRESS_FIELDS = frozenset({"address"})
CONTACT_AND_ALN_FIELDS = frozenset({"parents", "additional_learning_needs"})
FLAG_FIELDS = frozenset({"sensitive"})


def hidden_fields(role: OfficerRole, *, sensitive: bool) -> frozenset[str]:
    """Record fields this role may neither see nor change."""
    hidden: set[str] = set()
    if role not in CONTACTS_AND_ALN_ROLES:
        hidden |= CONTACT_AND_ALN_FIELDS
    if sensitive and role not in SENSITIVE_ADDRESS_ROLES:
        hidden |= ADDRESS_FIELDS
    return frozenset(hidden)


def editable_fields_denied(role: OfficerRole, *, sensitive: bool, requested: Sequence[str]) -> list[str]:
    """Fields in `requested` this role may not change: hidden ones, and the sensitive flag itself."""
    denied = set(hidden_fields(role, sensitive=sensitive))
    if role not in SENSITIVE_ADDRESS_ROLES:
        denied |= FLAG_FIELDS
    return sorted(name for name in requested if name in denied)


def identity_key(
    given_name: str | None, family_name: str | None, date_of_birth: dt.date | None
) -> str | None:
    """Same child, same key: exact normalised given and family names and date of birth; None if any missing.

    Hashed so the index holds no readable names.
    """
    given, family = folding.compact(given_name), folding.compact(family_name)
    if given is None or family is None or date_of_birth is None:
        return None
    return hashlib.sha256(f"{given}|{family}|{date_of_birth.isoformat()}".encode()).hexdigest()


def postcode_district(raw: str | None) -> str | None:
    """Outward code of a well-formed postcode ("CF10"), for filtering without reading addresses."""
    return identifiers.postcode_parts(identifiers.normalise_postcode(raw))[1]


def birth_range_for_year(year_group: int, on: dt.date) -> tuple[dt.date, dt.date]:
    """First and last date of birth of year group `year_group` in the school year containing `on`.

    The inverse of `csa.national_curriculum_year` (1 September to 31 August cohorts).
    """
    school_year = on.year if on.month >= 9 else on.year - 1
    cohort = school_year - year_group - CSA_START_AGE
    return dt.date(cohort, 9, 1), dt.date(cohort + 1, 8, 31)


@dataclass(frozen=True, slots=True)
class CandidateInput:
    """One health-list child that matching left unmatched, as the matching integration hands it over.

    Schedule 2 paras 1-3 exactly as the health row holds them, plus where it came from. `link_id` is an
    existing candidate or record id the matcher believes is the same child.
    """

    health_child_id: int | None
    match_run_id: uuid.UUID | None
    given_name: str | None = None
    middle_names: str | None = None
    family_name: str | None = None
    former_names: Sequence[dict[str, str | None]] = field(default_factory=tuple)
    date_of_birth: dt.date | None = None
    address_lines: Sequence[str] = field(default_factory=tuple)
    town: str | None = None
    postcode: str | None = None
    address_is_last_known: bool = False
    link_id: uuid.UUID | None = None


class CursorError(ValueError):
    """A cursor that was not issued for this caller, list and sort order."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """Position after the last row of a page: its sort key and id, bound to the tenant and sort order."""

    la_id: str
    sort: str
    key: dt.datetime
    id: uuid.UUID

    def encode(self) -> str:
        raw = json.dumps([self.la_id, self.sort, self.key.isoformat(), str(self.id)], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, *, la_id: str, sort: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            cursor_la, cursor_sort, key, row_id = json.loads(raw)
            cursor = cls(
                la_id=str(cursor_la),
                sort=str(cursor_sort),
                key=dt.datetime.fromisoformat(str(key)),
                id=uuid.UUID(str(row_id)),
            )
        except (binascii.Error, ValueError, TypeError) as exc:
            raise CursorError("cursor is malformed") from exc
        # Another LA's cursor, or one for another order, is refused rather than reinterpreted.
        if cursor.la_id != la_id or cursor.sort != sort:
            raise CursorError("cursor was issued for another list")
        return cursor
