"""Bulk helpers: ids that sort in the order made, text reads and writes of frames."""

from __future__ import annotations

import uuid

from app.core.bulk import ordered_uuids


def test_ordered_uuids_are_version_7_unique_and_sorted_within_and_across_batches() -> None:
    first, second = ordered_uuids(1000), ordered_uuids(1000)
    parsed = [uuid.UUID(i) for i in first + second]
    assert {u.version for u in parsed} == {7} and {u.variant for u in parsed} == {uuid.RFC_4122}
    assert first == sorted(first) and len(set(first + second)) == 2000
    assert [str(u) for u in parsed] == first + second  # canonical text form
