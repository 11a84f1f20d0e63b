"""`cme model show | estimate-from-reviews | activate` and the shipped-default upgrade, on PostgreSQL.

Decided reviews are written as the matching round writes them (match_outcome rows with stored evidence);
one test decides a real review through the API and reads it back as a label.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.audit.models import AuditEvent
from app.cli import main
from app.core.config import get_settings
from app.matching import labels, repository, service
from app.matching.models import MatchModelVersion, MatchOutcome, MatchRun
from app.matching.params import DEFAULT_MODEL, FIELD_LEVELS, FIELDS, FieldParams, MatchModel, level_code
from tests.matching.test_matching_api import World, as_officer, world_fixture  # noqa: F401

LAS = ("W06000015", "W06000011", "W06000022", "W06000001")
NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def cli_database(database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CME_DATABASE_URL", database_url)
    monkeypatch.setenv("CME_OPERATOR", "ops-anna")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert main(list(argv)) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def run_failing(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    """The command fails with exit status 1 and exactly one line on stderr: a JSON error, no traceback."""
    assert main(list(argv)) == 1
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    error: dict[str, Any] = json.loads(lines[0])
    assert set(error) == {"error", "detail"}
    return error


def levels(**at: str) -> list[int]:
    return [level_code(f, at[f]) if f in at else 1 for f in FIELDS]


def decide(
    session: Session,
    la: str,
    status: str,
    count: int,
    *,
    probability: float = 0.78,
    evidence: dict[str, Any] | None = None,
    **at: str,
) -> None:
    """`count` reviews of `la`, decided `status`, their evidence as `engine.stored_evidence` writes it."""
    for i in range(count):
        session.add(
            MatchOutcome(
                id=uuid.uuid4(),
                run_id=uuid.uuid4(),
                submission_id=uuid.uuid4(),
                record_index=i,
                recipient_la=la,
                health_child_id=i + 1,
                outcome="possible",
                education_child_id=i + 1,
                education_la=la,
                register="school_roll",
                match_weight=1.5,
                match_probability=probability,
                model_version=DEFAULT_MODEL.version,
                evidence=evidence
                or {
                    "reason": None,
                    "names_swapped": False,
                    "prior": -17.2,
                    "runner_up_weight": None,
                    "levels": levels(**at),
                    "weights": [0.0] * len(FIELDS),
                },
                created_at=NOW,
                review_status=status,
                reviewed_at=NOW,
                reviewed_by="officer-secret-9" if status != "pending" else None,
                review_reason="Reason naming nobody.",
            )
        )
    session.commit()


def enough(session: Session) -> None:
    """240 decisions from four LAs: 160 confirmed (moved house in the district), 80 rejected."""
    for la in LAS:
        decide(session, la, "confirmed", 40, address="district")
        decide(session, la, "rejected", 20, probability=0.72, given="different")


def model_events(session: Session, action: str) -> list[AuditEvent]:
    session.expire_all()
    return list(
        session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))
    )


def active_rows(session: Session) -> list[MatchModelVersion]:
    session.expire_all()
    return list(session.scalars(select(MatchModelVersion).where(MatchModelVersion.active.is_(True))))


class TestShow:
    def test_before_first_use_the_shipped_default(self, capsys: pytest.CaptureFixture[str]) -> None:
        shown = run(capsys, "model", "show")
        assert (shown["version"], shown["content_hash"]) == (
            DEFAULT_MODEL.version,
            DEFAULT_MODEL.content_hash,
        )
        assert shown["stored"] is False and shown["created_at"] is None

    def test_after_first_use(self, session: Session, capsys: pytest.CaptureFixture[str]) -> None:
        service.active_model(session, NOW)
        session.commit()
        shown = run(capsys, "model", "show")
        assert shown["stored"] is True and shown["version"] == DEFAULT_MODEL.version
        assert shown["created_at"].startswith("2026-12-07T12:00")
        assert shown["replaced_by_shipped_default_on_next_use"] is False
        # Read back from JSONB (keys in PostgreSQL's order), the model keeps the hash its row holds, so a
        # run names a stored model.
        session.expire_all()
        assert service.active_model(session, NOW).content_hash == DEFAULT_MODEL.content_hash


class TestEstimate:
    def test_too_few_decisions(
        self, session: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        for la in LAS[:3]:
            decide(session, la, "confirmed", 50)
        decide(session, LAS[3], "pending", 30)  # undecided: not a label
        out = tmp_path / "model.json"
        error = run_failing(capsys, "model", "estimate-from-reviews", "--out", str(out))
        assert error["error"] == "not-enough-decisions"
        assert "150 decided review(s), at least 200 needed" in error["detail"]
        assert not out.exists()
        assert model_events(session, "match_model.estimated") == []

    def test_too_few_las(self, session: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        for la in LAS[:2]:
            decide(session, la, "confirmed", 100)
            decide(session, la, "rejected", 20)
        error = run_failing(capsys, "model", "estimate-from-reviews", "--out", str(tmp_path / "m.json"))
        assert error["error"] == "not-enough-decisions"
        assert "decisions from 2 LA(s), at least 3 needed" in error["detail"]
        # The rule is a parameter.
        run(capsys, "model", "estimate-from-reviews", "--min-las", "2", "--out", str(tmp_path / "m.json"))

    def test_one_la_dominating(
        self, session: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        decide(session, LAS[0], "confirmed", 180)
        for la in LAS[1:]:
            decide(session, la, "confirmed", 20)
            decide(session, la, "rejected", 20)
        error = run_failing(capsys, "model", "estimate-from-reviews", "--out", str(tmp_path / "m.json"))
        assert error["error"] == "not-enough-decisions"
        assert f"{LAS[0]} supplies 180 of 300 decisions (60%), more than 50%" in error["detail"]

    def test_proposes_writes_reports_and_audits_but_never_activates(
        self, session: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        enough(session)
        decide(session, LAS[0], "confirmed", 3, evidence={"levels": [1, 2]})  # unreadable: skipped
        out = tmp_path / "proposed.json"
        report = run(capsys, "model", "estimate-from-reviews", "--out", str(out), "--prior-strength", "200")
        model = MatchModel.model_validate_json(out.read_text())
        assert report["content_hash"] == model.content_hash and report["version"] == model.version
        assert model.version.startswith("reviews-") and report["activated"] is False
        assert (report["decisions"], report["confirmed"], report["rejected"]) == (240, 160, 80)
        assert report["unreadable_decisions"] == 3
        assert set(report["by_la"]) == set(LAS)
        # m moved toward the labels: every confirmed pair's home was in the same district.
        district = FIELD_LEVELS["address"].index("district")
        assert model.fields["address"].m[district] == pytest.approx((200 * 0.04 + 160) / (200 + 160))
        assert model.fields["address"].u == DEFAULT_MODEL.fields["address"].u
        assert model.thresholds == DEFAULT_MODEL.thresholds
        bands = {row["band"]: row for row in report["bands"]}
        assert bands["possible_to_matched"]["confirmed"] == 160
        assert bands["possible_to_matched"]["rejected"] == 80

        # Never activated: the shipped default is still what matching uses.
        assert run(capsys, "model", "show")["content_hash"] == DEFAULT_MODEL.content_hash
        assert service.active_model(session, NOW).content_hash == DEFAULT_MODEL.content_hash

        (event,) = model_events(session, "match_model.estimated")
        assert (event.officer_id, event.role, event.partner_id) == ("ops-anna", "operator", None)
        assert event.object_type == "match_model"
        assert event.object_ids[0] == model.content_hash
        assert {
            f"base:{DEFAULT_MODEL.content_hash}",
            "decisions:240",
            "confirmed:160",
            "rejected:80",
            "las:4",
            "prior_strength:200",
        } <= set(event.object_ids)
        # Counts and hashes only: not the officers who decided, not their reasons.
        text = json.dumps([report, event.object_ids])
        assert "officer-secret-9" not in text and "Reason naming" not in text
        assert audit_service.verify_chain(session).ok

    def test_same_labels_same_proposal(
        self, session: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        enough(session)
        first = run(capsys, "model", "estimate-from-reviews", "--out", str(tmp_path / "a.json"))
        second = run(capsys, "model", "estimate-from-reviews", "--out", str(tmp_path / "b.json"))
        assert first["content_hash"] == second["content_hash"]
        assert (tmp_path / "a.json").read_text() == (tmp_path / "b.json").read_text()

    def test_option_and_file_errors_are_one_line(
        self, session: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        enough(session)
        error = run_failing(
            capsys,
            "model",
            "estimate-from-reviews",
            "--prior-strength",
            "0",
            "--out",
            str(tmp_path / "m.json"),
        )
        assert error["error"] == "invalid-option"
        error = run_failing(
            capsys,
            "model",
            "estimate-from-reviews",
            "--max-la-share",
            "1.5",
            "--out",
            str(tmp_path / "m.json"),
        )
        assert error["error"] == "invalid-option"
        error = run_failing(
            capsys, "model", "estimate-from-reviews", "--min-las", "1", "--out", str(tmp_path / "m.json")
        )
        assert error["error"] == "invalid-option" and "never one LA's decisions alone" in error["detail"]
        error = run_failing(
            capsys, "model", "estimate-from-reviews", "--out", str(tmp_path / "no-such-dir" / "m.json")
        )
        assert error["error"] == "file-error"
        # The file could not be written, so the estimate's audit event was rolled back with it.
        assert model_events(session, "match_model.estimated") == []


class TestActivate:
    def proposed(self, session: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
        enough(session)
        out = tmp_path / "proposed.json"
        run(capsys, "model", "estimate-from-reviews", "--out", str(out))
        return out

    def test_round_trip_audited_and_idempotent(
        self, session: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        service.active_model(session, NOW)  # the shipped default, stored on first use
        session.commit()
        generation = repository.register_generation(session)
        current = tmp_path / "current.json"
        assert run(capsys, "model", "show", "--out", str(current))["out"] == str(current)
        assert MatchModel.model_validate_json(current.read_text()).content_hash == DEFAULT_MODEL.content_hash
        out = self.proposed(session, tmp_path, capsys)
        model = MatchModel.model_validate_json(out.read_text())

        done = run(capsys, "model", "activate", str(out))
        assert done == {
            "activated": True,
            "already_active": False,
            "version": model.version,
            "content_hash": model.content_hash,
            "previous_hash": DEFAULT_MODEL.content_hash,
        }
        shown = run(capsys, "model", "show")
        assert (shown["version"], shown["content_hash"]) == (model.version, model.content_hash)
        assert [row.content_hash for row in active_rows(session)] == [model.content_hash]
        assert service.active_model(session, NOW).content_hash == model.content_hash
        # Every process's real-time index rebuilds with the new model.
        assert repository.register_generation(session) > generation

        (event,) = model_events(session, "match_model.activated")
        assert event.object_ids[:4] == [
            model.content_hash,
            f"version:{model.version}",
            f"previous:{DEFAULT_MODEL.content_hash}",
            "reason:operator",
        ]
        assert (event.officer_id, event.role) == ("ops-anna", "operator")

        again = run(capsys, "model", "activate", str(out), "--operator", "ops-bob")
        assert again["activated"] is False and again["already_active"] is True
        assert len(model_events(session, "match_model.activated")) == 1

        # Undone with the file `show --out` kept: the stored row is made active again, not duplicated.
        back = run(capsys, "model", "activate", str(current), "--operator", "ops-bob")
        assert back["previous_hash"] == model.content_hash and back["activated"] is True
        assert [row.content_hash for row in active_rows(session)] == [DEFAULT_MODEL.content_hash]
        session.expire_all()
        assert len(session.scalars(select(MatchModelVersion)).all()) == 2
        last = model_events(session, "match_model.activated")[-1]
        assert last.object_ids[2] == f"previous:{model.content_hash}" and last.officer_id == "ops-bob"
        assert audit_service.verify_chain(session).ok

    def test_errors_are_one_line(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        error = run_failing(capsys, "model", "activate", str(tmp_path / "missing.json"))
        assert error["error"] == "file-error" and "missing.json" in error["detail"]
        bad = tmp_path / "bad.json"
        bad.write_text("{not json")
        assert run_failing(capsys, "model", "activate", str(bad))["error"] == "invalid-model"
        wrong = DEFAULT_MODEL.model_dump(mode="json")
        wrong["fields"]["dob"]["m"] = [0.5, 0.5]
        bad.write_text(json.dumps(wrong))
        error = run_failing(capsys, "model", "activate", str(bad))
        assert error["error"] == "invalid-model" and "dob" in error["detail"]
        wrong = {**DEFAULT_MODEL.model_dump(mode="json"), "surprise": 1}
        bad.write_text(json.dumps(wrong))
        assert run_failing(capsys, "model", "activate", str(bad))["error"] == "invalid-model"
        long = DEFAULT_MODEL.model_copy(update={"version": "x" * 65})
        bad.write_text(long.model_dump_json())
        assert run_failing(capsys, "model", "activate", str(bad))["error"] == "invalid-model"


def older_default() -> MatchModel:
    """What an earlier release shipped: other parameters under an older `defaults-` label."""
    given = DEFAULT_MODEL.fields["given"]
    fields = {**DEFAULT_MODEL.fields, "given": FieldParams(m=(0.8, *given.m[1:-1], 0.075), u=given.u)}
    return DEFAULT_MODEL.model_copy(update={"version": "defaults-4", "fields": fields})


def store_active(session: Session, model: MatchModel) -> None:
    repository.add_model(
        session,
        version=model.version,
        content_hash=model.content_hash,
        params=model.model_dump(mode="json"),
        now=NOW - dt.timedelta(days=30),
    )
    session.commit()


class TestShippedDefaultUpgrade:
    def test_an_older_shipped_default_is_replaced_once_and_audited(
        self, session: Session, capsys: pytest.CaptureFixture[str]
    ) -> None:
        old = older_default()
        assert old.content_hash != DEFAULT_MODEL.content_hash
        store_active(session, old)
        assert run(capsys, "model", "show")["replaced_by_shipped_default_on_next_use"] is True

        assert service.active_model(session, NOW) == DEFAULT_MODEL
        session.commit()
        assert [row.content_hash for row in active_rows(session)] == [DEFAULT_MODEL.content_hash]
        (event,) = model_events(session, "match_model.activated")
        assert event.object_ids == [
            DEFAULT_MODEL.content_hash,
            f"version:{DEFAULT_MODEL.version}",
            f"previous:{old.content_hash}",
            "reason:shipped-default",
        ]
        assert (event.partner_id, event.officer_id) == (None, None)  # the service itself

        assert service.active_model(session, NOW) == DEFAULT_MODEL
        session.commit()
        assert len(model_events(session, "match_model.activated")) == 1
        assert audit_service.verify_chain(session).ok

    def test_an_explicitly_activated_model_stays(
        self, session: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        service.active_model(session, NOW)
        session.commit()
        enough(session)
        out = tmp_path / "proposed.json"
        run(capsys, "model", "estimate-from-reviews", "--out", str(out))
        run(capsys, "model", "activate", str(out))
        chosen = MatchModel.model_validate_json(out.read_text())
        for _ in range(2):
            assert service.active_model(session, NOW).content_hash == chosen.content_hash
            session.commit()
        assert run(capsys, "model", "show")["content_hash"] == chosen.content_hash

    def test_an_older_default_the_operator_chose_stays(
        self, session: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # A rollback to an earlier release's parameters, on a database that never stored this release's.
        old_file = tmp_path / "defaults-4.json"
        old_file.write_text(older_default().model_dump_json())
        run(capsys, "model", "activate", str(old_file))
        assert service.active_model(session, NOW).content_hash == older_default().content_hash
        session.commit()
        assert [row.content_hash for row in active_rows(session)] == [older_default().content_hash]
        assert len(model_events(session, "match_model.activated")) == 1
        assert run(capsys, "model", "show")["replaced_by_shipped_default_on_next_use"] is False


def test_a_real_decision_is_a_label(
    world: World, session: Session, client: TestClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A review decided through the API is read back as a label from the evidence the round stored."""
    world.worker.run_until_idle()
    review_id = client.get("/v1/matching/reviews", headers=as_officer(world.la)).json()["items"][0]["id"]
    decided = client.post(
        f"/v1/matching/reviews/{review_id}/decision",
        json={"decision": "reject", "reason": "A twin, not the same child."},
        headers=as_officer(world.la),
    )
    assert decided.status_code == 200, decided.text
    rows = repository.decided_reviews(session)
    (label,) = [
        labels.read_label(r.recipient_la, r.review_status, r.evidence, r.match_probability) for r in rows
    ]
    assert label is not None and label.la == world.la.id and label.confirmed is False
    assert label.levels[FIELDS.index("given")] == level_code("given", "different")
    error = run_failing(capsys, "model", "estimate-from-reviews", "--out", str(tmp_path / "m.json"))
    assert "1 decided review(s), at least 200 needed" in error["detail"]


def test_matching_runs_with_the_activated_model(
    world: World, session: Session, client: TestClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rounds use the model an operator activated, and name a hash its stored row holds."""
    thresholds = DEFAULT_MODEL.thresholds.model_copy(update={"possible": 0.69})
    model = DEFAULT_MODEL.model_copy(update={"version": "hand-1", "thresholds": thresholds})
    path = tmp_path / "hand.json"
    path.write_text(model.model_dump_json())
    run(capsys, "model", "activate", str(path))
    world.worker.run_until_idle()
    session.expire_all()
    match_run = session.scalars(
        select(MatchRun).where(MatchRun.submission_id == world.health_submission)
    ).one()
    assert (match_run.model_version, match_run.model_hash) == ("hand-1", model.content_hash)
    assert repository.model_of_run(session, match_run.id) is not None
    review_id = client.get("/v1/matching/reviews", headers=as_officer(world.la)).json()["items"][0]["id"]
    explanation = client.get(f"/v1/matching/reviews/{review_id}", headers=as_officer(world.la)).json()[
        "explanation"
    ]
    assert (explanation["model_version"], explanation["model_hash"]) == ("hand-1", model.content_hash)
    assert explanation["thresholds"]["possible"] == 0.69
