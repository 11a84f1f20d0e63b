"""Reference linkage with Splink 5 (DuckDB), configured as a skilled user would, without the truth.

The point is a yardstick for cme-hub's own engine (issue 10, item 6): same input records, same outcome
vocabulary (matched / unmatched per health row; this model has no review queue), scored by the same
`app.synthetic.scoring`.

Model (Fellegi-Sunter, link_only health -> education):
* names: one combined comparison so that swapped given/family names, known-as forms (Welsh/English
  equivalents and diminutives from a public-knowledge table, preferred names, middle names), one-typo
  given names and hyphen/former surnames each get a level of their own, plus "given same, family
  different" (a surname change) and "family same, given different" (a sibling); term-frequency
  adjustment on full name, family name and given name at their exact levels.
* date of birth: exact, day/month transposed, one day apart, one edit apart, same day and month a
  year apart.
* address: postcode and address line in ONE comparison (they agree together, so two comparisons
  would count one dwelling twice and make every sibling look like the child): postcode and line
  exact, postcode exact (both term-frequency adjusted on postcode), same line with another postcode,
  sector, district, postcode missing on one side, same town, postcode area.
* u by random sampling (1e7 pairs); prior by two deterministic rules at an assumed recall of 0.8; m by
  EM over two blocking rules, full name (trains DOB and address) and DOB (trains names and address).
  Never a postcode-only training block: its pairs are mostly siblings, and EM then learns "same
  household" as the match class.
* Prediction: twelve blocking rules (DOB; transposed DOB; full name with birth year or postcode
  district; swapped names; postcode; given or family name with birth year and month, or with day and
  month; given name with postcode sector; address line with postcode district).
* Decision: best-match assignment at match probability 0.5, greedy by match weight: each health row
  to at most one education record, each education record to at most one row of each health list (a
  list does not name a child twice; a health board's list and a GP practice's may both name one).
  Assigned is `matched`, everything else `unmatched`.
The model's structure was chosen on the tuning variants only (default, compound; decision 0013).

Run alone: `python bench/splink_reference.py --children 20000 [--variant NAME]` prints a ScoreReport.
"""

from __future__ import annotations

import argparse
import logging
import time
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import polars as pl
from splink import DuckDBAPI, Linker, SettingsCreator
from splink.blocking_rule_library import CustomRule

MATCH_PROBABILITY = 0.5  # best match at or above this is `matched`; everything else `unmatched`
# Pairs down to this probability are scored and assigned too, so that the weight each row's assigned pair
# would need is known (matching.py reads Splink's precision at another recall from it). Greedy assignment
# takes pairs in descending weight, so the pairs it assigns above 0.5 are the same either way.
SCORED_PROBABILITY = 0.01
U_PAIRS = 1e7  # random pairs for u
DETERMINISTIC_RECALL = 0.8  # assumed recall of the deterministic rules that set the prior

# Known-as equivalence classes: Welsh/English pairs from the project's domain notes plus common
# English diminutives. A name may sit in several classes (Ioan is both John and Evan).
_NAME_CLASSES: tuple[tuple[str, ...], ...] = (
    ("john", "sion", "shon", "johnny", "jack", "jac", "ioan", "ieuan", "iwan", "ifan", "iefan"),
    ("evan", "ieuan", "ifan", "iefan", "iwan", "ianto", "efan", "ioan"),
    ("david", "dafydd", "dai", "dave", "davie", "deicyn", "dafy"),
    ("william", "gwilym", "will", "wil", "gwil", "bill", "billy", "liam"),
    ("howell", "hywel", "howel"),
    ("griffith", "gruffudd", "gruffydd", "gruff", "guto"),
    ("thomas", "tomos", "tom", "tommy", "twm"),
    ("harry", "harri", "henry", "hal"),
    ("alice", "alys", "ali"),
    ("ella", "ela"),
    ("lily", "lili"),
    ("eve", "efa", "ava", "evie"),
    ("nancy", "nansi"),
    ("hugh", "huw", "hughie", "huwcyn"),
    ("jane", "sian"),
    ("catherine", "catrin", "cathy", "kate", "katie", "cat", "cati"),
    ("mary", "mair", "molly"),
    ("rhys", "rees", "reece"),
    ("llewellyn", "llywelyn", "llew", "llewelyn"),
    ("elizabeth", "elisabeth", "beth", "lisa", "liz", "libby", "eliza"),
    ("gwen", "gwenllian", "gwendolen"),
    ("owen", "owain"),
    ("stephen", "steffan", "steve", "steff"),
    ("oliver", "ollie", "olly"),
    ("olivia", "liv", "livvy"),
    ("frederick", "freddie", "fred"),
    ("alfred", "alfie"),
    ("archibald", "archie"),
    ("charles", "charlie"),
    ("charlotte", "lottie"),
    ("isabella", "bella", "izzy"),
    ("jessica", "jess"),
    ("amelia", "millie", "amy"),
    ("sophie", "sophia"),
    ("joshua", "josh"),
    ("muhammad", "mohammed", "mohammad"),
    ("max", "macsen"),
    ("megan", "meg"),
)
_CLASSES_OF: dict[str, list[str]] = {}
for _members in _NAME_CLASSES:
    for _member in _members:
        _CLASSES_OF.setdefault(_member, []).append(_members[0])


