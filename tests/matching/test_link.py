"""`link` on hand-built records: one test per real-world error, and the traps that must not match."""

from __future__ import annotations

import json
import math
from typing import Any

import polars as pl
import pytest

from app.matching import engine
from app.matching.blocking import ROW
from app.matching.engine import OUTPUT_SCHEMA, REF_ROW, explain, link, score_pairs
from app.matching.frames import records_to_frame
from app.matching.params import DEFAULT_MODEL, level_code
from app.matching.realtime import threshold_outcome
from app.matching.score import TermFrequencies
from app.synthetic.population import PopulationConfig, generate
from tests.matching.helpers import child, frames

TRUE = child("Dafydd", "Pritchard", "2014-03-02", sex="M", middle_names="Rhys")


def outcome_of(health: list[dict[str, Any]], education: list[dict[str, Any]]) -> pl.DataFrame:
    return link(*frames(health, education))


def _two_lists(health: list[dict[str, Any]], las: list[str], education: list[dict[str, Any]]) -> pl.DataFrame:
    """`link` with each health row on its own list, sent to the LA given for it."""
    health_frame, education_frame = frames(health, education)
    lists = pl.Series([f"W9{i:04d}@2025-04-30" for i in range(len(health))])
    return link(health_frame.with_columns(register=lists, la=pl.Series(las)), education_frame)


def assert_matched(health_record: dict[str, Any], education_record: dict[str, Any] = TRUE) -> None:
    out = outcome_of([health_record], [education_record])
    row = out.row(0, named=True)
    assert (row["outcome"], row["education_id"]) == ("matched", 101), explain(row)


class TestRealWorldErrors:
    def test_exact(self) -> None:
        assert_matched(child("Dafydd", "Pritchard", "2014-03-02"))

    def test_given_and_family_swapped(self) -> None:
        assert_matched(child("Pritchard", "Dafydd", "2014-03-02"))

    def test_welsh_english_equivalent(self) -> None:
        assert_matched(child("David", "Pritchard", "2014-03-02"))

    def test_nickname_held_as_preferred_name(self) -> None:
        education = child("Dafydd", "Pritchard", "2014-03-02", preferred_given_name="Dai")
        assert_matched(child("Dai", "Pritchard", "2014-03-02"), education)

    def test_diacritics_stripped(self) -> None:
        education = child("Siân", "Llŷr", "2014-03-02")
        assert_matched(child("SIAN", "Llyr", "2014-03-02"), education)

    def test_invisible_characters_and_look_alike_letters(self) -> None:
        # A zero-width space pasted into the given name, a Cyrillic i (U+0456) in the surname.
        assert_matched(child("Dafy\u200bdd", "Pr\u0456tchard", "2014-03-02"))

    def test_double_barrelled_part_missing(self) -> None:
        education = child("Dafydd", "Pritchard-Bowen", "2014-03-02")
        assert_matched(child("Dafydd", "Bowen", "2014-03-02"), education)

    def test_surname_changed_with_former_name(self) -> None:
        education = child("Dafydd", "Morgan", "2014-03-02", former_names=[{"family_name": "Pritchard"}])
        assert_matched(child("Dafydd", "Pritchard", "2014-03-02"), education)

    def test_middle_name_moved_into_given(self) -> None:
        assert_matched(child("Dafydd Rhys", "Pritchard", "2014-03-02"))

    def test_known_by_middle_name(self) -> None:
        assert_matched(child("Rhys", "Pritchard", "2014-03-02"))

    def test_typo_in_given_name(self) -> None:
        assert_matched(child("Dafyd", "Pritchard", "2014-03-02"))

    def test_transposition_in_family_name(self) -> None:
        assert_matched(child("Dafydd", "Pritchrad", "2014-03-02"))

    def test_day_and_month_swapped(self) -> None:
        assert_matched(child("Dafydd", "Pritchard", "2014-02-03"))

    def test_birth_date_off_by_a_day(self) -> None:
        assert_matched(child("Dafydd", "Pritchard", "2014-03-03"))

    def test_moved_house(self) -> None:
        assert_matched(
            child("Dafydd", "Pritchard", "2014-03-02", postcode="LL57 2DG", line="3 Ffordd Penrhos")
        )

    def test_postcode_spacing_and_case(self) -> None:
        assert_matched(child("Dafydd", "Pritchard", "2014-03-02", postcode="cf101aa"))

    def test_no_address(self) -> None:
        assert_matched(child("Dafydd", "Pritchard", "2014-03-02", postcode=None, line=None))

    def test_no_birth_date(self) -> None:
        assert_matched(child("Dafydd", "Pritchard", None))

    def test_iso_strings_and_dates_give_the_same_frame(self) -> None:
        import datetime as dt

        as_date = child("Dafydd", "Pritchard", None)
        as_date["date_of_birth"] = dt.date(2014, 3, 2)
        left, _ = frames([as_date], [])
        right, _ = frames([child("Dafydd", "Pritchard", "2014-03-02")], [])
        assert left.equals(right)


