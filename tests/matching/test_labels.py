"""Review decisions as labels (app.matching.labels): pure functions, no database."""

from __future__ import annotations

import math

import pytest

from app.matching.labels import (
    Label,
    NotEnoughDecisions,
    Rules,
    band_table,
    estimate_m,
    level_base,
    level_counts,
    propose,
    read_label,
    refusals,
)
from app.matching.params import DEFAULT_MODEL, FIELD_LEVELS, FIELDS, MatchModel, level_code

LAS = ("W06000015", "W06000011", "W06000022", "W06000001")
EXACT = tuple(1 for _ in FIELDS)  # every field at its best level


def levels(**at: str) -> tuple[int, ...]:
    """Level codes in FIELDS order: the best level, except the fields named (level name, or 'missing')."""
    return tuple(0 if at.get(f) == "missing" else level_code(f, at[f]) if f in at else 1 for f in FIELDS)


def labels(
    count: int, *, confirmed: bool = True, las: tuple[str, ...] = LAS, probability: float = 0.8, **at: str
) -> list[Label]:
    return [
        Label(la=las[i % len(las)], confirmed=confirmed, levels=levels(**at), probability=probability)
        for i in range(count)
    ]


def counts(**by_field: dict[str, int]) -> dict[str, tuple[int, ...]]:
    """Synthetic confirmed level counts: {field: {level: n}}, zero elsewhere."""
    return {f: tuple([0] + [by_field.get(f, {}).get(level, 0) for level in FIELD_LEVELS[f]]) for f in FIELDS}


class TestEstimateM:
    def test_no_labels_is_the_prior_exactly(self) -> None:
        m = estimate_m(DEFAULT_MODEL, counts(), prior_strength=500)
        assert m == {f: DEFAULT_MODEL.fields[f].m for f in FIELDS}

    def test_few_labels_stay_near_the_prior(self) -> None:
        # 10 confirmed pairs all at address 'district' (prior m 0.04) against 500 pseudo-counts.
        m = estimate_m(DEFAULT_MODEL, counts(address={"district": 10}), prior_strength=500)
        prior = DEFAULT_MODEL.fields["address"].m
        district = FIELD_LEVELS["address"].index("district")
        assert m["address"][district] == pytest.approx((500 * 0.04 + 10) / 510)
        assert abs(m["address"][district] - prior[district]) < 0.02
        for level, (new, old) in enumerate(zip(m["address"], prior, strict=True)):
            assert abs(new - old) <= 0.02, FIELD_LEVELS["address"][level]

    def test_many_labels_move_m_toward_their_shares(self) -> None:
        # 20,000 confirmed pairs: half postcode_and_house, half district.
        observed = counts(address={"postcode_and_house": 10_000, "district": 10_000})
        m = estimate_m(DEFAULT_MODEL, observed, prior_strength=500)
        address = dict(zip(FIELD_LEVELS["address"], m["address"], strict=True))
        assert address["district"] == pytest.approx(0.5, abs=0.02)
        assert address["postcode_and_house"] == pytest.approx(0.5, abs=0.02)
        assert address["different"] < DEFAULT_MODEL.fields["address"].m[-1]
        # A field with no labelled pairs (every one missing on a side) keeps the prior.
        assert m["given"] == DEFAULT_MODEL.fields["given"].m

    def test_strength_sets_how_far_labels_move_m(self) -> None:
        observed = counts(dob={"one_day": 500})
        weak = estimate_m(DEFAULT_MODEL, observed, prior_strength=50)
        strong = estimate_m(DEFAULT_MODEL, observed, prior_strength=5_000)
        one_day = FIELD_LEVELS["dob"].index("one_day")
        prior = DEFAULT_MODEL.fields["dob"].m[one_day]
        assert prior < strong["dob"][one_day] < weak["dob"][one_day]
        # 500 labels against 500 pseudo-counts: halfway from the prior to the labels' share (1.0).
        half = estimate_m(DEFAULT_MODEL, observed, prior_strength=500)["dob"][one_day]
        assert half == pytest.approx((prior + 1.0) / 2)

    def test_distributions_stay_distributions(self) -> None:
        observed = counts(
            given={"exact": 300, "fuzzy_high": 40},
            family={"former": 25, "exact": 200},
            dob={"transposed": 9},
            sex={"agree": 100, "disagree": 1},
        )
        m = estimate_m(DEFAULT_MODEL, observed, prior_strength=200)
        for f in FIELDS:
            assert all(0 < p <= 1 for p in m[f])
            if f != "middle":
                assert sum(m[f]) == pytest.approx(sum(DEFAULT_MODEL.fields[f].m), abs=1e-9)

    def test_middle_name_levels_have_their_own_bases(self) -> None:
        # agree/disagree are shares of pairs where both sides have middle names; one_sided a share of
        # pairs where the health row has one (compare.py): the shipped m reads that way.
        assert sum(DEFAULT_MODEL.fields["middle"].m[:2]) == pytest.approx(1.0)
        assert level_base("middle", "agree") == ("agree", "disagree")
        assert level_base("middle", "one_sided") == FIELD_LEVELS["middle"]
        for f in FIELDS:
            if f != "middle":
                assert sum(DEFAULT_MODEL.fields[f].m) == pytest.approx(1.0), f
        observed = counts(middle={"agree": 90, "disagree": 10, "one_sided": 100})
        m = dict(zip(FIELD_LEVELS["middle"], estimate_m(DEFAULT_MODEL, observed, 100)["middle"], strict=True))
        assert m["agree"] == pytest.approx((100 * 0.92 + 90) / 200)
        assert m["disagree"] == pytest.approx((100 * 0.08 + 10) / 200)
        assert m["one_sided"] == pytest.approx((100 * 0.37 + 100) / 300)

    def test_prior_strength_must_be_positive(self) -> None:
        for bad in (0.0, -1.0, math.inf, math.nan):
            with pytest.raises(ValueError):
                estimate_m(DEFAULT_MODEL, counts(), bad)


