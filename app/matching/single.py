"""One record against a few: the one-record path of `frames.canonicalise`, `compare.compare` and `score.score`.

The batch pipeline pays a fixed cost per polars operation, which is nothing over a million pairs and
nearly all of the time for one query record (~100 ms for a one-row frame). Here the query record is
normalised with the `normalise`/`names` functions into a dict keyed like the canonical frame's columns (so
a canonical frame row, `frame.to_dicts()`, is a valid input too); each candidate pair is compared by the
comparison rules of `rules.py`, compiled to plain Python (the batch path reads the same rules as polars
expressions), and weighed with the same weight tables, term-frequency adjustments and caps as `link`.
Parity: tests/matching/test_realtime_parity.py (pair by pair against the batch engine on a synthetic
population) and tests/matching/test_rules.py (random and adversarial pairs); decision 0022 says what is
still written twice and why.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jellyfish

from app.core import identifiers
from app.matching import normalise
from app.matching.frames import SEXES
from app.matching.names import given_groups
from app.matching.params import FIELD_LEVELS, FIELDS, TF_LEVELS, MatchModel, level_code
from app.matching.rules import SWAP_CLEARS, compare_levels
from app.matching.score import (
    BOTH_SIDES_LEVELS,
    BOUNDED_BY_EXACT,
    NEAR_LEVELS,
    SLIP_ONLY,
    SLIP_RARITY,
    TF_MAX_BITS,
    TF_MIN_BITS,
    TermFrequencies,
    exact_offsets,
    weight_tables,
)

Canonical = dict[str, Any]
_AREA = re.compile(r"^([A-Z]+)")
_LN2 = math.log(2)
_CODE = {
    field: {level: level_code(field, level) for level in levels} for field, levels in FIELD_LEVELS.items()
}


# --- Normalisation of one record ------------------------------------------------------------------------


def _tokens(folded: str | None) -> list[str]:
    return folded.split(" ") if folded else []


def _phonetic(token: str | None) -> str | None:
    return jellyfish.metaphone(token) or None if token else None


def _sounds(tokens: list[str]) -> set[str]:
    """Metaphone codes of name tokens: the blocking keys `frames` builds from name parts."""
    return {code for token in tokens if (code := _phonetic(token)) is not None}


def _first(values: list[str]) -> str | None:
    return values[0] if values else None


def _as_date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _newline_split(values: list[str]) -> list[str]:
    """Multi-valued items as `records_to_frame` carries them: joined by newlines, split, blanks dropped."""
    return [part for part in "\n".join(values).split("\n") if part != ""]


def canonical_record(record: Mapping[str, Any]) -> Canonical:
    """A submission-shaped record -> the canonical frame's columns for it, as `records_to_frame` builds them."""
    address = record.get("address") or {}
    former = record.get("former_names") or []
    given = normalise.person_name(record.get("given_name"))
    family = normalise.person_name(record.get("family_name"))
    pref_family = normalise.person_name(record.get("preferred_family_name"))
    given_tokens = _tokens(given)
    middle_tokens = _tokens(normalise.person_name(record.get("middle_names")))
    pref_tokens = _tokens(normalise.person_name(record.get("preferred_given_name")))
    former_given = [
        token
        for name in _newline_split([f.get("given_name") or "" for f in former])
        if (token := _first(normalise.tokens(name))) is not None
    ]
    former_family = [
        compact
        for name in _newline_split([f.get("family_name") or "" for f in former])
        if (compact := normalise.compact(name)) is not None
    ]
    address_lines = "\n".join(_newline_split(list(address.get("lines") or []))).split("\n")
    postcode = identifiers.normalise_postcode(address.get("postcode"))
    sector, district, area = None, None, None
    if postcode is not None:
        district = postcode.split(" ")[0]
        sector = postcode[: len(postcode) - 2]
        found = _AREA.match(district)
        area = found.group(1) if found else None
    raw_sex = record.get("sex")
    sex = str(getattr(raw_sex, "value", raw_sex)).upper().strip() if raw_sex is not None else None
    dob = _as_date(record.get("date_of_birth"))
    given1, pref_given1 = _first(given_tokens), _first(pref_tokens)
    given_c1, given_c2 = given_groups(given1)
    pref_c1, pref_c2 = given_groups(pref_given1)
    family_compact = family.replace(" ", "") if family else None
    given_sounds = _sounds([*given_tokens, *middle_tokens, *pref_tokens, *former_given])
    family_sounds = _sounds([*_tokens(family), *former_family, *([family_compact] if family_compact else [])])
    groups = {"=" + g for g in (given_c1, given_c2, pref_c1, pref_c2) if g is not None}
    return {
        "given_tokens": given_tokens,
        "middle_tokens": middle_tokens,
        "family_tokens": _tokens(family),
        "pref_tokens": pref_tokens,
        "former_given": former_given,
        "former_family": former_family,
        "family": family_compact,
        "pref_family": pref_family.replace(" ", "") if pref_family else None,
        "dob": dob,
        "postcode": postcode,
        "house_no": normalise.house_number(address_lines),
        "street": normalise.street_key(address_lines),
        "sex": sex if sex in SEXES else None,
        "nhs": identifiers.nhs_digits(record.get("nhs_number")),
        "given1": given1,
        "pref_given1": pref_given1,
        "middle1": _first(middle_tokens),
        "given_alt": [*given_tokens[1:], *middle_tokens, *pref_tokens[1:]],
        "dob_y": dob.year if dob else None,
        "dob_m": dob.month if dob else None,
        "dob_d": dob.day if dob else None,
        "pc_sector": sector,
        "pc_district": district,
        "pc_area": area,
        "given_c1": given_c1,
        "given_c2": given_c2,
        "pref_c1": pref_c1,
        "pref_c2": pref_c2,
        "name_keys": sorted(given_sounds | family_sounds | groups),
        "given_ph": _phonetic(given1),
        "family_ph": _phonetic(family_compact),
    }


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

