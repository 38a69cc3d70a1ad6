"""The one text splitter: paragraphs, sentences and token-budgeted chunks, as character spans of the source.

Every function returns ``Piece``s whose ``text`` is exactly ``source[start:end]``, trimmed of whitespace, so
callers map results back by offsets instead of searching. Each step is linear in the text's length.

``chunk`` packs whole paragraphs while they fit, else whole sentences, else a sentence cut at whitespace (or
between characters when it has none); nothing but whitespace is dropped. When a cut falls inside a paragraph,
the next chunk may repeat the last sentences before it (``overlap_tokens``), so a fact that straddles the cut
is whole in one of them. ``markdown=True`` adds the retrieval rules: a heading starts a new chunk, a line
break before a Markdown block (list item, quote, table row, code fence) ends a sentence, and a chunk that is
already half full ends at a paragraph break. Hard-wrapped prose keeps its sentences whole either way.

Lengths in words (``count_words``, ``summarize --max-words``) count a whitespace-separated run as one word, and
each Han or kana character as one word, as Chinese and Japanese count length (字数, 文字数); chunk budgets are
in the model's tokens, which mean the same in every script.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

CountTokens = Callable[[str], int]


@dataclass(frozen=True)
class Piece:
    """A span of the source text: ``text == source[start:end]``."""

    start: int
    end: int
    text: str


# Sentence end marks. The Latin-style ones (. ! ? … and friends) end a sentence only before whitespace,
# so "3.5" and "example.com" stay whole. The others never occur inside a word or number, so they end a
# sentence wherever they stand ("我今天很开心。你呢？" is two): CJK 。！？｡ and the full-width full stop ．
# (Japanese technical writing), Devanagari danda । ॥, Arabic ؟ and Urdu ۔, Armenian ։, Ethiopic ። ፧ ፨,
# Myanmar ။ and Khmer ។ ៕. The full-width semicolon ； (like ; and :) separates clauses, not sentences.
_ANYWHERE = "。！？｡．।॥؟۔։።፧፨။។៕"
_END = re.compile(r"([.!?…‼⁇⁈⁉" + _ANYWHERE + r"]+)[\"'”’»›)\]}」』】〕〗〙〛）］｝》〉]*")
_OPENERS = "\"'“‘«‹([{¿¡「『【（"
_NEXT = re.compile(r"\s*[" + re.escape(_OPENERS) + r"]*(\S?)")  # the first letter after an end mark
# Han and kana (with CJK extension B-F): written without spaces, so each character counts as a word.
CHARACTER_WORDS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
_CJK = re.compile(f"[{CHARACTER_WORDS}]")
_WORD = re.compile(rf"[{CHARACTER_WORDS}]|[^\s{CHARACTER_WORDS}]+")
_INITIALS = re.compile(r"[^\W\d_](?:\.[^\W\d_])*")  # "J", "J.R.R", "U.S": before a capital they start a name

# A period after these never ends a sentence: they introduce the word that follows ("Dr. Smith", "e.g. tea").
# Abbreviations that often do end one (etc., Inc., Jr.) are left out: those end before a capital letter.
_PREFIXES = {
    "mr", "mrs", "ms", "mx", "dr", "prof", "st", "mt", "ft", "sr", "sra", "srta", "rev", "fr", "gen", "gov",
    "sen", "rep", "col", "lt", "capt", "sgt", "maj", "adm", "cmdr", "hon", "pres", "messrs", "mme", "mlle",
    "e.g", "i.e", "cf", "vs", "viz", "al", "resp", "z.b", "d.h", "bzw", "vgl", "ggf", "evtl", "sog",
}  # fmt: skip
# ...and these only before a number ("Fig. 3", "No. 5", "Jan. 12"): "I said no. Then" ends.
_BEFORE_NUMBERS = {
    "no", "nos", "nr", "vol", "vols", "p", "pp", "ch", "chap", "sec", "fig", "figs", "eq", "eqs", "art", "op",
    "ed", "tab", "ref", "refs", "ex", "para", "pt", "ca", "approx", "jan", "feb", "mar", "apr", "jun", "jul",
    "aug", "sep", "sept", "oct", "nov", "dec",
}  # fmt: skip
_WORD_WINDOW = 16  # longer than any abbreviation above: a word is looked at through its last characters only

_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")
# Markdown: a heading line is a paragraph of its own; a line break before another block ends a sentence.
_HEADING = re.compile(r"[ \t]{0,3}#{1,6}(?=[ \t\r]|$)", re.MULTILINE)
_BLOCK_START = re.compile(r"\n(?=[ \t]*(?:>|\||[*+-][ \t]|\d+[.)][ \t]|```|~~~))")
_LAST_SPACE = re.compile(r"(?s:.*)\s")  # matched from a position: ends just after the last whitespace
_LEADING_SPACE = re.compile(r"\s*")


# Characters that show nothing: whitespace and Unicode's default-ignorable code points (zero-width space and
# joiners, the byte-order mark, word joiner, direction marks and embeddings, soft hyphen, variation selectors,
# tags). A text made only of them is empty: a model would read noise where the user sees nothing.
_INVISIBLE = re.compile(
    "[\\s\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]*"
)


def blank(text: str) -> bool:
    """Whether ``text`` shows nothing: only whitespace and invisible characters (see _INVISIBLE), or nothing."""
    return _INVISIBLE.fullmatch(text) is not None


def word_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each word: a Han or kana character, or a run of other non-space characters; punctuation
    alone beside a Han or kana character ("编程。", "你好，") is no word."""
    spans = []
    for match in _WORD.finditer(text):
        start, end = match.span()
        beside = (start and _CJK.match(text, start - 1)) or _CJK.match(text, end)
        if beside and not any(c.isalnum() for c in match.group()):  # Han and kana are alphanumeric
            continue
        spans.append((start, end))
    return spans


