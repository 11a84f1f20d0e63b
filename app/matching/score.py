"""Fellegi-Sunter weights: per-field log2(m/u), term-frequency adjustment, prior, probability."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt
import polars as pl

from app.matching.params import FIELD_LEVELS, FIELDS, TF_LEVELS, MatchModel, level_code

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
# An equivalent name agrees with a name the query does not hold: the record's. A random record holds that
# name as often as its share, so the pair is capped by the record's name too (Jack against a record
# "Ioan" is worth no more than the common Ioan agreeing would be, whatever Jack's share).
BOTH_SIDES_LEVELS: dict[str, tuple[str, ...]] = {"given": ("equivalent",)}
# A near spelling is a slip only if a slip can explain it: a keying error makes a rare string, so of two
# spellings one slip apart the slip is the far rarer one. Two names both in ordinary use and near each
# other (Mali and Mari, Cerys and Carys, Gwen and Gwion, Owen and Bowen) are two names, which is what twins
# and namesakes look like, so a near level between them is read as "different". "Far rarer" is this many
# times less frequent in the reference. A known-as form is a common string by nature (Rhi, Anghy): given
# names the name table or the reference's own first/preferred pairs make equivalent are `equivalent`
# before this rule is applied, and only they escape it.
SLIP_RARITY = 20.0
NEAR_LEVELS: dict[str, tuple[str, ...]] = {"given": ("fuzzy_high", "fuzzy_low"), "family": ("fuzzy_high",)}
# Fields where only a one-edit near level is read so (surnames have no shortened forms to learn; a looser
# similarity between two surnames is left as it is).
SLIP_ONLY = frozenset({"family"})
# The record's names a near level may have been reached through (its first or preferred form).
_RECORD_SPELLINGS: dict[str, tuple[str, str]] = {
    "given": ("given1", "pref_given1"),
    "family": ("family", "pref_family"),
}


def ordinary_spellings(
    query_share: npt.NDArray[np.float64], record_share: npt.NDArray[np.float64]
) -> npt.NDArray[np.bool_]:
    """Neither spelling is `SLIP_RARITY` times rarer than the other (shares NaN where the reference does
    not hold the value: rare). A record holding two forms counts by its rarer one."""
    # fmax: NaN as 0 (a share is never negative).
    query, record = np.fmax(query_share, 0.0), np.fmax(record_share, 0.0)
    ordinary: npt.NDArray[np.bool_] = np.minimum(query, record) * SLIP_RARITY > np.maximum(query, record)
    return ordinary


@dataclass(frozen=True)
class TermFrequencies:
    """Value frequencies in the reference population, and the mean frequency of a random record's value."""

    tables: dict[str, pl.DataFrame]
    mean: dict[str, float]
    size: int
    full_names: pl.DataFrame
    # Per field: ordered pairs of reference records holding a value, and those pairs that share it.
    pairs: dict[str, tuple[float, float]]
    # Given names the reference holds (first or preferred), numbered; and the known-as pairs it teaches:
    # (a, b) and (b, a) as a * len(given_names) + b, sorted, for every first/preferred pair of different
    # names held by at least `KNOWN_AS_RECORDS` records (a school registering Angharad known as Anghy).
    given_names: pl.DataFrame
    known_as: npt.NDArray[np.int64]

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
        given_names, known_as = _known_as_pairs(reference)
        return cls(tables, mean, reference.height, names, pairs, given_names, known_as)

    def given_ids(self, values: pl.Series) -> npt.NDArray[np.float64]:
        """The number of each given name in `given_names` (NaN where the reference holds no such name)."""
        ids = pl.DataFrame({"value": values}).join(
            self.given_names, on="value", how="left", maintain_order="left"
        )
        return ids["id"].cast(pl.Float64).fill_null(float("nan")).to_numpy()

    def known_as_pair(
        self, query: npt.NDArray[np.float64], record: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.bool_]:
        """Whether each (query, record) pair of given-name numbers is a known-as pair the reference holds."""
        known = ~np.isnan(query) & ~np.isnan(record)
        keys = query[known].astype(np.int64) * self.given_names.height + record[known].astype(np.int64)
        at = np.minimum(np.searchsorted(self.known_as, keys), max(len(self.known_as) - 1, 0))
        found = np.zeros(len(query), dtype=bool)
        if len(self.known_as):
            found[known] = self.known_as[at] == keys
        return found

    def row_frequencies(self, query: pl.DataFrame) -> dict[str, npt.NDArray[np.float64]]:
        """Per query row, the reference frequency of its given name, surname, postcode and full name
        (NaN where the reference lacks it), and the number of its given name (`given_ids`): looked up once
        per row, then gathered per pair for `score`."""
        values = query.select(
            *(pl.col(column).alias(value) for column, value in (("given1", "tf_given_value"),
              ("family", "tf_family_value"), ("postcode", "tf_postcode_value")))
        )  # fmt: skip
        return _frequency_columns(values, self)

    def record_spellings(self, reference: pl.DataFrame) -> dict[str, npt.NDArray[np.float64]]:
        """Per reference row, for given name and surname: the reference frequency of the rarer of its first
        and preferred forms (0 for a form the reference does not hold as a first name or surname, NaN
        where the record has neither), for `ordinary_spellings`; and the numbers of its first and
        preferred given names (`given1_id`, `pref_given1_id`), for `known_as_pair`."""
        shares = {}
        for field, columns in _RECORD_SPELLINGS.items():
            value_column, share_column = self.tables[field].columns
            table = self.tables[field]
            forms = [
                pl.when(pl.col(column).is_not_null()).then(
                    pl.col(column).replace_strict(
                        table[value_column], table[share_column], default=0.0, return_dtype=pl.Float64
                    )
                )
                for column in columns
            ]
            shares[field] = (
                reference.select(pl.min_horizontal(forms).fill_null(float("nan"))).to_series().to_numpy()
            )
        for column in _RECORD_SPELLINGS["given"]:
            shares[f"{column}_id"] = self.given_ids(reference[column])
        return shares

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


