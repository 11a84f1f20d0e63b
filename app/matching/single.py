"""One record against a few: the one-record path of `frames.canonicalise`, `compare.compare` and `score.score`.

The batch pipeline pays a fixed cost per polars operation, which is nothing over a million pairs and
nearly all of the time for one query record (~100 ms for a one-row frame). Here the query record is
normalised by the recipe `frames.canonicalise` reads (its tables, the `normalise`/`names` cleaners) into a
dict keyed like the canonical frame's columns (so a canonical frame row, `frame.to_dicts()`, is a valid
input too); each candidate pair is compared by the
comparison rules of `rules.py`, compiled to plain Python (the batch path reads the same rules as polars
expressions), and weighed with the same weight tables, term-frequency adjustments and caps as `link`.
Parity: tests/matching/test_realtime_parity.py (pair by pair against the batch engine on a synthetic
population) and tests/matching/test_rules.py (random and adversarial pairs); decision 0022 says what is
still written twice and why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from app.core import identifiers
from app.matching import normalise
from app.matching.frames import (
    COMPACT,
    DATE_PARTS,
    FIRSTS,
    GIVEN_ALT,
    GROUP_KEYS,
    GROUPED,
    MAX_NAME_TOKENS,
    NAME_KEY_PARTS,
    PHONETIC,
    POSTCODE_PARTS,
    TOKENS,
    sex_reading,
)
from app.matching.names import given_groups
from app.matching.params import FIELDS, MatchModel
from app.matching.rules import SWAP_CLEARS, compare_levels
from app.matching.score import WEIGHED, TermFrequencies, Weighing, probability

Canonical = dict[str, Any]


# --- Normalisation of one record ------------------------------------------------------------------------


def _tokens(folded: str | None) -> list[str]:
    """A name field's tokens as `frames` keeps them: at most `MAX_NAME_TOKENS`."""
    return folded.split(" ")[:MAX_NAME_TOKENS] if folded else []


def _first(values: list[str]) -> str | None:
    return values[0] if values else None


def _newline_split(values: list[str]) -> list[str]:
    """Multi-valued items as `records_to_frame` carries them: joined by newlines, split, blanks dropped."""
    return [part for part in "\n".join(values).split("\n") if part != ""]


def _parts(value: list[str] | str | None) -> list[str]:
    return value if isinstance(value, list) else [value] if value is not None else []


def canonical_record(record: Mapping[str, Any]) -> Canonical:
    """A submission-shaped record -> the canonical frame's columns for it, as `records_to_frame` builds them
    (what each column is made of: the tables of `frames`)."""
    address = record.get("address") or {}
    former = record.get("former_names") or []
    folded = {name: normalise.person_name(record.get(name)) for name in (*TOKENS.values(), *COMPACT.values())}
    address_lines = "\n".join(_newline_split(list(address.get("lines") or []))).split("\n")
    postcode = identifiers.normalise_postcode(address.get("postcode"))
    dob = normalise.as_date(record.get("date_of_birth"))
    v: Canonical = {column: _tokens(folded[name]) for column, name in TOKENS.items()}
    v.update(
        former_given=[
            token
            for name in _newline_split([f.get("given_name") or "" for f in former])
            if (token := _first(normalise.tokens(name))) is not None
        ],
        former_family=[
            compact
            for name in _newline_split([f.get("family_name") or "" for f in former])
            if (compact := normalise.compact(name)) is not None
        ],
        dob=dob,
        postcode=postcode,
        house_no=normalise.house_number(address_lines),
        street=normalise.street_key(address_lines),
        sex=sex_reading(record.get("sex")),
        nhs=identifiers.nhs_digits(record.get("nhs_number")),
    )
    for column, name in COMPACT.items():
        surname = folded[name]
        v[column] = surname.replace(" ", "") if surname else None
    for column, tokens in FIRSTS.items():
        v[column] = _first(v[tokens])
    v["given_alt"] = [token for tokens, start in GIVEN_ALT for token in v[tokens][start:]]
    for column, part in DATE_PARTS.items():
        v[column] = getattr(dob, part) if dob else None
    v.update(zip(POSTCODE_PARTS, identifiers.postcode_parts(postcode), strict=True))
    for prefix, column in GROUPED.items():
        v[f"{prefix}_c1"], v[f"{prefix}_c2"] = given_groups(v[column])
    sounds = {
        code for part in NAME_KEY_PARTS for token in _parts(v[part]) if (code := normalise.phonetic(token))
    }
    v["name_keys"] = sorted(sounds | {"=" + v[key] for key in GROUP_KEYS if v[key] is not None})
    for column, name in PHONETIC.items():
        v[column] = normalise.phonetic(v[name])
    return v


