"""Two errors at once (issue 10): blocking keeps the pair, and the decision sends it to review, not to the LA.

Each test is one compound error from `app.synthetic.compound`, built by hand, and the trap next to it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

from app.matching.blocking import ROW, build_reference, candidate_pairs
from app.matching.engine import REF_ROW, explain, link
from app.matching.frames import records_to_frame
from app.matching.params import DEFAULT_MODEL
from app.synthetic.completeness import measure
from app.synthetic.population import generate
from app.synthetic.variants import VARIANTS
from tests.matching.helpers import child, frames


def blocked(health_record: dict[str, Any], education_record: dict[str, Any]) -> bool:
    health, education = frames([health_record], [education_record])
    pairs = candidate_pairs(health, build_reference(education, DEFAULT_MODEL.blocking.max_block))
    return pairs.filter((pl.col(ROW) == 0) & (pl.col(REF_ROW) == 0)).height == 1


def only_row(health: list[dict[str, Any]], education: list[dict[str, Any]]) -> dict[str, Any]:
    return link(*frames(health, education)).row(0, named=True)


class TestBlockingKeepsCompoundPairs:
    def test_given_name_slip_and_birth_date_a_day_out_at_one_home(self) -> None:
        # No name key survives the slip in the given name, and no date key the day: the surname at the
        # postcode is what the two records share.
        health = child("Creys", "Jones", "2016-06-27")
        education = child("Cerys", "Jones", "2016-06-28")
        assert blocked(health, education)
        row = only_row([health], [education])
        assert (row["outcome"], row["education_id"]) == ("matched", 101), explain(row)

    def test_names_swapped_and_birth_year_out_at_one_home(self) -> None:
        assert blocked(child("Roberts", "Ella", "2011-05-13"), child("Ella", "Roberts", "2012-05-13"))

    def test_known_by_a_middle_name_and_birth_date_a_day_out_at_one_home(self) -> None:
        education = child("Anwen", "Rees", "2018-09-15", middle_names="Jac")
        assert blocked(child("Jac", "Rees", "2018-09-16"), education)

    def test_two_strong_fields_share_a_block_on_a_compound_population(self) -> None:
        found = measure(generate(VARIANTS["compound"].config(10_000)))
        assert found.two_strong_pairs > 9_000
        assert found.two_strong_completeness >= 0.9995


# The school holds the old address and the new surname; the health list the new address and the old one.
HEALTH_NEW_HOME = child("Ffion", "Evans", "2016-06-28", postcode="CF14 3AB", line="7 Heol Isaf")
SCHOOL_OLD_HOME = child("Ffion", "Morgan", "2016-06-28", postcode="CF10 1AA", line="12 Heol y Bont")
FAR_HOME = {"lines": ["3 Ffordd Las"], "postcode": "LL55 4RD", "town": "Bangor"}
CARDIFF, GWYNEDD, VALE = "W06000015", "W06000002", "W06000014"


def linked(
    health: list[dict[str, Any]], education: list[dict[str, Any]], row_la: str | None, register_la: str | None
) -> pl.DataFrame:
    """`link` with each health row on its own list (a board's, then GP practices') sent to `row_la`, and
    the records on registers of `register_la`."""
    health_frame, education_frame = frames(health, education)
    registers = pl.Series([f"W9{i:04d}" for i in range(len(health))])
    return link(
        health_frame.with_columns(register=registers, la=pl.lit(row_la)),
        education_frame.with_columns(la=pl.lit(register_la)),
    )


def born_every(
    days: int, given: str, family: str, postcode: str, line: str, count: int, first: int = 0
) -> list[dict[str, Any]]:
    """`count` children of one name at `postcode`, born every `days` days from 2015-01-01 + `first` days;
    `line` takes the child's number (`{n}`)."""
    start = dt.date(2015, 1, 1)
    return [
        child(given, family, (start + dt.timedelta(days=first + days * n)).isoformat(), postcode=postcode,
              line=line.format(n=n))
        for n in range(count)
    ]  # fmt: skip