_TF_VALUE = {"given": "tf_given_value", "family": "tf_family_value", "address": "tf_postcode_value"}
_TF_CODES = {field: frozenset(level_code(field, lv) for lv in levels) for field, levels in TF_LEVELS.items()}
_BOUNDED_CODES = {f: frozenset(level_code(f, lv) for lv in levels) for f, levels in BOUNDED_BY_EXACT.items()}
_EXACT_CODE = {field: level_code(field, "exact") for field in BOUNDED_BY_EXACT}
_NEAR_CODES = {f: frozenset(level_code(f, lv) for lv in levels) for f, levels in NEAR_LEVELS.items()}
_EQUIVALENT = level_code("given", "equivalent")
_BOTH_SIDES_CODES = {
    f: frozenset(level_code(f, lv) for lv in levels) for f, levels in BOTH_SIDES_LEVELS.items()
}
_HOUSEHOLD_FAMILY = frozenset(level_code("family", lv) for lv in ("exact", "partial", "former"))
_HOUSEHOLD_ADDRESS = frozenset(
    level_code("address", lv) for lv in ("postcode_and_house", "postcode", "house_and_street")
)


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


def _bits(share: float, floor: float) -> float:
    # ln/ln2 rather than log2: the batch path's polars `log(2)` computes it that way, to the last bit.
    return math.log(max(share, floor)) / _LN2


