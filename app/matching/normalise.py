"""Scalar normalisation of names, postcodes, addresses and NHS numbers.

These are the single source of truth for cleaning: the frame builder applies them to the *unique* values of
a column (so 500,000 rows cost one call per distinct value), and the real-time path uses the same frames.
Name folding (`fold`, `compact`) lives one floor down, in `app.core.folding`, which the CME domain reads too
(decision 0021); it is re-exported here.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import jellyfish

from app.core.folding import compact as compact
from app.core.folding import fold as fold

_HOUSE_NUMBER = re.compile(r"\b(\d+[a-z]?)\b")
# Street-type words in both languages and their abbreviations carry little identity: dropped from the
# street key so "Heol y Bont" and "Heol-y-Bont Road" still compare on their distinctive words.
_ADDRESS_STOPWORDS = frozenset(
    {
        "flat", "apartment", "apt", "unit", "house", "cottage", "road", "rd", "street", "st", "avenue", "ave",
        "lane", "ln", "close", "cl", "drive", "dr", "court", "ct", "place", "pl", "way", "crescent", "cres",
        "terrace", "ter", "gardens", "gdns", "heol", "ffordd", "stryd", "lon", "y", "yr", "r", "the", "and",
    }
)  # fmt: skip


# What systems write where a name is not known (unnamed newborns, data entry that had to fill the field):
# not a name, so not evidence. Two unrelated children both "Unknown" or "Baby" would otherwise agree on it.
# Strings that are also real names stay out ("Na" is a Korean surname, "Nil" a Turkish given name).
_PLACEHOLDER_NAMES = frozenset(
    {
        "unknown", "not known", "notknown", "nk", "n k", "unnamed", "no name", "noname", "not stated",
        "not given", "not recorded", "baby", "infant", "infant of", "baby of", "twin", "twin one", "twin two",
        "twin a", "twin b", "test", "none", "null", "n a", "tbc", "tba", "x", "xx", "xxx",
    }
)  # fmt: skip


def person_name(value: str | None) -> str | None:
    """`fold` for a name field, with placeholders ("Unknown", "Baby", "Twin 1", "N/A") read as missing."""
    folded = fold(value)
    return None if folded in _PLACEHOLDER_NAMES else folded


def tokens(value: str | None) -> list[str]:
    folded = fold(value)
    return folded.split(" ") if folded else []


def house_number(lines: list[str]) -> str | None:
    """The first house number (digits, maybe one letter) of the first line that has one."""
    return house_number_in_text("\n".join(lines))


def house_number_in_text(text: str) -> str | None:
    """`house_number` of lines joined by newlines: the first match in the text is the first line's match,
    since a match never spans a newline and a newline is a word boundary as a line's end is."""
    found = _HOUSE_NUMBER.search(text.lower())
    return found.group(1) if found else None


def street_key(lines: list[str]) -> str | None:
    """Distinctive address words (no numbers, no street-type words), sorted, for a token-set comparison."""
    words = {
        word
        for line in lines
        for word in (fold(line) or "").split(" ")
        if word and word not in _ADDRESS_STOPWORDS
    }
    return " ".join(sorted(words)) or None


def phonetic(token: str | None) -> str | None:
    """Metaphone code of a name token (None for none or an empty code): a blocking key and a fuzzy level."""
    return jellyfish.metaphone(token) or None if token else None


def as_date(value: Any) -> dt.date | None:
    """A birth date as given (a date, an ISO string, or None)."""
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))
