"""Benchmark of the batch matching engine: synthetic population -> frames -> `link` -> scores.

    .venv/bin/python bench/matching_engine.py [children ...]   (default: 100000 500000)

Prints, per size, the time and peak RSS of `link` alone (frames in, outcomes out), the time to build
the frames, and the accuracy against the synthetic truth (app.synthetic.scoring). Each size runs in a
fresh subprocess so peak RSS is that run's own.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

import psutil


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(children: int, seed: int = 7) -> dict[str, object]:
    from app.matching.engine import link
    from app.matching.frames import records_to_frame
    from app.synthetic.population import PopulationConfig, generate
    from app.synthetic.scoring import LinkOutcome, Truth, missed_targets, score

    population = generate(PopulationConfig(children=children, seed=seed))
    truth = Truth.from_population(population)
    started = time.perf_counter()
    health = records_to_frame(population.health_records, list(range(len(population.health_records))))
    education = records_to_frame(
        population.education_records,
        list(range(len(population.education_records))),
        registers=population.education_registers,
        las=population.education_la,
    )
    frames_s = time.perf_counter() - started
    del population
    rss_before = psutil.Process().memory_info().rss / 2**20
    started = time.perf_counter()
    outcomes = link(health, education)
    link_s = time.perf_counter() - started
    report = score(
        truth,
        (
            LinkOutcome(row, outcome, education_id)
            for row, outcome, education_id in outcomes.select(
                "health_id", "outcome", "education_id"
            ).iter_rows()
        ),
    )
    return {
        "children": children,
        "health_rows": health.height,
        "education_rows": education.height,
        "frames_s": round(frames_s, 2),
        "link_s": round(link_s, 2),
        "rss_before_link_mib": round(rss_before),
        "peak_rss_mib": round(_peak_rss_mib()),
        "report": str(report),
        "missed_targets": missed_targets(report),
    }


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        print(json.dumps(run(int(sys.argv[2]))))
        return
    sizes = [int(a) for a in sys.argv[1:]] or [100_000, 500_000]
    for size in sizes:
        done = subprocess.run(
            [sys.executable, __file__, "--one", str(size)], capture_output=True, text=True, check=True
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        report = result.pop("report")
        print(json.dumps(result))
        print(report)
        print()


if __name__ == "__main__":
    main()
