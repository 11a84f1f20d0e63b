"""Errors of the security domain (authentication failures use the core `Unauthorized`)."""

from __future__ import annotations

from app.core.errors import ProblemError


class InvalidKey(ProblemError):
    """A key offered for registration or signing is not one we accept (type, curve, size, private part)."""

    status, slug, title = 422, "invalid-key", "Key not acceptable"