class TestTraps:
    twin_a = child("Ffion", "Hughes", "2015-06-01", sex="F")
    twin_b = child("Elin", "Hughes", "2015-06-01", sex="F")

    def test_twins_each_get_their_own_record(self) -> None:
        out = outcome_of([self.twin_b, self.twin_a], [self.twin_a, self.twin_b])
        assert out.select("outcome", "education_id").rows() == [("matched", 102), ("matched", 101)]

    def test_twin_missing_from_education_is_not_matched_to_the_other(self) -> None:
        out = outcome_of([self.twin_a], [self.twin_b])
        assert out["outcome"][0] != "matched"

    def test_twin_missing_from_education_when_both_are_on_the_health_list(self) -> None:
        out = outcome_of([self.twin_a, self.twin_b], [self.twin_b])
        assert out.select("outcome", "education_id").rows() == [("unmatched", 101), ("matched", 101)]

    def test_common_name_cluster_is_not_cross_matched(self) -> None:
        cluster = [
            child("Ffion", "Jones", f"2015-{month:02d}-{day:02d}", postcode=pc, line=f"{n} Church Street")
            for n, (month, day, pc) in enumerate(
                [
                    (1, 14, "SA31 1AA"),
                    (3, 2, "SA31 2BB"),
                    (5, 20, "SA31 3DD"),
                    (8, 8, "SA31 1HN"),
                    (11, 30, "SA31 2PL"),
                ]
            )
        ]
        stranger = child("Ffion", "Jones", "2015-07-19", postcode="SA31 3QT", line="40 Heol Awst")
        out = outcome_of([stranger, cluster[2]], cluster)
        assert out.select("outcome", "education_id").row(1) == ("matched", 103)
        assert out["outcome"][0] == "unmatched"

    def test_namesake_on_another_list_far_away_does_not_share_the_record(self) -> None:
        """Same name and birth date on a second health list, but in another postcode area: a namesake on
        no register says exactly that, so name and birth date alone must clear the margin to share."""
        here = child("Nia", "Bowen", "2015-06-01")
        elsewhere = child("Nia", "Bowen", "2015-06-01", postcode="LL57 2DG", line="3 Ffordd Penrhos")
        out = outcome_of([here, elsewhere], [here])
        assert out.select("outcome", "education_id").row(0) == ("matched", 101)
        assert out.select("outcome", "reason").row(1) == ("unmatched", "candidate_taken")

    def test_namesake_on_another_las_list_in_another_district_does_not_share_the_record(self) -> None:
        """Same name and birth date on a list sent to another LA, at a home in another postcode district of
        the same area: at the size of Wales such namesakes outnumber one child on two LAs' lists."""
        here = child("Nia", "Bowen", "2015-06-01", postcode="CF10 1AA")
        next_door_la = child("Nia", "Bowen", "2015-06-01", postcode="CF62 4JD", line="3 Heol Sant Andras")
        out = _two_lists([here, next_door_la], ["W06000015", "W06000014"], [here])
        assert out.select("outcome", "education_id").row(0) == ("matched", 101)
        assert out.select("outcome", "reason").row(1) == ("unmatched", "candidate_taken")

    def test_one_child_on_two_lists_of_one_la_in_two_districts_shares_the_record(self) -> None:
        """The same rows sent to one LA: a board's list keeps an old home, the practice's has the new one."""
        here = child("Nia", "Bowen", "2015-06-01", postcode="CF10 1AA")
        moved = child("Nia", "Bowen", "2015-06-01", postcode="CF62 4JD", line="3 Heol Sant Andras")
        out = _two_lists([here, moved], ["W06000015", "W06000015"], [here])
        assert out.select("outcome", "education_id").rows() == [("matched", 101), ("matched", 101)]

    def test_placeholder_names_are_no_evidence(self) -> None:
        """Two different children written "Unknown" (a system that had to fill the field): the placeholder
        agreeing says nothing, so surname and birth date alone, at different addresses, are no match."""
        health = [child("Unknown", "Morgan", "2013-03-03")]
        education = [child("Unknown", "Morgan", "2013-03-03", postcode="SA1 1AA", line="1 Ffordd Arall")]
        row = outcome_of(health, education).row(0, named=True)
        assert row["outcome"] == "unmatched", explain(row)

    def test_one_education_record_cannot_absorb_two_children(self) -> None:
        other = child(
            "Dafydd", "Pritchard", "2014-03-02", postcode="SA1 6PL", line="9 Maes y Coed", middle_names="Ifan"
        )
        out = outcome_of([other, child("Dafydd", "Pritchard", "2014-03-02", middle_names="Rhys")], [TRUE])
        assert out.select("outcome", "education_id").row(1) == ("matched", 101)
        assert out["outcome"][0] != "matched"

    def test_same_child_twice_on_the_health_list_shares_the_record(self) -> None:
        out = outcome_of(
            [child("Dafydd", "Pritchard", "2014-03-02"), child("Dai", "Pritchard", "2014-03-02")], [TRUE]
        )
        assert out.select("outcome", "education_id").rows() == [("matched", 101), ("matched", 101)]

    def test_child_on_two_registers_is_matched(self) -> None:
        out = outcome_of([child("Dafydd", "Pritchard", "2014-03-02")], [TRUE, TRUE])
        assert out["outcome"][0] == "matched"
        assert out["education_id"][0] in (101, 102)


