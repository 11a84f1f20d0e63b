"""Scalar normalisation and the given-name equivalence table."""

from __future__ import annotations

import pytest

from app.matching import names, normalise


class TestFold:
    @pytest.mark.parametrize(
        ("raw", "folded"),
        [
            ("Siân", "sian"),
            ("ŴYN", "wyn"),
            ("  Dafydd  ", "dafydd"),
            ("O'Brien", "obrien"),
            ("Jones-Evans", "jones evans"),
        ],
    )
    def test_accents_case_punctuation(self, raw: str, folded: str) -> None:
        assert normalise.fold(raw) == folded

    @pytest.mark.parametrize(
        ("raw", "folded"),
        [
            ("Jo\u200bnes", "jones"),  # zero-width space
            ("Jo\u00adnes", "jones"),  # soft hyphen
            ("\ufeffFfion\u200d", "ffion"),  # byte-order mark, zero-width joiner
            ("J\u043enes", "jones"),  # Cyrillic o
            ("\uff2a\uff2f\uff2e\uff25\uff33", "jones"),  # full-width letters
            ("Łucja Nowak", "lucja nowak"),
            ("Олександр", "oleksandr"),
        ],
    )
    def test_invisible_look_alike_and_other_script_letters(self, raw: str, folded: str) -> None:
        """Invisible characters must not split a name; look-alike letters from another alphabet read as
        the Latin letter; a name written in another script is transliterated, not dropped."""
        assert normalise.fold(raw) == folded

    @pytest.mark.parametrize("raw", ["Unknown", "NOT KNOWN", "N/K", "Baby", "Twin 1", "n/a", "XXX"])
    def test_placeholders_are_not_names(self, raw: str) -> None:
        assert normalise.person_name(raw) is None
        assert normalise.fold(raw) is not None  # an address line may say anything

    @pytest.mark.parametrize(("raw", "folded"), [("Nia", "nia"), ("Na", "na"), ("Nil", "nil")])
    def test_a_real_name_stays(self, raw: str, folded: str) -> None:
        assert normalise.person_name(raw) == folded

    def test_empty_is_none(self) -> None:
        assert normalise.fold(" - ") is None
        assert normalise.fold(None) is None

    def test_compact_joins_double_barrelled_forms(self) -> None:
        assert (
            normalise.compact("Jones-Evans")
            == normalise.compact("Jones Evans")
            == normalise.compact("JonesEvans")
        )


class TestAddress:
    def test_house_number_and_street_words(self) -> None:
        assert normalise.house_number(["Flat 2", "14 Heol y Bont"]) == "2"
        assert normalise.street_key(["14 Heol-y-Bont Road"]) == "bont"


class TestNames:
    @pytest.mark.parametrize(
        ("welsh", "english"),
        [("Dafydd", "David"), ("Dai", "Dafydd"), ("Siôn", "John"), ("Gwilym", "William"), ("Siân", "Jane"),
         ("Ieuan", "Evan"), ("Huw", "Hugh"), ("Catrin", "Catherine"), ("Rhodri", "Roderick")],
    )  # fmt: skip
    def test_equivalents(self, welsh: str, english: str) -> None:
        assert names.equivalent(welsh, english)

    def test_unrelated_names_are_not_equivalent(self) -> None:
        assert not names.equivalent("Ffion", "Fflur")
        assert not names.equivalent("Mali", "Mari")

    def test_no_name_needs_more_than_two_groups(self) -> None:
        counts: dict[str, int] = {}
        for members in names._GROUPS.values():
            for member in set(members):
                counts[member] = counts.get(member, 0) + 1
        assert max(counts.values()) <= 2


class TestHouseNumberInText:
    @pytest.mark.parametrize(
        "lines",
        [
            ["Flat 2", "14 Heol y Bont"],
            ["Tŷ Gwyn", "3B Stryd Fawr"],
            ["12ab Road", "7 Lane"],
            [],
            [""],
            ["No number"],
        ],
    )
    def test_joined_text_gives_the_first_lines_number(self, lines: list[str]) -> None:
        found = next(
            (m.group(1) for line in lines if (m := normalise._HOUSE_NUMBER.search(line.lower()))), None
        )
        assert normalise.house_number(lines) == normalise.house_number_in_text("\n".join(lines)) == found


class TestFrameColumns:
    def test_former_name_columns_keep_non_empty_parts_in_order(self) -> None:
        from app.matching.frames import former_name_columns

        given, family = former_name_columns(
            [
                None,
                [],
                [{"given_name": "Siân", "family_name": None}],
                [{"given_name": ""}, {"family_name": "Y"}],
            ]
        )
        assert given.to_list() == [[], [], ["Siân"], []]
        assert family.to_list() == [[], [], [], ["Y"]]

    def test_list_columns_from_python_lists_equal_polars_own_conversion(self) -> None:
        import polars as pl

        from app.matching.frames import _raw_series

        values = [None, [], ["a", None, "b"], ("c",), ["", "d\ne"]]
        dtype = pl.List(pl.String())
        assert _raw_series("x", values, dtype).equals(
            pl.Series("x", values, dtype=dtype, strict=False), check_names=True, null_equal=True
        )