def _fold(text: str | None) -> str | None:
    """Lower case, accents off, punctuation to spaces; None when nothing is left."""
    if not text:
        return None
    decomposed = unicodedata.normalize("NFKD", text)
    letters = "".join(ch if ch.isalnum() else " " for ch in decomposed if not unicodedata.combining(ch))
    folded = " ".join(letters.lower().split())
    return folded or None


def _postcode(raw: str | None) -> str | None:
    if not raw:
        return None
    compact = "".join(raw.upper().split())
    return f"{compact[:-3]} {compact[-3:]}" if len(compact) >= 5 else None


def _flatten(records: Sequence[Mapping[str, Any]], sources: Sequence[str]) -> pl.DataFrame:
    """One row per record with the columns the Splink model compares."""
    columns: dict[str, list[Any]] = {
        name: []
        for name in (
            "unique_id", "list_id", "given", "family", "full_name", "name_tokens", "name_classes",
            "family_parts", "dob", "dob_days", "dob_year", "dob_month", "dob_swapped", "dob_month_day", "postcode",
            "postcode_sector", "postcode_district", "postcode_area", "town", "address_line", "house_number",
        )
    }  # fmt: skip
    epoch = date(1970, 1, 1)
    for row, (record, source) in enumerate(zip(records, sources, strict=True)):
        given_all = (_fold(record.get("given_name")) or "").split()
        given = given_all[0] if given_all else None
        family = _fold(record.get("family_name"))
        tokens = set(given_all)
        tokens.update((_fold(record.get("preferred_given_name")) or "").split())
        tokens.update((_fold(record.get("middle_names")) or "").split())
        family_parts = set((family or "").split())
        for extra in [record.get("preferred_family_name")] + [
            former.get("family_name") for former in record.get("former_names", [])
        ]:
            family_parts.update((_fold(extra) or "").split())
        dob_text = record.get("date_of_birth")
        dob = date.fromisoformat(dob_text) if dob_text else None
        address = record.get("address") or {}
        postcode = _postcode(address.get("postcode"))
        lines = address.get("lines") or []
        line = _fold(" ".join(lines))
        number = line.split()[0] if line and line[0].isdigit() else None
        columns["unique_id"].append(row)
        columns["list_id"].append(source)
        columns["given"].append(given)
        columns["family"].append(family)
        columns["full_name"].append(f"{given} {family}" if given and family else None)
        columns["name_tokens"].append(sorted(tokens))
        columns["name_classes"].append(
            sorted({cls for token in tokens for cls in _CLASSES_OF.get(token, [token])})
        )
        columns["family_parts"].append(sorted(family_parts))
        columns["dob"].append(dob_text)
        columns["dob_days"].append((dob - epoch).days if dob else None)
        columns["dob_year"].append(dob.year if dob else None)
        columns["dob_month"].append(dob.month if dob else None)
        columns["dob_swapped"].append(f"{dob.year:04d}-{dob.day:02d}-{dob.month:02d}" if dob else None)
        columns["dob_month_day"].append(dob_text[5:] if dob_text else None)
        columns["postcode"].append(postcode)
        columns["postcode_sector"].append(postcode[:-2] if postcode else None)
        columns["postcode_district"].append(postcode.split()[0] if postcode else None)
        columns["postcode_area"].append(postcode[:2].rstrip("0123456789") if postcode else None)
        columns["town"].append(_fold(address.get("town")))
        columns["address_line"].append(line)
        columns["house_number"].append(number)
    return pl.DataFrame(columns)


def _level(sql: str, label: str, **options: Any) -> dict[str, Any]:
    return {"sql_condition": sql, "label_for_charts": label, **options}


def _null(sql: str) -> dict[str, Any]:
    return {"sql_condition": sql, "label_for_charts": "null", "is_null_level": True}


_SHARES = "len(list_intersect({0}_l, {0}_r)) > 0"
_GIVEN_KNOWN_AS = "(" + _SHARES.format("name_tokens") + " or " + _SHARES.format("name_classes") + ")"
_GIVEN_SAME = f"(given_l = given_r or {_GIVEN_KNOWN_AS})"
_FAMILY_PARTS = _SHARES.format("family_parts")


def _jw(column: str, at_least: float) -> str:
    return f"jaro_winkler_similarity({column}_l, {column}_r) >= {at_least}"


