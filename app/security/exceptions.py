"""Errors of the security domain (authentication failures use the core `Unauthorized`)."""

from __future__ import annotations

from app.core.errors import ProblemError


class InvalidKey(ProblemError):
    """A key offered for registration or signing is not one we accept (type, curve, size, private part)."""

    status, slug, title = 422, "invalid-key", "Key not acceptable"


class KeyFileExists(ProblemError):
    """Key files of this partner and kid are already there (an earlier run wrote them): never overwritten."""

    status, slug, title = 409, "key-file-exists", "Key files with this id already exist"