# --- Comparison of one pair -----------------------------------------------------------------------------

# The canonical columns a reference record is compared on (the blocking keys are not among them).
REFERENCE_COLUMNS = (
    "given1", "pref_given1", "given_tokens", "given_alt", "given_c1", "given_c2", "pref_c1", "pref_c2",
    "given_ph", "family", "pref_family", "family_tokens", "former_family", "family_ph",
    "dob", "dob_y", "dob_m", "dob_d", "postcode", "pc_sector", "pc_district", "pc_area",
    "house_no", "street", "sex", "nhs",
)  # fmt: skip


def compare_pair(q: Mapping[str, Any], r: Mapping[str, Any]) -> dict[str, Any]:
    """Comparison levels of one (query, reference) pair of canonical records, as `compare.compare` rows:
    the rules of `rules.py`, run as the Python they compile to.

    Also the values the term-frequency adjustment looks up (`tf_*_value`, the query's), and the record's
    forms a near name may have been reached through (see `score.ordinary_spellings`).
    """
    levels = compare_levels(q, r)
    levels.update(
        tf_given_value=q["given1"],
        tf_family_value=q["family"],
        tf_postcode_value=q["postcode"],
        record_given_forms=(r["given1"], r["pref_given1"]),
        record_family_forms=(r["family"], r["pref_family"]),
    )
    if levels["names_swapped"]:
        levels.update(dict.fromkeys(SWAP_CLEARS))
    return levels


