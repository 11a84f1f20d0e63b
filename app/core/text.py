"""Text fields of the API's inputs: bounded, stripped, and free of control characters.

No control character (C0, DEL) belongs in a name, an address line or an id, and PostgreSQL cannot store a
NUL at all: unchecked, one would fail a whole batch at COPY, or a request with a 500, instead of being
named here with its record and field. The check runs in pydantic-core's regular-expression engine, so the
bulk path of a 500,000-record list stays fast. Officers' free text (`LongText`) may hold line breaks and
tabs, nothing else below the space.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

NO_CONTROL_PATTERN = r"^[^\x00-\x1f\x7f]*$"
NO_CONTROL_BUT_LAYOUT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"

# Surrounding white space is stripped before a text's length and characters are checked, so the documented
# pattern says what is checked: white space (Unicode White_Space, what the strip removes) at either end,
# then the text itself, starting and ending with a character that is neither white space nor control. A
# value whitespace-only, or shorter than its minLength once stripped, then fails the schema as it fails
# here. Written without `\s`, whose meaning differs between regex dialects (ECMA, Python, Rust).
_WS = r"[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_EDGE = r"[^\x00-\x20\x7f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
# At least one character once stripped, none of them control characters.
TEXT_PATTERN = rf"^{_WS}*{_EDGE}(?:[^\x00-\x1f\x7f]*{_EDGE})?{_WS}*$"
# At least three characters once stripped; line breaks and tabs allowed inside.
LONG_TEXT_PATTERN = rf"^{_WS}*{_EDGE}[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+{_EDGE}{_WS}*$"
CONTROL_PATTERNS = frozenset(
    {NO_CONTROL_PATTERN, NO_CONTROL_BUT_LAYOUT_PATTERN, TEXT_PATTERN, LONG_TEXT_PATTERN}
)

Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120, pattern=TEXT_PATTERN)
]
ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=35, pattern=TEXT_PATTERN)
]
LongText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=2000, pattern=LONG_TEXT_PATTERN),
]
