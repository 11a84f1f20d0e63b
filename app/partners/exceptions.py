"""Errors of the partners domain."""

from __future__ import annotations

from app.core.errors import Conflict, NotFound, ProblemError


class InvalidPartner(ProblemError):
    status, slug, title = 422, "invalid-partner", "Invalid partner"


class PartnerNotFound(NotFound):
    pass


class PartnerAlreadyExists(Conflict):
    pass


class KeyNotFound(NotFound):
    pass


class KeyAlreadyExists(Conflict):
    pass
