"""Roles an LA case system may assert for the officer acting behind a request."""

from __future__ import annotations

from enum import StrEnum


class OfficerRole(StrEnum):
    case_officer = "case_officer"
    designated_officer = "designated_officer"
    data_protection_officer = "data_protection_officer"
    statistics = "statistics"
