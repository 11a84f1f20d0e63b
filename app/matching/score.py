"""Fellegi-Sunter weights: per-field log2(m/u), term-frequency adjustment, prior, probability."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from app.matching.params import FIELDS, TF_LEVELS, MatchModel, level_code

# Which reference column each term-frequency-adjusted field counts, and the compare column holding the value.
_TF_SOURCES: dict[str, tuple[str, str]] = {
    "given": ("given1", "tf_given_value"),
    "family": ("family", "tf_family_value"),
    "address": ("postcode", "tf_postcode_value"),
}
# Bounds on the adjustment: a value seen once is strong evidence, but not unbounded evidence.
TF_MIN_BITS = -5.0
TF_MAX_BITS = 8.0
# Fields whose term-frequency level is agreement on the value itself, so that its u is the chance that two
# random records share a value (the address level also needs the house, so its u is not the postcode's).
_SAME_VALUE_LEVELS: dict[str, str] = {"given": "exact", "family": "exact"}
# Partial agreements on a name can never be stronger evidence than exact agreement on the same name: their
# weight is capped at what the exact level gives the query's value (term frequency included). Left
# uncapped, "Osian" against a record "Oliver Osian" (the twin's record, with the brother's name as a middle
# name) outweighed "Osian" against Osian's own record, because only the exact level knew that Osian is a
# common name.
BOUNDED_BY_EXACT: dict[str, tuple[str, ...]] = {
    "given": ("equivalent", "alternative", "fuzzy_high", "fuzzy_low"),
    "family": ("partial", "former", "fuzzy_high", "fuzzy_low"),
}
# Levels that draw on the same pool of names as the exact level (a known-as form of the name, the name among
# the middle names): a random record agrees at them about as often as it holds the name itself, so the cap
# is the exact weight less log2(m_exact / m_level), the likelihood the exact level keeps over them. A common
# name found among a record's middle names is then weak evidence, as it should be; a typo's chance
# agreement has nothing to do with how common the name is, so fuzzy levels are only capped at exact.
SAME_POOL_LEVELS: dict[str, tuple[str, ...]] = {"given": ("equivalent", "alternative")}


@dataclass(frozen=True)
class TermFrequencies:
    """Value frequencies in the reference population, and the mean frequency of a random record's value."""

    tables: dict[str, pl.DataFrame]
    mean: dict[str, float]
    size: int
    full_names: pl.DataFrame
    # Per field: ordered pairs of reference records holding a value, and those pairs that share it.
    pairs: dict[str, tuple[float, float]]

    @classmethod
    def build(cls, reference: pl.DataFrame) -> TermFrequencies:
        tables: dict[str, pl.DataFrame] = {}
        mean: dict[str, float] = {}
        pairs: dict[str, tuple[float, float]] = {}
        for field, (column, value_column) in _TF_SOURCES.items():
            counts = (
                reference.select(pl.col(column).alias(value_column)).drop_nulls().group_by(value_column).len()
            )
            total = max(int(counts["len"].sum()), 1)
            tables[field] = counts.select(value_column, (pl.col("len") / total).alias(f"tf_{field}"))
            mean[field] = (
                float((counts["len"].cast(pl.Float64) ** 2).sum()) / total**2 if counts.height else 1.0
            )
            held = counts["len"].cast(pl.Float64)
            pairs[field] = (float(held.sum()) * (float(held.sum()) - 1), float((held * (held - 1)).sum()))
        names = (
            reference.select(
                pl.col("given1").alias("tf_given_value"), pl.col("family").alias("tf_family_value")
            )
            .drop_nulls()
            .group_by("tf_given_value", "tf_family_value")
            .len()
        )
        # Only full names held by two or more records: one sighting says nothing about how common it is.
        names = names.filter(pl.col("len") > 1).select(
            "tf_given_value", "tf_family_value", (pl.col("len") / max(reference.height, 1)).alias("tf_name")
        )
        return cls(tables, mean, reference.height, names, pairs)

    def shared_value_share(self, field: str, u: float, prior_records: int) -> float:
        """How often two different reference records share a value of `field`: the u of agreeing on it.

        Estimated from the reference's own pairs, shrunk towards the model's u by `prior_records`
        records' worth of pairs, so a small reference (a handful of test records, a small register)
        keeps the model's u and a large one speaks for itself. Welsh surnames are far more
        concentrated than a generic u = 1% assumes, and the term-frequency adjustment only
        redistributes weight around this average: left at the generic u, every exact surname was
        worth more than the names it had to be told apart from.
        """
        pairs, shared = self.pairs.get(field, (0.0, 0.0))
        prior_pairs = float(prior_records) * (prior_records - 1)
        return (shared + prior_pairs * u) / (pairs + prior_pairs)


def exact_offsets(model: MatchModel, field: str) -> dict[int, float]:
    """Per `BOUNDED_BY_EXACT` level code of `field`: how far above the exact level's weight for the same
    value it may go (0, or log2(m_level / m_exact) for `SAME_POOL_LEVELS`)."""
    params = model.fields[field]
    exact = params.m[level_code(field, _SAME_VALUE_LEVELS[field]) - 1]
    return {
        level_code(field, level): (
            math.log2(params.m[level_code(field, level) - 1] / exact)
            if level in SAME_POOL_LEVELS.get(field, ())
            else 0.0
        )
        for level in BOUNDED_BY_EXACT[field]
    }


