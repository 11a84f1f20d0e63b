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
CONTROL_PATTERNS = frozenset({NO_CONTROL_PATTERN, NO_CONTROL_BUT_LAYOUT_PATTERN})

Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120, pattern=NO_CONTROL_PATTERN)
]
ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=35, pattern=NO_CONTROL_PATTERN)
]
LongText = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=3, max_length=2000, pattern=NO_CONTROL_BUT_LAYOUT_PATTERN
    ),
]
