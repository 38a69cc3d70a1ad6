"""BM25 terms chosen by script and language, the same for the passages of an index and for its queries.

Where words are written without spaces between them (Han, kana, Hangul, Thai, Lao, Khmer, Myanmar), a run of
letters becomes its overlapping character bigrams ("自然语言" -> 自然 然语 语言; a lone character stays itself):
on a Chinese headline -> article set they put the right article first more often than single characters or
jieba's words, with no dictionary to load. Other words are bm25s' own tokens, lowercased, minus the stop words of
the passage's language and stemmed in it; that language is the one whose stop words the passage uses most
(English when it uses none). An index records the languages it holds, and a query's words are stemmed in each of
them, so one query finds passages in every language of a mixed collection.
"""

from __future__ import annotations

import re
from functools import cache

ANALYZER = "scripts-1"
LEGACY = "english-1"  # indexes written before this analyzer: bm25s' tokenizer, English stop words and stemmer

_UNSPACED = (
    "\u0e00-\u0eff"  # Thai, Lao
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u3040-\u30ff"  # kana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"  # Han
    "\uac00-\ud7af"  # Hangul syllables
    "\uff66-\uff9f"  # half-width katakana
)
_RUN = re.compile(f"[{_UNSPACED}]+")
_WORD = re.compile(r"(?u)\b\w\w+\b")  # bm25s' pattern: English passages keep the terms they had
MIN_VOTES = 3  # distinct stop words a passage must use before it counts as in a language other than English

# Languages with both a Snowball stemmer (PyStemmer) and a stop word list (bm25s); English first: it wins ties.
STEMMERS = {
    "en": "english", "da": "danish", "de": "german", "es": "spanish", "fr": "french", "it": "italian",
    "nl": "dutch", "no": "norwegian", "pt": "portuguese", "ru": "russian", "sv": "swedish", "tr": "turkish",
}  # fmt: skip
_STOPWORD_LISTS = {
    "en": "STOPWORDS_EN", "da": "STOPWORDS_DANISH", "de": "STOPWORDS_GERMAN", "es": "STOPWORDS_SPANISH",
    "fr": "STOPWORDS_FRENCH", "it": "STOPWORDS_ITALIAN", "nl": "STOPWORDS_DUTCH", "no": "STOPWORDS_NORWEGIAN",
    "pt": "STOPWORDS_PORTUGUESE", "ru": "STOPWORDS_RUSSIAN", "sv": "STOPWORDS_SWEDISH", "tr": "STOPWORDS_TURKISH",
}  # fmt: skip


@cache
def _stopwords(language: str) -> frozenset[str]:
    import bm25s.stopwords

    return frozenset(getattr(bm25s.stopwords, _STOPWORD_LISTS[language]))


@cache
def _stemmer(language: str):
    import Stemmer

    return Stemmer.Stemmer(STEMMERS[language])


def _split(text: str) -> tuple[list[str], list[str]]:
    """(bigrams of the runs written without spaces, the other words lowercased)."""
    text = text.lower()
    grams = []
    for run in _RUN.findall(text):
        grams += [run[i : i + 2] for i in range(len(run) - 1)] or [run]
    return grams, _WORD.findall(_RUN.sub(" ", text))


def language_of(words: list[str]) -> str:
    """The language whose stop words ``words`` use most; English unless another has a clear lead."""
    votes = {language: sum(w in _stopwords(language) for w in words) for language in STEMMERS}
    best = max(votes, key=votes.get)  # the first maximum: English when it ties
    # A few Latin words in a Chinese passage ("/usr/bin", ".com") are no evidence of German or Portuguese.
    distinct = len(_stopwords(best).intersection(words))
    return best if distinct >= MIN_VOTES and votes[best] >= 0.1 * len(words) else "en"


def _stems(words: list[str], language: str) -> list[str]:
    stops = _stopwords(language)
    return _stemmer(language).stemWords([w for w in words if w not in stops])


def passage_terms(texts: list[str]) -> tuple[list[list[str]], list[str]]:
    """The terms of each passage (``[""]`` for none, as bm25s writes an empty one) and the languages they hold."""
    out, languages = [], set()
    for text in texts:
        grams, words = _split(text)
        language = language_of(words)
        languages.add(language)
        out.append(grams + _stems(words, language) or [""])
    return out, sorted(languages, key=list(STEMMERS).index)


def query_terms(query: str, languages: list[str]) -> list[str]:
    """The terms of a query for an index holding ``languages``: each word stemmed in every one of them."""
    grams, words = _split(query)
    stems: list[list[str]] = [[] for _ in words]
    for language in languages:
        stops = _stopwords(language)
        for i, word in enumerate(words):
            stem = None if word in stops else _stemmer(language).stemWord(word)
            if stem is not None and stem not in stems[i]:
                stems[i].append(stem)
    return grams + [s for word in stems for s in word]


def legacy_terms(texts: list[str]) -> list[list[str]]:
    """Terms as indexes written before ``ANALYZER`` hold them: English stop words and stemmer on every text."""
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer("en"), return_ids=False, show_progress=False)