def weight_tables(model: MatchModel, tf: TermFrequencies) -> dict[str, npt.NDArray[np.float64]]:
    """log2(m/u) per level code for every field, with the same-value levels' u taken from the reference
    (`TermFrequencies.shared_value_share`). Shared by the batch and the real-time scorers."""
    tables = {}
    for field in FIELDS:
        table = model.weight_table(field)
        level = _SAME_VALUE_LEVELS.get(field)
        if level is not None:
            params, code = model.fields[field], level_code(field, level)
            u = tf.shared_value_share(field, params.u[code - 1], model.tf_prior_records)
            table[code] = math.log2(params.m[code - 1] / u)
        tables[field] = table
    return tables


def score(levels: pl.DataFrame, model: MatchModel, tf: TermFrequencies) -> pl.DataFrame:
    """Adds weight_<field> (bits), prior, match_weight and match_probability to compared pairs."""
    prior = model.prior_bits(tf.size)
    tables = weight_tables(model, tf)
    scored = levels
    for field in FIELDS:
        table = tables[field]
        base = pl.Series(f"weight_{field}", table[scored[field].to_numpy()])
        scored = scored.with_columns(base)
        if field not in _TF_SOURCES:
            continue
        _, value_column = _TF_SOURCES[field]
        codes = [level_code(field, level) for level in TF_LEVELS[field]]
        scored = scored.join(tf.tables[field], on=value_column, how="left", maintain_order="left")
        adjustment = (
            (math.log2(tf.mean[field]) - pl.col(f"tf_{field}").clip(lower_bound=model.tf_floor).log(2))
            .clip(TF_MIN_BITS, TF_MAX_BITS)
            .fill_null(0.0)
        )
        weight = pl.col(f"weight_{field}")
        levels_tf: Any = pl.when(pl.col(field).is_in(codes)).then(weight + adjustment)
        if field in BOUNDED_BY_EXACT:
            exact = table[level_code(field, _SAME_VALUE_LEVELS[field])] + adjustment
            for code, offset in exact_offsets(model, field).items():
                levels_tf = levels_tf.when(pl.col(field) == code).then(
                    pl.min_horizontal(weight, exact + offset)
                )
        scored = scored.with_columns(levels_tf.otherwise(weight).alias(f"weight_{field}")).drop(f"tf_{field}")
    scored = _full_name_capped(scored, model, tf)
    scored = scored.with_columns(weight_address=_household_capped(model, tf.size))
    total = pl.sum_horizontal([f"weight_{f}" for f in FIELDS]) + prior
    return scored.with_columns(prior=pl.lit(prior), match_weight=total).with_columns(
        match_probability=probability(pl.col("match_weight"))
    )


def _full_name_capped(scored: pl.DataFrame, model: MatchModel, tf: TermFrequencies) -> pl.DataFrame:
    """Given and surname both exact: worth no more than the frequency of the full name itself.

    Names are not independent (families, fashions, and in Wales a handful of surnames), so a common
    pairing such as Ffion Jones is far more frequent than tf(Ffion) x tf(Jones). The surname weight
    absorbs the difference, keeping the explanation per field.
    """
    m_both = math.log2(model.fields["given"].m[0] * model.fields["family"].m[0])
    exact = (pl.col("given") == level_code("given", "exact")) & (
        pl.col("family") == level_code("family", "exact")
    )
    joined = scored.join(
        tf.full_names, on=["tf_given_value", "tf_family_value"], how="left", maintain_order="left"
    )
    cap = m_both - pl.col("tf_name").clip(lower_bound=model.tf_floor).log(2)
    over = (pl.col("weight_given") + pl.col("weight_family") - cap).fill_null(0.0)
    return joined.with_columns(
        weight_family=pl.when(exact & (over > 0))
        .then(pl.col("weight_family") - over)
        .otherwise("weight_family")
    ).drop("tf_name")


def _household_capped(model: MatchModel, reference_size: int) -> pl.Expr:
    """Address weight after capping surname + address agreement at what a shared household is worth.

    Fellegi-Sunter multiplies the surname and address evidence as if independent, but siblings share
    both: among non-matching pairs, "same surname at the same address" happens about `household_children`
    times per child, not tf(surname) x tf(postcode). Without the cap a rare surname plus a small postcode
    outweighs a different given name and date of birth, and siblings get merged.
    """
    family = [level_code("family", lv) for lv in ("exact", "partial", "former")]
    address = [level_code("address", lv) for lv in ("postcode_and_house", "postcode", "house_and_street")]
    m_family = model.fields["family"].m[0]
    m_address = model.fields["address"].m[0]
    cap = math.log2(m_family * m_address * model.population(reference_size) / model.household_children)
    shared = pl.col("family").is_in(family) & pl.col("address").is_in(address)
    over = pl.col("weight_family") + pl.col("weight_address") - cap
    return (
        pl.when(shared & (over > 0))
        .then(pl.col("weight_address") - over)
        .otherwise(pl.col("weight_address"))
        .alias("weight_address")
    )


def probability(weight: pl.Expr) -> pl.Expr:
    return 1.0 / (1.0 + (2.0 ** (-weight.clip(-60.0, 60.0))))


def weight_for_probability(p: float) -> float:
    return float(np.log2(p / (1 - p)))
