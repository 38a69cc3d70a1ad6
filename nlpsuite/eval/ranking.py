"""Ranking metrics of retrieval and reranking on judged sets: recall@k, MRR and nDCG@k (graded
relevance)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import NlpsuiteError

Judgements = Mapping[str, float]  # document id -> relevance grade (> 0 means relevant)


def _relevant(judged: Judgements) -> set[str]:
    return {doc for doc, grade in judged.items() if grade > 0}


def recall_at_k(ranked: Sequence[str], judged: Judgements, k: int) -> float:
    """Share of the relevant documents found in the top ``k``."""
    relevant = _relevant(judged)
    if not relevant:
        raise NlpsuiteError("a query has no relevant documents")
    return len(relevant & set(ranked[:k])) / len(relevant)


def mrr(ranked: Sequence[str], judged: Judgements, k: int | None = None) -> float:
    """Reciprocal rank of the first relevant document in the top ``k`` (0 if none is there)."""
    relevant = _relevant(judged)
    for rank, doc in enumerate(ranked[:k] if k else ranked, start=1):
        if doc in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[str], judged: Judgements, k: int) -> float:
    """Normalized discounted cumulative gain at ``k`` with linear gains: sum(grade / log2(rank + 1)) / ideal."""
    gains = [max(float(judged.get(doc, 0.0)), 0.0) for doc in ranked[:k]]
    dcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(gains))
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
    if idcg == 0:
        raise NlpsuiteError("a query has no relevant documents")
    return dcg / idcg


def retrieval_scores(rankings: Sequence[Sequence[str]], judgements: Sequence[Judgements], k: int) -> dict[str, float]:
    """``{"recall@k", "mrr", "ndcg@k"}`` averaged over queries (MRR over the top ``k``)."""
    if len(rankings) != len(judgements):
        raise NlpsuiteError(f"{len(rankings)} rankings but {len(judgements)} queries")
    if not rankings:
        raise NlpsuiteError("no queries to score")
    if k < 1:
        raise NlpsuiteError("k must be at least 1")
    pairs = list(zip(rankings, judgements, strict=True))
    return {
        "recall@k": float(np.mean([recall_at_k(r, j, k) for r, j in pairs])),
        "mrr": float(np.mean([mrr(r, j, k) for r, j in pairs])),
        "ndcg@k": float(np.mean([ndcg_at_k(r, j, k) for r, j in pairs])),
    }


def retrieval_report(rankings: Sequence[Sequence[str]], judgements: Sequence[Judgements], k: int) -> dict:
    """``retrieval_scores`` as an evaluation reports them: also under their names at this ``k`` (``ndcg@10``)."""
    scores = retrieval_scores(rankings, judgements, k)
    return {**scores, "k": k, f"recall@{k}": scores["recall@k"], f"ndcg@{k}": scores["ndcg@k"]}