def count_words(text: str) -> int:
    """Words in ``text``, each Han or kana character counted as one (see the module docstring)."""
    return len(word_spans(text))


def counts_characters(text: str) -> bool:
    """Whether most of the words of ``text`` are Han or kana characters: its length is a character count."""
    spans = word_spans(text)
    return 2 * sum(e - s == 1 and bool(_CJK.match(text, s)) for s, e in spans) > len(spans)


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    start = _LEADING_SPACE.match(text, start, end).end()
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _spans(text: str, cuts: Iterable[tuple[int, int]], start: int, end: int) -> Iterator[tuple[int, int]]:
    """The non-blank spans of ``text[start:end]`` between ``cuts`` (where a piece ends, where the next begins),
    trimmed."""
    at = start
    for stop, resume in cuts:
        s, e = _trimmed(text, at, stop)
        if e > s:
            yield s, e
        at = resume
    s, e = _trimmed(text, at, end)
    if e > s:
        yield s, e


def _between(text: str, pattern: re.Pattern, start: int, end: int) -> Iterator[tuple[int, int]]:
    """The non-blank spans of ``text[start:end]`` between matches of ``pattern``, trimmed."""
    return _spans(text, ((m.start(), m.end()) for m in pattern.finditer(text, start, end)), start, end)


def _is_end(text: str, match: re.Match, start: int, end: int) -> bool:
    """Whether the end mark ``match`` in the block ``text[start:end]`` ends a sentence."""
    marks, after = match.group(1), match.end()
    if any(c in _ANYWHERE for c in marks):
        if after > match.end(1) and text[after : after + 1] == "と":
            return False  # 「晴れです。」と言った: a Japanese quotation goes on with its verb
        return not (marks == "．" and after < end and text[after].isdigit())  # "３．１４" is a number
    if after < end and not text[after].isspace():
        return bool(_CJK.match(text, after))  # "你好!我很好" needs no space; "3.5" and "a.b" are no ends
    following = _NEXT.match(text, after, end).group(1)
    if following.islower():
        return False  # '"Wow!" he said', "in the U.S. in May": the sentence goes on
    if marks != ".":
        return True
    word_start = max(start, match.start() - _WORD_WINDOW)
    word = text[word_start : match.start()].rsplit(None, 1)[-1:]
    word = word[0].lstrip(_OPENERS) if word else ""
    lower = word.lower()
    if lower in _PREFIXES or (lower in _BEFORE_NUMBERS and following.isdigit()):
        return False
    if following.isupper() and _INITIALS.fullmatch(word) and word.replace(".", "").isupper() and word != "I":
        return False  # "J. R. R. Tolkien", "J.R.R. Tolkien", "U.S. Army"
    if word.isdigit():  # "1. First item": a list marker at the start of a line
        before = match.start() - len(word) - 1
        while before >= start and text[before] in " \t":
            before -= 1
        return not (before < start or text[before] == "\n")
    return True


