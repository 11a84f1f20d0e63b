"""Real-time lookup: one (or a few) child records against an in-memory index of every education record.

`EducationIndex.build` precomputes, per blocking pass, the sorted key hashes of the reference side (the
same passes and block-size cap as batch `link`), so a query is a handful of binary searches plus the
same comparison and scoring code on its few candidate pairs: no scan of the reference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from app.matching.blocking import KEY, PASSES, ROW, ReferenceKeys, build_reference
from app.matching.engine import REF_ROW, explain, score_pairs
from app.matching.frames import records_to_frame
from app.matching.params import DEFAULT_MODEL, MatchModel, level_code
from app.matching.score import TermFrequencies


@dataclass(frozen=True)
class Candidate:
    education_id: int
    score: float  # total match weight in bits
    probability: float
    explanation: dict[str, Any]


@dataclass(frozen=True)
class EducationIndex:
    frame: pl.DataFrame
    model: MatchModel
    reference: dict[str, ReferenceKeys]
    tf: TermFrequencies

    @classmethod
    def build(cls, education: pl.DataFrame, model: MatchModel | None = None) -> EducationIndex:
        model = model or DEFAULT_MODEL
        return cls(
            education,
            model,
            build_reference(education, model.blocking.max_block),
            TermFrequencies.build(education),
        )

    def candidate_pairs(self, query: pl.DataFrame) -> pl.DataFrame:
        """(row, ref_row) pairs sharing any blocking key, by binary search in each pass's sorted keys."""
        found_rows: list[np.ndarray[Any, Any]] = []
        found_refs: list[np.ndarray[Any, Any]] = []
        for block_pass in PASSES:
            keyed = block_pass.query(query)
            if not keyed.height:
                continue
            ref = self.reference[block_pass.name]
            keys = keyed[KEY].to_numpy()
            lo = np.searchsorted(ref.keys, keys, side="left")
            hi = np.searchsorted(ref.keys, keys, side="right")
            counts = hi - lo
            total = int(counts.sum())
            if not total:
                continue
            # Positions lo..hi-1 of every key, laid end to end without a Python loop.
            starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
            found_refs.append(ref.rows[np.arange(total) + starts])
            found_rows.append(np.repeat(keyed[ROW].to_numpy(), counts))
        if not found_rows:
            return pl.DataFrame(schema={ROW: pl.UInt32, REF_ROW: pl.UInt32})
        pairs = pl.DataFrame(
            {ROW: np.concatenate(found_rows), REF_ROW: np.concatenate(found_refs)},
            schema={ROW: pl.UInt32, REF_ROW: pl.UInt32},
        )
        return pairs.unique()

    def query(
        self, records: pl.DataFrame | Sequence[Mapping[str, Any]], limit: int = 5
    ) -> list[list[Candidate]]:
        """Best `limit` candidates per query record, strongest first (a canonical frame or record dicts)."""
        query = (
            records
            if isinstance(records, pl.DataFrame)
            else records_to_frame(records, list(range(len(records))))
        )
        results: list[list[Candidate]] = [[] for _ in range(query.height)]
        pairs = self.candidate_pairs(query)
        if not pairs.height:
            return results
        scored = score_pairs(query, self.frame, pairs, self.model, self.tf)
        top = (
            scored.sort(["match_weight", REF_ROW], descending=[True, False])
            .group_by(ROW, maintain_order=True)
            .head(limit)
        )
        top = top.with_columns(education_id=self.frame["id"].gather(top[REF_ROW]))
        thresholds = self.model.thresholds
        for row in top.iter_rows(named=True):
            # On its own, without the batch's one-to-one and margin rules: what the thresholds alone say.
            probability = row["match_probability"]
            given_differs = self.model.given_different_caps_at_possible and row["given"] == level_code(
                "given", "different"
            )
            row["outcome"] = (
                "matched"
                if probability >= thresholds.matched and not given_differs
                else "possible"
                if probability >= thresholds.possible
                else "unmatched"
            )
            results[row[ROW]].append(
                Candidate(
                    education_id=int(row["education_id"]),
                    score=float(row["match_weight"]),
                    probability=float(row["match_probability"]),
                    explanation=explain(row, self.model),
                )
            )
        return results
