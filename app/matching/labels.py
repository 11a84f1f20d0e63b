"""Officers' review decisions as labels, and a model re-estimated from them (issue 10, item 7; decision 0019).

A decided review is a labelled pair: `confirmed` says the health row and the record are one child,
`rejected` that they are not. Its stored evidence holds the pair's comparison level per field (`FIELDS`
order, 0 = missing; `engine.stored_evidence`), which is all a re-estimate of m needs: no name, date or
address is read.

`propose` turns decisions into a proposed `MatchModel`:

- **m, per field and level**, is the posterior mean with the active model's m as the prior, worth
  `prior_strength` confirmed pairs: ``m' = (S * m + n) / (S + N)``, where n is the number of confirmed
  pairs at the level and N the number of confirmed pairs in the level's base (the levels whose shares the
  model's m describes: every level of the field, except for the middle name, below). With no labels m'
  is m exactly; with many, it tends to the confirmed pairs' own shares. For a field whose m sums to 1
  this is the Dirichlet posterior mean with concentration S * m.
- **u is unchanged**: rejected pairs are the near misses officers were shown, not two random children.
- **thresholds are unchanged**: the report gives, for the active thresholds, how many confirmed and
  rejected decisions fall in each probability band, with the band's mean probability beside the share
  confirmed (calibration). Moving a threshold is the operator's call, made on that table.

Decisions are a selected sample: only pairs the engine found ambiguous reach an officer, so confirmed
pairs disagree more often than true pairs at large do. That is why the prior stays strong by default and
the proposal is never activated by this code (`cme model activate` is a separate, audited step).

`check_enough` refuses to estimate from too few decisions, too few LAs, or one LA supplying most of them,
over all decisions and again over the confirmed ones (which are what move m).
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.core.errors import ProblemError
from app.matching.params import FIELD_LEVELS, FIELDS, FieldParams, MatchModel

CONFIRMED, REJECTED = "confirmed", "rejected"

# The levels whose pairs a level's m is a share of. Every field's m is one distribution over its levels,
# except the middle name's (compare.py, decision 0002): agree/disagree are read when both sides have
# middle-type names, one_sided when the health row has some and the record none. So agree and disagree
# are shares of the pairs where both have them, and one_sided a share of the pairs where the health row
# has them (all three levels); the shipped m (0.92, 0.08, 0.37) follows that reading.
_BASES: dict[str, dict[str, tuple[str, ...]]] = {
    "middle": {"agree": ("agree", "disagree"), "disagree": ("agree", "disagree")},
}


def level_base(field_name: str, level: str) -> tuple[str, ...]:
    """The levels whose confirmed pairs are the denominator of this level's m."""
    return _BASES.get(field_name, {}).get(level, FIELD_LEVELS[field_name])


class NotEnoughDecisions(ProblemError):
    status, slug, title = 409, "not-enough-decisions", "Too few or too one-sided review decisions"


@dataclass(frozen=True, slots=True)
class Label:
    """One decided review: the LA whose officer decided, the decision, the pair's levels, its probability."""

    la: str
    confirmed: bool
    levels: tuple[int, ...]
    probability: float | None


@dataclass(frozen=True, slots=True)
class Rules:
    """When labels are enough: at least `min_decisions` in all, from at least `min_las` LAs, and no LA
    supplying more than `max_la_share` of them (the last two also over the confirmed decisions).

    The rules can be made stricter or looser, but never so loose that one LA's decisions alone would do:
    at least two LAs, and no LA's share allowed to be all.
    """

    min_decisions: int = 200
    min_las: int = 3
    max_la_share: float = 0.5

    def __post_init__(self) -> None:
        if self.min_decisions < 1 or self.min_las < 2 or not 0 < self.max_la_share < 1:
            raise ValueError(
                "need at least 1 decision, at least 2 LAs and a largest LA share above 0 and below 1: "
                "never one LA's decisions alone"
            )


DEFAULT_RULES = Rules()
# How many confirmed pairs the active model's m counts for. Decisions are the ambiguous pairs only (see the
# module docstring), so the labels should move m only once there are many of them: 500 confirmed pairs
# move m halfway from the prior to their own shares.
PRIOR_STRENGTH = 500.0