# --- Weights --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frequencies:
    """`TermFrequencies` as dicts: value -> share of the reference holding it."""

    values: dict[str, dict[str, float]]
    mean_bits: dict[str, float]
    full_names: dict[tuple[str, str], float]
    size: int
    known_as: frozenset[tuple[str, str]]

    @classmethod
    def of(cls, tf: TermFrequencies) -> Frequencies:
        values = {}
        for field, table in tf.tables.items():
            value_column, share_column = table.columns
            values[field] = dict(
                zip(table[value_column].to_list(), table[share_column].to_list(), strict=True)
            )
        names = tf.full_names
        full_names = dict(
            zip(
                zip(names["tf_given_value"].to_list(), names["tf_family_value"].to_list(), strict=True),
                names["tf_name"].to_list(),
                strict=True,
            )
        )
        given = tf.given_names["value"].to_list()
        size = len(given)
        known_as = frozenset((given[key // size], given[key % size]) for key in tf.known_as.tolist())
        return cls(values, {f: math.log2(m) for f, m in tf.mean.items()}, full_names, tf.size, known_as)


# The integer columns of a compared pair that `Scorer` weighs: the levels, then the swap and slip flags.
_LEVELLED = itemgetter(*WEIGHED, "names_swapped", "family_slip")
# The query's values whose reference shares it is weighed by.
_QUERY_VALUES = itemgetter("tf_given_value", "tf_family_value", "tf_postcode_value")
# `Weighing.weigh`'s rows in `FIELDS` order.
_IN_FIELDS_ORDER = np.array([WEIGHED.index(field) for field in FIELDS])
# What `Scorer.score_all` adds to or sets in a compared pair, in order.
_SCORED = (*FIELDS, *(f"weight_{field}" for field in FIELDS), "prior", "match_weight", "match_probability")


def _rarer_form(shares: Mapping[str, float], forms: tuple[str | None, str | None]) -> float:
    """The reference share of the rarer of a record's two forms, as `TermFrequencies.record_spellings`
    takes it: a form the reference lacks counts as share 0; NaN where the record has no form."""
    first, second = forms
    if first is None:
        return math.nan if second is None else shares.get(second, 0.0)
    if second is None:
        return shares.get(first, 0.0)
    return min(shares.get(first, 0.0), shares.get(second, 0.0))


@dataclass(frozen=True)
class Scorer:
    """`score.score` for one query's candidates: the same `score.Weighing`, fed from dicts (the reference's
    frequencies looked up per value rather than joined per column)."""

    weighing: Weighing
    frequencies: Frequencies

    @classmethod
    def of(cls, model: MatchModel, tf: TermFrequencies) -> Scorer:
        return cls(Weighing.of(model, tf), Frequencies.of(tf))

    def score_all(self, pairs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Each pair's levels (`compare_pair`) with weight_<field>, prior, match_weight and match_probability,
        as `score.score` gives them; the levels returned are the levels weighed."""
        if not pairs:
            return []
        freq, nan = self.frequencies, math.nan
        given, family, postcode = freq.values["given"], freq.values["family"], freq.values["address"]
        full_names = freq.full_names
        # One array per kind of value, a row per input (each np.array call costs more than its rows):
        # `score.SHARES`, then `score.SPELLINGS`.
        # A query's pairs share its values: each looked up once.
        queried: dict[tuple[str | None, str | None, str | None], tuple[float, float, float, float]] = {}
        for p in pairs:
            values = (query_given, query_family, query_postcode) = _QUERY_VALUES(p)
            if values not in queried:
                queried[values] = (
                    full_names.get((query_given, query_family), nan),
                    given.get(query_given, nan),
                    family.get(query_family, nan),
                    postcode.get(query_postcode, nan),
                )
        floats = np.array(
            [
                (
                    *queried[_QUERY_VALUES(p)],
                    _rarer_form(given, p["record_given_forms"]),
                    _rarer_form(family, p["record_family_forms"]),
                )
                for p in pairs
            ]
        ).T
        ints = np.array(list(map(_LEVELLED, pairs)), dtype=np.int8).T
        swapped, family_slip = ints[len(WEIGHED) :].astype(bool)

        def known_as(rows: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
            return np.array(
                [
                    any(
                        (pairs[i]["tf_given_value"], form) in freq.known_as
                        for form in pairs[i]["record_given_forms"]
                        if form is not None
                    )
                    for i in rows.tolist()
                ],
                dtype=bool,
            )

        codes, weights = self.weighing.weigh(
            ints[: len(WEIGHED)],
            swapped,
            family_slip,
            floats,
            known_as,
        )
        codes, weights = codes[_IN_FIELDS_ORDER], weights[_IN_FIELDS_ORDER]
        prior = self.weighing.prior
        # Added left to right, field by field, then the prior.
        total = np.zeros(len(pairs))
        for weight in weights:
            total += weight
        total += prior
        out = []
        for pair, levels, weighed, match_weight, match_probability in zip(
            pairs,
            codes.T.tolist(),
            weights.T.tolist(),
            total.tolist(),
            probability(total).tolist(),
            strict=True,
        ):
            scored = dict(pair)
            scored.update(
                zip(_SCORED, levels + weighed + [prior, match_weight, match_probability], strict=True)
            )
            out.append(scored)
        return out

    def score(self, levels: Mapping[str, Any]) -> dict[str, Any]:
        """One pair (`score_all` of one)."""
        return self.score_all([levels])[0]
