"""Bounded work per list row (decision 0018): a contrived list cannot make one row cost more than
`blocking.MAX_PAIRS_PER_ROW` candidate pairs, each compared on at most `frames.MAX_NAME_TOKENS` tokens
per name field; an ordinary list is blocked and compared exactly as without the bounds."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest

from app.matching import engine, frames
from app.matching.blocking import MAX_PAIRS_PER_ROW, ROW, build_reference, candidate_pairs
from app.matching.engine import REF_ROW, link
from app.matching.frames import MAX_NAME_TOKENS, records_to_frame
from app.matching.params import DEFAULT_MODEL
from app.matching.realtime import EducationIndex
from app.matching.single import canonical_record
from app.synthetic.names import BOYS, GIRLS
from app.synthetic.population import PopulationConfig, generate

BIRTHDAY = "2015-06-15"
MAX_BLOCK = DEFAULT_MODEL.blocking.max_block
# Names whose blocking keys differ (no two share a metaphone code or a name group).
GIVEN = ("Ffion", "Osian", "Cerys", "Dylan", "Mabli", "Rhys", "Seren", "Tomos", "Lowri", "Gethin")
FAMILY = ("Jones", "Davies", "Williams", "Evans", "Hughes", "Lewis", "Morgan", "Rees", "Parry", "Bowen")


def _child(given: str, family: str, postcode: str, **extra: Any) -> dict[str, Any]:
    return {
        "given_name": given,
        "family_name": family,
        "date_of_birth": BIRTHDAY,
        "address": {"lines": ["3 Heol y Bont"], "postcode": postcode},
        **extra,
    }


@pytest.fixture(scope="module")
def education() -> pl.DataFrame:
    """1,000 children born on one day (a register of 365,000 has as many), every given name and surname
    of `GIVEN` and `FAMILY` held by 100 of them: each key a list row can offer holds at most `max_block`
    records, yet a row naming all of them reaches every record."""
    postcodes = [f"CF{10 + i % 40} {1 + i % 9}AB" for i in range(1_000)]
    records = [
        _child(GIVEN[i % 10], FAMILY[(i // 10) % 10], postcodes[i], middle_names=BOYS[i % 37])
        for i in range(1_000)
    ]
    return records_to_frame(records, list(range(1_000)))


def _contrived(postcode: str = "CF10 1AB") -> dict[str, Any]:
    """One row of a list written to be expensive: every name field as many name tokens as fit in 120
    characters, four former names, a birthday and a postcode shared with many records."""
    return _child(
        " ".join(GIVEN * 2)[:120],
        " ".join(FAMILY * 2)[:120],
        postcode,
        middle_names=" ".join(GIRLS[:20])[:120],
        former_names=[{"given_name": g, "family_name": f} for g, f in zip(GIVEN, FAMILY[::-1], strict=True)],
    )


def _per_row(pairs: pl.DataFrame) -> npt.NDArray[np.uint32]:
    """Candidate pairs of each row that has any."""
    counts: npt.NDArray[np.uint32] = pairs.group_by(ROW).len()["len"].to_numpy()
    return counts


def test_a_contrived_row_keeps_at_most_the_cap(education: pl.DataFrame) -> None:
    health = records_to_frame([_contrived()] * 40, list(range(40)))
    pairs = candidate_pairs(health, build_reference(education, MAX_BLOCK))
    # Every row exceeds the cap (hundreds of records share a key with it) and is cut to it.
    assert _per_row(pairs).tolist() == [MAX_PAIRS_PER_ROW] * 40
    unbounded = candidate_pairs(health, build_reference(education, MAX_BLOCK), max_pairs=10**9)
    assert _per_row(unbounded).min() > MAX_PAIRS_PER_ROW
    assert pairs.join(unbounded, on=[ROW, REF_ROW], how="anti").is_empty()


def test_a_contrived_row_keeps_its_own_record(education: pl.DataFrame) -> None:
    """Past the cap, the pairs found by the most passes stay: the child's own record is one of them."""
    own = education.row(517, named=True)
    record = {
        **_contrived(own["postcode"]),
        "given_name": f"{own['given1'].title()} {' '.join(GIVEN)}"[:120],
        "family_name": own["family"].title(),
        "address": {"lines": ["3 Heol y Bont"], "postcode": own["postcode"]},
    }
    health = records_to_frame([record], [0])
    reference = build_reference(education, MAX_BLOCK)
    pairs = candidate_pairs(health, reference)
    assert pairs.height == MAX_PAIRS_PER_ROW < candidate_pairs(health, reference, max_pairs=10**9).height
    assert 517 in pairs[REF_ROW].to_list()


