"""The match model as data: comparison levels, m/u probabilities, priors, thresholds.

A `MatchModel` is JSON-serialisable; `content_hash` identifies exactly the parameters an outcome was
computed with, and `version` is the human label. Level 0 of every field is "missing" (one side has no
value) and carries no weight; the named levels below are levels 1..n, best first.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

FIELD_LEVELS: dict[str, tuple[str, ...]] = {
    "given": ("exact", "equivalent", "alternative", "fuzzy_high", "fuzzy_low", "different"),
    "family": ("exact", "partial", "former", "fuzzy_high", "fuzzy_low", "different"),
    "dob": ("exact", "transposed", "one_day", "two_of_three", "different"),
    "address": (
        "postcode_and_house",
        "postcode",
        "house_and_street",
        "sector",
        "district",
        "area",
        "different",
    ),
    "middle": ("agree", "disagree", "one_sided"),
    "sex": ("agree", "disagree"),
    "nhs": ("agree", "disagree"),
}
FIELDS: tuple[str, ...] = tuple(FIELD_LEVELS)


def level_code(field: str, level: str) -> int:
    return FIELD_LEVELS[field].index(level) + 1


# Levels whose weight is replaced by a term-frequency one: agreement on a rare value is stronger evidence.
TF_LEVELS: dict[str, tuple[str, ...]] = {
    "given": ("exact",),
    "family": ("exact",),
    "address": ("postcode_and_house", "postcode"),
}

# Shipped defaults: m = P(level | same child), u = P(level | two random children). Chosen from what the
# error modes in section 8 of the domain brief imply and checked against EM on synthetic data.
_DEFAULT_M: dict[str, tuple[float, ...]] = {
    "given": (0.86, 0.05, 0.03, 0.03, 0.015, 0.015),
    "family": (0.86, 0.04, 0.04, 0.03, 0.015, 0.015),
    "dob": (0.90, 0.02, 0.02, 0.054, 0.006),
    "address": (0.70, 0.05, 0.02, 0.03, 0.04, 0.05, 0.11),
    "middle": (0.92, 0.08, 0.37),
    "sex": (0.98, 0.02),
    "nhs": (0.995, 0.005),
}
# A birth date's day and month swapped names exactly one other date, as an exact date names one: two random
# children agree that way about as often as they share a birthday (where the day is 12 or less; never
# otherwise), so the transposed level's u is the exact level's, not a tenth of it.
_DEFAULT_U: dict[str, tuple[float, ...]] = {
    "given": (0.01, 0.002, 0.002, 0.003, 0.02, 0.963),
    "family": (0.01, 0.001, 0.0005, 0.002, 0.02, 0.9665),
    "dob": (0.00025, 0.00025, 0.0005, 0.012, 0.98700),
    "address": (0.00001, 0.00002, 0.00001, 0.002, 0.02, 0.2, 0.77796),
    "middle": (0.03, 0.97, 0.8),
    "sex": (0.5, 0.5),
    "nhs": (0.000001, 0.999999),
}


class FieldParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    m: tuple[float, ...]
    u: tuple[float, ...]

    @model_validator(mode="after")
    def _probabilities(self) -> FieldParams:
        if len(self.m) != len(self.u) or any(not 0 < p <= 1 for p in (*self.m, *self.u)):
            raise ValueError("m and u must be same-length tuples of probabilities in (0, 1]")
        return self


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    matched: float = Field(0.85, description="Match probability at or above which a pair is matched.")
    possible: float = Field(0.70, description="At or above this (and below matched) a pair needs review.")
    margin_bits: float = Field(
        4.0,
        description="A matched pair whose runner-up candidate (another record for the same child, or another "
        "child for the same record) is within this many bits of weight is only 'possible'.",
    )

    unclaimed_review: float = Field(
        0.2,
        description="A row left without a record goes to review, not to the LA, when its best candidate is "
        "a record no row holds, at least two strong fields (given name, surname, birth date, home) agree "
        "exactly, the addresses lie in one postcode area, and the match probability is at least this: "
        "two errors at once (a stale address and a new surname) on a child every list still names.",
    )
    same_child: float = Field(
        0.95,
        description="Match probability two records of one side (two health lists, two registers) must reach "
        "to be taken as one child. Kept apart from `matched`: moving the match threshold must not make "
        "namesakes on two lists into one child.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if not 0 < self.unclaimed_review <= self.possible <= self.matched < 1:
            raise ValueError("need 0 < unclaimed_review <= possible <= matched < 1")
        return self


class Blocking(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_block: int = Field(
        300, description="Keys shared by more reference records than this are skipped in that pass."
    )


class MatchModel(BaseModel):
    """Everything that decides an outcome. Every outcome records `version` and `content_hash`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = "defaults-7"
    fields: dict[str, FieldParams] = Field(
        default_factory=lambda: {f: FieldParams(m=_DEFAULT_M[f], u=_DEFAULT_U[f]) for f in FIELDS}
    )
    match_rate: float = Field(
        0.94,
        gt=0,
        lt=1,
        description="Expected share of health-list children who are on some education register; with the "
        "reference size it sets the prior odds that a given pair is the child's record.",
    )
    population_size: int = Field(
        480_000,
        gt=0,
        description="School-age children in Wales, roughly: the least population a coincidental match is "
        "drawn from, whatever the size of the registers being linked.",
    )
    household_children: float = Field(
        1.0,
        gt=0,
        description="Other children sharing a surname and address with a child, on average: caps what that "
        "shared household evidence is worth (siblings have it too).",
    )
    tf_floor: float = Field(
        1e-6, gt=0, description="Lowest term frequency used, so one-off values are bounded."
    )
    tf_prior_records: int = Field(
        2_000,
        gt=1,
        description="How many records' worth of pairs the model's u for an exact given name or surname "
        "counts for against the reference's own share of pairs holding one name: a small reference keeps "
        "the model's u, a large one supplies its own.",
    )
    given_different_caps_at_possible: bool = Field(
        True,
        description="A pair whose given names differ outright (not equivalent, not moved, not similar) is never "
        "'matched' automatically: that is exactly what twins and siblings look like.",
    )
    nhs_different_caps_at_possible: bool = Field(
        True,
        description="A pair whose NHS numbers are both valid and differ is never 'matched' automatically, "
        "however well the rest agrees: one of two identifiers is wrong, or these are two children, and an "
        "officer should say which.",
    )
    thresholds: Thresholds = Field(default_factory=Thresholds)
    blocking: Blocking = Field(default_factory=Blocking)

    @model_validator(mode="after")
    def _shape(self) -> MatchModel:
        if set(self.fields) != set(FIELDS):
            raise ValueError(f"fields must be exactly {FIELDS}")
        for name, params in self.fields.items():
            if len(params.m) != len(FIELD_LEVELS[name]):
                raise ValueError(f"field {name} needs {len(FIELD_LEVELS[name])} levels")
        return self

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]

    def weight_table(self, field: str) -> npt.NDArray[np.float64]:
        """log2(m/u) per level code, with 0.0 at code 0 (missing)."""
        params = self.fields[field]
        return np.array([0.0] + [math.log2(m / u) for m, u in zip(params.m, params.u, strict=True)])

    def population(self, reference_size: int) -> int:
        """How many children a record could coincide with: the registers held, but never fewer than the
        population they are drawn from (the children on no register are exactly the ones that matter)."""
        return max(reference_size, self.population_size)

    def prior_bits(self, reference_size: int) -> float:
        """log2 prior odds that one given reference record is the child's."""
        return math.log2(self.match_rate / (1 - self.match_rate) / self.population(reference_size))


DEFAULT_MODEL = MatchModel()
