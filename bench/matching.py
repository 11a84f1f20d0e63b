"""Matching benchmark: cme-hub's engine against the Splink reference on one synthetic population.

    python bench/matching.py [--children 100000] [--seed 0] [--only engine|splink]

Each system runs in its own subprocess, which regenerates the same seeded population, then times the
work from records to per-health-row outcomes and reports its own peak RSS (so one system's memory
never counts against the other). The parent scores both results against the truth with
`app.synthetic.scoring` and prints accuracy, wall time, peak RSS and the engine/Splink ratios.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from app.synthetic import PopulationConfig, SyntheticPopulation, generate
from app.synthetic.scoring import LinkOutcome, ScoreReport, Truth, missed_targets, score

SYSTEMS = ("engine", "splink")
ENGINE_MISSING = 3  # worker exit code: app.matching's entry points are not there yet


def _peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_engine(population: SyntheticPopulation) -> pl.DataFrame:
    from app.matching.engine import link
    from app.matching.frames import records_to_frame

    health = records_to_frame(
        population.health_records,
        ids=range(len(population.health_records)),
        registers=population.health_senders,
        las=population.health_recipient_la,
    )
    education = records_to_frame(
        population.education_records,
        ids=range(len(population.education_records)),
        registers=population.education_registers,
        las=population.education_la,
    )
    return link(health, education)


def _run_splink(population: SyntheticPopulation) -> pl.DataFrame:
    from splink_reference import link_with_splink

    return link_with_splink(
        population.health_records,
        population.health_senders,
        population.education_records,
        seed=population.config.seed,
    )


def worker(system: str, children: int, seed: int, out: Path) -> None:
    population = generate(PopulationConfig(children=children, seed=seed))
    input_rss = _peak_rss_mb()
    if system == "engine" and not all(
        importlib.util.find_spec(module) for module in ("app.matching.engine", "app.matching.frames")
    ):
        sys.exit(ENGINE_MISSING)
    started = time.perf_counter()
    result = _run_engine(population) if system == "engine" else _run_splink(population)
    seconds = time.perf_counter() - started
    result.select("health_id", "outcome", "education_id", "match_weight").write_parquet(out)
    print(json.dumps({"seconds": seconds, "input_rss_mb": input_rss, "peak_rss_mb": _peak_rss_mb()}))


def _score(population: SyntheticPopulation, result: pl.DataFrame) -> ScoreReport:
    rows = result.select("health_id", "outcome", "education_id").rows()
    return score(Truth.from_population(population), (LinkOutcome(h, o, e) for h, o, e in rows))


def _measure(system: str, children: int, seed: int, population: SyntheticPopulation) -> dict[str, Any] | None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{system}.parquet"
        command = [
            sys.executable,
            __file__,
            "--worker",
            system,
            "--children",
            str(children),
            "--seed",
            str(seed),
        ]
        completed = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True, check=False)
        if completed.returncode == ENGINE_MISSING:
            print(f"[{system}] skipped: app.matching.engine / app.matching.frames are not importable yet")
            return None
        if completed.returncode != 0:
            print(f"[{system}] failed (exit {completed.returncode}):\n{completed.stderr[-3000:]}")
            return None
        figures: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
        figures["report"] = _score(population, pl.read_parquet(out))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description="cme-hub matching engine vs Splink reference")
    parser.add_argument("--children", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=SYSTEMS)
    parser.add_argument("--worker", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.children, args.seed, args.out)
        return

    started = time.perf_counter()
    population = generate(PopulationConfig(children=args.children, seed=args.seed))
    print(
        f"population: {args.children:,} children (seed {args.seed}), {len(population.health_records):,} health rows, "
        f"{len(population.education_records):,} education rows, generated in {time.perf_counter() - started:.1f} s"
    )
    results: dict[str, dict[str, Any]] = {}
    for system in [args.only] if args.only else SYSTEMS:
        figures = _measure(system, args.children, args.seed, population)
        if figures is None:
            continue
        results[system] = figures
        print(f"\n== {system} ==")
        print(figures["report"])
        print(f"wall time (records -> outcomes)  {figures['seconds']:.1f} s")
        print(f"peak RSS                         {figures['peak_rss_mb']:.0f} MB "
              f"(of which input population ~{figures['input_rss_mb']:.0f} MB)")  # fmt: skip
        missed = missed_targets(figures["report"])
        print("targets: all met" if not missed else f"targets missed: {missed}")
    if len(results) == len(SYSTEMS):
        engine, splink = results["engine"], results["splink"]
        print("\n== engine / splink ==")
        print(f"time ratio   {engine['seconds'] / splink['seconds']:.2f}")
        print(f"RSS ratio    {engine['peak_rss_mb'] / splink['peak_rss_mb']:.2f}")
        for measure in ("link_precision", "link_recall", "unknown_precision", "unknown_recall"):
            print(
                f"{measure:<18} {getattr(engine['report'], measure):.5f} vs {getattr(splink['report'], measure):.5f}"
            )


if __name__ == "__main__":
    main()