class TestNhsNumber:
    """Where a deployment has switched NHS numbers on: strong evidence, not blind truth."""

    NHS, OTHER_NHS = "9434765919", "9434765870"  # both with a valid check digit

    def test_an_agreeing_nhs_number_alone_does_not_make_a_match(self) -> None:
        health = child(
            "Ffion", "Jones", "2012-05-01", postcode="SA1 1AA", line="3 Stryd Fawr", nhs_number=self.NHS
        )
        record = child(
            "Dylan", "Pritchard", "2015-09-23", postcode="LL55 4RD", line="9 Ffordd Las", nhs_number=self.NHS
        )
        row = outcome_of([health], [record]).row(0, named=True)
        assert row["level_nhs"] == level_code("nhs", "agree")
        assert row["outcome"] == "unmatched", explain(row)

    def test_an_agreeing_nhs_number_finds_and_carries_a_pair_the_rest_cannot(self) -> None:
        """Same name, birth date a year and a month out, another area: not even a candidate without the
        number; with it, matched."""
        health = child("Ffion", "Rhydderch", "2012-05-01", postcode="SA1 1AA", line="3 Stryd Fawr")
        record = child("Ffion", "Rhydderch", "2013-06-01", postcode="LL55 4RD", line="9 Ffordd Las")
        assert outcome_of([health], [record]).row(0, named=True)["outcome"] == "unmatched"
        with_numbers = outcome_of([{**health, "nhs_number": self.NHS}], [{**record, "nhs_number": self.NHS}])
        assert with_numbers.select("outcome", "education_id").row(0) == ("matched", 101)

    def test_two_valid_nhs_numbers_that_differ_go_to_review_however_well_the_rest_agrees(self) -> None:
        row = outcome_of([{**TRUE, "nhs_number": self.NHS}], [{**TRUE, "nhs_number": self.OTHER_NHS}]).row(
            0, named=True
        )
        assert (row["outcome"], row["education_id"], row["reason"]) == ("possible", 101, "nhs_numbers_differ")
        assert row["match_probability"] >= DEFAULT_MODEL.thresholds.matched  # the rest alone would match

    def test_the_real_time_answer_applies_the_same_cap(self) -> None:
        pair = {
            "match_probability": 0.999,
            "given": level_code("given", "exact"),
            "nhs": level_code("nhs", "disagree"),
        }
        assert threshold_outcome(pair, DEFAULT_MODEL) == "possible"
        assert threshold_outcome({**pair, "nhs": level_code("nhs", "agree")}, DEFAULT_MODEL) == "matched"


