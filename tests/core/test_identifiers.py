from __future__ import annotations

import pytest

from app.core.identifiers import is_valid_nhs_number, nhs_digits, normalise_postcode, postcode_parts


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
        ("CF10\u200b1AA", "CF10 1AA"),  # a zero-width space pasted in
        ("\uff23\uff26\uff11\uff10 1AA", "CF10 1AA"),  # full-width letters and digits
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


@pytest.mark.parametrize("raw", ["CF1C 1AA", "W1L 1AA"])
def test_the_royal_mail_letter_rules_hold_in_the_outward_code(raw: str) -> None:
    # Letters the Royal Mail format never puts in the third or fourth place of an outward code: the looser
    # pattern matching once had accepted these, so matching counted postcodes intake refused.
    assert normalise_postcode(raw) is None


def test_postcode_parts() -> None:
    assert postcode_parts("LL57 2DG") == ("LL57 2", "LL57", "LL")
    assert postcode_parts(None) == (None, None, None)


@pytest.mark.parametrize("value", ["943 476 5919", "943-476-5919", "\uff19434765919"])
def test_nhs_digits_are_the_ten_digits(value: str) -> None:
    assert nhs_digits(value) == "9434765919"


@pytest.mark.parametrize("value", [None, "", "9434765918", "943 476 591"])
def test_nhs_digits_of_an_invalid_number_is_none(value: str | None) -> None:
    assert nhs_digits(value) is None