class TestUnclaimedRecordGoesToReview:
    def test_stale_address_and_a_new_surname_on_a_record_of_the_childs_la(self) -> None:
        row = linked([HEALTH_NEW_HOME], [SCHOOL_OLD_HOME], CARDIFF, CARDIFF).row(0, named=True)
        assert (row["outcome"], row["education_id"], row["reason"]) == ("possible", 101, "unclaimed_record")

    def test_even_when_the_family_moved_far(self) -> None:
        row = linked([{**HEALTH_NEW_HOME, "address": FAR_HOME}], [SCHOOL_OLD_HOME], CARDIFF, CARDIFF).row(
            0, named=True
        )
        assert (row["outcome"], row["reason"]) == ("possible", "unclaimed_record")

    def test_not_another_las_record_beyond_the_postcode_sector(self) -> None:
        # Another LA's register in the same postcode area is where namesakes are found at scale.
        assert linked([HEALTH_NEW_HOME], [SCHOOL_OLD_HOME], GWYNEDD, CARDIFF)["outcome"][0] == "unmatched"

    # Moved across the LA border within the postcode district, and a new surname; names as common as
    # the background's.
    MOVED = child("Seren", "Price", "2016-06-28", postcode="CF14 3AB", line="7 Heol Isaf")
    ACROSS_THE_BORDER = child("Seren", "Morgan", "2016-06-28", postcode="CF14 9ZZ", line="40 Heol Hir")

    def test_another_las_record_in_the_same_postcode_district_when_name_and_birth_date_agree(self) -> None:
        # The given name and the birth date agree outright: an officer looks, though the weight is low.
        row = linked([self.MOVED], [self.ACROSS_THE_BORDER], VALE, CARDIFF).row(0, named=True)
        assert (row["outcome"], row["education_id"], row["reason"]) == ("possible", 101, "unclaimed_record")

    def test_not_another_las_record_in_the_district_on_a_birth_date_a_day_out(self) -> None:
        health = {**self.MOVED, "date_of_birth": "2016-06-29"}
        assert linked([health], [self.ACROSS_THE_BORDER], VALE, CARDIFF)["outcome"][0] == "unmatched"

    # Every day of two years has a Seren on a register, in the row's district (another LA's register) or
    # elsewhere in the row's LA: a row's namesake on its own birthday is no likelier than on a date weeks
    # away, so the control turns the rule off, the district's in the district and the LA's in the LA.
    @pytest.mark.parametrize(
        ("register_postcode", "row_la"), [("CF14 9ZZ", VALE), ("CF5 2XY", CARDIFF)], ids=["district", "la"]
    )
    def test_not_in_a_round_where_chance_explains_such_pairs(
        self, register_postcode: str, row_la: str
    ) -> None:
        register = born_every(1, "Seren", "Hughes", register_postcode, "{n} Heol", 730)
        rows = born_every(60, "Seren", "Price", "CF14 3AB", "7 Heol Isaf", 10, first=100)
        out = linked(rows, register, row_la, CARDIFF)
        assert "unclaimed_record" not in out["reason"].to_list()

    # The same move and new surname to another postcode district of the LA (Cardiff's CF14 to its CF5).
    OTHER_DISTRICT = child("Seren", "Morgan", "2016-06-28", postcode="CF5 2XY", line="40 Heol Hir")

    def test_a_record_of_the_childs_la_in_another_district_when_name_and_birth_date_agree(self) -> None:
        row = linked([self.MOVED], [self.OTHER_DISTRICT], CARDIFF, CARDIFF).row(0, named=True)
        assert (row["outcome"], row["education_id"], row["reason"]) == ("possible", 101, "unclaimed_record")
        assert row["match_probability"] < 0.2  # below the review floor: the rule, not the weight, sends it

    def test_not_another_las_record_in_another_district(self) -> None:
        assert linked([self.MOVED], [self.OTHER_DISTRICT], VALE, CARDIFF)["outcome"][0] == "unmatched"

    def test_a_rare_name_in_the_la_goes_to_review_where_a_common_one_does_not_in_one_round(self) -> None:
        # The LA's rule decides row by row: a Seren is born in the LA every day, so her namesake on her
        # birthday is chance; Eirlys has no namesake for months around, so hers is likelier the child.
        register = born_every(1, "Seren", "Hughes", "CF5 2XY", "{n} Heol", 730)
        # Eirlys is no rare name on the register (its weight stays low), but none is born near her birthday.
        register += born_every(3, "Eirlys", "Hughes", "CF5 2XY", "{n} Ffordd", 100)
        register.append(child("Eirlys", "Morgan", "2016-06-28", postcode="CF5 2XY", line="40 Heol Hir"))
        rows = [
            child("Seren", "Price", "2016-03-01", postcode="CF14 3AB", line="7 Heol Isaf"),
            child("Eirlys", "Price", "2016-06-28", postcode="CF14 3AB", line="7 Heol Isaf"),
        ]
        out = linked(rows, register, CARDIFF, CARDIFF)
        assert out.select("outcome", "reason").rows() == [
            ("unmatched", "below_threshold"),
            ("possible", "unclaimed_record"),
        ]
        assert out["match_probability"][1] < 0.2  # the rule, not the weight

    OLD_HOME = child("Seren", "Morgan", "2016-06-28", postcode="CF14 9ZZ", line="40 Heol Hir")

    def test_the_childs_own_record_though_a_namesakes_record_weighs_more(self) -> None:
        # The girl moved within the district and took a new surname. A namesake of her new name and her
        # birthday lives in Swansea: that record agrees on every name, so it outweighs her own (old home,
        # old surname), but the namesake's own row holds it. Her own record, free and of the moved-nearby
        # shape, is the one an officer is shown.
        namesake = child("Seren", "Price", "2016-06-28", postcode="SA1 1AA", line="2 Heol Orllewin")
        out = linked([self.MOVED, namesake], [{**namesake}, self.OLD_HOME], CARDIFF, CARDIFF)
        assert out.select("outcome", "education_id").row(1) == ("matched", 101)
        row = out.row(0, named=True)
        assert (row["outcome"], row["education_id"], row["reason"]) == ("possible", 102, "unclaimed_record")

    def test_not_when_another_row_holds_the_record(self) -> None:
        holder = child("Ffion", "Morgan", "2016-06-28", postcode="CF10 1AA", line="12 Heol y Bont")
        out = linked([HEALTH_NEW_HOME, holder], [SCHOOL_OLD_HOME], CARDIFF, CARDIFF)
        assert out.select("outcome", "education_id").rows() == [("unmatched", 101), ("matched", 101)]

    def test_not_on_one_strong_field(self) -> None:
        # Given name alone agrees outright; the birth date is a day out.
        health = {**HEALTH_NEW_HOME, "date_of_birth": "2016-06-29"}
        assert linked([health], [SCHOOL_OLD_HOME], CARDIFF, CARDIFF)["outcome"][0] == "unmatched"

    def test_only_the_closest_row_to_an_unclaimed_record(self) -> None:
        # Two children on no register, both living in the LA that holds the record, resemble it: the one
        # living in its postcode area goes to review, the one across Wales to the LA's candidates.
        far = {**HEALTH_NEW_HOME, "family_name": "Price", "address": FAR_HOME}
        out = linked([far, HEALTH_NEW_HOME], [SCHOOL_OLD_HOME], CARDIFF, CARDIFF)
        assert out["outcome"].to_list() == ["unmatched", "possible"]


