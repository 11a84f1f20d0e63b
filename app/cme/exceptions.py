"""Errors of the CME domain."""

from __future__ import annotations

from app.core.errors import Conflict, Forbidden, NotFound, ProblemError


class CandidateNotFound(NotFound):
    slug, title = "candidate-not-found", "No such candidate"


class RecordNotFound(NotFound):
    slug, title = "record-not-found", "No such CME record"


class NotAnLaOfficer(Forbidden):
    slug, title = "la-officer-required", "Only officers of a local authority may use the CME database"


class RoleNotAllowed(Forbidden):
    slug, title = "role-not-allowed", "The officer's role may not do this"


class CandidateClosed(Conflict):
    slug, title = "candidate-closed", "The candidate has already been decided"


class NotCompulsorySchoolAge(Conflict):
    slug, title = "not-compulsory-school-age", "The child is not of compulsory school age"


class RemovalNotReady(Conflict):
    slug, title = "removal-not-ready", "The record cannot be removed on this ground yet"


class TransferNotFound(NotFound):
    slug, title = "transfer-not-found", "No such incoming transfer"


class TransferNotAllowed(Conflict):
    slug, title = "transfer-not-allowed", "The record cannot be transferred like this"


class SubjectAccessRequestNotFound(NotFound):
    slug, title = "subject-access-request-not-found", "No such subject access request"


class SubjectAccessRequestAnswered(Conflict):
    slug, title = "subject-access-request-answered", "The subject access request has already been answered"


class ExtensionNotAllowed(Conflict):
    slug, title = "extension-not-allowed", "The subject access request cannot be extended"


class ImpossibleDate(ProblemError):
    status, slug, title = 422, "impossible-date", "The date is not possible here"