class TestRefusals:
    def test_enough_from_four_las(self) -> None:
        assert refusals(labels(200) + labels(40, confirmed=False), Rules()) == []

    def test_too_few_decisions(self) -> None:
        problems = refusals(labels(199), Rules())
        assert problems == ["199 decided review(s), at least 200 needed"]
        with pytest.raises(NotEnoughDecisions, match="199 decided"):
            propose(labels(199), DEFAULT_MODEL)

    def test_too_few_las(self) -> None:
        problems = refusals(labels(300, las=LAS[:2]), Rules())
        assert "decisions from 2 LA(s), at least 3 needed" in problems

    def test_one_la_dominating(self) -> None:
        dominated = labels(300, las=(LAS[0],)) + labels(100, las=LAS[1:])
        problems = refusals(dominated, Rules())
        assert any(p.startswith(f"{LAS[0]} supplies 300 of 400 decisions (75%)") for p in problems), problems

    def test_one_la_dominating_the_confirmed_pairs(self) -> None:
        # Balanced decisions, but one LA confirmed almost all: m would be that LA's.
        mixed = labels(150, las=(LAS[0],)) + labels(150, confirmed=False, las=LAS[1:])
        mixed += labels(10, las=LAS[1:])
        problems = refusals(mixed, Rules())
        assert any("confirmed decisions" in p and p.startswith(LAS[0]) for p in problems), problems

    def test_no_confirmed_decisions(self) -> None:
        problems = refusals(labels(300, confirmed=False), Rules())
        assert "confirmed decisions from 0 LA(s), at least 3 needed" in problems

    def test_rules_are_parameters(self) -> None:
        assert refusals(labels(20, las=LAS[:2]), Rules(min_decisions=20, min_las=2)) == []
        for loose in ({"max_la_share": 0}, {"max_la_share": 1.0}, {"min_las": 1}, {"min_decisions": 0}):
            with pytest.raises(ValueError, match="never one LA's decisions alone"):
                Rules(**loose)


