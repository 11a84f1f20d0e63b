"""The rules of `app.matching.rules` read the same by their two interpreters, on many random and adversarial
pairs (decision 0022).

A seeded generator makes pairs of submission-shaped records, the second drawn from the first through the
slips the rules are written for (typos, swapped names, known-as and cut-short forms, a middle name moved, a
half or a former surname, a birth date transposed, a day out or one part wrong, a postcode one slip out or
sharing only its sector, district or area, another house or street, fields missing) and through edge cases
(one- and two-letter names, empty values, a name that is a prefix of another, equal records). Each pair is
compared and scored by the batch path (`records_to_frame`, `compare.compare`, `engine.score_pairs`) and the
one-record path (`single.canonical_record`, `single.compare_pair`, `single.Scorer`), which must agree on
every level, flag and weight; the generator must reach every level of every field.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import numpy as np
import polars as pl
import pytest

from app.matching import rules
from app.matching.blocking import ROW
from app.matching.compare import compare
from app.matching.engine import REF_ROW, score_pairs
from app.matching.frames import records_to_frame
from app.matching.params import DEFAULT_MODEL, FIELD_LEVELS, FIELDS
from app.matching.score import TermFrequencies
from app.matching.single import Scorer, canonical_record, compare_pair

PAIRS = 2_500

_GIVEN = (
    "Dafydd", "David", "Dai", "Dewi", "Siôn", "John", "Ioan", "Iwan", "Ieuan", "Evan", "Angharad", "Anghy",
    "Rhiannon", "Rhi", "Mali", "Mari", "Cerys", "Carys", "Gwen", "Gwion", "Osian", "Oliver", "Ffion",
    "Seren", "Cai", "Al", "Jo", "Mary Ann", "Maryann", "Gwilym", "William", "Siân", "Jane", "Huw", "Hugh",
    "Łucja", "Zoë",
)  # fmt: skip
_FAMILY = (
    "Jones", "Jones-Evans", "Evans", "Williams", "Wiliams", "Davies", "Davis", "Owen", "Bowen", "Price",
    "Pryce", "ap Rhys", "Rees", "Rhys", "O'Brien", "Li", "Ng", "Llewelyn", "Llywelyn", "Thomas",
)  # fmt: skip
_STREETS = (
    "Heol y Felin",
    "Station Road",
    "Ffordd yr Eglwys",
    "Church Street",
    "Maes y Coed",
    "Valley Close",
)
_HOUSE_NAMES = ("Tŷ Gwyn", "Bryn Awel", "The Old Mill")
_OUTWARD = ("CF10", "CF14", "CF5", "SA1", "SA31", "LL55", "NP20", "LD1")
_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


def _typo(rng: random.Random, value: str) -> str:
    """One keying slip: a letter changed, dropped, added, or two swapped."""
    if not value:
        return "x"
    at = rng.randrange(len(value))
    match rng.randrange(4):
        case 0:
            return value[:at] + rng.choice("aeiounrsty") + value[at + 1 :]
        case 1:
            return value[:at] + value[at + 1 :]
        case 2:
            return value[:at] + rng.choice("aeilnr") + value[at:]
        case _:
            if len(value) < 2:
                return value + value
            at = min(at, len(value) - 2)
            return value[:at] + value[at + 1] + value[at] + value[at + 2 :]


def _nhs(rng: random.Random) -> str:
    """A number passing the modulus-11 check."""
    while True:
        digits = [rng.randrange(10) for _ in range(9)]
        check = 11 - sum(d * (10 - i) for i, d in enumerate(digits)) % 11
        check = 0 if check == 11 else check
        if check != 10:
            return "".join(map(str, digits)) + str(check)


def _postcode(rng: random.Random) -> str:
    return f"{rng.choice(_OUTWARD)} {rng.randrange(10)}{rng.choice(_LETTERS)}{rng.choice(_LETTERS)}"


def _record(rng: random.Random) -> dict[str, Any]:
    dob = dt.date(2008, 1, 1) + dt.timedelta(days=rng.randrange(3_650))
    record: dict[str, Any] = {
        "given_name": rng.choice(_GIVEN),
        "family_name": rng.choice(_FAMILY),
        "date_of_birth": dob.isoformat(),
        "address": {
            "lines": [f"{rng.randrange(1, 40)} {rng.choice(_STREETS)}"],
            "postcode": _postcode(rng),
            "town": "Caerdydd",
        },
        "sex": rng.choice(("F", "M", None, "X")),
    }
    if rng.random() < 0.3:
        record["middle_names"] = rng.choice(_GIVEN)
    if rng.random() < 0.15:
        record["preferred_given_name"] = rng.choice(_GIVEN)
    if rng.random() < 0.05:
        record["preferred_family_name"] = rng.choice(_FAMILY)
    if rng.random() < 0.1:
        record["former_names"] = [{"given_name": rng.choice(_GIVEN), "family_name": rng.choice(_FAMILY)}]
    if rng.random() < 0.2:
        record["nhs_number"] = _nhs(rng)
    return record


def _variant(rng: random.Random, base: dict[str, Any]) -> dict[str, Any]:
    """Another record of the same child (or a sibling, a twin, a namesake), with a few of the slips."""
    other = {**base, "address": {**base["address"]}}
    given, family = base["given_name"], base["family_name"]
    match rng.randrange(12):
        case 0:
            other["given_name"] = _typo(rng, given)
        case 1:
            other["given_name"], other["family_name"] = family, given
        case 2:
            other["given_name"], other["family_name"] = _typo(rng, family), given
        case 3:
            other["given_name"] = given[: rng.randrange(1, len(given) + 1)]
        case 4:
            other["given_name"], other["middle_names"] = base.get("middle_names") or rng.choice(_GIVEN), given
        case 5:
            other["given_name"] = rng.choice(_GIVEN)
        case 6:
            other["given_name"] = rng.choice((None, "", " ", "-", "A"))
        case 7:
            other["preferred_given_name"] = given
            other["given_name"] = rng.choice(_GIVEN)
        case _:
            pass
    match rng.randrange(10):
        case 0:
            other["family_name"] = _typo(rng, family)
        case 1:
            other["family_name"] = f"{family}-{rng.choice(_FAMILY)}"
        case 2:
            other["family_name"] = family.split("-")[0].split(" ")[-1]
        case 3:
            other["former_names"] = [{"given_name": None, "family_name": family}]
            other["family_name"] = rng.choice(_FAMILY)
        case 4:
            other["family_name"] = rng.choice(_FAMILY)
        case 5:
            other["family_name"] = rng.choice((None, "", "O", "Ap"))
        case 6:
            other["preferred_family_name"] = family
            other["family_name"] = rng.choice(_FAMILY)
        case _:
            pass
    dob = dt.date.fromisoformat(base["date_of_birth"])
    match rng.randrange(9):
        case 0 if dob.day <= 12:
            other["date_of_birth"] = dt.date(dob.year, dob.day, dob.month).isoformat()
        case 1:
            other["date_of_birth"] = (dob + dt.timedelta(days=rng.choice((-1, 1)))).isoformat()
        case 2:
            other["date_of_birth"] = dob.replace(
                year=dob.year + rng.choice((-1, 1)), day=min(dob.day, 28)
            ).isoformat()
        case 3:
            other["date_of_birth"] = dob.replace(day=rng.randrange(1, 29)).isoformat()
        case 4:
            other["date_of_birth"] = None
        case 5:
            other["date_of_birth"] = (dob + dt.timedelta(days=rng.randrange(-900, 900))).isoformat()
        case _:
            pass
    address = other["address"]
    postcode: str = base["address"]["postcode"]
    outward, inward = postcode.split(" ")
    match rng.randrange(11):
        case 0:
            address["postcode"] = _typo(rng, postcode.replace(" ", "")).upper()
        case 1:
            address["postcode"] = f"{outward} {inward[0]}{rng.choice(_LETTERS)}{rng.choice(_LETTERS)}"
        case 2:
            address["postcode"] = f"{outward} {rng.randrange(10)}{inward[1:]}"
        case 3:
            address["postcode"] = f"{outward[:2]}{rng.randrange(1, 99)} {inward}"
        case 4:
            address["postcode"] = rng.choice((None, "", "NOT A POSTCODE"))
        case 5:
            address["postcode"] = _postcode(rng)
        case _:
            pass
    match rng.randrange(8):
        case 0:
            address["lines"] = [f"{rng.randrange(1, 40)} {rng.choice(_STREETS)}"]
        case 1:
            address["lines"] = []
        case 2:
            address["lines"] = [rng.choice(_HOUSE_NAMES), rng.choice(_STREETS)]
        case 3:
            address["lines"] = [base["address"]["lines"][0].split(" ", 1)[-1]]
        case 4:
            address["lines"] = [f"{rng.randrange(1, 40)} {base['address']['lines'][0].split(' ', 1)[-1]}"]
        case _:
            pass
    if rng.random() < 0.05:
        other.pop("address")
    if rng.random() < 0.2:
        other["sex"] = rng.choice(("F", "M", None, " f "))
    if rng.random() < 0.2:
        other["middle_names"] = rng.choice((None, rng.choice(_GIVEN), f"{rng.choice(_GIVEN)} {given}"))
    if rng.random() < 0.1:
        other["nhs_number"] = rng.choice((None, _nhs(rng), base.get("nhs_number")))
    return other


def _pairs(seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(seed)
    queries, references = [], []
    for _ in range(PAIRS):
        base = _record(rng)
        # Either side may be the altered one; now and then both are altered, or the pair is unrelated.
        roll = rng.random()
        left = _variant(rng, base) if roll < 0.4 else base
        right = _variant(rng, base) if roll > 0.2 else (_record(rng) if roll < 0.05 else base)
        queries.append(left)
        references.append(right)
    return queries, references


@pytest.fixture(scope="module", params=[7, 2022, 31337])
def generated(request: pytest.FixtureRequest) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return _pairs(request.param)


def test_one_record_normalises_as_the_frame_does(
    generated: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    queries, references = generated
    records = queries + references
    frame = records_to_frame(records, list(range(len(records))))
    for record, row in zip(records, frame.to_dicts(), strict=True):
        expected = {k: v for k, v in row.items() if k not in ("id", "register", "la")}
        got = canonical_record(record)
        assert sorted(got.pop("name_keys")) == sorted(expected.pop("name_keys")), record
        assert got == expected, record


def test_levels_and_weights_agree(generated: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
    queries, references = generated
    query = records_to_frame(queries, list(range(len(queries))))
    reference = records_to_frame(references, list(range(len(references))))
    rows = np.arange(len(queries))
    batch = compare(query, reference, rows, rows)
    single = [compare_pair(q, r) for q, r in zip(query.to_dicts(), reference.to_dicts(), strict=True)]
    flags = (*FIELDS, "names_swapped", "family_slip", "given_registered_same", *rules.SWAP_CLEARS)
    for i, (want, got) in enumerate(zip(batch.iter_rows(named=True), single, strict=True)):
        assert {f: got[f] for f in flags} == {f: want[f] for f in flags}, (queries[i], references[i])

    # Every level of every field is reached, so every rule was put to the test.
    for field, names in FIELD_LEVELS.items():
        assert set(batch[field].unique()) == set(range(len(names) + 1)), field
    assert batch["names_swapped"].any() and not batch["names_swapped"].all()

    tf = TermFrequencies.build(reference)
    scorer = Scorer.of(DEFAULT_MODEL, tf)
    pairs = pl.DataFrame({ROW: rows, REF_ROW: rows}, schema={ROW: pl.UInt32, REF_ROW: pl.UInt32})
    # Both ways the batch engine scores: frequencies looked up per pair, and per row then gathered (`link`).
    for scored in (
        score_pairs(query, reference, pairs, DEFAULT_MODEL, tf),
        score_pairs(
            query,
            reference,
            pairs,
            DEFAULT_MODEL,
            tf,
            tf.row_frequencies(query),
            tf.record_spellings(reference),
        ),
    ):
        # As the real-time index scores them: a query's few candidates at a time.
        rng, weighed, at = random.Random(len(single)), [], 0
        while at < len(single):
            size = rng.randrange(1, 13)
            weighed += scorer.score_all(single[at : at + size])
            at += size
        for i, (want, got) in enumerate(zip(scored.iter_rows(named=True), weighed, strict=True)):
            assert {f: got[f] for f in FIELDS} == {f: want[f] for f in FIELDS}, (queries[i], references[i])
            for name in (*(f"weight_{f}" for f in FIELDS), "prior", "match_weight", "match_probability"):
                assert got[name] == pytest.approx(want[name], abs=1e-9), (name, queries[i], references[i])


_STRINGS = (None, "", "a", "ab", "abc", "abd", "bac", "abcd", "abce", "abdc", "xyz", "ab cd", "cd ab")
_DATES = (None, dt.date(2015, 3, 4), dt.date(2015, 4, 3), dt.date(2015, 3, 5), dt.date(2015, 3, 3))


@pytest.mark.parametrize(
    "node",
    [
        rules.Q.a == rules.R.b,
        rules.Q.a.null | ~rules.R.b.null,
        rules.OneDayApart(rules.Q.d, rules.R.e),
        rules.CountIs(2, (rules.Q.a == rules.R.b, rules.Q.d == rules.R.e, rules.Q.a.null)),
        rules.levels("sex", rules.Q.a.null, [("agree", rules.Q.a == rules.R.b)]),
    ],
    ids=["eq", "null-or-not", "one-day", "count", "levels"],
)
def test_primitives_read_the_same_in_polars_and_python(node: rules.Node) -> None:
    """The expressions that are not measures, on every combination of awkward values (measures are computed
    by `compare`, and covered by the pairs above)."""
    rows = [
        {"q_a": a, "r_b": b, "q_d": d, "r_e": e}
        for a in _STRINGS
        for b in _STRINGS
        for d, e in ((d, e) for d in _DATES for e in _DATES)
    ]
    frame = pl.DataFrame(rows, schema={"q_a": pl.String, "r_b": pl.String, "q_d": pl.Date, "r_e": pl.Date})
    batch = frame.select(node.polars().alias("out"))["out"].to_list()
    python = eval(f"lambda q, r: {node.source()}", dict(rules._HELPERS))
    for row, want in zip(rows, batch, strict=True):
        q = {"a": row["q_a"], "d": row["q_d"]}
        r = {"b": row["r_b"], "e": row["r_e"]}
        assert python(q, r) == want, row