def read_label(la: str, review_status: str, evidence: Any, probability: float | None) -> Label | None:
    """A decided review as a label; None when its evidence carries no readable levels (an older format)."""
    if review_status not in (CONFIRMED, REJECTED) or not isinstance(evidence, Mapping):
        return None
    levels = evidence.get("levels")
    if not isinstance(levels, list) or len(levels) != len(FIELDS):
        return None
    for name, code in zip(FIELDS, levels, strict=True):
        if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= len(FIELD_LEVELS[name]):
            return None
    return Label(la=la, confirmed=review_status == CONFIRMED, levels=tuple(levels), probability=probability)


LevelCounts = dict[str, tuple[int, ...]]
"""Per field, the number of pairs at each level code (index 0 = missing, then the named levels)."""


def level_counts(labels: Iterable[Label], *, confirmed: bool) -> LevelCounts:
    counts = {name: [0] * (len(FIELD_LEVELS[name]) + 1) for name in FIELDS}
    for label in labels:
        if label.confirmed is confirmed:
            for name, code in zip(FIELDS, label.levels, strict=True):
                counts[name][code] += 1
    return {name: tuple(values) for name, values in counts.items()}


def estimate_m(
    prior: MatchModel, confirmed: LevelCounts, prior_strength: float
) -> dict[str, tuple[float, ...]]:
    """Per field, m' = (S * m + n) / (S + N) for each level (see the module docstring)."""
    if not prior_strength > 0 or not math.isfinite(prior_strength):
        raise ValueError("prior_strength must be a positive number of pseudo-counts")
    estimated: dict[str, tuple[float, ...]] = {}
    for name in FIELDS:
        levels = FIELD_LEVELS[name]
        n = dict(zip(levels, confirmed[name][1:], strict=True))
        m = dict(zip(levels, prior.fields[name].m, strict=True))
        estimated[name] = tuple(
            (prior_strength * m[level] + n[level])
            / (prior_strength + sum(n[b] for b in level_base(name, level)))
            for level in levels
        )
    return estimated


def _shares(labels: Sequence[Label]) -> Counter[str]:
    return Counter(label.la for label in labels)


def refusals(labels: Sequence[Label], rules: Rules) -> list[str]:
    """Why these labels are not enough (empty: they are)."""
    problems: list[str] = []
    if len(labels) < rules.min_decisions:
        problems.append(f"{len(labels)} decided review(s), at least {rules.min_decisions} needed")
    confirmed = [label for label in labels if label.confirmed]
    for what, subset in (("decisions", labels), ("confirmed decisions", confirmed)):
        by_la = _shares(subset)
        if len(by_la) < rules.min_las:
            problems.append(f"{what} from {len(by_la)} LA(s), at least {rules.min_las} needed")
        if subset:
            la, most = by_la.most_common(1)[0]
            if most / len(subset) > rules.max_la_share:
                problems.append(
                    f"{la} supplies {most} of {len(subset)} {what} ({most / len(subset):.0%}), "
                    f"more than {rules.max_la_share:.0%}"
                )
    return problems


def check_enough(labels: Sequence[Label], rules: Rules) -> None:
    problems = refusals(labels, rules)
    if problems:
        raise NotEnoughDecisions(
            "Refused to estimate from the review decisions: " + "; ".join(problems) + "."
        )


def bands(model: MatchModel) -> list[tuple[str, float, float]]:
    """The probability bands the active thresholds cut: (name, from, below); the last one includes 1."""
    t = model.thresholds
    return [
        ("below_unclaimed_review", 0.0, t.unclaimed_review),
        ("unclaimed_review_to_possible", t.unclaimed_review, t.possible),
        ("possible_to_matched", t.possible, t.matched),
        ("matched_and_above", t.matched, math.inf),
    ]