def _comparisons() -> list[dict[str, Any]]:
    names = {
        "output_column_name": "name",
        "comparison_levels": [
            _null("given_l is null or given_r is null or family_l is null or family_r is null"),
            _level("full_name_l = full_name_r", "exact full name", tf_adjustment_column="full_name"),
            _level("given_l = family_r and family_l = given_r", "given and family swapped"),
            _level(f"family_l = family_r and {_GIVEN_KNOWN_AS}", "family exact, known-as given",
                   tf_adjustment_column="family"),
            _level(f"family_l = family_r and ({_jw('given', 0.9)} or damerau_levenshtein(given_l, given_r) <= 1)", "family exact, given similar",
                   tf_adjustment_column="family"),
            _level(f"{_FAMILY_PARTS} and {_GIVEN_SAME}", "family part or former family, given same or known-as"),
            _level(f"{_GIVEN_SAME} and {_jw('family', 0.9)}", "given same or known-as, family similar"),
            _level("jaro_winkler_similarity(given_l, family_r) >= 0.9 and "
                   "jaro_winkler_similarity(family_l, given_r) >= 0.9", "swapped, similar"),
            _level(f"{_jw('given', 0.88)} and {_jw('family', 0.88)}", "both similar"),
            _level("given_l = given_r", "given exact, family different", tf_adjustment_column="given"),
            _level(_GIVEN_KNOWN_AS, "known-as given, family different"),
            _level("family_l = family_r", "family exact, given different", tf_adjustment_column="family"),
            _level("ELSE", "else"),
        ],
    }  # fmt: skip
    dob = {
        "output_column_name": "dob",
        "comparison_levels": [
            _null("dob_l is null or dob_r is null"),
            _level("dob_l = dob_r", "exact"),
            _level("dob_swapped_l = dob_r", "day and month transposed"),
            _level("abs(dob_days_l - dob_days_r) <= 1", "one day apart"),
            _level("levenshtein(dob_l, dob_r) <= 1", "one edit"),
            _level(
                "dob_month_day_l = dob_month_day_r and abs(dob_year_l - dob_year_r) = 1", "year off by one"
            ),
            _level("ELSE", "else"),
        ],
    }
    # Postcode and address line in one comparison: they agree together (same dwelling), so two
    # comparisons would count one fact twice and make every sibling look like the child.
    address = {
        "output_column_name": "address",
        "comparison_levels": [
            _null("(postcode_l is null or postcode_r is null) and (address_line_l is null or address_line_r is null)"),
            _level("postcode_l = postcode_r and address_line_l = address_line_r", "postcode and line exact",
                   tf_adjustment_column="postcode"),
            _level("postcode_l = postcode_r", "postcode exact", tf_adjustment_column="postcode"),
            _level("address_line_l = address_line_r or (house_number_l = house_number_r and "
                   "jaro_winkler_similarity(address_line_l, address_line_r) >= 0.9)", "same line, postcode differs"),
            _level("postcode_sector_l = postcode_sector_r", "sector"),
            _level("postcode_district_l = postcode_district_r", "district"),
            _level("postcode_l is null or postcode_r is null", "postcode missing on one side"),
            _level("town_l = town_r", "same town"),
            _level("postcode_area_l = postcode_area_r", "postcode area"),
            _level("ELSE", "else"),
        ],
    }  # fmt: skip
    return [names, dob, address]


# Blocking for prediction: every pair that agrees on two strong things, whatever else disagrees.
_PREDICTION_RULES: tuple[str, ...] = (
    "l.dob = r.dob",
    "l.dob_swapped = r.dob",
    "l.given = r.given and l.family = r.family and l.dob_year = r.dob_year",
    "l.given = r.given and l.family = r.family and l.postcode_district = r.postcode_district",
    "l.given = r.family and l.family = r.given",
    "l.postcode = r.postcode",
    "l.given = r.given and l.dob_year = r.dob_year and l.dob_month = r.dob_month",
    "l.family = r.family and l.dob_year = r.dob_year and l.dob_month = r.dob_month",
    "l.given = r.given and l.dob_month_day = r.dob_month_day",
    "l.family = r.family and l.dob_month_day = r.dob_month_day",
    "l.given = r.given and l.postcode_sector = r.postcode_sector",
    "l.address_line = r.address_line and l.postcode_district = r.postcode_district",
)
# EM: each rule leaves the comparisons it does not use free to train. Never a postcode-only block:
# its pairs are mostly siblings, and EM would learn "same household" as the match class.
_TRAINING_RULES: tuple[str, ...] = ("l.given = r.given and l.family = r.family", "l.dob = r.dob")
_DETERMINISTIC_RULES: tuple[str, ...] = (
    "l.full_name = r.full_name and l.dob = r.dob",
    "l.dob = r.dob and l.postcode = r.postcode and l.given = r.given",
)


