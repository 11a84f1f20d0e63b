"""A seeded synthetic population of Welsh children and the lists partners would send about them.

`generate(config)` builds people in households (siblings share surname and address; some are twins;
some belong to common-name clusters such as many Ffion Joneses born in one year in one town), decides
which registers each child is on, and renders every list entry through the holder's own corruption
rates. Records are plain dicts in the shape of `app.submissions.schemas`; the truth (whose record is
whose) lives in parallel lists beside them, never inside a record.

Everything is drawn from one `random.Random(seed)`, so the same config gives the same population.
"""

from __future__ import annotations

import bisect
import gc
import itertools
import random
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from app.core.csa import is_compulsory_school_age, national_curriculum_year
from app.synthetic.compound import NO_COMPOUND_ERRORS, Compound, CompoundErrors, Slip
from app.synthetic.corruption import (
    EDUCATION_RATES,
    HEALTH_RATES,
    SideRates,
    corrupt_dob,
    dob_error,
    hyphen_part_missing,
    postcode_format_variant,
    postcode_typo,
    strip_diacritics,
    typo,
)
from app.synthetic.names import (
    BOYS,
    GIRLS,
    KNOWN_AS,
    SIMILAR_TWIN_NAMES,
    SURNAME_PREFIXES,
    SURNAMES,
    rank_weights,
)
from app.synthetic.places import Address, Gazetteer, LocalAuthority, Town, local_authorities

Record = dict[str, Any]


class Register(StrEnum):
    school_roll = "school_roll"
    ehe_register = "ehe_register"
    eotas_register = "eotas_register"


@dataclass(frozen=True, slots=True)
class PopulationConfig:
    """What to generate. Rates are shares of children unless stated; see docs/decisions/0003.

    Every setting is independent; the defaults are the population the project was built on (the same
    seed gives the same bytes as before the settings existed). Named departures are in `variants.py`.
    Fields ending in `_share` must lie in [0, 1]."""

    children: int = 10_000
    seed: int = 0
    as_of: date = date(2025, 4, 30)
    # Where children live: this share in the seven pilot LAs, the rest elsewhere in Wales.
    pilot_residence_share: float = 0.85
    # Education registers (the remainder, about 3.1% by default, is on no register: CME candidates).
    school_roll_share: float = 0.95
    ehe_share: float = 0.013
    eotas_share: float = 0.006
    dual_registration_share: float = 0.004  # of children on a school roll: also on a second register
    dual_eotas_share: float = 0.5  # of dual registrations: the EOTAS register (a PRU)
    dual_ehe_share: float = 0.0  # of dual registrations: the EHE register; the rest a second school's roll
    school_in_other_la_share: float = 0.05  # of children on a school roll
    school_outside_health_board_share: float = 0.0  # of those in another LA: any LA, not a neighbour
    school_outside_town_share: float = 0.1  # of those at a local school: any in the LA, not their town's
    independent_school_share: float = 0.02  # of children on a school roll
    mid_year_admission_share: float = 0.1  # of school-roll records: admitted mid-year
    education_sex_unknown_share: float = 0.002  # of education records: sex "U"
    school_legal_surname_share: float = 0.3  # changed surname, school holds neither stale nor former:
    # the school holds the old surname as the legal one and the new one as preferred
    # Health lists (only children resident in a pilot LA are disclosed to that LA).
    gp_registered_share: float = 0.975
    gp_practice_list_share: float = 0.15  # of registered children: also sent by their GP practice
    stale_health_share: float = 0.01  # extra children who left Wales: on a health list, on no register
    last_known_address_share: float = 0.3  # of children who left Wales: address_is_last_known
    # People and households
    household_size_weights: tuple[float, ...] = (0.45, 0.38, 0.13, 0.04)  # 1, 2, 3, 4 ... children
    twin_share: float = 0.03  # of households with two or more children
    similar_twin_names_share: float = 0.3  # of twins: names like Ffion/Fflur
    blended_family_share: float = 0.0  # of households with two or more children: a step-parent
    step_surname_share: float = 0.5  # of children in a blended family: took the step-parent's surname
    hyphenated_surname_share: float = 0.05  # of households
    hyphen_prefix_share: float = 0.5  # of double-barrelled names: second part from SURNAME_PREFIXES
    hyphen_drawn_first_share: float = 0.6  # of double-barrelled names with two parts: "other-drawn" order
    common_name_cluster_share: float = 0.02  # of households: one-child households in a name cluster
    children_per_cluster_spec: int = 4000  # one name cluster (given, surname, town, year) per this many
    moved_house_share: float = 0.05  # of households: the two sides hold different addresses
    moved_from_other_town_share: float = 0.3  # of moved households: the old address in another town
    surname_change_share: float = 0.01  # of children
    known_as_share: float = 0.25  # of children whose given name has a known-as form
    middle_name_share: float = 0.45
    extra_middle_name_share: float = 0.2  # of middle names: from a short list (Ann, Mai, Wyn ...)
    second_middle_name_share: float = 0.08  # of middle names: a second one
    # Name lists (most common first) and the steepness of their rank curves (`names.rank_weights`)
    surnames: tuple[str, ...] = SURNAMES
    surname_prefixes: tuple[str, ...] = SURNAME_PREFIXES
    girls: tuple[str, ...] = GIRLS
    boys: tuple[str, ...] = BOYS
    similar_twin_names: tuple[tuple[str, str, str, str], ...] = SIMILAR_TWIN_NAMES
    surname_exponent: float = 0.8
    given_name_exponent: float = 0.9
    # How each side gets details wrong, record by record, and two errors at once for some children
    health_rates: SideRates = HEALTH_RATES
    education_rates: SideRates = EDUCATION_RATES
    compound: CompoundErrors = NO_COMPOUND_ERRORS

    def __post_init__(self) -> None:
        if self.children < 1:
            raise ValueError("children must be at least 1")
        for item in fields(self):
            if item.name.endswith("_share") and not 0.0 <= getattr(self, item.name) <= 1.0:
                raise ValueError(f"{item.name} must lie between 0 and 1")
        for rates in (self.health_rates, self.education_rates):
            if any(not 0.0 <= getattr(rates, item.name) <= 1.0 for item in fields(rates)):
                raise ValueError("side rates must lie between 0 and 1")
        if self.school_roll_share + self.ehe_share + self.eotas_share > 1.0:
            raise ValueError("register shares add up to more than 1")
        if self.dual_eotas_share + self.dual_ehe_share > 1.0:
            raise ValueError("dual registration shares add up to more than 1")
        if min(self.household_size_weights, default=-1.0) < 0 or sum(self.household_size_weights) <= 0:
            raise ValueError("household size weights must be non-negative and not all 0")
        if not (
            self.surnames and self.girls and self.boys and self.surname_prefixes and self.similar_twin_names
        ):
            raise ValueError("name lists must not be empty")
        if self.children_per_cluster_spec < 1:
            raise ValueError("children_per_cluster_spec must be at least 1")

    @property
    def no_register_share(self) -> float:
        return 1.0 - self.school_roll_share - self.ehe_share - self.eotas_share


