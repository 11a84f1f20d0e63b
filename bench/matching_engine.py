"""Benchmark of the batch matching engine: synthetic population -> frames -> `link` -> scores.

    .venv/bin/python bench/matching_engine.py [children ...]   (default: 100000 500000)

Per size, three fresh processes: one generates the population and writes the two canonical frames and
the truth to a temporary folder; one loads the frames and runs `link` alone (frames in, outcomes out),
so its time and peak RSS are the engine's; the parent scores the outcomes with app.synthetic.scoring.
Each result also gives CPU seconds (on a shared machine wall time measures the neighbours too) and
`frames_plus_link_s`, records to outcomes.

The frames are timed two ways: from the generator's submission-shaped records (`records_to_frame`,
`frames_s`) and from the same children as stored rows, tuples shaped as the database select returns them
read as text (`frames.text_columns` + `columns_to_frame`, as a matching round builds them;
`rows_frames_s`, and `rows_to_outcomes_s` with `link`). Frames are built with the cyclic garbage collector paused (`app.core.gc_pause`), as the matching
job builds them: the generator leaves millions of young objects that one collection would otherwise
rescan inside the timing (3 s at 500k). The link process also times blocking alone (`blocking_s`: reference keys and candidate pairs)
before `link`, which blocks again inside its own timing.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from app.core.gc_pause import gc_paused


def _stored_rows(
    records: Sequence[dict[str, Any]],
    columns: Sequence[str],
    registers: Sequence[str] | None = None,
    las: Sequence[str] | None = None,
) -> list[tuple[Any, ...]]:
    """Records as the database select of `columns` returns them (dates as dates, JSON lists as lists)."""
    rows = []
    for i, record in enumerate(records):
        address = record.get("address") or {}
        dob = record.get("date_of_birth")
        values = {
            "id": i,
            "record_index": i,
            "recipient_la": las[i] if las else None,
            "la_id": las[i] if las else None,
            "register": registers[i] if registers else None,
            "former_names": record.get("former_names") or [],
            "date_of_birth": dt.date.fromisoformat(dob) if isinstance(dob, str) else dob,
            "address_lines": list(address.get("lines") or []),
            "town": address.get("town"),
            "postcode": address.get("postcode"),
        }
        rows.append(tuple(values[c] if c in values else record.get(c) for c in columns))
    return rows


def prepare_rows(population: Any) -> dict[str, float]:
    """Time both frames from stored rows read as text (the path a matching round takes: the database sends
    them by COPY, `app.core.bulk.read_text`)."""
    import polars as pl

    from app.core.bulk import text_frame
    from app.matching import repository
    from app.matching.frames import columns_to_frame, text_columns

    health_rows = _stored_rows(population.health_records, repository.HEALTH_MATCH_COLUMNS)
    health = text_frame(health_rows, repository.HEALTH_MATCH_COLUMNS).with_columns(
        source=pl.Series(population.health_senders, dtype=pl.String)
    )
    education_rows = _stored_rows(
        population.education_records,
        repository.EDUCATION_MATCH_COLUMNS,
        population.education_registers,
        population.education_la,
    )
    education = text_frame(education_rows, repository.EDUCATION_MATCH_COLUMNS)
    del health_rows, education_rows
    gc.collect()
    with gc_paused():
        started = time.perf_counter()
        cpu = time.process_time()
        columns_to_frame({**text_columns(health, la_column="recipient_la"), "register": health["source"]})
        columns_to_frame(text_columns(education, la_column="la_id"))
        frames_s, frames_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    return {"rows_frames_s": round(frames_s, 2), "rows_frames_cpu_s": round(frames_cpu_s, 2)}


def prepare(children: int, folder: Path, seed: int = 7) -> None:
    from app.matching.frames import records_to_frame
    from app.synthetic.population import PopulationConfig, generate
    from app.synthetic.scoring import Truth

    population = generate(PopulationConfig(children=children, seed=seed))
    with gc_paused():
        started = time.perf_counter()
        cpu = time.process_time()
        health = records_to_frame(
            population.health_records,
            list(range(len(population.health_records))),
            registers=population.health_senders,
        )
        education = records_to_frame(
            population.education_records,
            list(range(len(population.education_records))),
            registers=population.education_registers,
            las=population.education_la,
        )
        frames_s = time.perf_counter() - started
        frames_cpu_s = time.process_time() - cpu
    timings = prepare_rows(population)
    health.write_parquet(folder / "health.parquet")
    education.write_parquet(folder / "education.parquet")
    (folder / "truth.pickle").write_bytes(pickle.dumps(Truth.from_population(population)))
    print(
        json.dumps(
            {
                "frames_s": round(frames_s, 2),
                "frames_cpu_s": round(frames_cpu_s, 2),
                "health_rows": health.height,
                "education_rows": education.height,
                **timings,
            }
        )
    )


def run_link(folder: Path) -> None:
    from app.matching.blocking import build_reference, candidate_pairs
    from app.matching.engine import link
    from app.matching.params import DEFAULT_MODEL

    health = pl.read_parquet(folder / "health.parquet")
    education = pl.read_parquet(folder / "education.parquet")
    rss_frames = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    cpu = time.process_time()
    reference = build_reference(education, DEFAULT_MODEL.blocking.max_block)
    reference_s, reference_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    pairs = candidate_pairs(health, reference).height
    blocking_s, blocking_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    del reference
    started = time.perf_counter()
    cpu = time.process_time()
    outcomes = link(health, education)
    link_s = time.perf_counter() - started
    cpu_s = time.process_time() - cpu
    outcomes.select("health_id", "outcome", "education_id").write_parquet(folder / "outcomes.parquet")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "blocking_s": round(blocking_s, 2),
                "blocking_cpu_s": round(blocking_cpu_s, 2),
                "reference_keys_s": round(reference_s, 2),
                "reference_keys_cpu_s": round(reference_cpu_s, 2),
                "candidate_pairs": pairs,
                "link_s": round(link_s, 2),
                "link_cpu_s": round(cpu_s, 2),
                "peak_rss_mib_after_loading_frames": round(rss_frames),
                "peak_rss_mib": round(peak),
            }
        )
    )


def _child(*args: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    if sys.argv[1:2] == ["--prepare"]:
        prepare(int(sys.argv[2]), Path(sys.argv[3]))
        return
    if sys.argv[1:2] == ["--link"]:
        run_link(Path(sys.argv[2]))
        return
    from app.synthetic.scoring import LinkOutcome, missed_targets, score

    for size in [int(a) for a in sys.argv[1:]] or [100_000, 500_000]:
        with tempfile.TemporaryDirectory() as tmp:
            result: dict[str, object] = {"children": size}
            result |= _child("--prepare", str(size), tmp)
            result |= _child("--link", tmp)
            # Records to outcomes: what the target (500k in under 20 s) is about.
            result["frames_plus_link_s"] = round(
                float(str(result["frames_s"])) + float(str(result["link_s"])), 2
            )
            # Stored rows to outcomes: what a matching job does.
            result["rows_to_outcomes_s"] = round(
                float(str(result["rows_frames_s"])) + float(str(result["link_s"])), 2
            )
            truth = pickle.loads((Path(tmp) / "truth.pickle").read_bytes())
            outcomes = pl.read_parquet(Path(tmp) / "outcomes.parquet")
            report = score(truth, (LinkOutcome(h, o, e) for h, o, e in outcomes.iter_rows()))
        result["missed_targets"] = missed_targets(report)
        print(json.dumps(result))
        print(report)
        print(flush=True)


if __name__ == "__main__":
    main()
