"""Education records sent incomplete (no birth date, no address) are stored and still vouch for the child.

Decision 0004: an education record is evidence that education knows a child, even when incomplete. These
tests prove it in the engine (batch `link` and the real-time index, in parity) and end to end through the
API: a child whose only education record lacks a birth date is not made a CME candidate.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import polars as pl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.cme.models import CmeCandidate
from app.core.config import Settings
from app.core.db import make_session_factory
from app.jobs.worker import Worker
from app.matching import blocking
from app.matching.engine import REF_ROW, explain, link, score_pairs
from app.matching.frames import records_to_frame
from app.matching.models import MatchOutcome
from app.matching.params import DEFAULT_MODEL, FIELDS
from app.matching.realtime import EducationIndex
from app.matching.score import TermFrequencies
from app.partners.models import PartnerKind
from app.submissions.models import EducationChild
from app.synthetic.population import PopulationConfig, generate
from app.wiring.jobs import default_handlers
from tests.matching.helpers import child, frames
from tests.submissions.conftest import PILOT_LA, payload, pupil
from tests.submissions.conftest import child as health_record
from tests.support.partners import TestPartner, create_partner
from tests.support.tokens import auth_header, signed_body

HEALTH = child("Dafydd", "Pritchard", "2014-03-02", sex="M", middle_names="Rhys")


def _without(record: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in keys}


# An education record as a register might send it: the same child, something missing.
INCOMPLETE = {
    "no birth date": _without(HEALTH, "date_of_birth"),
    "no address": _without(HEALTH, "address"),
    "no birth date, postcode only": _without(HEALTH, "date_of_birth") | {"address": {"postcode": "CF10 1AA"}},
    "no birth date, lines only": _without(HEALTH, "date_of_birth")
    | {"address": {"lines": ["12 Heol y Bont"], "town": "Caerdydd"}},
    "no birth date, no address": _without(HEALTH, "date_of_birth", "address"),
}


class TestEngine:
    @pytest.mark.parametrize("label", list(INCOMPLETE))
    def test_the_only_record_of_a_child_is_found_and_matched(self, label: str) -> None:
        health, education = frames([HEALTH], [INCOMPLETE[label]])
        row = link(health, education).row(0, named=True)
        assert (row["outcome"], row["education_id"]) == ("matched", 101), (label, explain(row))

    @pytest.mark.parametrize("label", list(INCOMPLETE))
    def test_the_real_time_path_finds_it_with_the_batch_weight(self, label: str) -> None:
        health, education = frames([HEALTH], [INCOMPLETE[label]])
        batch = link(health, education).row(0, named=True)
        [best, *_] = EducationIndex.build(education).query([HEALTH])[0]
        assert (best.education_id, best.outcome) == (101, "matched"), label
        assert best.score == pytest.approx(batch["match_weight"], abs=1e-9)

    def test_a_missing_birth_date_is_missing_not_different(self) -> None:
        health, education = frames([HEALTH], [INCOMPLETE["no birth date"]])
        row = link(health, education).row(0, named=True)
        assert row["level_dob"] == 0 and row["weight_dob"] == 0.0
        assert {item["field"]: item["level"] for item in explain(row)["fields"]}["address"] == (
            "postcode_and_house"
        )

    def test_a_common_name_with_nothing_else_is_left_to_a_person(self) -> None:
        # Names alone are weak evidence when they are common: a review, not a silent match or a flag.
        common = child("Seren", "Pritchard", "2014-03-02")
        health, education = frames([common], [_without(common, "date_of_birth", "address")])
        row = link(health, education).row(0, named=True)
        assert (row["outcome"], row["education_id"]) == ("possible", 101), explain(row)

    def test_a_complete_record_is_preferred_to_one_holding_names_only(self) -> None:
        health, education = frames([HEALTH], [HEALTH, INCOMPLETE["no birth date, no address"]])
        row = link(health, education).row(0, named=True)
        assert (row["outcome"], row["education_id"]) == ("matched", 101), explain(row)

    def test_only_unplaced_records_are_keyed_by_names_alone(self) -> None:
        education = records_to_frame(
            [
                HEALTH,
                INCOMPLETE["no birth date"],
                INCOMPLETE["no address"],
                INCOMPLETE["no birth date, no address"],
            ],
            [1, 2, 3, 4],
        )
        keys = blocking.build_reference(education, DEFAULT_MODEL.blocking.max_block)["names_unplaced"]
        assert set(keys.rows.tolist()) == {3}


@pytest.fixture(scope="module")
def incomplete_population() -> tuple[list[dict[str, Any]], pl.DataFrame, pl.DataFrame]:
    """A synthetic population whose registers lack birth dates, addresses or both on some records."""
    population = generate(PopulationConfig(children=3_000, seed=9409))
    records = []
    for i, record in enumerate(population.education_records):
        changed = dict(record)
        if i % 5 == 0:
            changed.pop("date_of_birth", None)
        if i % 7 == 0:
            changed.pop("address", None)
        records.append(changed)
    queries = population.health_records[::25][:150]
    return (
        queries,
        records_to_frame(queries, list(range(len(queries)))),
        records_to_frame(records, list(range(len(records)))),
    )


def test_real_time_candidates_and_weights_are_the_batch_ones_with_incomplete_registers(
    incomplete_population: tuple[list[dict[str, Any]], pl.DataFrame, pl.DataFrame],
) -> None:
    queries, health, education = incomplete_population
    assert education.filter(pl.col("dob").is_null() & pl.col("postcode").is_null()).height > 10
    index = EducationIndex.build(education)
    pairs = blocking.candidate_pairs(
        health, blocking.build_reference(education, DEFAULT_MODEL.blocking.max_block)
    )
    batch = score_pairs(health, education, pairs, DEFAULT_MODEL, TermFrequencies.build(education))
    expected = {(row[blocking.ROW], row[REF_ROW]): row for row in batch.iter_rows(named=True)}
    found: dict[tuple[int, int], dict[str, Any]] = {}
    for row, record in enumerate(health.to_dicts()):
        for ref, pair in index.scored(record):
            found[(row, ref)] = pair
    assert set(found) == set(expected)
    unplaced = set(
        education.with_row_index("at")
        .filter(pl.col("dob").is_null() & pl.col("postcode").is_null())["at"]
        .to_list()
    )
    assert any(ref in unplaced for _, ref in found)  # the names-only pass is exercised
    for key, pair in found.items():
        want = expected[key]
        assert {f: pair[f] for f in FIELDS} == {f: want[f] for f in FIELDS}, key
        assert pair["match_weight"] == pytest.approx(want["match_weight"], abs=1e-9), key
    # And the decisions `link` makes are found by the real-time path with the same weight.
    outcomes_ = link(health, education)
    candidates = index.query(queries, limit=10_000)
    for decided in outcomes_.filter(pl.col("outcome") != "unmatched").iter_rows(named=True):
        [candidate] = [
            c for c in candidates[decided["health_id"]] if c.education_id == decided["education_id"]
        ]
        assert candidate.score == pytest.approx(decided["match_weight"], abs=1e-9)


SIAN = health_record()
DAFYDD = health_record(
    given_name="Dafydd",
    middle_names=None,
    family_name="Rees",
    date_of_birth="2013-01-09",
    address={"lines": ["3 Stryd Fawr"], "town": "Bangor", "postcode": "LL57 1AB"},
)
TOMOS = health_record(
    given_name="Tomos",
    middle_names=None,
    family_name="Evans",
    date_of_birth="2011-11-11",
    address={"lines": ["1 Lon Isaf"], "town": "Rhyl", "postcode": "LL18 1AA"},
)


def send(client: TestClient, partner: TestPartner, body: dict[str, Any]) -> httpx.Response:
    headers = {"Content-Type": "application/jose", **auth_header(partner.key, partner.id)}
    response: httpx.Response = client.post(
        "/v1/submissions", content=signed_body(partner.key, body), headers=headers
    )
    return response


class TestService:
    def test_a_child_whose_roll_entry_lacks_a_birth_date_is_not_a_cme_candidate(
        self, client: TestClient, session: Session, engine: Engine, settings: Settings
    ) -> None:
        health_board = create_partner(session, "W11000023", PartnerKind.local_health_board)
        la = create_partner(session, PILOT_LA, PartnerKind.local_authority)
        # Siân's entry has no birth date; Dafydd's has one after the as-of date (not stored); Tomos is on
        # no register at all, so the run is seen to make candidates.
        roll = [
            _without(pupil(**SIAN), "date_of_birth"),
            pupil(**DAFYDD) | {"date_of_birth": "2031-01-09"},
        ]
        sent = send(client, la, payload(la.id, roll, kind="school_roll", recipient=None))
        assert sent.status_code == 201, sent.text
        receipt = sent.json()["receipt"]
        assert (receipt["accepted"], receipt["flagged"], receipt["rejected"]) == (0, 2, 0)
        session.expire_all()
        stored = session.scalars(select(EducationChild).order_by(EducationChild.record_index)).all()
        assert [(row.given_name, row.date_of_birth) for row in stored] == [("Siân", None), ("Dafydd", None)]

        listed = send(client, health_board, payload(health_board.id, [SIAN, DAFYDD, TOMOS]))
        assert listed.status_code == 201, listed.text
        Worker(make_session_factory(engine), default_handlers(settings)).run_until_idle()

        session.expire_all()
        submission_id = uuid.UUID(listed.json()["submission_id"])
        found = session.scalars(select(MatchOutcome).where(MatchOutcome.submission_id == submission_id))
        assert {o.record_index: o.outcome for o in found} == {0: "matched", 1: "matched", 2: "unmatched"}
        candidates = session.scalars(select(CmeCandidate)).all()
        assert [(c.la_id, c.given_name) for c in candidates] == [(PILOT_LA, "Tomos")]
