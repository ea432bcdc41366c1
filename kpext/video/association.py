"""Optimal one-to-one association of tracks and detections (Hungarian / Jonker-Volgenant)."""

from __future__ import annotations

from typing import List, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["hungarian_match"]


def hungarian_match(similarity: np.ndarray, threshold: float) -> List[Tuple[int, int]]:
    """(row, column) pairs of an R x C similarity that maximise the total similarity,
    each row and column used at most once; pairs below ``threshold`` are left unmatched.

    Pairs below the threshold are taken out before solving (not after, as
    SORT does), so that a forbidden pair cannot displace an allowed one from
    the optimum. The pairs come sorted by row.
    """
    if similarity.size == 0:
        return []
    allowed = similarity >= threshold
    # a forbidden pair gains nothing, so it never displaces an allowed one
    rows, cols = linear_sum_assignment(np.where(allowed, similarity, 0.0), maximize=True)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if allowed[r, c]]