# The levels of surname and address that siblings share (see `Weighing.weigh`, the household cap).
HOUSEHOLD_LEVELS: dict[str, tuple[str, ...]] = {
    "family": ("exact", "partial", "former"),
    "address": ("postcode_and_house", "postcode", "house_and_street"),
}


# `Weighing.weigh` takes and gives the pairs' level codes and weights as one 2-D array each, a row per field
# in `WEIGHED` order, and the shares as a row per `SHARES` entry: one numpy call covers several fields (a
# real-time query weighs ~6 pairs, where each call's fixed cost is nearly all of its cost). The fields each
# step reads lead the order, so that a slice, not a copy, holds them.
WEIGHED: tuple[str, ...] = ("given", "family", "address", "dob", "middle", "sex", "nhs")
# The query's shares: the full name's, then the term-frequency fields' (rows `_TF_ROWS` of `freq[1:]`).
SHARES: tuple[str, ...] = ("name", *_TF_SOURCES)
# The record's (`TermFrequencies.record_spellings`), after them when known.
SPELLINGS: tuple[str, ...] = tuple(_RECORD_SPELLINGS)


def _leading(fields: Iterable[str]) -> slice:
    """The rows of `fields`, which must lead `WEIGHED` in the same order."""
    fields = tuple(fields)
    if WEIGHED[: len(fields)] != fields:
        raise ValueError(f"{fields} do not lead {WEIGHED}")
    return slice(0, len(fields))


if sorted(WEIGHED) != sorted(FIELDS) or WEIGHED[_leading(NEAR_LEVELS)] != SPELLINGS:
    raise ValueError("WEIGHED must hold every field, the record's spellings those of the near levels")