@dataclass(frozen=True)
class Scorer:
    """`score.score` for one pair at a time: the model's weight tables and the reference's frequencies,
    with the constants of the caps worked out once."""

    model: MatchModel
    frequencies: Frequencies
    tables: dict[str, list[float]]
    prior: float
    m_both: float
    household_cap: float
    exact_offsets: dict[str, dict[int, float]]

    @classmethod
    def of(cls, model: MatchModel, tf: TermFrequencies) -> Scorer:
        m_family, m_address = model.fields["family"].m[0], model.fields["address"].m[0]
        return cls(
            model,
            Frequencies.of(tf),
            {field: table.tolist() for field, table in weight_tables(model, tf).items()},
            model.prior_bits(tf.size),
            math.log2(model.fields["given"].m[0] * m_family),
            math.log2(m_family * m_address * model.population(tf.size) / model.household_children),
            {field: exact_offsets(model, field) for field in BOUNDED_BY_EXACT},
        )

    def _record_adjustment(self, field: str, forms: Sequence[str | None]) -> float:
        """The term-frequency adjustment of the rarer of the record's forms (as `score.score` takes it from
        `TermFrequencies.record_spellings`: a form the reference lacks counts as share 0)."""
        held = [self.frequencies.values[field].get(form, 0.0) for form in forms if form is not None]
        if not held:
            return 0.0
        bits = self.frequencies.mean_bits[field] - _bits(min(held), self.model.tf_floor)
        return min(max(bits, TF_MIN_BITS), TF_MAX_BITS)

    def score(self, levels: Mapping[str, Any]) -> dict[str, Any]:
        """The levels with weight_<field>, prior, match_weight and match_probability, as `score.score`."""
        freq, floor = self.frequencies, self.model.tf_floor
        levels = dict(levels)
        if not levels["names_swapped"]:
            name = levels["tf_given_value"]
            if levels["given"] > _EQUIVALENT and any(
                (name, form) in freq.known_as for form in levels["record_given_forms"] if form is not None
            ):
                levels["given"] = _EQUIVALENT
            for field, forms in (("given", "record_given_forms"), ("family", "record_family_forms")):
                if levels[field] in _NEAR_CODES[field] and (
                    field not in SLIP_ONLY or levels[f"{field}_slip"]
                ):
                    shares = freq.values[field]
                    query = shares.get(levels[_TF_VALUE[field]], 0.0)
                    held = [shares.get(form, 0.0) for form in levels[forms] if form is not None]
                    record = min(held) if held else 0.0
                    if min(query, record) * SLIP_RARITY > max(query, record):
                        levels[field] = _CODE[field]["different"]
        weights: dict[str, float] = {}
        for field in FIELDS:
            code = levels[field]
            weight = self.tables[field][code]
            if field in _TF_VALUE and (code in _TF_CODES[field] or code in _BOUNDED_CODES.get(field, ())):
                share = freq.values[field].get(levels[_TF_VALUE[field]])
                adjustment = 0.0
                if share is not None:
                    adjustment = min(
                        max(freq.mean_bits[field] - _bits(share, floor), TF_MIN_BITS), TF_MAX_BITS
                    )
                if code in _TF_CODES[field]:
                    weight = weight + adjustment
                else:
                    exact = self.tables[field][_EXACT_CODE[field]] + adjustment
                    if code in _BOTH_SIDES_CODES.get(field, ()):
                        exact = min(exact, self.tables[field][_EXACT_CODE[field]] + self._record_adjustment(
                            field, levels[f"record_{field}_forms"]
                        ))  # fmt: skip
                    weight = min(weight, exact + self.exact_offsets[field][code])
            weights[field] = weight
        exact_names = (
            levels["given"] == _CODE["given"]["exact"] and levels["family"] == _CODE["family"]["exact"]
        )
        name_share = freq.full_names.get((levels["tf_given_value"], levels["tf_family_value"]))
        if exact_names and name_share is not None:
            over = weights["given"] + weights["family"] - (self.m_both - _bits(name_share, floor))
            if over > 0:
                weights["family"] = weights["family"] - over
        if levels["family"] in _HOUSEHOLD_FAMILY and levels["address"] in _HOUSEHOLD_ADDRESS:
            over = weights["family"] + weights["address"] - self.household_cap
            if over > 0:
                weights["address"] = weights["address"] - over
        total = 0.0
        for field in FIELDS:
            total += weights[field]
        total += self.prior
        return {
            **levels,
            **{f"weight_{field}": weights[field] for field in FIELDS},
            "prior": self.prior,
            "match_weight": total,
            "match_probability": 1.0 / (1.0 + 2.0 ** (-min(max(total, -60.0), 60.0))),
        }