class TestOneNameAtOneHome:
    def test_two_lists_one_child_with_a_badly_keyed_birth_date(self) -> None:
        # The GP list keyed the year wrong; the name and the house say it is the child the board lists.
        board = child("Ruby", "Williams", "2017-12-10", sex="F")
        gp = child("Ruby", "Williams", "2015-12-10", sex="F")
        school = child("Ruby", "Williams", "2017-12-10", sex="F", middle_names="Angharad")
        health = records_to_frame([board, gp], [1, 2], registers=["W11000028", "W91040"])
        _, education = frames([], [school])
        out = link(health, education)
        assert out.select("education_id").to_series().to_list() == [101, 101]
        assert "unmatched" not in out["outcome"].to_list()


class TestFarAwayOnAnotherLasRegister:
    # The child the list names lives in Gwynedd; a child of the same name and birthday is on a Cardiff
    # school's roll, with a Cardiff home.
    ROW = child("Ffion", "Evans", "2016-06-28", postcode="LL55 4RD", line="3 Ffordd Las")
    RECORD = child("Ffion", "Evans", "2016-06-28", postcode="CF10 1AA", line="12 Heol y Bont")

    def test_is_not_the_child(self) -> None:
        row = linked([self.ROW], [self.RECORD], GWYNEDD, CARDIFF).row(0, named=True)
        assert (row["outcome"], row["reason"]) == ("unmatched", "far_in_another_la")

    def test_is_the_child_on_a_register_of_the_childs_own_la(self) -> None:
        assert linked([self.ROW], [self.RECORD], GWYNEDD, GWYNEDD)["outcome"][0] == "matched"

    def test_is_the_child_when_the_las_are_not_known(self) -> None:
        assert linked([self.ROW], [self.RECORD], None, None)["outcome"][0] == "matched"
