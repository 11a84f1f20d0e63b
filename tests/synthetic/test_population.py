"""The synthetic population: deterministic, schema-valid, realistic in the ways matching cares about."""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from datetime import date

import pytest
from pydantic import TypeAdapter

from app.core.csa import is_compulsory_school_age
from app.submissions.schemas import SubmissionPayload
from app.synthetic import PopulationConfig, SyntheticPopulation, generate, submission_batches
from app.synthetic.names import KNOWN_AS
from app.synthetic.places import local_authorities

CHILDREN = 20_000
# Postcode grammar (regulations doc, section 8.3) restricted to the Welsh and border areas.
POSTCODE = re.compile(r"(CF|LD|LL|NP|SA|CH|SY)[0-9]{1,2} [0-9][ABD-HJLNP-UW-Z]{2}")


@pytest.fixture(scope="module")
def population() -> SyntheticPopulation:
    return generate(PopulationConfig(children=CHILDREN, seed=11))


def _registers_by_person(population: SyntheticPopulation) -> dict[int, list[str]]:
    registers: dict[int, list[str]] = defaultdict(list)
    for person_id, register in zip(
        population.education_person_ids, population.education_registers, strict=True
    ):
        registers[person_id].append(register)
    return registers


class TestDeterminism:
    def test_same_seed_gives_identical_records_and_truth(self) -> None:
        first = generate(PopulationConfig(children=2_000, seed=3))
        second = generate(PopulationConfig(children=2_000, seed=3))
        assert first.health_records == second.health_records
        assert first.education_records == second.education_records
        assert first.health_person_ids == second.health_person_ids
        assert first.education_person_ids == second.education_person_ids
        assert [b.payload for b in submission_batches(first)] == [
            b.payload for b in submission_batches(second)
        ]

    def test_different_seed_gives_different_records(self) -> None:
        first = generate(PopulationConfig(children=2_000, seed=3))
        other = generate(PopulationConfig(children=2_000, seed=4))
        assert first.health_records != other.health_records


class TestShape:
    def test_every_submission_validates_and_covers_every_row_once(
        self, population: SyntheticPopulation
    ) -> None:
        adapter = TypeAdapter(SubmissionPayload)
        health_rows: list[int] = []
        education_rows: list[int] = []
        for batch in submission_batches(population):
            adapter.validate_python(batch.payload)
            (health_rows if batch.payload["kind"] == "health_register" else education_rows).extend(batch.rows)
        assert sorted(health_rows) == list(range(len(population.health_records)))
        assert sorted(education_rows) == list(range(len(population.education_records)))

    def test_truth_lists_run_parallel_to_records(self, population: SyntheticPopulation) -> None:
        n_health, n_education = len(population.health_records), len(population.education_records)
        assert len(population.health_person_ids) == len(population.health_recipient_la) == n_health
        assert len(population.health_senders) == n_health
        assert len(population.education_person_ids) == len(population.education_registers) == n_education
        assert len(population.education_la) == len(population.education_schools) == n_education

    def test_records_carry_no_truth_and_health_carries_no_sex(self, population: SyntheticPopulation) -> None:
        assert all("person_id" not in record and "sex" not in record for record in population.health_records)
        assert all("person_id" not in record and "sex" in record for record in population.education_records)

    def test_row_order_says_nothing_about_identity(self, population: SyntheticPopulation) -> None:
        ids = population.health_person_ids
        ascending = sum(1 for a, b in itertools.pairwise(ids) if a < b)
        assert 0.4 < ascending / len(ids) < 0.6

    def test_health_lists_go_only_to_pilot_las(self, population: SyntheticPopulation) -> None:
        pilot = {la.gss_code for la in local_authorities() if la.pilot}
        assert set(population.health_recipient_la) <= pilot


class TestPeople:
    def test_every_child_is_of_compulsory_school_age(self, population: SyntheticPopulation) -> None:
        as_of = population.config.as_of
        assert all(is_compulsory_school_age(p.date_of_birth, as_of) for p in population.people)

    def test_true_postcodes_are_valid_and_welsh(self, population: SyntheticPopulation) -> None:
        assert all(POSTCODE.fullmatch(person.address.postcode) for person in population.people)

    def test_households_do_not_share_addresses(self, population: SyntheticPopulation) -> None:
        households_at: dict[tuple[object, ...], set[int]] = defaultdict(set)
        for person in population.people:
            address = person.address
            key = (address.town.name, address.street.name, address.house_number, address.postcode)
            if address.house_number is not None:
                households_at[key].add(person.household_id)
        assert max(len(households) for households in households_at.values()) == 1

    def test_welsh_surnames_dominate(self, population: SyntheticPopulation) -> None:
        counts = Counter(person.family_name for person in population.people)
        top = [name for name, _ in counts.most_common(5)]
        assert top[0] == "Jones"
        assert set(top) <= {"Jones", "Davies", "Williams", "Evans", "Thomas", "Roberts", "Hughes"}
        assert 0.3 < sum(count for _, count in counts.most_common(10)) / len(population.people) < 0.6

    def test_twins_are_distinct_people_sharing_dob_surname_and_address(
        self, population: SyntheticPopulation
    ) -> None:
        by_id = {person.person_id: person for person in population.people}
        twins = [person for person in population.people if person.twin_id is not None]
        assert len(twins) >= 100
        for person in twins:
            twin = by_id[person.twin_id] if person.twin_id is not None else person
            assert twin.person_id != person.person_id
            assert twin.twin_id == person.person_id
            assert twin.date_of_birth == person.date_of_birth
            assert twin.address == person.address
            assert twin.given_name != person.given_name
        assert any(
            by_id[p.twin_id].given_name == "Fflur" for p in twins if p.given_name == "Ffion" and p.twin_id
        )

    def test_common_name_clusters_exist(self, population: SyntheticPopulation) -> None:
        clusters = Counter(
            (p.given_name, p.family_name, p.address.town.name, p.date_of_birth.year)
            for p in population.people
        )
        assert clusters.most_common(1)[0][1] >= 10
        same_name_and_dob = Counter((p.given_name, p.family_name, p.date_of_birth) for p in population.people)
        assert same_name_and_dob.most_common(1)[0][1] >= 2


