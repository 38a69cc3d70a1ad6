"""Combine dense (embedding) and sparse (BM25) scores of the same passages into one ranking score."""

from __future__ import annotations

import numpy as np

RRF_K = 60  # Cormack et al. (2009); the usual constant


def ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of each score, best (highest) first; ties share the better rank."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    first = np.r_[0, np.flatnonzero(sorted_scores[1:] != sorted_scores[:-1]) + 1]  # start of each tie run
    run_rank = np.repeat(first, np.diff(np.r_[first, len(scores)])) + 1
    out = np.empty(len(scores), np.int64)
    out[order] = run_rank
    return out


def reciprocal_rank_fusion(*score_lists: np.ndarray, weights: tuple[float, ...] | None = None, k: int = RRF_K):
    """sum_i w_i / (k + rank_i(passage))."""
    weights = weights or (1.0,) * len(score_lists)
    return sum(w / (k + ranks(s)) for w, s in zip(weights, score_lists, strict=True))


def min_max(scores: np.ndarray) -> np.ndarray:
    low, high = float(scores.min()), float(scores.max())
    return np.zeros_like(scores) if high <= low else (scores - low) / (high - low)


def score_mix(dense: np.ndarray, sparse: np.ndarray, dense_weight: float) -> np.ndarray:
    """``dense_weight * cosine + (1 - dense_weight) * BM25 / max BM25``: cosine stays comparable across
    queries, and BM25 is scaled to [0, 1] by the best passage's score for this query."""
    top = float(sparse.max()) if len(sparse) else 0.0
    scaled = sparse / top if top > 0 else np.zeros_like(sparse)
    return dense_weight * dense + (1 - dense_weight) * scaled
