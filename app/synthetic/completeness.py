"""Pairs completeness of blocking: does every true pair of a synthetic population share a block?

Issue 10 asks that every true pair (a health row and an education record of the same child) with at
least two strong fields agreeing exactly share a block. Strong fields, counted per pair:

- given name: a given-name identity group in common (first or preferred name, up to equivalence);
- family name: a surname in common (current, preferred or former, on either side);
- date of birth: equal;
- postcode: equal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from app.matching.blocking import ROW, build_reference, candidate_pairs
from app.matching.frames import records_to_frame
from app.matching.params import DEFAULT_MODEL
from app.synthetic.population import SyntheticPopulation

REF_ROW = "ref_row"
_NAME_SETS = (("given_c1", "given_c2", "pref_c1", "pref_c2"), ("family", "pref_family", "former_family"))
_EQUAL = ("dob", "postcode")


@dataclass(frozen=True, slots=True)
class Completeness:
    health_rows: int
    candidate_pairs: int
    true_pairs: int
    true_pairs_blocked: int
    two_strong_pairs: int
    two_strong_blocked: int

    @property
    def pairs_per_row(self) -> float:
        return self.candidate_pairs / max(self.health_rows, 1)

    @property
    def completeness(self) -> float:
        return self.true_pairs_blocked / self.true_pairs if self.true_pairs else 1.0

    @property
    def two_strong_completeness(self) -> float:
        return self.two_strong_blocked / self.two_strong_pairs if self.two_strong_pairs else 1.0


def _value_sets(frame: pl.DataFrame, columns: tuple[str, ...]) -> pl.Series:
    """Each record's distinct non-null values of the columns, list columns flattened."""
    parts = [
        pl.col(c) if isinstance(frame.schema[c], pl.List) else pl.concat_list(pl.col(c)) for c in columns
    ]
    return frame.select(pl.concat_list(parts).list.drop_nulls().list.unique().alias("values"))["values"]


def strong_agreements(
    health: pl.DataFrame, education: pl.DataFrame, pairs: pl.DataFrame
) -> npt.NDArray[np.int8]:
    """How many of given name, family name, date of birth and postcode agree exactly, per (row, ref_row)."""
    rows, refs = pairs[ROW], pairs[REF_ROW]
    count = np.zeros(pairs.height, dtype=np.int8)
    for columns in _NAME_SETS:
        both = pl.DataFrame(
            {
                "a": _value_sets(health, columns).gather(rows),
                "b": _value_sets(education, columns).gather(refs),
            }
        )
        shared = both.select(pl.col("a").list.set_intersection(pl.col("b")).list.len() > 0).to_series()
        count += shared.to_numpy().astype(np.int8)
    for column in _EQUAL:
        count += (health[column].gather(rows) == education[column].gather(refs)).fill_null(False).to_numpy()
    return count


def measure(population: SyntheticPopulation) -> Completeness:
    """Blocking as `link` runs it, on the population's frames, against the population's truth."""
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
    candidates = candidate_pairs(health, build_reference(education, DEFAULT_MODEL.blocking.max_block))
    people = pl.DataFrame({"person": population.education_person_ids}).with_row_index(REF_ROW)
    truth = (
        pl.DataFrame({"person": population.health_person_ids})
        .with_row_index(ROW)
        .join(people, on="person")
        .select(pl.col(ROW).cast(pl.UInt32), pl.col(REF_ROW).cast(pl.UInt32))
    )
    blocked = (
        truth.join(candidates.with_columns(found=pl.lit(True)), on=[ROW, REF_ROW], how="left")["found"]
        .fill_null(False)
        .to_numpy()
    )
    two_strong = strong_agreements(health, education, truth) >= 2
    return Completeness(
        health_rows=health.height,
        candidate_pairs=candidates.height,
        true_pairs=truth.height,
        true_pairs_blocked=int(blocked.sum()),
        two_strong_pairs=int(two_strong.sum()),
        two_strong_blocked=int((blocked & two_strong).sum()),
    )