def band_table(labels: Sequence[Label], model: MatchModel) -> list[dict[str, Any]]:
    """Per band of the active thresholds: confirmed and rejected decisions, the share confirmed and the
    mean match probability the engine gave (a calibrated band has the two close)."""
    rows: list[dict[str, Any]] = []
    for name, low, high in bands(model):
        inside = [x for x in labels if x.probability is not None and low <= x.probability < high]
        confirmed = sum(1 for x in inside if x.confirmed)
        rows.append(
            {
                "band": name,
                "from": low,
                "below": None if math.isinf(high) else high,
                "confirmed": confirmed,
                "rejected": len(inside) - confirmed,
                "confirmed_share": round(confirmed / len(inside), 4) if inside else None,
                "mean_probability": (
                    round(sum(x.probability or 0.0 for x in inside) / len(inside), 4) if inside else None
                ),
            }
        )
    unknown = [x for x in labels if x.probability is None]
    if unknown:
        confirmed = sum(1 for x in unknown if x.confirmed)
        rows.append({"band": "no_probability", "confirmed": confirmed, "rejected": len(unknown) - confirmed})
    return rows


@dataclass(frozen=True)
class Proposal:
    model: MatchModel
    report: dict[str, Any] = field(default_factory=dict)


def labels_digest(labels: Sequence[Label]) -> str:
    """A digest of the labels an estimate was made from (order-independent), for the audit trail."""
    lines = sorted(f"{x.la}|{int(x.confirmed)}|{','.join(map(str, x.levels))}" for x in labels)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def propose(
    labels: Sequence[Label],
    base: MatchModel,
    *,
    rules: Rules | None = None,
    prior_strength: float = PRIOR_STRENGTH,
) -> Proposal:
    """The model re-estimated from these labels (m only; u, thresholds and rules from `base`) and the
    report an operator decides on. Raises `NotEnoughDecisions` when the labels are not enough."""
    rules = rules or DEFAULT_RULES
    check_enough(labels, rules)
    confirmed = level_counts(labels, confirmed=True)
    rejected = level_counts(labels, confirmed=False)
    m = estimate_m(base, confirmed, prior_strength)
    fields = {name: FieldParams(m=m[name], u=base.fields[name].u) for name in FIELDS}
    unlabelled = base.model_copy(update={"fields": fields, "version": "reviews"})
    model = unlabelled.model_copy(update={"version": f"reviews-{unlabelled.content_hash[:8]}"})
    # Validate once more as data: what `cme model activate` will read back.
    model = MatchModel.model_validate_json(model.model_dump_json())
    by_la: dict[str, dict[str, int]] = {}
    for label in labels:
        entry = by_la.setdefault(label.la, {CONFIRMED: 0, REJECTED: 0})
        entry[CONFIRMED if label.confirmed else REJECTED] += 1
    per_field: dict[str, list[dict[str, Any]]] = {}
    for name in FIELDS:
        rows = []
        for code, level in enumerate(FIELD_LEVELS[name], start=1):
            old, new, u = base.fields[name].m[code - 1], m[name][code - 1], base.fields[name].u[code - 1]
            rows.append(
                {
                    "level": level,
                    "confirmed": confirmed[name][code],
                    "rejected": rejected[name][code],
                    "m_old": round(old, 6),
                    "m_new": round(new, 6),
                    "weight_old_bits": round(math.log2(old / u), 3),
                    "weight_new_bits": round(math.log2(new / u), 3),
                }
            )
        per_field[name] = rows
    n_confirmed = sum(1 for x in labels if x.confirmed)
    report = {
        "version": model.version,
        "content_hash": model.content_hash,
        "base_version": base.version,
        "base_hash": base.content_hash,
        "prior_strength": prior_strength,
        "rules": {
            "min_decisions": rules.min_decisions,
            "min_las": rules.min_las,
            "max_la_share": rules.max_la_share,
        },
        "decisions": len(labels),
        "confirmed": n_confirmed,
        "rejected": len(labels) - n_confirmed,
        "labels_digest": labels_digest(labels),
        "by_la": dict(sorted(by_la.items())),
        "fields": per_field,
        "missing": {
            name: {"confirmed": confirmed[name][0], "rejected": rejected[name][0]} for name in FIELDS
        },
        "bands": band_table(labels, base),
        "thresholds": "unchanged (see bands)",
    }
    return Proposal(model=model, report=report)