class TestOutput:
    def test_schema_and_one_row_per_health_row_in_order(self) -> None:
        health = [
            child("Nobody", "Known", "2012-01-01", postcode="NP4 9ZZ"),
            child("Dafydd", "Pritchard", "2014-03-02"),
        ]
        out = outcome_of(health, [TRUE])
        assert out.schema == pl.Schema(OUTPUT_SCHEMA)
        assert out["health_id"].to_list() == [1, 2]
        assert out.row(0, named=True)["outcome"] == "unmatched"

    def test_scoring_in_many_slices_on_threads_changes_nothing(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """`link` scores its pairs in slices of health rows, on two threads: cut into slices of three rows,
        the outcomes are those of one slice, row for row."""
        population = generate(PopulationConfig(children=300, seed=5))
        health, education = frames(population.health_records, population.education_records)
        whole = link(health, education)
        monkeypatch.setattr(engine, "_SLICE_ROWS", 3)
        sliced = link(health, education)
        assert sliced.equals(whole)
        assert whole.filter(pl.col("outcome") == "matched").height > 200

    def test_explanation_is_json_and_adds_up(self) -> None:
        row = outcome_of([child("David", "Pritchard", "2014-03-03")], [TRUE]).row(0, named=True)
        explanation = explain(row)
        json.dumps(explanation)
        fields = {f["field"]: f for f in explanation["fields"]}
        assert fields["given"]["level"] == "equivalent"
        assert fields["dob"]["level"] == "one_day"
        total = explanation["prior"] + sum(f["weight"] for f in explanation["fields"])
        assert total == pytest.approx(explanation["match_weight"], abs=0.01)
        assert explanation["model_version"] == row["model_version"]


class TestSameChildOnTwoHealthLists:
    """One child on two health lists under two of its names, which its education record holds both of."""

    efa = child("Efa", "Hall", "2017-12-13", sex="F")
    sophie = child("Sophie", "Hall", "2017-12-13", sex="F")
    registered = child("Efa", "Hall", "2017-12-13", sex="F", middle_names="Sophie")

    @staticmethod
    def linked(health: list[dict[str, Any]], registers: list[str]) -> pl.DataFrame:
        _, education = frames([], [TestSameChildOnTwoHealthLists.registered])
        lists = records_to_frame(health, list(range(1, len(health) + 1)), registers=registers)
        return link(lists, education)

    def test_known_by_middle_name_on_a_second_list_shares_the_record(self) -> None:
        out = self.linked([self.efa, self.sophie], ["W11000029", "W91161"])
        assert out.select("outcome", "education_id").rows() == [("matched", 101), ("matched", 101)]

    def test_two_names_on_one_list_are_two_children(self) -> None:
        """Twins Efa and Sophie on one list: one list does not hold one child twice, whatever the record
        says about middle names."""
        out = self.linked([self.efa, self.sophie], ["W11000029", "W11000029"])
        assert out.select("outcome", "education_id").row(0) == ("matched", 101)
        assert out["outcome"][1] == "unmatched"

    def test_the_record_does_not_vouch_across_birth_dates(self) -> None:
        sibling = child("Sophie", "Hall", "2017-12-15", sex="F")
        out = self.linked([self.efa, sibling], ["W11000029", "W91161"])
        assert out.select("outcome", "education_id").row(0) == ("matched", 101)
        assert out["outcome"][1] != "matched"


class TestWeights:
    def test_a_middle_name_never_outweighs_the_same_name_as_first_name(self) -> None:
        """Twins Osian and Oliver, Oliver's record carrying "Osian" as a middle name, and Osian a common
        name among many rare ones: finding "Osian" among the middle names is weaker evidence than "Osian"
        as the first name, however common the name, so Osian's own record wins outright."""
        osian = child("Osian", "Roberts", "2018-05-17", sex="M", middle_names="Ann")
        oliver = child("Oliver", "Roberts", "2018-05-17", sex="M", middle_names="Osian Henry")
        letters = "abcdefghijklmnopqrstuvwxyz"
        rare = [
            child(f"Gw{letters[i % 26]}{letters[i // 26]}n", "Price", "2012-01-01", postcode="SA1 6PL")
            for i in range(300)
        ]
        common = [
            child("Osian", f"Morgan{letters[i]}", f"2011-02-{i + 1:02d}", postcode="LL55 4RD")
            for i in range(26)
        ]
        health, education = frames([child("Osian", "Roberts", "2018-05-17")], [osian, oliver, *rare, *common])
        pairs = pl.DataFrame({ROW: [0, 0], REF_ROW: [0, 1]}, schema={ROW: pl.UInt32, REF_ROW: pl.UInt32})
        scored = score_pairs(health, education, pairs, DEFAULT_MODEL, TermFrequencies.build(education))
        own, twins = scored["weight_given"].to_list()
        assert scored["given"].to_list() == [level_code("given", "exact"), level_code("given", "alternative")]
        assert own >= twins
        # A common name among the middle names is weak evidence: the twin's record is no close rival.
        assert own - twins >= DEFAULT_MODEL.thresholds.margin_bits
        assert link(health, education).select("outcome", "education_id").row(0) == ("matched", 101)

    def test_an_equivalent_name_is_worth_no_more_than_the_record_name_agreeing(self) -> None:
        """Jack against a record "Ioan" (one identity through John): a random child is called Ioan as often
        as Ioan's share, so the pair weighs no more than Ioan agreeing would, less what the exact level
        keeps over a known-as form, however rare Jack is. A namesake elsewhere must not be matched on it."""
        letters = "abcdefghijklmnopqrstuvwxyz"
        reference = [
            *(child("Ioan", f"Morgan{letters[i % 26]}", f"2011-02-{i % 28 + 1:02d}") for i in range(60)),
            *(child(f"Gw{letters[i % 26]}{letters[i // 26]}n", "Price", "2012-01-01") for i in range(200)),
            child("Jack", "Bevan", "2010-06-01"),
        ]
        queries = [child("Jack", "Roberts", "2013-01-01"), child("Ioan", "Roberts", "2013-01-01")]
        health, education = frames(queries, reference)
        pairs = pl.DataFrame({ROW: [0, 1], REF_ROW: [0, 0]}, schema={ROW: pl.UInt32, REF_ROW: pl.UInt32})
        scored = score_pairs(health, education, pairs, DEFAULT_MODEL, TermFrequencies.build(education))
        assert scored["given"].to_list() == [level_code("given", "equivalent"), level_code("given", "exact")]
        equivalent, exact = scored["weight_given"].to_list()
        m = DEFAULT_MODEL.fields["given"].m
        known_as_offset = math.log2(m[level_code("given", "equivalent") - 1] / m[0])
        assert equivalent == pytest.approx(exact + known_as_offset)
        # The model's own equivalent weight, which a rare query name alone would have allowed, is more.
        assert equivalent < DEFAULT_MODEL.weight_table("given")[level_code("given", "equivalent")] - 1

    def test_the_reference_supplies_the_chance_of_sharing_a_surname(self) -> None:
        """Exact surname agreement is worth log2(m/u), with u how often two records share a surname: taken
        from the reference when it is large (Welsh surnames are concentrated), the model's u when small."""
        few = TermFrequencies.build(
            records_to_frame([child("A", "Jones", None), child("B", "Jones", None)], [1, 2])
        )
        surnames = ["Jones"] * 1000 + ["Davies"] * 600 + [f"Rare{i}" for i in range(2400)]
        many = TermFrequencies.build(
            records_to_frame([child("A", s, None) for s in surnames], list(range(4000)))
        )
        u = DEFAULT_MODEL.fields["family"].u[0]
        records = DEFAULT_MODEL.tf_prior_records
        assert few.shared_value_share("family", u, records) == pytest.approx(u, rel=0.05)
        concentrated = (1000 * 999 + 600 * 599) / (4000 * 3999)
        assert many.shared_value_share("family", u, records) > (u + concentrated) / 2

    def test_a_middle_name_the_record_lacks_counts_against(self) -> None:
        """The health list gives a middle name and the education record (which holds legal names) has none:
        weak evidence of another child. The other way round (health lists often drop middle names) and a
        middle name moved into the given-name slot say nothing."""
        record = child("Olivia", "Jones", "2018-07-16")
        with_middle = child("Olivia", "Jones", "2018-07-16", middle_names="Ffion")
        row = outcome_of([with_middle], [record]).row(0, named=True)
        assert (row["level_middle"], row["weight_middle"] < 0) == (level_code("middle", "one_sided"), True)
        assert outcome_of([record], [with_middle]).row(0, named=True)["level_middle"] == 0
        moved = outcome_of([child("Ffion", "Jones", "2018-07-16")], [with_middle]).row(0, named=True)
        assert (moved["level_given"], moved["level_middle"]) == (level_code("given", "alternative"), 0)
