"""Strict reading of the JSON that signed evidence is made of: a member named twice is refused.

RFC 8259 leaves duplicate names to the reader, and readers differ (Python and pydantic keep the last,
others the first), so two readers of one signed header, claims set or submission could see different
contents. JOSE (RFC 7515 §4, RFC 7519 §4) requires a recipient to refuse them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any


class DuplicateMember(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"member {name!r} appears twice")
        self.name = name


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise DuplicateMember(name)
        result[name] = value
    return result


def loads(data: bytes | str) -> Any:
    """`json.loads`, refusing an object with a member named twice (`DuplicateMember`, a ValueError) at any
    depth. For headers, claims and other small documents."""
    return json.loads(data, object_pairs_hook=_unique)


def repeated_member(data: bytes, names: Iterable[str]) -> str | None:
    """The first of `names` that occurs more than once as a member name anywhere in `data`, else None.

    For a large signed document whose own schema forbids these names below its top level (a submission's
    `submission_id`, `sender`, `recipient`, ...): every occurrence is then a top-level member, so two are a
    duplicate. A scan of the bytes, not a parse: half a million records are not walked in Python. Inside a
    JSON string a quote is always escaped, so an unescaped `"name"` followed by `:` is a member name.
    """
    for name in names:
        quoted = b'"' + name.encode() + b'"'
        if data.count(quoted) < 2:  # the common case, at memory speed
            continue
        found = re.finditer(rb"(?<!\\)" + re.escape(quoted) + rb"\s*:", data)
        if next(found, None) is not None and next(found, None) is not None:
            return name
    return None
