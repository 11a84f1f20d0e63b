"""Vectorised graph helpers: connected components and one-to-one assignment."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl


def components(size: int, left: npt.NDArray[Any], right: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """Component label (smallest member position) of each of `size` nodes joined by edges left[i]-right[i]."""
    labels = np.arange(size, dtype=np.int64)
    if not len(left):
        return labels
    left = left.astype(np.int64)
    right = right.astype(np.int64)
    while True:
        before = labels.copy()
        np.minimum.at(labels, left, labels[right])
        np.minimum.at(labels, right, labels[left])
        labels = labels[labels]  # pointer jumping: converges in O(log diameter) rounds
        if np.array_equal(labels, before):
            return labels


def one_to_one(candidates: pl.DataFrame, left: str, right: str, weight: str) -> pl.DataFrame:
    """Greedy one-to-one matching by descending weight, done as rounds of mutually-best pairs.

    In each round every pair that is the best remaining choice of both its ends is fixed, and both ends
    leave the pool. The heaviest remaining pair is always mutually best, so this is exactly the greedy
    assignment, yet each round is a couple of group-bys rather than a Python loop over pairs.
    Ties are broken by the smaller ids, so the result does not depend on input order.
    """
    pool = candidates.select(left, right, weight).sort([weight, left, right], descending=[True, False, False])
    fixed: list[pl.DataFrame] = []
    while pool.height:
        best_of_left = pool.group_by(left, maintain_order=True).first()
        best_of_right = pool.group_by(right, maintain_order=True).first()
        mutual = best_of_left.join(best_of_right.select(left, right), on=[left, right], how="inner")
        fixed.append(mutual)
        pool = pool.filter(
            ~pl.col(left).is_in(mutual[left].implode()) & ~pl.col(right).is_in(mutual[right].implode())
        )
    if not fixed:
        return pool
    return pl.concat(fixed)
