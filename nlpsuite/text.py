"""Splitting text the way the tasks need it: paragraphs, sentences, and chunks that fit a token budget."""

from __future__ import annotations

import re
from collections.abc import Callable

# A sentence ends at . ! ? (or their CJK forms), optionally followed by closing quotes/brackets, then
# whitespace. Common abbreviations and initials ("Dr.", "e.g.", "J. R. R.") don't end a sentence.
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "cf", "fig", "al",
    "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov",
    "dec", "u.s", "u.k", "mt", "gen", "gov", "sen", "rep", "rev", "col", "lt", "capt", "approx", "dept",
}  # fmt: skip
_END = re.compile(r"[.!?。！？]+[\"'”’)\]]*(?=\s)")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, stripped, empty ones dropped."""
    return [p.strip() for p in _PARAGRAPH_BREAK.split(text) if p.strip()]


def sentences(text: str) -> list[str]:
    """Sentences of one paragraph (line breaks inside it count as spaces)."""
    text = " ".join(text.split())
    out, start = [], 0
    for match in _END.finditer(text):
        word = text[start : match.start()].rsplit(" ", 1)[-1]
        before = word.lower()
        initial = re.fullmatch(r"[A-Z]", word) and text[match.end() :].lstrip()[:1].isupper()
        if match.group().startswith(".") and (before in _ABBREVIATIONS or initial):
            continue  # "Dr." or an initial: not the end of a sentence
        if text[match.end() :].lstrip()[:1].islower():
            continue  # '"Wow!" he said': the sentence goes on
        out.append(text[start : match.end()].strip())
        start = match.end()
    if text[start:].strip():
        out.append(text[start:].strip())
    return out


def split_long(piece: str, count: Callable[[str], int], budget: int) -> list[str]:
    """Cut a piece longer than ``budget`` tokens at word boundaries (a run-on sentence, a table row...)."""
    if count(piece) <= budget:
        return [piece]
    out, current, used = [], [], 0
    for word in piece.split(" "):
        size = count(word) + 1
        while size > budget:  # one "word" over budget (no spaces, e.g. a base64 blob): cut it by characters
            cut = max(1, len(word) * budget // size)
            out.extend([" ".join(current)] if current else [])
            out.append(word[:cut])
            current, used, word = [], 0, word[cut:]
            size = count(word) + 1
        if current and used + size > budget:
            out.append(" ".join(current))
            current, used = [], 0
        current.append(word)
        used += size
    if current:
        out.append(" ".join(current))
    return [p for p in out if p]


def chunks(text: str, count: Callable[[str], int], budget: int) -> list[str]:
    """Consecutive chunks of at most ``budget`` tokens, made of whole paragraphs, else whole sentences.

    Nothing is dropped: joining the chunks gives back every word of the text.
    """
    if budget < 1:
        raise ValueError("budget must be positive")
    pieces: list[tuple[str, str]] = []  # (text, separator before it)
    for paragraph in paragraphs(text):
        if count(paragraph) <= budget:
            pieces.append((paragraph, "\n\n"))
            continue
        for i, sentence in enumerate(sentences(paragraph)):
            for j, part in enumerate(split_long(sentence, count, budget)):
                pieces.append((part, "\n\n" if i == j == 0 else " "))
    out: list[str] = []
    current, used = "", 0
    for piece, separator in pieces:  # token counts add up closely enough: a separator costs one token
        size = count(piece) + 1
        if current and used + size > budget:
            out.append(current)
            current, used = "", 0
        current = f"{current}{separator}{piece}" if current else piece
        used += size
    if current:
        out.append(current)
    return out
