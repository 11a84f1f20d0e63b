"""Roles an LA case system may assert for the officer acting behind a request."""

from __future__ import annotations

from enum import StrEnum


class OfficerRole(StrEnum):
    case_officer = "case_officer"
    designated_officer = "designated_officer"
    data_protection_officer = "data_protection_officer"
    statistics = "statistics"


# Who may call which CME operation (the authorisation table's rows, decision 0006); what a role may see
# inside an operation (contacts, sensitive addresses) is the CME domain's.
READ_ROLES = frozenset(
    {OfficerRole.case_officer, OfficerRole.designated_officer, OfficerRole.data_protection_officer}
)
WRITE_ROLES = frozenset({OfficerRole.case_officer, OfficerRole.designated_officer})
RESTRICTION_ROLES = frozenset({OfficerRole.designated_officer, OfficerRole.data_protection_officer})
SUBJECT_ACCESS_ROLES = frozenset({OfficerRole.data_protection_officer})
ERASURE_ROLES = frozenset({OfficerRole.data_protection_officer})