@dataclass(slots=True)
class Person:
    """One true child. `address` is where they live now; `previous_address` if they moved recently."""

    person_id: int
    given_name: str
    middle_names: str | None
    family_name: str
    sex: str
    date_of_birth: date
    household_id: int
    address: Address
    residence_la: LocalAuthority
    previous_address: Address | None = None
    former_family_name: str | None = None
    known_as: str | None = None
    twin_id: int | None = None  # person_id of the twin
    left_wales: bool = False  # stale health registration: on a health list, on no register
    compound: Compound | None = None  # two errors at once (see `compound.py`)
    health_slips: frozenset[Slip] = frozenset()  # forced on every health record about the child
    education_slips: frozenset[Slip] = frozenset()  # forced on every education record


@dataclass(frozen=True, slots=True)
class School:
    number: str
    name: str
    la: LocalAuthority
    town: Town
    secondary: bool
    independent: bool


@dataclass(slots=True)
class SyntheticPopulation:
    """People, the records partners would send about them, and the truth in parallel lists."""

    config: PopulationConfig
    people: list[Person]
    health_records: list[Record] = field(default_factory=list)
    health_person_ids: list[int] = field(default_factory=list)
    health_recipient_la: list[str] = field(default_factory=list)  # GSS code of the pilot LA
    health_senders: list[str] = field(default_factory=list)  # partner id: LHB GSS code or GP practice code
    education_records: list[Record] = field(default_factory=list)
    education_person_ids: list[int] = field(default_factory=list)
    education_registers: list[str] = field(default_factory=list)
    education_la: list[str] = field(default_factory=list)  # GSS code of the LA holding the register
    education_schools: list[str | None] = field(default_factory=list)  # school number for school rolls
    schools: dict[str, School] = field(default_factory=dict)


