"""A health list written to be expensive, against a synthetic reference (decision 0018, bounded work per
list row).

    python bench/contrived_list.py [--children 500000] [--rows 30000] [--seed 0]

Generates the seeded population's education registers, then a health list of `--rows` identical rows that
a health board could sign and send: every name field filled to its 120 characters with the reference's
commonest given names and surnames, ten former names, and the reference's busiest birth date and
postcode. Prints the name keys of a row, the candidate pairs (total, most and mean per row) with the
seconds blocking took, and `link`'s wall and CPU seconds on the list. Run it before and after a change to
the engine: the figures are the engine's alone (no database, no service).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.matching.blocking import ROW, build_reference, candidate_pairs
from app.matching.engine import link
from app.matching.frames import records_to_frame
from app.matching.params import DEFAULT_MODEL
from app.synthetic import PopulationConfig, generate

FIELD_LENGTH = 120  # `app.core.text.Text`
FORMER_NAMES = 10  # the schema's most


def _filled(names: list[str]) -> str:
    """As many of the names as fit in one field."""
    text = ""
    for name in names:
        if len(text) + len(name) + 1 > FIELD_LENGTH:
            break
        text = f"{text} {name}".strip()
    return text


def _commonest(frame: pl.DataFrame, column: str, count: int) -> list[Any]:
    return frame[column].drop_nulls().value_counts(sort=True)[column].head(count).to_list()


def contrived_record(education: pl.DataFrame) -> dict[str, Any]:
    given = [name.title() for name in _commonest(education, "given1", 40)]
    family = [name.title() for name in _commonest(education, "family", 40)]
    [dob], [postcode] = _commonest(education, "dob", 1), _commonest(education, "postcode", 1)
    return {
        "given_name": _filled(given),
        "middle_names": _filled(given[15:] + given),
        "family_name": _filled(family),
        "former_names": [{"given_name": given[k], "family_name": family[k]} for k in range(FORMER_NAMES)],
        "date_of_birth": dob.isoformat(),
        "address": {"lines": ["1 Stryd Fawr"], "postcode": postcode},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="cme-hub's engine on a contrived health list")
    parser.add_argument("--children", type=int, default=500_000)
    parser.add_argument("--rows", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    population = generate(PopulationConfig(children=args.children, seed=args.seed))
    records = population.education_records
    education = records_to_frame(
        records,
        list(range(len(records))),
        registers=population.education_registers,
        las=population.education_la,
    )
    del population, records
    health = records_to_frame(
        [contrived_record(education)] * args.rows,
        list(range(args.rows)),
        registers=["W11000029@2025-04-30"] * args.rows,
        las=["W06000015"] * args.rows,
    )
    print(f"{args.children:,} children, {education.height:,} education records, {args.rows:,} contrived rows")
    print(f"name keys of a row: {health['name_keys'].list.len().max()}", flush=True)
    started = time.perf_counter()
    pairs = candidate_pairs(health, build_reference(education, DEFAULT_MODEL.blocking.max_block))
    per_row = pairs.group_by(ROW).len()["len"]
    print(
        f"candidate pairs: {pairs.height:,} (most per row {per_row.max()}, mean {pairs.height / args.rows:.1f}); "
        f"blocking {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    wall, cpu = time.perf_counter(), time.process_time()
    outcomes = link(health, education)
    print(
        f"link: {time.perf_counter() - wall:.1f} s wall, {time.process_time() - cpu:.1f} s CPU; "
        f"outcomes {dict(outcomes['outcome'].value_counts().iter_rows())}"
    )


if __name__ == "__main__":
    main()
