"""Group a synthetic population's records into the submissions partners would send, and write them out.

Partner ids follow `app.partners.schemas.PARTNER_ID_PATTERNS`: LAs and health boards by GSS code, GP
practices as W + five digits, independent schools by school number.

One submission per health-list sender and recipient LA; one per school roll (scope = school number,
sent by the LA, or by the school itself when independent); one EHE and one EOTAS register per LA.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.synthetic.population import SyntheticPopulation

_GroupKey = tuple[str, str, str | None, str | None]


@dataclass(frozen=True, slots=True)
class SubmissionBatch:
    """One submission payload and, for scoring, which population rows its records are."""

    payload: dict[str, Any]
    rows: list[int]  # indexes into health_records (kind health_register) or education_records


def submission_batches(population: SyntheticPopulation) -> list[SubmissionBatch]:
    """Every submission, in a stable order; payloads validate against `SubmissionPayload`."""
    rng = random.Random(population.config.seed ^ 0x5EED)
    as_of = population.config.as_of.isoformat()
    # (kind, sender, recipient, scope) -> rows
    groups: dict[_GroupKey, list[int]] = {}
    health_keys = zip(population.health_senders, population.health_recipient_la, strict=True)
    for row, (health_sender, recipient_la) in enumerate(health_keys):
        groups.setdefault(("health_register", health_sender, recipient_la, None), []).append(row)
    education_keys = zip(
        population.education_registers, population.education_la, population.education_schools, strict=True
    )
    for row, (register, holder_la, school_number) in enumerate(education_keys):
        key: _GroupKey
        if school_number is not None and population.schools[school_number].independent:
            key = (register, school_number, holder_la, None)
        else:
            key = (register, holder_la, None, school_number)
        groups.setdefault(key, []).append(row)
    batches = []
    for (kind, sender, recipient, scope), rows in sorted(groups.items(), key=lambda item: str(item[0])):
        source = population.health_records if kind == "health_register" else population.education_records
        payload: dict[str, Any] = {
            "submission_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "kind": kind,
            "sender": sender,
            "as_of": as_of,
            "records": [source[row] for row in rows],
        }
        if recipient is not None:
            payload["recipient"] = recipient
        if scope is not None:
            payload["scope"] = scope
        batches.append(SubmissionBatch(payload=payload, rows=rows))
    return batches


def write_submission_files(population: SyntheticPopulation, out_dir: Path) -> list[Path]:
    """Write each submission as JSON under `out_dir/submissions/`, and the truth to `out_dir/truth.json`.

    The truth file holds only row indexes and synthetic person ids, in the order of the records inside
    the submission files, so a run over those files can be scored later.
    """
    submissions_dir = out_dir / "submissions"
    submissions_dir.mkdir(parents=True, exist_ok=True)
    written = []
    truth: list[dict[str, Any]] = []
    for index, batch in enumerate(submission_batches(population)):
        payload = batch.payload
        path = submissions_dir / f"{index:04d}-{payload['kind']}-{payload['sender']}.json"
        path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
        written.append(path)
        ids = (
            population.health_person_ids
            if payload["kind"] == "health_register"
            else population.education_person_ids
        )
        truth.append({"file": path.name, "person_ids": [ids[row] for row in batch.rows]})
    truth_path = out_dir / "truth.json"
    truth_path.write_text(
        json.dumps({"seed": population.config.seed, "submissions": truth}), encoding="utf-8"
    )
    written.append(truth_path)
    return written
