"""Pure checks of identifiers partners send: UK postcodes and NHS numbers."""

from __future__ import annotations

import re
from functools import lru_cache

# Outward code (A9, A99, AA9, AA99, A9A, AA9A) + inward code (9AA), with the letter rules of the
# Royal Mail format: Q/V/X never first, I/J/Z never second, inward letters never C I K M O V.
_POSTCODE = re.compile(
    r"^(?:[A-PR-UWYZ][0-9][0-9A-HJKPSTUW]?|[A-PR-UWYZ][A-HK-Y][0-9][0-9ABEHMNPRVWXY]?)"
    r"[0-9][ABD-HJLNP-UW-Z]{2}$"
)
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")


@lru_cache(maxsize=1 << 18)  # households share postcodes; a list of 500,000 children holds far fewer
def normalise_postcode(raw: str | None) -> str | None:
    """Upper-case, one space before the inward code; None when it is not a valid UK postcode."""
    if not raw:
        return None
    compact = _NOT_ALNUM.sub("", raw.upper())
    if not _POSTCODE.match(compact):
        return None
    return f"{compact[:-3]} {compact[-3:]}"


def is_valid_nhs_number(value: str) -> bool:
    """Ten digits (spaces allowed in 3-3-4 form) whose modulus-11 check digit is right."""
    digits = value.replace(" ", "")
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])