_NEAR_ROWS = _leading(NEAR_LEVELS)
_TF_ROWS = _leading(_TF_SOURCES)
_BOTH_ROWS = _leading(BOTH_SIDES_LEVELS)
_ROW = {field: at for at, field in enumerate(WEIGHED)}
_GIVEN, _FAMILY, _ADDRESS = _ROW["given"], _ROW["family"], _ROW["address"]
# The near fields a slip must have flagged (`SLIP_ONLY`).
_SLIP_ONLY_ROWS = [_ROW[field] for field in NEAR_LEVELS if field in SLIP_ONLY]
_NEAR_DIFFERENT = np.array([[level_code(field, "different")] for field in NEAR_LEVELS], dtype=np.int8)
# The shares a swapped pair lacks (its names were read across): the query's full name's and names'.
_NAME_SHARES = np.array(
    [[share in ("name", "given", "family")] for share in SHARES] + [[False]] * len(SPELLINGS)
)
_EQUIVALENT = level_code("given", "equivalent")
_GIVEN_EXACT, _FAMILY_EXACT = level_code("given", "exact"), level_code("family", "exact")
# Per-(field, level code) tables are flattened, (row, code) at `_STARTS[row] + code`: one gather looks up
# every field's codes.
_SIZES = [len(FIELD_LEVELS[field]) + 1 for field in WEIGHED]
_STARTS: npt.NDArray[np.int64] = np.cumsum([0, *_SIZES[:-1]]).reshape(-1, 1)


def _flat(values: Mapping[str, Mapping[int, float]], default: float) -> npt.NDArray[np.float64]:
    """A per-(field, level code) table, flattened: `values` by field and code, `default` elsewhere."""
    table = np.full(sum(_SIZES), default)
    for field, by_code in values.items():
        for code, value in by_code.items():
            table[_STARTS[_ROW[field], 0] + code] = value
    return table


def _among(levels: Mapping[str, tuple[str, ...]]) -> npt.NDArray[np.bool_]:
    """Per (field, level code), flattened: whether it is one of the field's `levels`."""
    by_code = {field: {level_code(field, level): 1.0 for level in names} for field, names in levels.items()}
    return _flat(by_code, 0.0).astype(bool)


_NEAR = _among(NEAR_LEVELS)
_BOTH_SIDES = _among(BOTH_SIDES_LEVELS)
_TF = _among(TF_LEVELS)
_HOUSEHOLD = _among(HOUSEHOLD_LEVELS)


