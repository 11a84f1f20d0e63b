from __future__ import annotations

import pytest

from app.core.identifiers import is_valid_nhs_number, normalise_postcode


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("CF10 1AA", "CF10 1AA"),
        ("cf101aa", "CF10 1AA"),
        ("  ll57  2dg ", "LL57 2DG"),
        ("SA1 1AA", "SA1 1AA"),
        ("W1A 0AX", "W1A 0AX"),
        ("EC1A 1BB", "EC1A 1BB"),
        ("NP20-4XY", "NP20 4XY"),
    ],
)
def test_valid_postcodes_are_normalised(raw: str, expected: str) -> None:
    assert normalise_postcode(raw) == expected


@pytest.mark.parametrize("raw", ["", None, "CF10", "QF10 1AA", "CJ10 1AA", "CF10 1AC", "12345", "CF10 1A"])
def test_invalid_postcodes_give_none(raw: str | None) -> None:
    assert normalise_postcode(raw) is None


@pytest.mark.parametrize("value", ["9434765919", "943 476 5919", "4010232137"])
def test_valid_nhs_numbers(value: str) -> None:
    assert is_valid_nhs_number(value)


@pytest.mark.parametrize("value", ["9434765918", "943476591", "94347659190", "abcdefghij", "1234567890"])
def test_invalid_nhs_numbers(value: str) -> None:
    assert not is_valid_nhs_number(value)