class TestRates:
    def test_register_shares_are_roughly_met(self, population: SyntheticPopulation) -> None:
        config = population.config
        registers = _registers_by_person(population)
        resident = [p for p in population.people if not p.left_wales]
        share = Counter[str]()
        for person in resident:
            kinds = registers.get(person.person_id, [])
            share["none"] += not kinds
            share["ehe"] += "ehe_register" in kinds
            share["eotas_only"] += kinds == ["eotas_register"]
            share["dual"] += len(kinds) > 1
        n = len(resident)
        assert share["none"] / n == pytest.approx(config.no_register_share, rel=0.15)
        assert share["ehe"] / n == pytest.approx(config.ehe_share, rel=0.25)
        assert share["eotas_only"] / n == pytest.approx(config.eotas_share, rel=0.3)
        assert 0 < share["dual"] / n < 3 * config.dual_registration_share

    def test_left_wales_children_are_on_health_lists_and_no_register(
        self, population: SyntheticPopulation
    ) -> None:
        left = {p.person_id for p in population.people if p.left_wales}
        assert len(left) == round(CHILDREN * population.config.stale_health_share)
        assert left <= set(population.health_person_ids)
        assert not left & set(population.education_person_ids)

    def test_gp_practice_duplicates_and_cross_la_schooling_occur(
        self, population: SyntheticPopulation
    ) -> None:
        rows_per_child = Counter(population.health_person_ids)
        duplicated = sum(1 for count in rows_per_child.values() if count > 1) / len(rows_per_child)
        assert duplicated == pytest.approx(population.config.gp_practice_list_share, rel=0.2)
        by_id = {person.person_id: person for person in population.people}
        elsewhere = sum(
            1
            for person_id, la, kind in zip(
                population.education_person_ids,
                population.education_la,
                population.education_registers,
                strict=True,
            )
            if kind == "school_roll" and by_id[person_id].residence_la.gss_code != la
        )
        assert 0.02 < elsewhere / len(population.education_records) < 0.1

    def test_independent_schools_appear(self, population: SyntheticPopulation) -> None:
        numbers = [number for number in population.education_schools if number is not None]
        independent = sum(1 for number in numbers if population.schools[number].independent) / len(numbers)
        assert independent == pytest.approx(population.config.independent_school_share, rel=0.3)


class TestCorruptions:
    def test_each_side_disagrees_with_the_truth_in_the_documented_ways(
        self, population: SyntheticPopulation
    ) -> None:
        by_id = {person.person_id: person for person in population.people}
        seen = Counter[str]()
        for side, records, ids in (
            ("health", population.health_records, population.health_person_ids),
            ("education", population.education_records, population.education_person_ids),
        ):
            for record, person_id in zip(records, ids, strict=True):
                person = by_id[person_id]
                variants = KNOWN_AS.get(person.given_name, ())
                seen[f"{side}:known_as_given"] += record["given_name"] in variants
                seen[f"{side}:known_as_preferred"] += record.get("preferred_given_name") in variants
                seen[f"{side}:swapped"] += record["given_name"] == person.family_name
                seen[f"{side}:upper"] += (
                    record["family_name"] == person.family_name.upper() != person.family_name
                )
                seen[f"{side}:stripped"] += "â" in person.given_name and record["given_name"] == "Sian"
                seen[f"{side}:hyphen_space"] += "-" in person.family_name and record["family_name"] == (
                    person.family_name.replace("-", " ")
                )
                postcode = record["address"].get("postcode")
                seen[f"{side}:no_postcode"] += postcode is None
                seen[f"{side}:postcode_no_space"] += postcode == person.address.postcode.replace(" ", "")
                seen[f"{side}:moved"] += postcode is not None and postcode == (
                    person.previous_address.postcode if person.previous_address else None
                )
                dob = record.get("date_of_birth")
                truth = person.date_of_birth
                swapped = date(truth.year, truth.day, truth.month).isoformat() if truth.day <= 12 else None
                seen[f"{side}:dob_swapped"] += dob == swapped != truth.isoformat()
                seen[f"{side}:middle_merged"] += bool(person.middle_names) and record["given_name"] == (
                    f"{person.given_name} {person.middle_names}"
                )
                seen[f"{side}:former_name"] += "former_names" in record
        for side in ("health", "education"):
            for kind in (
                "known_as_given", "swapped", "upper", "stripped", "hyphen_space", "no_postcode",
                "postcode_no_space", "moved", "dob_swapped", "middle_merged", "former_name",
            ):  # fmt: skip
                assert seen[f"{side}:{kind}"] > 0, f"{side} never shows {kind}"
        assert seen["education:known_as_preferred"] > 0
        assert seen["health:known_as_preferred"] == 0
        assert seen["health:stripped"] > seen["education:stripped"]


class TestConfig:
    def test_register_shares_above_one_are_refused(self) -> None:
        with pytest.raises(ValueError, match="register shares"):
            PopulationConfig(school_roll_share=0.99, ehe_share=0.02)

    def test_no_register_share_is_the_remainder(self) -> None:
        config = PopulationConfig(school_roll_share=0.9, ehe_share=0.05, eotas_share=0.01)
        assert config.no_register_share == pytest.approx(0.04)