@dataclass(frozen=True)
class Weighing:
    """The model's and the reference's constants for weighing pairs, and the weighing itself: the one
    definition of every weight, adjustment and cap, run by the batch scorer (`score`, over all pairs) and
    the one-record scorer (`single.Scorer`, over one query's candidates)."""

    # log2(m/u) per (field, level code), flattened (`weight_tables`).
    weights: npt.NDArray[np.float64]
    # log2 of the mean frequency per term-frequency field, then per both-sides field (a column).
    mean_bits: npt.NDArray[np.float64]
    floor: float
    # Per term-frequency field, the exact level's weight (0 for the address, which has no capped level).
    exact: npt.NDArray[np.float64]
    # Per (field, level code), flattened: `exact_offsets`, +inf for the levels it does not cap.
    offsets: npt.NDArray[np.float64]
    full_name_bits: float
    household_cap: float
    prior: float

    @classmethod
    def of(cls, model: MatchModel, tf: TermFrequencies) -> Weighing:
        m_family, m_address = model.fields["family"].m[0], model.fields["address"].m[0]
        tables = weight_tables(model, tf)
        means = [math.log2(tf.mean[field]) for field in (*_TF_SOURCES, *BOTH_SIDES_LEVELS)]
        exact = [
            tables[field][level_code(field, _SAME_VALUE_LEVELS[field])]
            if field in _SAME_VALUE_LEVELS
            else 0.0
            for field in _TF_SOURCES
        ]
        return cls(
            np.concatenate([tables[field] for field in WEIGHED]),
            np.array(means).reshape(-1, 1),
            model.tf_floor,
            np.array(exact).reshape(-1, 1),
            _flat({field: exact_offsets(model, field) for field in BOUNDED_BY_EXACT}, math.inf),
            math.log2(model.fields["given"].m[0] * m_family),
            math.log2(m_family * m_address * model.population(tf.size) / model.household_children),
            model.prior_bits(tf.size),
        )

    def weigh(
        self,
        codes: npt.NDArray[np.integer[Any]],
        swapped: npt.NDArray[np.bool_],
        family_slip: npt.NDArray[np.bool_] | None,
        shares: npt.NDArray[np.float64],
        known_as: Callable[[npt.NDArray[np.int64]], npt.NDArray[np.bool_]] | None,
    ) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float64]]:
        """(levels weighed, weights) of pairs with these comparison levels (`codes`): a row per field.

        `shares`: a row per `SHARES` entry, per pair the reference share of the query's full name, given
        name, surname and postcode (NaN where the reference lacks it; a pair whose names were swapped has
        none of the names'); then, if the record's spellings are known, a row per `SPELLINGS` entry, per
        pair the share of the rarer of the record's forms (`TermFrequencies.record_spellings`). With
        those, `family_slip` and `known_as`
        (whether the query's given name and one of the record's forms are a known-as pair the reference
        holds, for the pairs at the rows given), a known-as pair is read as "equivalent" and a near given
        name or surname between two ordinary spellings as "different" (see `SLIP_RARITY`); without it the
        levels stand.
        """
        # Steps whose mask holds for no pair are skipped: a real-time query's few pairs seldom need them
        # all, and the numpy calls cost the same however few elements they touch.
        kept = ~swapped
        spelled = len(shares) > len(SHARES)
        if np.count_nonzero(swapped):
            shares = np.where(_NAME_SHARES[: len(shares)] & swapped, np.nan, shares)
        levels = codes.astype(np.int8)  # a copy: the levels weighed are changed below
        if spelled:
            assert known_as is not None and family_slip is not None
            # A known-as pair the reference itself holds (first name and preferred name of its records) is
            # an equivalent name, like the pairs of the name table.
            given = levels[_GIVEN]
            weaker = ((given > _EQUIVALENT) & kept).nonzero()[0]
            if weaker.size:
                given[weaker[known_as(weaker)]] = _EQUIVALENT
            names = levels[_NEAR_ROWS]
            near = _NEAR[names + _STARTS[_NEAR_ROWS]] & kept
            if np.count_nonzero(near):
                for row in _SLIP_ONLY_ROWS:
                    near[row] &= family_slip
                near &= ordinary_spellings(shares[1:][_NEAR_ROWS], shares[len(SHARES) :])
                np.copyto(names, _NEAR_DIFFERENT, where=near)
        at = levels + _STARTS
        weights = self.weights[at]
        # log2 of the shares, once for the full-name cap and the term-frequency adjustments (and those of
        # the record's names, for a both-sides level: its fields lead `SPELLINGS`, as they lead `WEIGHED`).
        logs = _log2(
            np.maximum(shares[: len(SHARES) + (len(BOTH_SIDES_LEVELS) if spelled else 0)], self.floor)
        )
        # np.clip's exact result, without its overhead; 0 where the share is unknown.
        adjustments = self.mean_bits[: len(logs) - 1] - logs[1:]
        adjustments = np.minimum(np.maximum(adjustments, TF_MIN_BITS), TF_MAX_BITS)
        adjustments[np.isnan(adjustments)] = 0.0
        adjustment = adjustments[_TF_ROWS]
        tf_at, weight = at[_TF_ROWS], weights[_TF_ROWS]
        adjusted = weight + adjustment
        # A partial agreement is worth no more than the exact one (less the offset of a level drawing on
        # the same pool of names), for the query's value, and for a both-sides level the record's too.
        exact = self.exact + adjustment
        both_sides = _BOTH_SIDES[tf_at[_BOTH_ROWS]]
        if spelled and np.count_nonzero(both_sides):
            both_exact = self.exact[_BOTH_ROWS] + adjustments[len(_TF_SOURCES) :]
            both = exact[_BOTH_ROWS]
            np.copyto(both, np.minimum(both, both_exact), where=both_sides)
        np.minimum(weight, exact + self.offsets[tf_at], out=weight)
        np.copyto(weight, adjusted, where=_TF[tf_at])
        self._cap_full_name(weights, levels, logs[0])
        self._cap_household(weights, at)
        return levels, weights

    def _cap_full_name(
        self, weights: npt.NDArray[np.float64], codes: npt.NDArray[np.int8], name_log: npt.NDArray[np.float64]
    ) -> None:
        """Given and surname both exact: worth no more than the frequency of the full name itself.

        Names are not independent (families, fashions, and in Wales a handful of surnames), so a common
        pairing such as Ffion Jones is far more frequent than tf(Ffion) x tf(Jones). The surname weight
        absorbs the difference, keeping the explanation per field.
        """
        exact = (codes[_GIVEN] == _GIVEN_EXACT) & (codes[_FAMILY] == _FAMILY_EXACT)
        if np.count_nonzero(exact):
            # NaN where the reference lacks the full name: not over.
            over = weights[_GIVEN] + weights[_FAMILY] - (self.full_name_bits - name_log)
            np.subtract(weights[_FAMILY], over, out=weights[_FAMILY], where=exact & (over > 0))

    def _cap_household(self, weights: npt.NDArray[np.float64], at: npt.NDArray[np.int64]) -> None:
        """Address weight after capping surname + address agreement at what a shared household is worth.

        Fellegi-Sunter multiplies the surname and address evidence as if independent, but siblings share
        both: among non-matching pairs, "same surname at the same address" happens about
        `household_children` times per child, not tf(surname) x tf(postcode). Without the cap a rare
        surname plus a small postcode outweighs a different given name and date of birth, and siblings get
        merged.
        """
        household = _HOUSEHOLD[at[_FAMILY]] & _HOUSEHOLD[at[_ADDRESS]]
        if np.count_nonzero(household):
            over = weights[_FAMILY] + weights[_ADDRESS] - self.household_cap
            np.subtract(weights[_ADDRESS], over, out=weights[_ADDRESS], where=household & (over > 0))


