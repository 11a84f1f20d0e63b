"""Folding names to Latin letters for comparison: shared by matching (`app.matching.normalise`) and the CME
domain (`app.cme.domain`), so that neither imports the other for it (decision 0021)."""

from __future__ import annotations

import re

from anyascii import anyascii

_NON_LETTER = re.compile(r"[^a-z ]+")
_SPACES = re.compile(r"\s+")
# Apostrophes and dots join (O'Brien -> obrien, St. -> st); hyphens and other punctuation separate tokens.
_JOINERS = re.compile("['\u2019`.]")
_SEPARATORS = re.compile("[-\u2010\u2011\u2013\u2014_/,]+")  # hyphen, dashes, slash, comma


def fold(value: str | None) -> str | None:
    """Latin letters without accents (ŵ -> w, ô -> o, ł -> l), lowercase, single spaces; None if empty.

    `anyascii` transliterates every script (Олександр -> oleksandr: one list may hold the name as written
    at home, the other as on a passport), so a look-alike letter from another alphabet (a Cyrillic o in
    "Jones") reads as the Latin one, and it drops invisible characters (zero-width spaces and joiners, soft
    hyphens, direction marks), which would otherwise split a name in two.
    """
    if value is None:
        return None
    text = anyascii(value).lower()
    text = _SEPARATORS.sub(" ", _JOINERS.sub("", text))
    text = _SPACES.sub(" ", _NON_LETTER.sub(" ", text)).strip()
    return text or None


def compact(value: str | None) -> str | None:
    """Folded with no separators, so "Jones-Evans", "Jones Evans" and "JonesEvans" are one key."""
    folded = fold(value)
    return folded.replace(" ", "") if folded else None