def test_name_fields_keep_at_most_the_token_cap() -> None:
    record = _contrived()
    [row] = records_to_frame([record], [0]).to_dicts()
    one = canonical_record(record)
    for column in ("given_tokens", "middle_tokens", "family_tokens"):
        assert len(row[column]) == MAX_NAME_TOKENS
        assert one[column] == row[column]
    assert row["given_tokens"] == [g.lower() for g in GIVEN[:MAX_NAME_TOKENS]]
    assert len(row["given_alt"]) == 2 * MAX_NAME_TOKENS - 1


def test_real_time_lookup_keeps_the_same_pairs(education: pl.DataFrame) -> None:
    own = education.row(42, named=True)
    records = [_contrived(), _contrived(own["postcode"]), _child("Ffion", "Jones", "CF12 3AB")]
    health = records_to_frame(records, list(range(len(records))))
    pairs = candidate_pairs(health, build_reference(education, MAX_BLOCK))
    index = EducationIndex.build(education)
    for row, record in enumerate(records):
        batch = pairs.filter(pl.col(ROW) == row)[REF_ROW].to_numpy()
        assert np.array_equal(index.blocks.candidates(canonical_record(record)), batch), row


def test_dedupe_blocking_of_a_contrived_list_is_bounded() -> None:
    """A health list blocked against itself (`engine.dedupe`): 600 rows at one birthday and postcode, each
    name held by 240 of them (under `max_block`), each row sharing a name with nearly every other."""

    def names(pool: tuple[str, ...], start: int) -> str:
        return " ".join(pool[(start + k) % len(pool)] for k in range(MAX_NAME_TOKENS))

    records = [
        _child(names(GIVEN, i), names(FAMILY, 3 * i), "CF10 1AB", middle_names=BOYS[i % 37])
        for i in range(2 * MAX_PAIRS_PER_ROW)
    ]
    health = records_to_frame(records, list(range(len(records))))
    reference = build_reference(health, MAX_BLOCK)
    assert _per_row(candidate_pairs(health, reference)).max() == MAX_PAIRS_PER_ROW
    assert _per_row(candidate_pairs(health, reference, max_pairs=10**9)).min() > MAX_PAIRS_PER_ROW


def test_ordinary_lists_are_blocked_and_compared_as_without_the_bounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    population = generate(PopulationConfig(children=6_000, seed=2718))

    def frame(records: list[dict[str, Any]]) -> pl.DataFrame:
        return records_to_frame(records, list(range(len(records))))

    health, education = frame(population.health_records), frame(population.education_records)
    pairs = candidate_pairs(health, build_reference(education, MAX_BLOCK))
    assert _per_row(pairs).max() < MAX_PAIRS_PER_ROW
    assert pairs.equals(candidate_pairs(health, build_reference(education, MAX_BLOCK), max_pairs=10**9))
    # The same frames with no token cap at all.
    monkeypatch.setattr(frames, "MAX_NAME_TOKENS", 10**6)
    assert frame(population.health_records).equals(health)
    assert frame(population.education_records).equals(education)


def test_scoring_slices_end_at_rows_within_the_pair_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "_SLICE_ROWS", 4)
    monkeypatch.setattr(engine, "_SLICE_PAIRS", 10)
    # Rows 0..9 with 0, 3, 12, 1, ... pairs, in blocks of rows 0-3, 4-7, 8-9; row 2 alone is over the
    # budget and is a slice of its own.
    counts = [0, 3, 12, 1, 5, 5, 2, 0, 9, 4]
    rows = np.repeat(np.arange(len(counts), dtype=np.uint32), counts)
    slices = engine._slices(rows, len(counts))
    assert slices == [(0, 3), (3, 12), (15, 1), (16, 10), (26, 2), (28, 9), (37, 4)]
    assert [np.unique(rows[a : a + n]).tolist() for a, n in slices] == [[1], [2], [3], [4, 5], [6], [8], [9]]
    # Without the pair budget, the blocks of rows as before.
    monkeypatch.setattr(engine, "_SLICE_PAIRS", 10**9)
    assert engine._slices(rows, len(counts)) == [(0, 16), (16, 12), (28, 13)]


def test_link_decides_the_same_whatever_the_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    population = generate(PopulationConfig(children=1_500, seed=99))
    health = records_to_frame(population.health_records, list(range(len(population.health_records))))
    education = records_to_frame(population.education_records, list(range(len(population.education_records))))
    whole = link(health, education)
    monkeypatch.setattr(engine, "_SLICE_PAIRS", 500)
    assert link(health, education).equals(whole)
