"""Health-list de-duplication, the real-time index, training and the model as data."""

from __future__ import annotations

import json

import polars as pl

from app.matching.engine import dedupe, link
from app.matching.frames import columns_to_frame, records_to_frame
from app.matching.params import DEFAULT_MODEL, MatchModel, Thresholds
from app.matching.realtime import EducationIndex
from app.matching.training import train
from tests.matching.helpers import background, child, frames


class TestDedupe:
    def test_same_child_from_two_senders_is_one_cluster_and_twins_are_two(self) -> None:
        health = [
            child("Dafydd", "Pritchard", "2014-03-02"),
            child("Dai", "PRITCHARD", "2014-03-02", postcode="cf101aa"),
            child("Ffion", "Hughes", "2015-06-01"),
            child("Elin", "Hughes", "2015-06-01"),
            *background(50, seed=9),
        ]
        frame = records_to_frame(health, list(range(500, 500 + len(health))))
        clusters = dedupe(frame)["cluster_id"].to_list()
        assert clusters[0] == clusters[1] == 500
        assert len({clusters[2], clusters[3]}) == 2

    def test_same_name_and_birthday_far_apart_are_not_merged(self) -> None:
        health = [
            child("Ffion", "Jones", "2015-05-05", postcode="SA31 1AA", line="1 Church Street"),
            child("Ffion", "Jones", "2015-05-05", postcode="LL57 2DG", line="8 Ffordd Penrhos"),
        ]
        frame = records_to_frame(health, [1, 2])
        assert dedupe(frame)["cluster_id"].to_list() == [1, 2]


class TestRealtime:
    def test_query_finds_the_child_first_with_an_explanation(self) -> None:
        _, education = frames(
            [], [child("Dafydd", "Pritchard", "2014-03-02"), child("Elin", "Pritchard", "2014-03-02")]
        )
        index = EducationIndex.build(education)
        [candidates] = index.query([child("David", "Pritchard", "2014-02-03")], limit=3)
        assert candidates[0].education_id == 101
        assert candidates[0].explanation["outcome"] == "matched"
        assert candidates[0].score > candidates[-1].score or len(candidates) == 1
        assert candidates[0].explanation["fields"][0] == {
            "field": "given",
            "level": "equivalent",
            "weight": candidates[0].explanation["fields"][0]["weight"],
        }
        json.dumps(candidates[0].explanation)

    def test_query_with_no_candidate_gives_an_empty_list(self) -> None:
        _, education = frames([], [child("Dafydd", "Pritchard", "2014-03-02")])
        assert EducationIndex.build(education).query(
            [child("Zed", "Quint", "2009-12-12", postcode="NP4 9ZZ")]
        ) == [[]]

    def test_query_agrees_with_batch_weights(self) -> None:
        health, education = frames(
            [child("Dafyd", "Pritchard", "2014-03-02")], [child("Dafydd", "Pritchard", "2014-03-02")]
        )
        batch = link(health, education).row(0, named=True)
        [candidates] = EducationIndex.build(education).query(health)
        assert candidates[0].score == batch["match_weight"]


class TestTraining:
    def test_trained_model_is_valid_and_usable(self) -> None:
        health_records = background(400, seed=11)
        education_records = [
            dict(r, given_name=r["given_name"].upper()) for r in health_records
        ] + background(300, seed=12)
        health = records_to_frame(health_records, list(range(400)))
        education = records_to_frame(education_records, list(range(700)))
        model = train(health, education, random_pairs=20_000)
        assert model.version.startswith("trained-")
        assert model.content_hash != DEFAULT_MODEL.content_hash
        for params in model.fields.values():
            assert abs(sum(params.m) - 1) < 1e-6
            assert abs(sum(params.u) - 1) < 1e-6
        matched = link(health, education, model).filter(pl.col("outcome") == "matched")
        assert (matched["health_id"] == matched["education_id"]).all()


class TestModelAsData:
    def test_json_round_trip_keeps_the_hash(self) -> None:
        model = MatchModel(thresholds=Thresholds(matched=0.9, possible=0.5))
        again = MatchModel.model_validate_json(model.model_dump_json())
        assert again.content_hash == model.content_hash != DEFAULT_MODEL.content_hash

    def test_outcomes_record_the_model(self) -> None:
        health, education = frames(
            [child("Dafydd", "Pritchard", "2014-03-02")], [child("Dafydd", "Pritchard", "2014-03-02")]
        )
        row = link(health, education).row(0, named=True)
        assert (row["model_version"], row["model_hash"]) == (
            DEFAULT_MODEL.version,
            DEFAULT_MODEL.content_hash,
        )


class TestColumnsToFrame:
    def test_stored_columns_build_the_same_frame_as_records(self) -> None:
        record = child("Dafydd", "Pritchard-Bowen", "2014-03-02", middle_names="Rhys", sex="M",
                       former_names=[{"family_name": "Morgan"}])  # fmt: skip
        from_records = records_to_frame([record], [7])
        from_columns = columns_to_frame(
            {
                "id": [7],
                "given_name": ["Dafydd"],
                "middle_names": ["Rhys"],
                "family_name": ["Pritchard-Bowen"],
                "former_given_names": [[]],
                "former_family_names": [["Morgan"]],
                "date_of_birth": ["2014-03-02"],
                "address_lines": [["12 Heol y Bont"]],
                "town": ["Caerdydd"],
                "postcode": ["CF10 1AA"],
                "sex": ["M"],
            }
        )
        assert from_columns.equals(from_records)