def _sentence_spans(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Sentences of one block of text (no paragraph break inside), trimmed; each keeps its end mark."""
    ends = (m.end() for m in _END.finditer(text, start, end) if _is_end(text, m, start, end))
    return _spans(text, ((e, e) for e in ends), start, end)


def paragraphs(text: str) -> list[Piece]:
    """Blank-line separated paragraphs, trimmed; blank ones dropped."""
    return [Piece(s, e, text[s:e]) for s, e in _between(text, _PARAGRAPH_BREAK, 0, len(text))]


def sentences(text: str, start: int = 0, end: int | None = None) -> list[Piece]:
    """Sentences of ``text[start:end]`` with offsets into ``text``; a blank line always ends one, a line break not."""
    end = len(text) if end is None else end
    return [
        Piece(s, e, text[s:e])
        for p_start, p_end in _between(text, _PARAGRAPH_BREAK, start, end)
        for s, e in _sentence_spans(text, p_start, p_end)
    ]


def ends_sentence(text: str) -> bool:
    """Whether ``text`` ends with a sentence's end mark (and any closing quotes or brackets after it)."""
    return _ENDS_SENTENCE.search(text) is not None


_ENDS_SENTENCE = re.compile(f"(?:{_END.pattern})$")


def _markdown_sections(text: str, start: int, end: int) -> Iterator[tuple[int, int, bool]]:
    """A paragraph cut around its heading lines: (start, end, is_heading)."""
    at = start
    for match in _HEADING.finditer(text, start, end):
        if match.start() != start and text[match.start() - 1] != "\n":
            continue  # "#" inside a line; the paragraph's own first line follows trimmed blanks, not "\n"
        line_end = text.find("\n", match.start(), end)
        line_end = end if line_end < 0 else line_end
        s, e = _trimmed(text, at, match.start())
        if e > s:
            yield s, e, False
        yield (*_trimmed(text, match.start(), line_end), True)
        at = line_end
    s, e = _trimmed(text, at, end)
    if e > s:
        yield s, e, False


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int
    gap: int  # tokens of the whitespace before it, paid when it joins the unit before it in a chunk
    paragraph_end: bool
    heading: bool


class _Budget:
    """Token counts against ``max_tokens`` for one text, with cuts for what does not fit."""

    def __init__(self, text: str, count: CountTokens, max_tokens: int) -> None:
        self.text, self.count, self.max_tokens = text, count, max_tokens
        self.gaps: dict[str, int] = {}
        self.guess = 8 * max_tokens  # characters to try first; then what fitted at the last cut

    def gap(self, start: int, end: int) -> int:
        blank = self.text[start:end]
        if blank not in self.gaps:
            self.gaps[blank] = self.count(blank) if blank else 0
        return self.gaps[blank]

    def fit(self, start: int, end: int) -> list[tuple[int, int, int]]:
        """``text[start:end]`` as (start, end, tokens) pieces within the budget: cut at whitespace, else anywhere."""
        text, pieces, whole_over = self.text, [], False
        while start < end:
            size, tokens = self._prefix(start, end, whole_over)
            whole_over = True  # a cut was needed; the last pieces need not be full, packing joins them again
            cut = start + size
            if cut < end and not text[cut].isspace():
                space = _LAST_SPACE.match(text, start, cut)
                if space is not None:
                    cut = space.end() - 1
                else:  # no whitespace: cut between characters, but not before a combining mark
                    while cut - 1 > start and unicodedata.category(text[cut]).startswith("M"):
                        cut -= 1
            s, e = _trimmed(text, start, cut)
            if e - s != size:
                tokens = self.count(text[s:e])
            pieces.append((s, e, tokens))
            start = _trimmed(text, cut, end)[0]
        return pieces

    def _prefix(self, start: int, end: int, whole_over: bool) -> tuple[int, int]:
        """A long prefix of ``text[start:end]`` within the budget, all of it if it fits: (characters, tokens).
        Counts prefixes near the budget's size, never a remainder known to be over it: linear in the text."""
        fits, fits_tokens, over = 0, 0, end - start + 1  # longest prefix known to fit, shortest known not to
        size = min(self.guess if whole_over else max(self.guess, 8 * self.max_tokens), end - start)
        for _ in range(16):
            tokens = self.count(self.text[start : start + size])
            if tokens <= self.max_tokens:
                fits, fits_tokens = size, tokens
                if size == end - start or (whole_over and 4 * tokens >= 3 * self.max_tokens):
                    break
            else:
                over, whole_over = size, True  # a prefix is over the budget, so the whole is
            if over - fits <= 1:
                break
            # Aim at the budget as if tokens grew in step with characters, inside the bracket.
            size = min(max(size * self.max_tokens // max(tokens, 1), fits + 1), over - 1)
        if fits == 0:  # even one character is over the budget: it still goes, alone
            return 1, self.count(self.text[start : start + 1])
        if fits < end - start:
            self.guess = fits
        return fits, fits_tokens


def _units(text: str, budget: _Budget, markdown: bool) -> list[_Unit]:
    """Whole paragraphs that fit the budget, else their sentences, else pieces of those."""
    units: list[_Unit] = []
    last_end = 0
    for p_start, p_end in _between(text, _PARAGRAPH_BREAK, 0, len(text)):
        sections = _markdown_sections(text, p_start, p_end) if markdown else [(p_start, p_end, False)]
        for s_start, s_end, heading in sections:
            blocks = _between(text, _BLOCK_START, s_start, s_end) if markdown else [(s_start, s_end)]
            pieces = [
                piece
                for b_start, b_end in blocks
                for s, e in _sentence_spans(text, b_start, b_end)
                for piece in budget.fit(s, e)
            ]
            gaps = [budget.gap(last_end, pieces[0][0]) if units else 0]
            gaps += [budget.gap(a[1], b[0]) for a, b in zip(pieces, pieces[1:], strict=False)]
            whole = sum(n for _, _, n in pieces) + sum(gaps[1:])
            if whole <= budget.max_tokens:
                units.append(_Unit(pieces[0][0], pieces[-1][1], whole, gaps[0], True, heading))
            else:
                last = len(pieces) - 1
                for i, ((s, e, n), gap) in enumerate(zip(pieces, gaps, strict=True)):
                    units.append(_Unit(s, e, n, gap, i == last, heading and i == 0))
            last_end = pieces[-1][1]
    return units


def chunk(
    text: str, count: CountTokens, max_tokens: int, overlap_tokens: int = 0, markdown: bool = False
) -> list[Piece]:
    """Consecutive pieces of at most ``max_tokens`` tokens (``count`` counts them) holding every word of ``text``;
    see the module docstring for where they are cut and what ``overlap_tokens`` and ``markdown`` add."""
    if max_tokens < 1 or not 0 <= overlap_tokens < max_tokens:
        raise ValueError("need max_tokens >= 1 and 0 <= overlap_tokens < max_tokens")
    pieces: list[Piece] = []
    current: list[_Unit] = []
    used = 0  # tokens of ``current`` joined, the whitespace between its units included
    headings_only = True

    def emit() -> None:
        start, end = current[0].start, current[-1].end
        pieces.append(Piece(start, end, text[start:end]))

    for unit in _units(text, _Budget(text, count, max_tokens), markdown):
        if markdown and unit.heading and current and not headings_only:
            emit()
            current, used, headings_only = [], 0, True
        elif current and used + unit.gap + unit.tokens > max_tokens:
            emit()
            carried, carried_used = [], 0
            for prev in reversed(current):  # the overlap: whole sentences from the end, within its budget
                cost = prev.tokens + (carried[0].gap if carried else 0)
                if prev.paragraph_end or carried_used + cost > overlap_tokens:
                    break
                carried.insert(0, prev)
                carried_used += cost
            if carried and carried_used + unit.gap + unit.tokens > max_tokens:
                carried, carried_used = [], 0
            current, used = carried, carried_used
            headings_only = all(u.heading for u in current)
        used += (unit.gap if current else 0) + unit.tokens
        current.append(unit)
        headings_only = headings_only and unit.heading
        if markdown and unit.paragraph_end and used >= max_tokens // 2:
            emit()
            current, used, headings_only = [], 0, True
    if current:
        emit()
    return pieces