def score(
    levels: pl.DataFrame,
    model: MatchModel,
    tf: TermFrequencies,
    frequencies: Mapping[str, npt.NDArray[np.float64]] | None = None,
    spellings: Mapping[str, npt.NDArray[np.float64]] | None = None,
) -> pl.DataFrame:
    """Adds weight_<field> (bits), prior, match_weight and match_probability to compared pairs.

    `frequencies` (per pair, from `TermFrequencies.row_frequencies` gathered by the pairs' query rows)
    saves looking the query's values up by string for every pair; without it they are looked up from
    the pairs' `tf_*_value` columns. Either way a pair whose names were swapped has no given, surname or
    full-name frequency. `spellings` (per pair, from `TermFrequencies.record_spellings` gathered by the
    pairs' reference rows) turns a near given name or surname between two ordinary spellings into
    "different" (see `SLIP_RARITY`); the levels returned are the levels weighed. The weights are
    `Weighing.weigh`'s, in numpy (log2 as ln/ln 2, to the bit of the polars expressions it replaced); the
    total by polars.
    """
    weighing = Weighing.of(model, tf)
    freq = _pair_frequencies(levels, tf) if frequencies is None else frequencies
    known_as = None if spellings is None else _known_as_lookup(tf, freq["given_id"], spellings)
    codes, weights = weighing.weigh(
        np.stack([levels[field].to_numpy() for field in WEIGHED]),
        levels["names_swapped"].to_numpy(),
        levels["family_slip"].to_numpy() if spellings is not None else None,
        np.stack(
            [freq[share] for share in SHARES]
            + ([] if spellings is None else [spellings[f] for f in SPELLINGS])
        ),
        known_as,
    )
    if spellings is not None:
        levels = levels.with_columns(
            *(pl.Series(field, codes[_ROW[field]], dtype=pl.Int8) for field in NEAR_LEVELS)
        )
    prior = weighing.prior
    # The total and probability as polars expressions: `sum_horizontal` does not add left to right, and
    # the weights should stay bit-identical to the previous code's (ties are then decided the same way).
    weighted = levels.with_columns(
        *(pl.Series(f"weight_{field}", weights[_ROW[field]], dtype=pl.Float64) for field in FIELDS)
    )
    total = pl.sum_horizontal([f"weight_{f}" for f in FIELDS]) + prior
    return weighted.with_columns(prior=pl.lit(prior), match_weight=total).with_columns(
        match_probability=probability(pl.col("match_weight"))
    )


