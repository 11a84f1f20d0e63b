"""Benchmark of the batch matching engine: synthetic population -> frames -> `link` -> scores.

    .venv/bin/python bench/matching_engine.py [children ...]   (default: 100000 500000)

Per size, three fresh processes: one generates the population and writes the two canonical frames and
the truth to a temporary folder; one loads the frames and runs `link` alone (frames in, outcomes out),
so its time and peak RSS are the engine's; the parent scores the outcomes with app.synthetic.scoring.
Each result also gives CPU seconds (on a shared machine wall time measures the neighbours too) and
`frames_plus_link_s`, records to outcomes.
"""

from __future__ import annotations

import json
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl


def prepare(children: int, folder: Path, seed: int = 7) -> None:
    from app.matching.frames import records_to_frame
    from app.synthetic.population import PopulationConfig, generate
    from app.synthetic.scoring import Truth

    population = generate(PopulationConfig(children=children, seed=seed))
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
            }
        )
    )


def run_link(folder: Path) -> None:
    from app.matching.engine import link

    health = pl.read_parquet(folder / "health.parquet")
    education = pl.read_parquet(folder / "education.parquet")
    rss_frames = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
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
            truth = pickle.loads((Path(tmp) / "truth.pickle").read_bytes())
            outcomes = pl.read_parquet(Path(tmp) / "outcomes.parquet")
            report = score(truth, (LinkOutcome(h, o, e) for h, o, e in outcomes.iter_rows()))
        result["missed_targets"] = missed_targets(report)
        print(json.dumps(result))
        print(report)
        print(flush=True)


if __name__ == "__main__":
    main()
