"""Prompt-lookup drafting: guess the next tokens by finding the text's last few tokens earlier in it.

Summaries, answers and translations of names copy spans of their input; where the last n tokens
occurred before, the tokens that followed them then are a cheap guess at what follows now. The
decoding loop verifies the guess in one forward pass (see generation.py).
"""

from __future__ import annotations

import numpy as np

DRAFT_TOKENS = 4  # verifying 5 positions costs about one single-token step on CPU (bandwidth-bound); 8 costs ~1.5x
MAX_NGRAM = 3
MIN_NGRAM = 2  # a single-token match is mostly chance (" the", ","): it drafts more than it lands


def propose(ids: list[int], limit: int, max_ngram: int = MAX_NGRAM, min_ngram: int = MIN_NGRAM) -> list[int]:
    """Up to ``limit`` tokens that followed the latest earlier use of the last n tokens of ``ids`` (longest n first)."""
    if limit <= 0:
        return []
    seq = np.asarray(ids, dtype=np.int64)
    size = len(seq)
    for n in range(min(max_ngram, size - 1), min_ngram - 1, -1):
        hits = np.ones(size - n, dtype=bool)  # starts of earlier occurrences (never the tail itself)
        for i in range(n):
            hits &= seq[i : size - n + i] == seq[size - n + i]
        found = np.flatnonzero(hits)
        if len(found):  # the latest occurrence is the likeliest to continue the same way
            start = int(found[-1]) + n
            return seq[start : start + limit].tolist()
    return []
