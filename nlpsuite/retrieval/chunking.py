"""Split a document into passages of bounded token length, cutting at paragraph and sentence ends.

Sentences are packed into a passage until the next one would pass ``max_tokens``. A passage that
is already half full ends at a paragraph break rather than running into the next paragraph, and a
Markdown heading always starts a new passage. When a cut falls inside a paragraph, the next passage
starts with the last sentence(s) of the previous one (up to ``overlap_tokens``), so a fact that
straddles the cut is whole in one of them. A line break ends a sentence only before a Markdown
block (heading, list item, quote, table row, code fence): hard-wrapped prose keeps its sentences.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

CountTokens = Callable[[str], int]

HEADING = re.compile(r"#{1,6}\s")
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
SENTENCE_END = re.compile(r"(?<=[.!?;:。！？])[\"'”’)\]]*\s+|\n(?=[ \t]*(?:#|>|\||[*+-]\s|\d+[.)]\s|```))")


@dataclass(frozen=True)
class Passage:
    start: int  # character offsets into the document
    end: int
    text: str


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int
    paragraph_end: bool
    heading: bool


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _spans(text: str, pattern: re.Pattern, start: int, end: int) -> list[tuple[int, int]]:
    """Non-empty pieces of ``text[start:end]`` between matches of ``pattern``, trimmed."""
    pieces, at = [], start
    for match in pattern.finditer(text, start, end):
        pieces.append(_trimmed(text, at, match.end()))  # closing quotes stay, the whitespace is trimmed
        at = match.end()
    pieces.append(_trimmed(text, at, end))
    return [(s, e) for s, e in pieces if e > s]


def _fit(text: str, start: int, end: int, count: CountTokens, max_tokens: int) -> list[tuple[int, int, int]]:
    """Split one over-long sentence at whitespace near its middle (or mid-word if it has none) until each
    piece fits."""
    tokens = count(text[start:end])
    if tokens <= max_tokens or end - start < 2:
        return [(start, end, tokens)]
    middle = (start + end) // 2
    gaps = [m.start() for m in re.finditer(r"\s+", text[start:end])]
    cut = start + min(gaps, key=lambda g: abs(start + g - middle)) if gaps else middle
    if cut <= start:
        cut = middle
    left, right = _trimmed(text, start, cut), _trimmed(text, cut, end)
    return [*_fit(text, *left, count, max_tokens), *_fit(text, *right, count, max_tokens)]


def _units(text: str, count: CountTokens, max_tokens: int) -> list[_Unit]:
    units: list[_Unit] = []
    for p_start, p_end in _spans(text, PARAGRAPH_BREAK, 0, len(text)):
        spans = _spans(text, SENTENCE_END, p_start, p_end)
        sentences = [piece for s, e in spans for piece in _fit(text, s, e, count, max_tokens)]
        for i, (s, e, n) in enumerate(sentences):
            # The whitespace before a sentence becomes tokens too once sentences are joined into a passage
            # (newlines, indentation): count it, so that a passage stays within its budget.
            gap = count(text[units[-1].end : s]) if units and s > units[-1].end else 0
            heading = bool(HEADING.match(text, s))
            units.append(_Unit(s, e, n + gap, paragraph_end=i == len(sentences) - 1, heading=heading))
    return units


def chunk(text: str, count: CountTokens, max_tokens: int = 160, overlap_tokens: int = 32) -> list[Passage]:
    """Passages of at most ``max_tokens`` tokens (as counted by ``count``) covering all of ``text``."""
    if max_tokens < 1 or not 0 <= overlap_tokens < max_tokens:
        raise ValueError("need max_tokens >= 1 and 0 <= overlap_tokens < max_tokens")
    passages: list[Passage] = []
    current: list[_Unit] = []

    def emit() -> None:
        start, end = current[0].start, current[-1].end
        passages.append(Passage(start, end, text[start:end]))

    for unit in _units(text, count, max_tokens):
        if unit.heading and current and not all(u.heading for u in current):
            emit()
            current = []
        elif current and sum(u.tokens for u in current) + unit.tokens > max_tokens:
            emit()
            carried: list[_Unit] = []
            for prev in reversed(current):  # the overlap: whole sentences from the end, within budget
                if prev.paragraph_end or sum(u.tokens for u in carried) + prev.tokens > overlap_tokens:
                    break
                carried.insert(0, prev)
            if carried and sum(u.tokens for u in carried) + unit.tokens > max_tokens:
                carried = []
            current = carried
        current.append(unit)
        if unit.paragraph_end and sum(u.tokens for u in current) >= max_tokens // 2:
            emit()
            current = []
    if current:
        emit()
    return passages
