"""Replies that loop: where a reply ends in copies of one span (what the decoder stops as "repetition"), and what
of it a conversation keeps (its last whole sentence before the loop)."""

from __future__ import annotations

import re

from ..text import ends_sentence, sentences

# A reply that ends in LOOP_COPIES back-to-back copies of one span (LOOP_CHARS characters or more in all) is
# looping: what the decoder stops as "repetition" (runtime/sequence.py counts the same in tokens).
LOOP_COPIES = 3
LOOP_CHARS = 24
_LONGEST_LOOP = 4000  # characters in one copy: longer than any reply's looping stanza


def loop(text: str) -> tuple[int, int] | None:
    """(where the loop ``text`` ends in starts, the length of one copy), or None if it ends in none."""
    n = len(text)
    for period in range(1, min(n // LOOP_COPIES, _LONGEST_LOOP) + 1):
        if text[n - 1] != text[n - 1 - period]:  # cheap filter: most lengths fail here
            continue
        copies = max(LOOP_COPIES, -(-LOOP_CHARS // period))
        if copies * period > n or text[n - copies * period : n - period] != text[n - (copies - 1) * period :]:
            continue
        start = n - copies * period
        while start > 0 and text[start - 1] == text[start - 1 + period]:
            start -= 1
        return start, period
    return None


def trim_loop(text: str) -> str:
    """``text`` without the loop it ends in (``text`` itself when it ends in none): up to its last whole sentence
    before it began repeating itself, at the first line or sentence that says again what an earlier one said
    (else at the loop's second copy). "" when no whole sentence came before: nothing of it can be kept."""
    found = loop(text)
    if found is None:
        return text
    start, period = found
    second = start + period
    repeat = _first_repeat(text, second + period)
    ends = [p.end for p in sentences(text, 0, second + period) if ends_sentence(p.text)]
    if repeat is not None:
        kept = [end for end in ends if end <= repeat]
    else:  # copies shorter than a sentence ("ha ha ha"): the sentence the loop began in is said once
        kept = [p.end for p in sentences(text, 0, second + period) if p.start < second and p.end in ends]
    return text[: kept[-1]] if kept else ""


def _first_repeat(text: str, end: int) -> int | None:
    """Where the first line or sentence of ``text[:end]`` starts that says again what an earlier one said (a poem
    repeats lines, prose sentences); short ones ("Yes.", "1.") are no repeat."""
    seen = set()
    for line in re.finditer(r"[^\n]+", text[:end]):
        for piece in sentences(text, line.start(), line.end()):
            said = " ".join(piece.text.casefold().split()).rstrip(".,;:!?…。！？，、")
            if len(said) < 4:
                continue
            if said in seen:
                return piece.start
            seen.add(said)
    return None