_EXTRA_MIDDLE_NAMES = ("Ann", "Mai", "Wyn", "Lloyd", "Rose", "Grace", "Glyn", "Jac", "Lynn", "Haf")
_PROVISION_NAMES = ("Canolfan Addysg", "Pupil Referral Unit", "Tuition Centre", "Education Centre")


class _Draw:
    """Cumulative-weight samplers built once, so drawing a name is one bisect."""

    def __init__(self, items: tuple[str, ...], exponent: float) -> None:
        self.items = items
        self.cumulative = list(itertools.accumulate(rank_weights(len(items), exponent)))

    def __call__(self, rng: random.Random) -> str:
        return self.items[bisect.bisect(self.cumulative, rng.random() * self.cumulative[-1])]


class _Generator:
    def __init__(self, config: PopulationConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.gazetteer = Gazetteer(self.rng)
        self.las = local_authorities()
        self.surname = _Draw(config.surnames, config.surname_exponent)
        self.girl = _Draw(config.girls, config.given_name_exponent)
        self.boy = _Draw(config.boys, config.given_name_exponent)
        self.household_sizes = tuple(range(1, len(config.household_size_weights) + 1))
        self.valid_dobs = self._compulsory_school_age_dobs()
        self.dob_index_by_year: dict[int, tuple[int, int]] = {}
        for year, group in itertools.groupby(
            range(len(self.valid_dobs)), key=lambda i: self.valid_dobs[i].year
        ):
            indexes = list(group)
            self.dob_index_by_year[year] = (indexes[0], indexes[-1])
        pilot = [la for la in self.las if la.pilot]
        other = [la for la in self.las if not la.pilot]
        self.pilot_las, self.pilot_weights = pilot, [la.population for la in pilot]
        self.other_las, self.other_weights = other, [la.population for la in other]
        self.schools_by_town: dict[tuple[str, bool], list[School]] = {}
        self.schools_by_la: dict[tuple[str, bool], list[School]] = {}
        self.independent_by_la: dict[str, list[School]] = {}
        self.schools: dict[str, School] = {}
        self._build_schools()
        self.clusters = self._common_name_clusters()
        self.gp_practices: dict[str, list[str]] = {}

    # --- setup -------------------------------------------------------------------------------------

    def _compulsory_school_age_dobs(self) -> list[date]:
        as_of = self.config.as_of
        first = as_of.replace(year=as_of.year - 17, day=1)
        days = (as_of - first).days
        candidates = (first + timedelta(days=offset) for offset in range(days))
        return [dob for dob in candidates if is_compulsory_school_age(dob, as_of)]

    def _expected_children(self, la: LocalAuthority) -> float:
        config = self.config
        if la.pilot:
            return config.children * config.pilot_residence_share * la.population / sum(self.pilot_weights)
        return config.children * (1 - config.pilot_residence_share) * la.population / sum(self.other_weights)

    def _build_schools(self) -> None:
        rng = self.rng
        for la in self.las:
            towns = self.gazetteer.towns_by_la[la.register_code]
            expected = self._expected_children(la)
            primaries = max(len(towns), round(expected * 0.55 / 220))
            secondaries = max(1, round(expected * 0.45 / 900))
            independents = 1 + int(expected > 8000)
            serial = itertools.count(1)
            schools: list[School] = []
            for count, secondary, base in ((primaries, False, 2000), (secondaries, True, 4000)):
                for index in range(count):
                    town = towns[index % len(towns)]
                    schools.append(self._school(la, town, base + next(serial), secondary, False))
            independent = [
                self._school(la, towns[index % len(towns)], 6000 + next(serial), rng.random() < 0.5, True)
                for index in range(independents)
            ]
            self.independent_by_la[la.register_code] = independent
            for school in schools:
                self.schools_by_la.setdefault((la.register_code, school.secondary), []).append(school)
                self.schools_by_town.setdefault((school.town.name, school.secondary), []).append(school)

    def _school(
        self, la: LocalAuthority, town: Town, serial: int, secondary: bool, independent: bool
    ) -> School:
        rng = self.rng
        place = (town.name_cy or town.name) if rng.random() < 0.5 else town.name
        if independent:
            name = rng.choice((f"{town.name} College", f"St David's School {town.name}", f"Coleg {place}"))
        elif secondary:
            name = rng.choice((f"Ysgol Gyfun {place}", f"{town.name} High School", f"Ysgol Uwchradd {place}"))
        else:
            street = rng.choice(town.streets)
            name = rng.choice(
                (f"Ysgol Gynradd {street.welsh or street.name}", f"{street.name} Primary School")
            )
        school = School(f"{la.wg_number}{serial:04d}", name, la, town, secondary, independent)
        self.schools[school.number] = school
        return school

    def _common_name_clusters(self) -> list[tuple[str, str, str, Town, int]]:
        """(given, sex, surname, town, birth year) specs: many same-named children in one town and year."""
        rng = self.rng
        count = max(3, self.config.children // self.config.children_per_cluster_spec)
        years = sorted(self.dob_index_by_year)[1:-1]
        clusters = []
        for _ in range(count):
            sex = rng.choice("FM")
            given = (self.girl if sex == "F" else self.boy)(rng)
            town = rng.choice(
                self.gazetteer.towns_by_la[rng.choices(self.pilot_las, self.pilot_weights)[0].register_code]
            )
            clusters.append((given, sex, self.surname(rng), town, rng.choice(years)))
        return clusters

    # --- people ------------------------------------------------------------------------------------

    def people(self) -> list[Person]:
        config, rng = self.config, self.rng
        people: list[Person] = []
        household_id = 0
        while len(people) < config.children:
            household_id += 1
            remaining = config.children - len(people)
            if rng.random() < config.common_name_cluster_share:
                people.append(self._cluster_child(len(people), household_id))
            else:
                people.extend(self._household(len(people), household_id, remaining))
        if config.compound.total > 0:
            for person in people:
                self._compound(person)
        return people

    def _residence(self) -> tuple[LocalAuthority, Town]:
        rng, config = self.rng, self.config
        if rng.random() < config.pilot_residence_share:
            la = rng.choices(self.pilot_las, self.pilot_weights)[0]
        else:
            la = rng.choices(self.other_las, self.other_weights)[0]
        towns = self.gazetteer.towns_by_la[la.register_code]
        # The first town listed is the largest.
        town = rng.choices(towns, [3.0] + [1.0] * (len(towns) - 1))[0]
        return la, town

    def _family_name(self) -> str:
        rng = self.rng
        surname = self.surname(rng)
        config = self.config
        if rng.random() < config.hyphenated_surname_share:
            other = (
                rng.choice(config.surname_prefixes)
                if rng.random() < config.hyphen_prefix_share
                else self.surname(rng)
            )
            if other != surname:
                return (
                    f"{other}-{surname}"
                    if rng.random() < config.hyphen_drawn_first_share
                    else f"{surname}-{other}"
                )
        return surname

    def _given_name(self, sex: str, taken: set[str]) -> str:
        draw = self.girl if sex == "F" else self.boy
        while True:
            name = draw(self.rng)
            if name not in taken:
                return name

    def _middle_names(self, sex: str, given: str) -> str | None:
        rng, config = self.rng, self.config
        if rng.random() >= config.middle_name_share:
            return None
        draw = self.girl if sex == "F" else self.boy
        first = (
            rng.choice(_EXTRA_MIDDLE_NAMES) if rng.random() < config.extra_middle_name_share else draw(rng)
        )
        if first == given:
            return None
        if rng.random() < config.second_middle_name_share:
            second = draw(rng)
            if second not in (first, given):
                return f"{first} {second}"
        return first

    def _new_person(
        self,
        person_id: int,
        household_id: int,
        given: str,
        sex: str,
        family: str,
        dob: date,
        la: LocalAuthority,
        address: Address,
        previous: Address | None,
    ) -> Person:
        rng, config = self.rng, self.config
        person = Person(
            person_id=person_id,
            given_name=given,
            middle_names=self._middle_names(sex, given),
            family_name=family,
            sex=sex,
            date_of_birth=dob,
            household_id=household_id,
            address=address,
            residence_la=la,
            previous_address=previous,
        )
        variants = KNOWN_AS.get(given)
        if variants and rng.random() < config.known_as_share:
            person.known_as = rng.choice(variants)
        if rng.random() < config.surname_change_share:
            person.former_family_name = family
            person.family_name = self._family_name()
        return person

    def _cluster_child(self, person_id: int, household_id: int) -> Person:
        rng = self.rng
        given, sex, surname, town, year = rng.choice(self.clusters)
        low, high = self.dob_index_by_year[year]
        dob = self.valid_dobs[rng.randint(low, high)]
        address = self.gazetteer.random_address(town)
        return self._new_person(person_id, household_id, given, sex, surname, dob, town.la, address, None)

    def _household(self, first_id: int, household_id: int, remaining: int) -> list[Person]:
        rng, config = self.rng, self.config
        la, town = self._residence()
        size = min(remaining, rng.choices(self.household_sizes, config.household_size_weights)[0])
        family = self._family_name()
        address = self.gazetteer.random_address(town)
        previous = None
        if rng.random() < config.moved_house_share:
            towns = self.gazetteer.towns_by_la[la.register_code]
            elsewhere = rng.random() < config.moved_from_other_town_share
            previous = self.gazetteer.random_address(rng.choice(towns) if elsewhere else town)
        twins = size >= 2 and rng.random() < config.twin_share
        dobs = self._sibling_dobs(size, twins)
        sexes = [rng.choice("FM") for _ in dobs]
        taken: set[str] = set()
        givens: list[str] = []
        if twins and rng.random() < config.similar_twin_names_share:
            first, first_sex, second, second_sex = rng.choice(config.similar_twin_names)
            givens += [first, second]
            sexes[0], sexes[1] = first_sex, second_sex
            taken.update(givens)
        for sex in sexes[len(givens) :]:
            name = self._given_name(sex, taken)
            taken.add(name)
            givens.append(name)
        people = [
            self._new_person(
                first_id + i, household_id, givens[i], sexes[i], family, dobs[i], la, address, previous
            )
            for i in range(len(dobs))
        ]
        if twins and len(people) >= 2:
            people[0].twin_id, people[1].twin_id = people[1].person_id, people[0].person_id
        if size >= 2 and config.blended_family_share and rng.random() < config.blended_family_share:
            self._blend(people, family)
        return people

    def _blend(self, people: list[Person], family: str) -> None:
        """A step-parent joins: some children take their surname, so siblings at one address differ."""
        rng = self.rng
        step = self._family_name()
        if step == family:
            return
        for person in people:
            if person.former_family_name is None and rng.random() < self.config.step_surname_share:
                person.former_family_name, person.family_name = person.family_name, step

    # --- compound errors -----------------------------------------------------------------------------

    def _compound(self, person: Person) -> None:
        """Maybe give `person` one compound error (see `compound.py`): slips forced on each side."""
        rng = self.rng
        kind = self.config.compound.pick(rng.random())
        if kind is None:
            return
        health: set[Slip] = set()
        education: set[Slip] = set()

        def either() -> set[Slip]:
            return health if rng.random() < 0.5 else education

        if kind is Compound.school_old_address_new_surname:
            self._moved(person)
            self._changed_surname(person)
            education.update((Slip.stale_address, Slip.new_surname_only))
            health.update((Slip.current_address, Slip.old_surname))
        elif kind is Compound.dob_error_and_given_variant:
            health.add(Slip.current_address)
            education.add(Slip.current_address)
            either().add(Slip.dob_error)
            either().add(self._given_variant(person))
        elif kind is Compound.middle_name_and_dob_error:
            if person.middle_names is None:
                person.middle_names = self._given_name(person.sex, {person.given_name})
            either().add(Slip.known_by_middle)
            either().add(Slip.dob_error)
        elif kind is Compound.dob_error_and_surname_or_postcode_error:
            either().add(Slip.dob_error)
            either().add(rng.choice((Slip.family_typo, Slip.postcode_typo)))
        elif kind is Compound.swapped_names_and_another_error:
            either().add(Slip.swapped_names)
            other = rng.choice((Slip.dob_error, Slip.given_typo, Slip.family_typo, Slip.postcode_typo, None))
            if other is None:
                self._stale_on_one_side(person, health, education)
            else:
                either().add(other)
        else:
            lagging = self._stale_on_one_side(person, health, education)
            if kind is Compound.stale_address_and_surname_change:
                self._changed_surname(person)
                lagging.add(Slip.old_surname)
                (education if lagging is health else health).add(Slip.new_surname_only)
            elif kind is Compound.stale_address_and_dob_error:
                either().add(Slip.dob_error)
            else:
                name_error = rng.choice((Slip.given_typo, Slip.family_typo, Slip.swapped_names, None))
                either().add(self._given_variant(person) if name_error is None else name_error)
        person.compound = kind
        person.health_slips, person.education_slips = frozenset(health), frozenset(education)

    def _moved(self, person: Person) -> None:
        if person.previous_address is None:
            person.previous_address = self.gazetteer.random_address(person.address.town)

    def _stale_on_one_side(self, person: Person, health: set[Slip], education: set[Slip]) -> set[Slip]:
        """The child moved; one side (a coin toss) holds the old address. Returns that side's slips."""
        self._moved(person)
        lagging, current = (health, education) if self.rng.random() < 0.5 else (education, health)
        lagging.add(Slip.stale_address)
        current.add(Slip.current_address)
        return lagging

    def _changed_surname(self, person: Person) -> None:
        """A surname change: a double-barrelled name loses a part, any other becomes a step-parent's."""
        if person.former_family_name is not None:
            return
        family = person.family_name
        if "-" in family:
            new = hyphen_part_missing(family, self.rng)
        else:
            new = self._family_name()
            while new == family:
                new = self._family_name()
        person.former_family_name, person.family_name = family, new

    def _given_variant(self, person: Person) -> Slip:
        """The known-as form as given name when the name has one, else a typo in the given name."""
        variants = KNOWN_AS.get(person.given_name)
        if not variants:
            return Slip.given_typo
        if person.known_as is None:
            person.known_as = self.rng.choice(variants)
        return Slip.known_as_given

    def _sibling_dobs(self, size: int, twins: bool) -> list[date]:
        """Dates of birth at least ~10 months apart, except twins, who share one."""
        rng = self.rng
        dobs: list[date] = []
        singles = size - 1 if twins else size
        for _ in range(singles * 4):
            if len(dobs) == singles:
                break
            candidate = self.valid_dobs[rng.randrange(len(self.valid_dobs))]
            if all(abs((candidate - other).days) > 300 for other in dobs):
                dobs.append(candidate)
        if twins and dobs:
            dobs.insert(1, dobs[0])
        return dobs

    # --- registers -----------------------------------------------------------------------------------

    def _school_for(self, person: Person) -> School:
        rng, config = self.rng, self.config
        secondary = national_curriculum_year(person.date_of_birth, config.as_of) >= 7
        la = person.residence_la
        if rng.random() < config.independent_school_share:
            return rng.choice(self.independent_by_la[la.register_code])
        if rng.random() < config.school_in_other_la_share:
            # Same health board stands in for "neighbouring LA"; Powys, alone in its board, picks any.
            anywhere = [other for other in self.las if other != la]
            far = config.school_outside_health_board_share
            if far and rng.random() < far:
                la = rng.choice(anywhere)
            else:
                neighbours = [other for other in anywhere if other.health_board_gss == la.health_board_gss]
                la = rng.choice(neighbours or anywhere)
        local = self.schools_by_town.get((person.address.town.name, secondary))
        if not local or la != person.residence_la or rng.random() < config.school_outside_town_share:
            local = self.schools_by_la[la.register_code, secondary]
        return rng.choice(local)

    def _gp_practice(self, town: Town) -> str:
        practices = self.gp_practices.get(town.name)
        if practices is None:
            start = 91000 + 40 * len(self.gp_practices)
            practices = [f"W{start + index}" for index in range(1 + len(town.districts) * 2)]
            self.gp_practices[town.name] = practices
        return self.rng.choice(practices)

    def populate(self, population: SyntheticPopulation) -> None:
        config, rng = self.config, self.rng
        health_rates = config.health_rates
        no_register = config.no_register_share
        for person in population.people:
            on_health_list = person.residence_la.pilot and rng.random() < config.gp_registered_share
            if on_health_list:
                self._health(population, person, health_rates, person.residence_la.health_board_gss)
                if rng.random() < config.gp_practice_list_share:
                    self._health(population, person, health_rates, self._gp_practice(person.address.town))
            roll = rng.random()
            if roll < no_register:
                continue
            roll -= no_register
            if roll < config.ehe_share:
                self._education(population, person, Register.ehe_register, person.residence_la, None)
            elif roll < config.ehe_share + config.eotas_share:
                self._education(population, person, Register.eotas_register, person.residence_la, None)
            else:
                school = self._school_for(person)
                self._education(population, person, Register.school_roll, school.la, school)
                if rng.random() < config.dual_registration_share:
                    kind = rng.random()
                    if kind < config.dual_eotas_share:
                        self._education(
                            population, person, Register.eotas_register, person.residence_la, None
                        )
                    elif kind < config.dual_eotas_share + config.dual_ehe_share:
                        self._education(population, person, Register.ehe_register, person.residence_la, None)
                    else:
                        second = self._school_for(person)
                        if second.number != school.number:
                            self._education(population, person, Register.school_roll, second.la, second)
        self._stale_health_rows(population)

    def _stale_health_rows(self, population: SyntheticPopulation) -> None:
        """Children who left Wales but are still on a health list: truthfully on no register."""
        config, rng = self.config, self.rng
        stale = round(config.children * config.stale_health_share)
        next_id = len(population.people)
        for offset in range(stale):
            la, town = self._residence()
            while not la.pilot:
                la, town = self._residence()
            sex = rng.choice("FM")
            person = self._new_person(
                next_id + offset,
                -(offset + 1),
                self._given_name(sex, set()),
                sex,
                self._family_name(),
                self.valid_dobs[rng.randrange(len(self.valid_dobs))],
                la,
                self.gazetteer.random_address(town),
                None,
            )
            person.left_wales = True
            population.people.append(person)
            self._health(population, person, config.health_rates, la.health_board_gss)

    def _health(self, population: SyntheticPopulation, person: Person, rates: SideRates, sender: str) -> None:
        record = self._render(person, rates, health=True)
        if person.left_wales and self.rng.random() < self.config.last_known_address_share:
            record["address_is_last_known"] = True
        population.health_records.append(record)
        population.health_person_ids.append(person.person_id)
        population.health_recipient_la.append(person.residence_la.gss_code)
        population.health_senders.append(sender)

    def _education(
        self,
        population: SyntheticPopulation,
        person: Person,
        register: Register,
        holder: LocalAuthority,
        school: School | None,
    ) -> None:
        rng = self.rng
        record = self._render(person, self.config.education_rates, health=False)
        record["sex"] = "U" if rng.random() < self.config.education_sex_unknown_share else person.sex
        if school is not None:
            record["school"] = {"number": school.number, "name": school.name}
            record["admission_date"] = self._admission_date(person, school).isoformat()
        elif register is Register.eotas_register:
            kind = rng.choice(("pupil_referral_unit", "education_other", "awaiting_provision"))
            provision: Record = {"type": kind}
            if kind != "awaiting_provision":
                provision["name"] = f"{rng.choice(_PROVISION_NAMES)} {holder.name}"
            record["provision"] = provision
        population.education_records.append(record)
        population.education_person_ids.append(person.person_id)
        population.education_registers.append(register.value)
        population.education_la.append(holder.gss_code)
        population.education_schools.append(school.number if school else None)

    def _admission_date(self, person: Person, school: School) -> date:
        as_of = self.config.as_of
        year_group = national_curriculum_year(person.date_of_birth, as_of)
        school_year = as_of.year if as_of.month >= 9 else as_of.year - 1
        entry_year = school_year - (year_group - 7 if school.secondary else max(year_group, 0))
        admitted = date(max(entry_year, as_of.year - 12), 9, 1)
        if self.rng.random() < self.config.mid_year_admission_share:
            admitted = as_of - timedelta(days=self.rng.randint(1, 700))
        return min(admitted, as_of)

    # --- rendering ----------------------------------------------------------------------------------

    def _render(self, person: Person, rates: SideRates, health: bool) -> Record:
        """One list's entry for `person`, corrupted independently with `rates`, plus the side's slips."""
        rng = self.rng
        slips = person.health_slips if health else person.education_slips
        given = person.given_name
        middle = person.middle_names
        family = person.family_name
        record: Record = {}
        if person.known_as is not None:
            if Slip.known_as_given in slips:
                given = person.known_as
            else:
                roll = rng.random()
                if roll < rates.known_as_in_preferred:
                    record["preferred_given_name"] = person.known_as
                elif roll < rates.known_as_in_preferred + rates.known_as_as_given:
                    given = person.known_as
        if person.former_family_name is not None:
            if Slip.old_surname in slips:
                family = person.former_family_name
            elif Slip.new_surname_only in slips:
                pass
            elif rng.random() < rates.stale_family_name:
                family = person.former_family_name
            elif rng.random() < rates.former_name_recorded:
                record["former_names"] = [{"family_name": person.former_family_name}]
            elif not health and rng.random() < self.config.school_legal_surname_share:
                # School holds the legal surname and the new one as the name the child uses.
                record["preferred_family_name"] = family
                family = person.former_family_name
        if middle is not None:
            roll = rng.random()
            if Slip.known_by_middle in slips:
                given, middle = middle.split(" ")[0], None
            elif roll < rates.drop_middle:
                middle = None
            elif roll < rates.drop_middle + rates.middle_into_given:
                given, middle = f"{given} {middle}", None
            elif roll < rates.drop_middle + rates.middle_into_given + rates.known_by_middle:
                given, middle = middle.split(" ")[0], None
        if "-" in family:
            roll = rng.random()
            if roll < rates.hyphen_part_missing:
                family = hyphen_part_missing(family, rng)
            elif roll < rates.hyphen_part_missing + rates.hyphen_as_space:
                family = family.replace("-", " ")
        if Slip.given_typo in slips or rng.random() < rates.typo_given:
            given = typo(given, rng)
        if Slip.family_typo in slips or rng.random() < rates.typo_family:
            family = typo(family, rng)
        if Slip.swapped_names in slips or rng.random() < rates.swap_given_family:
            given, family = family, given
        if rng.random() < rates.upper_family:
            family = family.upper()
        record["given_name"] = given
        if middle is not None:
            record["middle_names"] = middle
        record["family_name"] = family
        if Slip.dob_error in slips:
            dob: date | None = dob_error(person.date_of_birth, rng)
        else:
            dob = corrupt_dob(person.date_of_birth, rates, rng)
        if dob is not None:
            record["date_of_birth"] = dob.isoformat()
        record["address"] = self._render_address(person, rates, health, slips)
        if rng.random() < rates.strip_diacritics:
            _strip_record_diacritics(record)
        return record

    def _render_address(
        self, person: Person, rates: SideRates, health: bool, slips: frozenset[Slip]
    ) -> Record:
        rng = self.rng
        address = person.address
        if person.previous_address is not None:
            if Slip.stale_address in slips:
                address = person.previous_address
            elif Slip.current_address not in slips:
                # Each side draws on its own whether it is behind. The education side counts from the
                # top of the range, so the default 0.5 on both sides is the original single coin toss.
                roll = rng.random()
                if (roll < rates.stale_address) if health else (roll >= 1.0 - rates.stale_address):
                    address = person.previous_address
        street = address.street.name
        if address.street.welsh is not None and rng.random() < rates.welsh_street_form:
            street = address.street.welsh
        town = address.town.name
        if address.town.name_cy is not None and rng.random() < rates.welsh_town_form:
            town = address.town.name_cy
        rendered: Record = {"town": town}
        if rng.random() >= rates.address_lines_missing:
            if address.house_name is not None:
                rendered["lines"] = [address.house_name, street]
            else:
                rendered["lines"] = [f"{address.house_number} {street}"]
        roll = rng.random()
        if roll >= rates.postcode_missing or Slip.postcode_typo in slips:
            postcode = address.postcode
            if Slip.postcode_typo in slips or roll < rates.postcode_missing + rates.postcode_typo:
                postcode = postcode_typo(postcode, rng)
            if rng.random() < rates.postcode_format_variant:
                postcode = postcode_format_variant(postcode, rng)
            rendered["postcode"] = postcode
        return rendered


def _strip_record_diacritics(record: Record) -> None:
    for key in ("given_name", "middle_names", "family_name", "preferred_given_name"):
        value = record.get(key)
        if value is not None:
            record[key] = strip_diacritics(value)
    address = record["address"]
    address["town"] = strip_diacritics(address["town"])
    if "lines" in address:
        address["lines"] = [strip_diacritics(line) for line in address["lines"]]


def _shuffle_rows(rng: random.Random, columns: list[list[Any]]) -> None:
    """Put rows in random order so list position says nothing about who is who."""
    order = list(range(len(columns[0])))
    rng.shuffle(order)
    for column in columns:
        column[:] = [column[index] for index in order]


def generate(config: PopulationConfig) -> SyntheticPopulation:
    """Generate people and every list entry about them, deterministically from `config.seed`."""
    # Millions of small containers and no cycles: the cyclic collector would only re-scan them.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        generator = _Generator(config)
        population = SyntheticPopulation(config=config, people=generator.people(), schools=generator.schools)
        generator.populate(population)
    finally:
        if gc_was_enabled:
            gc.enable()
    _shuffle_rows(
        generator.rng,
        [
            population.health_records,
            population.health_person_ids,
            population.health_recipient_la,
            population.health_senders,
        ],
    )
    _shuffle_rows(
        generator.rng,
        [
            population.education_records,
            population.education_person_ids,
            population.education_registers,
            population.education_la,
            population.education_schools,
        ],
    )
    return population
