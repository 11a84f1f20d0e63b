"""Matching benchmark: cme-hub's engine against the Splink reference on one synthetic population.

    python bench/matching.py [--children 100000] [--seed 0] [--only engine|splink]
    python bench/matching.py --variant NAME | --tuning | --held-out  [--children N] [--seed S] [--only ...]

Each system runs in its own subprocess, which regenerates the same seeded population, then times the
work from records to per-health-row outcomes and reports its own peak RSS (so one system's memory
never counts against the other). The parent scores both results against the truth with
`app.synthetic.scoring` and prints accuracy, wall time, peak RSS and the engine/Splink ratios.

With `--variant`, `--tuning` or `--held-out` the population is a named variant (`app.synthetic.variants`,
decision 0013) at the first seed of its split unless `--seed` says otherwise, and the run ends with one
line per variant and system: unknown-to-education precision and recall over health rows, link
precision and recall, the review queue as a share of health rows and its share of true links, twins
matched to the co-twin's record, and the targets missed (issue 10's on held-out populations). When both
systems ran, a last line per variant says whether the engine's unknown precision is ahead of Splink's at
equal or better unknown recall (issue 10's comparison).
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

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from app.synthetic import PopulationConfig, SyntheticPopulation, generate
from app.synthetic.scoring import (
    LinkOutcome,
    ScoreReport,
    Truth,
    missed_held_out_targets,
    missed_targets,
    score,
)
from app.synthetic.variants import HELD_OUT, TUNING, VARIANTS, is_held_out

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


def _config(variant: str | None, children: int, seed: int | None) -> PopulationConfig:
    if variant is None:
        return PopulationConfig(children=children, seed=0 if seed is None else seed)
    return VARIANTS[variant].config(children, seed)


def worker(system: str, config: PopulationConfig, out: Path) -> None:
    population = generate(config)
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


def _measure(system: str, variant: str | None, population: SyntheticPopulation) -> dict[str, Any] | None:
    config = population.config
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{system}.parquet"
        command = [
            sys.executable,
            __file__,
            "--worker",
            system,
            "--children",
            str(config.children),
            "--seed",
            str(config.seed),
            *(["--variant", variant] if variant else []),
        ]
        completed = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True, check=False)
        if completed.returncode == ENGINE_MISSING:
            print(f"[{system}] skipped: app.matching.engine / app.matching.frames are not importable yet")
            return None
        if completed.returncode != 0:
            print(f"[{system}] failed (exit {completed.returncode}):\n{completed.stderr[-3000:]}")
            return None
        figures: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
        result = pl.read_parquet(out)
        figures["report"] = _score(population, result)
        if system == "splink":
            figures["result"] = result
    return figures


def _summary_line(variant: str, system: str, population: SyntheticPopulation, report: ScoreReport) -> str:
    config = population.config
    held_out = is_held_out(variant, config.seed)
    missed = missed_held_out_targets(report, config.children) if held_out else missed_targets(report)
    return (
        f"{variant:<12} {'held-out' if held_out else 'tuning':<8} {config.seed:>6} {system:<6} "
        f"{report.unknown_precision:>9.4f} {report.unknown_recall:>9.4f} "
        f"{report.link_precision:>8.5f} {report.link_recall:>8.5f} "
        f"{report.review_share:>8.3%} {report.review_true_link_share:>7.1%} "
        f"{report.twins_cross_matched:>5} (+{report.twins_cross_possible})  "
        f"{'all met' if not missed else ', '.join(f'{name} {value:.4g}' for name, value in missed.items())}"
    )


def _precision_at_recall(
    population: SyntheticPopulation, result: pl.DataFrame, recall: float
) -> tuple[float, float] | None:
    """Splink's unknown precision at the lowest match threshold that keeps its unknown recall at least
    `recall`, and that threshold as a probability. A row is unknown when its assigned pair (greedy over
    every scored pair, so the same as assigning above the threshold) is below the threshold or it has none.
    None when no threshold down to the scored floor reaches `recall`."""
    on_a_register = set(population.education_person_ids)
    unknown = np.array([person not in on_a_register for person in population.health_person_ids])
    weights = result.sort("health_id")["match_weight"].fill_null(-np.inf).to_numpy()
    order = np.argsort(weights, kind="stable")
    right = np.cumsum(unknown[order])
    reached = np.flatnonzero(right >= recall * unknown.sum())
    if not len(reached):
        return None
    k = int(reached[0])
    weight = float(weights[order][k])
    return float(right[k] / (k + 1)), 1 / (1 + 2 ** (-weight)) if np.isfinite(weight) else 0.0


def _side_by_side(
    variant: str, population: SyntheticPopulation, results: dict[str, dict[str, Any]]
) -> list[str]:
    """Issue 10's comparison for one variant: is the engine's unknown precision ahead of Splink's at equal
    or better unknown recall? Also Splink's precision with its threshold moved to the engine's unknown
    recall. Nothing when either system did not run."""
    if not all(system in results for system in SYSTEMS):
        return []
    engine, splink = results["engine"]["report"], results["splink"]["report"]
    ahead = (
        engine.unknown_precision > splink.unknown_precision and engine.unknown_recall >= splink.unknown_recall
    )
    lines = [
        f"{variant:<12} engine - splink: unknown P {engine.unknown_precision - splink.unknown_precision:+.4f}, "
        f"unknown R {engine.unknown_recall - splink.unknown_recall:+.4f}, "
        f"link P {engine.link_precision - splink.link_precision:+.5f}, "
        f"link R {engine.link_recall - splink.link_recall:+.5f}: engine precision "
        f"{'ahead' if ahead else 'NOT ahead'} of Splink's at equal or better recall"
    ]
    moved = _precision_at_recall(population, results["splink"]["result"], engine.unknown_recall)
    if moved is not None:
        precision, probability = moved
        lines.append(
            f"{variant:<12} splink at the engine's unknown recall {engine.unknown_recall:.4f}: unknown P "
            f"{precision:.4f} (match probability >= {probability:.3g}); engine "
            f"{'ahead' if engine.unknown_precision > precision else 'NOT ahead'} at equal recall"
        )
    return lines


SUMMARY_HEADER = (
    f"{'variant':<12} {'split':<8} {'seed':>6} {'system':<6} {'unknown P':>9} {'unknown R':>9} "
    f"{'link P':>8} {'link R':>8} {'review':>8} {'true':>7} twins  targets missed"
)


def main() -> None:
    parser = argparse.ArgumentParser(description="cme-hub matching engine vs Splink reference")
    parser.add_argument("--children", type=int, default=100_000)
    parser.add_argument("--seed", type=int, help="default 0, or a variant's first seed of its split")
    parser.add_argument("--only", choices=SYSTEMS)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--variant", choices=sorted(VARIANTS), help="one named population (decision 0013)")
    which.add_argument("--tuning", action="store_true", help=f"every tuning variant: {', '.join(TUNING)}")
    which.add_argument(
        "--held-out", action="store_true", help=f"every held-out variant: {', '.join(HELD_OUT)}"
    )
    parser.add_argument("--worker", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, _config(args.variant, args.children, args.seed), args.out)
        return
    if args.tuning or args.held_out:
        summary = [SUMMARY_HEADER]
        for variant in TUNING if args.tuning else HELD_OUT:
            print(f"\n##### variant {variant}: {VARIANTS[variant].stresses}")
            population, results = _run(variant, args.children, args.seed, args.only)
            summary += [
                _summary_line(variant, system, population, r["report"]) for system, r in results.items()
            ]
            summary += _side_by_side(variant, population, results)
        print("\n" + "\n".join(summary))
        return
    population, results = _run(args.variant, args.children, args.seed, args.only)
    if args.variant:
        print("\n" + SUMMARY_HEADER)
        for system, figures in results.items():
            print(_summary_line(args.variant, system, population, figures["report"]))
        for line in _side_by_side(args.variant, population, results):
            print(line)


def _run(
    variant: str | None, children: int, seed: int | None, only: str | None
) -> tuple[SyntheticPopulation, dict[str, dict[str, Any]]]:
    """Generate one population, run each system on it and print its report; the reports by system."""
    started = time.perf_counter()
    config = _config(variant, children, seed)
    population = generate(config)
    print(
        f"population: {children:,} children (seed {config.seed}{f', variant {variant}' if variant else ''}), "
        f"{len(population.health_records):,} health rows, {len(population.education_records):,} education rows, "
        f"generated in {time.perf_counter() - started:.1f} s"
    )
    results: dict[str, dict[str, Any]] = {}
    for system in [only] if only else SYSTEMS:
        figures = _measure(system, variant, population)
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
    return population, results


if __name__ == "__main__":
    main()
