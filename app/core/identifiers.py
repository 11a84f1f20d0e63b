"""UK postcodes and NHS numbers: the one definition intake, matching and the CME domain all use.

One pattern, chosen on purpose: the Royal Mail format with its letter rules (below). A looser pattern in
matching once let a postcode intake refuses count as evidence, and the two could disagree on whether a
child's postcode was valid at all. Values are folded first (any script to ASCII, case, spacing and
separators), so a postcode pasted in full-width letters or with a zero-width space still reads as one.
"""

from __future__ import annotations

import re
from functools import lru_cache

from anyascii import anyascii

# Outward code (A9, A99, AA9, AA99, A9A, AA9A) + inward code (9AA), with the letter rules of the
# Royal Mail format: Q/V/X never first, I/J/Z never second, inward letters never C I K M O V.
_POSTCODE = re.compile(
    r"^(?:[A-PR-UWYZ][0-9][0-9A-HJKPSTUW]?|[A-PR-UWYZ][A-HK-Y][0-9][0-9ABEHMNPRVWXY]?)"
    r"[0-9][ABD-HJLNP-UW-Z]{2}$"
)
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")
_AREA = re.compile(r"[A-Z]+")
_NHS_SEPARATORS = re.compile(r"[\s-]")
_TEN_DIGITS = re.compile(r"[0-9]{10}")


@lru_cache(maxsize=1 << 18)  # households share postcodes; a list of 500,000 children holds far fewer
def normalise_postcode(raw: str | None) -> str | None:
    """Upper-case, one space before the inward code; None when it is not a valid UK postcode."""
    if not raw:
        return None
    compact = _NOT_ALNUM.sub("", anyascii(raw).upper())
    if not _POSTCODE.match(compact):
        return None
    return f"{compact[:-3]} {compact[-3:]}"


def postcode_parts(canonical: str | None) -> tuple[str | None, str | None, str | None]:
    """(sector, district, area) of a normalised postcode: "CF10 1", "CF10", "CF"."""
    if canonical is None:
        return None, None, None
    outward, inward = canonical.split(" ")
    area = _AREA.match(outward)
    return f"{outward} {inward[0]}", outward, area.group(0) if area else None


def nhs_digits(raw: str | None) -> str | None:
    """The ten digits of a valid NHS number (spaces or hyphens allowed, 3-3-4), else None: a number whose
    modulus-11 check digit is wrong identifies nobody."""
    if not raw:
        return None
    digits = _NHS_SEPARATORS.sub("", anyascii(raw))
    if not _TEN_DIGITS.fullmatch(digits):
        return None
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return digits if check != 10 and check == int(digits[9]) else None


def is_valid_nhs_number(raw: str) -> bool:
    return nhs_digits(raw) is not None