def _settings() -> SettingsCreator:
    return SettingsCreator(
        link_type="link_only",
        comparisons=_comparisons(),
        blocking_rules_to_generate_predictions=[CustomRule(rule) for rule in _PREDICTION_RULES],
        retain_matching_columns=False,
        additional_columns_to_retain=["list_id"],
    )


def link_with_splink(
    health_records: Sequence[Mapping[str, Any]],
    health_lists: Sequence[str],
    education_records: Sequence[Mapping[str, Any]],
    *,
    seed: int = 0,
) -> pl.DataFrame:
    """One row per health record: health_id, outcome, education_id (nullable), match_weight."""
    health = _flatten(health_records, health_lists)
    education = _flatten(education_records, ["education"] * len(education_records))
    db_api = DuckDBAPI()
    linker = Linker(
        [
            db_api.register(health.to_arrow(), table_name="health"),
            db_api.register(education.to_arrow(), table_name="education"),
        ],
        _settings(),
        log_level=logging.WARNING,
    )
    training = linker.training
    training.estimate_probability_two_random_records_match(
        list(_DETERMINISTIC_RULES), recall=DETERMINISTIC_RECALL
    )
    training.estimate_u_using_random_sampling(max_pairs=U_PAIRS, seed=seed)
    for rule in _TRAINING_RULES:
        training.estimate_parameters_using_expectation_maximisation(rule)
    predictions = linker.inference.predict(threshold_match_probability=SCORED_PROBABILITY)
    pairs = pl.from_arrow(predictions.as_pyarrow_table())
    assert isinstance(pairs, pl.DataFrame)
    return _decide(pairs, health)


def _decide(pairs: pl.DataFrame, health: pl.DataFrame) -> pl.DataFrame:
    """Best-match assignment: greedy by match weight, each health row to at most one education record
    and each education record to at most one row of each health list (a list does not name a child
    twice; a health board's list and a GP practice's may). Assigned at match probability >= 0.5 is
    `matched`, the rest `unmatched`; a row assigned below 0.5 keeps its pair and weight (not a link)."""
    if pairs.is_empty():
        ordered: list[tuple[int, int, float, float, str]] = []
    else:
        # Splink orders each pair by source dataset name, so health may be on either side.
        health_left = pl.col("source_dataset_l") == "health"
        ordered = (
            pairs.select(
                pl.when(health_left).then("unique_id_l").otherwise("unique_id_r").alias("health_id"),
                pl.when(health_left).then("unique_id_r").otherwise("unique_id_l").alias("education_id"),
                "match_weight",
                "match_probability",
                pl.when(health_left).then("list_id_l").otherwise("list_id_r").alias("list_id"),
            )
            .filter(pl.col("match_weight").is_not_nan())
            .sort(["match_weight", "health_id", "education_id"], descending=[True, False, False])
            .rows()
        )
    chosen: dict[int, tuple[int, float, bool]] = {}
    taken: set[tuple[str, int]] = set()
    for health_id, education_id, weight, probability, list_id in ordered:
        if health_id in chosen or (list_id, education_id) in taken:
            continue
        chosen[health_id] = (education_id, weight, probability >= MATCH_PROBABILITY)
        taken.add((list_id, education_id))
    health_ids = health["unique_id"].to_list()
    picks = [chosen.get(health_id) for health_id in health_ids]
    return pl.DataFrame(
        {
            "health_id": health_ids,
            "outcome": ["matched" if pick and pick[2] else "unmatched" for pick in picks],
            "education_id": [pick[0] if pick else None for pick in picks],
            "match_weight": [pick[1] if pick else None for pick in picks],
        },
        schema={
            "health_id": pl.Int64,
            "outcome": pl.String,
            "education_id": pl.Int64,
            "match_weight": pl.Float64,
        },
    )


def main() -> None:
    from app.synthetic import PopulationConfig, generate
    from app.synthetic.scoring import LinkOutcome, Truth, score
    from app.synthetic.variants import VARIANTS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=20_000)
    parser.add_argument("--seed", type=int, help="default 0, or the variant's first seed of its split")
    parser.add_argument("--variant", choices=sorted(VARIANTS), help="a named population (decision 0013)")
    args = parser.parse_args()
    if args.variant:
        config = VARIANTS[args.variant].config(args.children, args.seed)
    else:
        config = PopulationConfig(children=args.children, seed=args.seed or 0)
    population = generate(config)
    started = time.perf_counter()
    result = link_with_splink(
        population.health_records, population.health_senders, population.education_records, seed=config.seed
    )
    print(f"splink: {time.perf_counter() - started:.1f} s")
    outcomes = (
        LinkOutcome(h, o, e) for h, o, e in result.select("health_id", "outcome", "education_id").rows()
    )
    print(score(Truth.from_population(population), outcomes))


if __name__ == "__main__":
    main()