class TestReadLabel:
    def test_reads_stored_evidence(self) -> None:
        evidence = {"reason": None, "levels": [1, 2, 1, 4, 0, 0, 0], "weights": [0.0] * 7}
        label = read_label("W06000015", "confirmed", evidence, 0.75)
        assert label == Label("W06000015", True, (1, 2, 1, 4, 0, 0, 0), 0.75)

    @pytest.mark.parametrize(
        "status, evidence",
        [
            ("pending", {"levels": [1] * 7}),
            ("confirmed", {"levels": [1] * 6}),
            ("confirmed", {"levels": [1, 1, 1, 1, 9, 1, 1]}),
            ("confirmed", {"levels": [1, 1, 1, 1, True, 1, 1]}),
            ("confirmed", {"fields": {}}),
            ("rejected", None),
        ],
    )
    def test_unreadable_evidence_is_skipped(self, status: str, evidence: object) -> None:
        assert read_label("W06000015", status, evidence, 0.8) is None


class TestProposal:
    def test_proposal_changes_m_only_and_reads_back(self) -> None:
        decided = labels(150, address="district") + labels(90, confirmed=False, address="area")
        proposal = propose(decided, DEFAULT_MODEL)
        model = proposal.model
        assert model.version == f"reviews-{model.version.removeprefix('reviews-')}"
        assert len(model.version) == len("reviews-") + 8
        assert model.thresholds == DEFAULT_MODEL.thresholds
        assert model.match_rate == DEFAULT_MODEL.match_rate
        for f in FIELDS:
            assert model.fields[f].u == DEFAULT_MODEL.fields[f].u
        district = FIELD_LEVELS["address"].index("district")
        assert model.fields["address"].m[district] > DEFAULT_MODEL.fields["address"].m[district]
        again = MatchModel.model_validate_json(model.model_dump_json(indent=2))
        assert again.content_hash == model.content_hash
        # The same labels give the same model.
        assert propose(list(reversed(decided)), DEFAULT_MODEL).model.content_hash == model.content_hash

    def test_report(self) -> None:
        decided = labels(150, address="district") + labels(90, confirmed=False, probability=0.72)
        report = propose(decided, DEFAULT_MODEL).report
        assert (report["decisions"], report["confirmed"], report["rejected"]) == (240, 150, 90)
        assert report["by_la"][LAS[0]] == {"confirmed": 38, "rejected": 23}
        district = next(r for r in report["fields"]["address"] if r["level"] == "district")
        assert district["confirmed"] == 150 and district["m_new"] > district["m_old"]
        assert district["weight_new_bits"] > district["weight_old_bits"]
        assert report["base_hash"] == DEFAULT_MODEL.content_hash

    def test_band_table_at_the_active_thresholds(self) -> None:
        decided = (
            labels(30, probability=0.9)
            + labels(10, probability=0.75)
            + labels(30, confirmed=False, probability=0.71)
            + labels(5, confirmed=False, probability=0.3)
            + labels(2, probability=0.1)
        )
        table = {row["band"]: row for row in band_table(decided, DEFAULT_MODEL)}
        assert (table["matched_and_above"]["confirmed"], table["matched_and_above"]["rejected"]) == (30, 0)
        possible = table["possible_to_matched"]
        assert (possible["confirmed"], possible["rejected"], possible["confirmed_share"]) == (10, 30, 0.25)
        assert possible["mean_probability"] == pytest.approx((10 * 0.75 + 30 * 0.71) / 40, abs=1e-4)
        assert (possible["from"], possible["below"]) == (0.70, 0.85)
        assert table["unclaimed_review_to_possible"]["rejected"] == 5
        assert table["below_unclaimed_review"]["confirmed"] == 2

    def test_level_counts(self) -> None:
        decided = labels(3, given="missing") + labels(2, confirmed=False, given="different")
        confirmed = level_counts(decided, confirmed=True)
        rejected = level_counts(decided, confirmed=False)
        assert confirmed["given"][0] == 3 and rejected["given"][level_code("given", "different")] == 2
        assert confirmed["family"][1] == 3
