"""The one-record path (`app.matching.single`, `app.matching.realtime`) against the batch engine.

Synthetic health records (with the generator's typos, swaps, moved houses and twins) are looked up one by
one; every candidate pair must carry the batch levels and weights, and every pair `link` decides on must
be found with the same weight.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from app.matching import blocking
from app.matching.engine import REF_ROW, link, score_pairs
from app.matching.frames import records_to_frame
from app.matching.params import DEFAULT_MODEL, FIELDS
from app.matching.realtime import _PASS_STARTS, PASSES, CodedColumns, EducationIndex, _fmix, _mix_numpy
from app.matching.score import TermFrequencies
from app.matching.single import REFERENCE_COLUMNS, canonical_record
from app.synthetic.population import PopulationConfig, SyntheticPopulation, generate

QUERIES = 200


@pytest.fixture(scope="module")
def population() -> SyntheticPopulation:
    return generate(PopulationConfig(children=4_000, seed=424242))


@pytest.fixture(scope="module")
def education(population: SyntheticPopulation) -> pl.DataFrame:
    records = population.education_records
    return records_to_frame(records, list(range(len(records))))


@pytest.fixture(scope="module")
def queries(population: SyntheticPopulation) -> list[dict[str, Any]]:
    step = len(population.health_records) // QUERIES
    return population.health_records[::step][:QUERIES]


@pytest.fixture(scope="module")
def health(queries: list[dict[str, Any]]) -> pl.DataFrame:
    return records_to_frame(queries, list(range(len(queries))))


@pytest.fixture(scope="module")
def index(education: pl.DataFrame) -> EducationIndex:
    return EducationIndex.build(education)


def test_passes_are_the_batch_passes() -> None:
    assert [p.name for p in PASSES] == [p.name for p in blocking.PASSES]


def test_one_record_normalises_as_the_frame_does(queries: list[dict[str, Any]], health: pl.DataFrame) -> None:
    for record, row in zip(queries, health.to_dicts(), strict=True):
        expected = {k: v for k, v in row.items() if k not in ("id", "register", "la")}
        got = canonical_record(record)
        # A set of blocking keys: order carries nothing.
        assert sorted(got.pop("name_keys")) == sorted(expected.pop("name_keys"))
        assert got == expected


def test_coded_columns_give_back_the_frame_rows(education: pl.DataFrame) -> None:
    compared = education.select(REFERENCE_COLUMNS)
    coded = CodedColumns.build(compared)
    everything = np.arange(compared.height, dtype=np.uint32)
    assert coded.rows(everything) == compared.to_dicts()
    # Nulls, empty lists and lists differing only in order stay apart.
    tricky = pl.DataFrame(
        {"v": [["a", "b"], [], None, ["b", "a"], [""], ["a", "b"]], "s": ["x", None, "x", "", "y", None]}
    )
    assert (
        CodedColumns.build(tricky).rows(np.array([5, 4, 3, 2, 1, 0], dtype=np.uint32))
        == tricky.reverse().to_dicts()
    )


def test_candidates_are_the_batch_candidates(
    health: pl.DataFrame, education: pl.DataFrame, index: EducationIndex
) -> None:
    batch = blocking.candidate_pairs(
        health, blocking.build_reference(education, DEFAULT_MODEL.blocking.max_block)
    )
    expected = {(int(r), int(e)) for r, e in batch.iter_rows()}
    found = {
        (row, int(ref))
        for row, record in enumerate(health.to_dicts())
        for ref in index.blocks.candidates(record)
    }
    assert len(expected) > QUERIES
    assert found == expected


def test_every_candidate_pair_scores_as_in_batch(
    health: pl.DataFrame, education: pl.DataFrame, index: EducationIndex
) -> None:
    pairs = blocking.candidate_pairs(
        health, blocking.build_reference(education, DEFAULT_MODEL.blocking.max_block)
    )
    batch = score_pairs(health, education, pairs, DEFAULT_MODEL, TermFrequencies.build(education))
    expected = {(row[blocking.ROW], row[REF_ROW]): row for row in batch.iter_rows(named=True)}
    compared = 0
    for row, record in enumerate(health.to_dicts()):
        for ref, pair in index.scored(record):
            want = expected[(row, ref)]
            assert {f: pair[f] for f in FIELDS} == {f: want[f] for f in FIELDS}, (row, ref)
            assert pair["names_swapped"] == want["names_swapped"]
            for name in (*(f"weight_{f}" for f in FIELDS), "prior", "match_weight", "match_probability"):
                assert pair[name] == pytest.approx(want[name], abs=1e-9), (row, ref, name)
            compared += 1
    assert compared == len(expected)


def test_link_decisions_are_found_with_the_same_weight(
    queries: list[dict[str, Any]], health: pl.DataFrame, education: pl.DataFrame, index: EducationIndex
) -> None:
    outcomes = link(health, education)
    found = index.query(queries, limit=10_000)
    thresholds = DEFAULT_MODEL.thresholds
    linked = 0
    for row in outcomes.filter(pl.col("outcome") != "unmatched").iter_rows(named=True):
        [candidate] = [c for c in found[row["health_id"]] if c.education_id == row["education_id"]]
        assert candidate.score == pytest.approx(row["match_weight"], abs=1e-9)
        assert candidate.probability >= (
            thresholds.matched if row["outcome"] == "matched" else thresholds.possible
        )
        linked += 1
    assert linked > QUERIES // 2


def test_keys_of_different_passes_never_meet() -> None:
    """Small codes in the first part must not cancel the pass number: (pass 5, code 419) and (pass 6,
    code 416) once made the same key, pulling a record of one pass into another pass's block."""
    codes = np.arange(1, 5001, dtype=np.uint64)
    rest = [np.full(len(codes), value, dtype=np.uint64) for value in (2097, 2019, 12)]
    keys = np.concatenate([_mix_numpy(seed, [codes, *rest]) for seed in range(1, len(PASSES) + 1)])
    assert len(np.unique(keys)) == len(keys)
    in_python = _PASS_STARTS[5]  # pass 6, as the query side folds its parts in
    for part in (416, 2097, 2019, 12):
        in_python = _fmix(in_python ^ part)
    assert in_python == int(
        _mix_numpy(
            6, [np.array([416], dtype=np.uint64), *(np.array([v], dtype=np.uint64) for v in (2097, 2019, 12))]
        )[0]
    )
