"""Prompt-lookup drafting: guess the next tokens by finding the text's last few tokens earlier in it.

Summaries, answers and translations of names copy spans of their input; where the last n tokens
occurred before, the tokens that followed them then are a cheap guess at what follows now. The
decoding loop verifies the guess in one forward pass (see generation.py).
"""

from __future__ import annotations

import numpy as np

# How many tokens to guess. On CPU a pass over P positions costs about 1 + 0.065 (P - 1) single-token steps (the
# default model on a ~300-position cache: 5 positions 1.25x, 8 1.45x, 11 1.6x), and cutting rejected guesses out of
# the cache another ~0.08. The length adapts per row, as in transformers' assisted generation: 2 longer after a
# draft kept whole (a span is being copied), 1 shorter after one that was not. Replayed over the greedy tokens of
# 32 task calls against those costs: ask 1.58x -> 1.63x, chat 1.22x -> 1.25x, summarize and translate within 1%
# of a fixed 4 tokens.
DRAFT_TOKENS = 4  # the first draft's length
MIN_DRAFT_TOKENS = 1
MAX_DRAFT_TOKENS = 10
GROW, SHRINK = 2, 1
# A decode pass feeds every row as many positions as the longest draft among them (padding after a shorter one),
# and each position costs about the same, whichever row it pads: 16 rows each drafting 10 would make a pass cost
# ~12 single-token steps by the figures above, for a plain batch step's ~2. So a pass's rows draft, in all, at most
# as many positions as one row's longest draft.
PASS_DRAFT_TOKENS = MAX_DRAFT_TOKENS
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


def next_draft_length(length: int, drafted: int, kept: int) -> int:
    """The draft length after a pass that verified ``drafted`` guesses and kept ``kept`` of them: GROW longer when
    all were kept, SHRINK shorter when one was not, the same when there was no guess."""
    if drafted == 0:
        return length
    if kept == drafted:
        return min(MAX_DRAFT_TOKENS, length + GROW)
    return max(MIN_DRAFT_TOKENS, length - SHRINK)


def pass_draft_limit(rows: int) -> int:
    """The longest draft (forced tokens included) each of ``rows`` rows decoding together may feed in one pass."""
    return PASS_DRAFT_TOKENS // max(1, rows)