def _known_as_lookup(
    tf: TermFrequencies, given_ids: npt.NDArray[np.float64], spellings: Mapping[str, npt.NDArray[np.float64]]
) -> Callable[[npt.NDArray[np.int64]], npt.NDArray[np.bool_]]:
    """Whether the pairs at some rows pair the query's given name with one of the record's forms as a
    known-as pair the reference holds (by the names' numbers, `TermFrequencies.given_ids`)."""

    def known_as(rows: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        query_name = given_ids[rows]
        found: npt.NDArray[np.bool_] = tf.known_as_pair(
            query_name, spellings["given1_id"][rows]
        ) | tf.known_as_pair(query_name, spellings["pref_given1_id"][rows])
        return found

    return known_as


def _log2(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """log2 as polars' `.log(2)` computes it (ln x / ln 2), so weights agree to the bit."""
    logged: npt.NDArray[np.float64] = np.log(values) / math.log(2.0)
    return logged


def _frequency_columns(values: pl.DataFrame, tf: TermFrequencies) -> dict[str, npt.NDArray[np.float64]]:
    """Reference frequencies of the query values in `values` (columns tf_<field>_value), NaN where the
    reference lacks the value or it is null: per field, and of the full name (given + surname)."""
    joined = values
    for field, (_, value_column) in _TF_SOURCES.items():
        joined = joined.join(tf.tables[field], on=value_column, how="left", maintain_order="left")
    joined = joined.join(
        tf.full_names, on=["tf_given_value", "tf_family_value"], how="left", maintain_order="left"
    )
    out = {field: joined[f"tf_{field}"].cast(pl.Float64).to_numpy() for field in _TF_SOURCES}
    out["name"] = joined["tf_name"].cast(pl.Float64).to_numpy()
    out["given_id"] = tf.given_ids(values["tf_given_value"])
    return out


# A first/preferred pairing held by this many records is a known-as form, not one school's whim.
KNOWN_AS_RECORDS = 2


def _known_as_pairs(reference: pl.DataFrame) -> tuple[pl.DataFrame, npt.NDArray[np.int64]]:
    """The reference's given names (first and preferred) numbered, and the known-as pairs it holds."""
    names = (
        pl.concat([reference["given1"], reference["pref_given1"]])
        .drop_nulls()
        .unique()
        .sort()
        .alias("value")
        .to_frame()
        .with_row_index("id")
    )
    size = names.height
    held = (
        reference.select(a="given1", b="pref_given1")
        .drop_nulls()
        .filter(pl.col("a") != pl.col("b"))
        .group_by("a", "b")
        .len()
        .filter(pl.col("len") >= KNOWN_AS_RECORDS)
    )
    ids = dict(zip(names["value"].to_list(), names["id"].to_list(), strict=True))
    a = np.array([ids[v] for v in held["a"].to_list()], dtype=np.int64)
    b = np.array([ids[v] for v in held["b"].to_list()], dtype=np.int64)
    keys = np.unique(np.concatenate([a * size + b, b * size + a]))
    return names, keys


def _pair_frequencies(levels: pl.DataFrame, tf: TermFrequencies) -> dict[str, npt.NDArray[np.float64]]:
    return _frequency_columns(levels.select(value for _, value in _TF_SOURCES.values()), tf)


@overload
def probability(weight: pl.Expr) -> pl.Expr: ...
@overload
def probability(weight: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...
def probability(weight: Any) -> Any:
    """Match probability of a match weight in bits: one formula for a polars column and a numpy array."""
    return 1.0 / (1.0 + (2.0 ** (-weight.clip(-60.0, 60.0))))


def weight_for_probability(p: float) -> float:
    return float(np.log2(p / (1 - p)))
