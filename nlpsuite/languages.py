"""Which languages a model knows, and one warning when a task's text or target language is not among them.

A catalog entry lists its model's languages (ISO 639-1 codes, ``"languages"``); a folder or GGUF file the user
brings declares none, and then nothing is said. A text's language is told by its script alone, which needs no
model and is never wrong about Chinese on an English model; Latin-script text is never warned about, since its
script does not tell English from French.

``detect`` names a text's language for `translate` without ``--from``: by its script where the script tells one
language, else with py3langid (its model ships inside its wheel; loaded on first need, about a second).
"""

from __future__ import annotations

import functools
import re

NAMES = {
    "ar": "Arabic", "bg": "Bulgarian", "ca": "Catalan", "cs": "Czech", "da": "Danish", "de": "German",
    "el": "Greek", "en": "English", "es": "Spanish", "et": "Estonian", "fa": "Persian", "fi": "Finnish",
    "fr": "French", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian", "hu": "Hungarian", "id": "Indonesian",
    "it": "Italian", "ja": "Japanese", "ko": "Korean", "lt": "Lithuanian", "lv": "Latvian", "mr": "Marathi",
    "ne": "Nepali", "nl": "Dutch", "no": "Norwegian", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian",
    "ru": "Russian", "sk": "Slovak", "sl": "Slovenian", "sr": "Serbian", "sv": "Swedish", "th": "Thai",
    "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu", "vi": "Vietnamese", "yi": "Yiddish", "zh": "Chinese",
}  # fmt: skip

# Each language's name for itself: --to Deutsch or --to 中文 means what --to German or --to Chinese does.
ENDONYMS = {
    "ar": "العربية", "bg": "български", "ca": "català", "cs": "čeština", "da": "dansk", "de": "Deutsch",
    "el": "Ελληνικά", "en": "English", "es": "español", "et": "eesti", "fa": "فارسی", "fi": "suomi",
    "fr": "français", "he": "עברית", "hi": "हिन्दी", "hr": "hrvatski", "hu": "magyar", "id": "Bahasa Indonesia",
    "it": "italiano", "ja": "日本語", "ko": "한국어", "lt": "lietuvių", "lv": "latviešu", "mr": "मराठी",
    "ne": "नेपाली", "nl": "Nederlands", "no": "norsk", "pl": "polski", "pt": "português", "ro": "română",
    "ru": "русский", "sk": "slovenčina", "sl": "slovenščina", "sr": "српски", "sv": "svenska", "th": "ไทย",
    "tr": "Türkçe", "uk": "українська", "ur": "اردو", "vi": "Tiếng Việt", "yi": "ייִדיש", "zh": "中文",
}  # fmt: skip

# Non-Latin scripts: the languages written in each, and what to call a text in it.
_SCRIPTS = {
    "kana": (re.compile(r"[\u3040-\u30ff\uff66-\uff9f]"), {"ja"}, "Japanese"),
    "han": (re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"), {"zh", "ja"}, "Chinese"),
    "hangul": (re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]"), {"ko"}, "Korean"),
    "cyrillic": (re.compile(r"[\u0400-\u04ff]"), {"ru", "uk", "bg", "sr"}, "Cyrillic script"),
    "greek": (re.compile(r"[\u0370-\u03ff]"), {"el"}, "Greek"),
    "arabic": (re.compile(r"[\u0600-\u06ff]"), {"ar", "fa", "ur"}, "Arabic script"),
    "hebrew": (re.compile(r"[\u0590-\u05ff]"), {"he", "yi"}, "Hebrew script"),
    "devanagari": (re.compile(r"[\u0900-\u097f]"), {"hi", "mr", "ne"}, "Devanagari script"),
    "thai": (re.compile(r"[\u0e00-\u0e7f]"), {"th"}, "Thai"),
}


def script_languages(text: str) -> tuple[set[str], str] | None:
    """(the languages its main script is written in, what to call it), or None for Latin script or no letters."""
    letters = sum(c.isalpha() for c in text)
    counts = {name: len(pattern.findall(text)) for name, (pattern, _, _) in _SCRIPTS.items()}
    if counts["kana"]:  # Japanese mixes kana with Han: together they are its script
        counts["kana"] += counts.pop("han")
    best = max(counts, key=counts.get)
    if not letters or 2 * counts[best] <= letters:
        return None
    _, languages, name = _SCRIPTS[best]
    return languages, name


# Latin-script languages that detection chooses among (those `translate` names), and the single language of a script.
LATIN = {"ca", "cs", "da", "de", "en", "es", "et", "fi", "fr", "hr", "hu", "id", "it", "lt", "lv", "nl", "no", "pl",
         "pt", "ro", "sk", "sl", "sv", "tr", "vi"}  # fmt: skip
_BY_NAME = {"Japanese": "ja", "Chinese": "zh", "Korean": "ko", "Greek": "el", "Thai": "th"}
CONFIDENCE = 0.5  # below this share among its script's languages a guess is dropped: a wrong source misleads


@functools.cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    scripts = set().union(*(languages for _, languages, _ in _SCRIPTS.values()))
    identifier.set_languages(sorted((LATIN | scripts) & set(identifier.labels)))
    return identifier


def detect(text: str) -> str | None:
    """The ISO 639-1 code of a text's language, or None when it cannot be told with confidence."""
    found = script_languages(text)
    if found and found[1] in _BY_NAME:  # a script of one language (what written_in tells)
        return _BY_NAME[found[1]]
    candidates = found[0] if found else LATIN
    if not any(c.isalpha() for c in text):
        return None
    ranked = [(code, p) for code, p in _identifier().rank(text) if code in candidates]
    total = sum(p for _, p in ranked)
    if not ranked or total <= 0:
        return None
    code, p = ranked[0]
    return code if p / total >= CONFIDENCE else None


def written_in(text: str) -> str | None:
    """The language a text's script tells (Chinese for Han, Japanese, Korean, Greek, Thai), else None."""
    found = script_languages(text)
    return found[1] if found and not found[1].endswith("script") else None


def model_languages(suite) -> set[str] | None:
    """The languages the suite's model declares it knows; None when it declares none."""
    if suite.source.kind != "catalog":
        return None
    entry = suite.catalog.find(suite.source.key) or {}
    languages = entry.get("languages")
    return set(languages) if languages else None


def _known(languages: set[str]) -> str:
    return ", ".join(NAMES.get(code, code) for code in sorted(languages))


def check(suite, texts: list[str], target: str | None = None, detected: list[str | None] | None = None) -> None:
    """Warn (``suite.warn``) when a text's script, its ``detected`` language code (where a task detected one) or
    the ``target`` language code is outside the model's."""
    known = model_languages(suite)
    if not known:
        return
    for text, code in zip(texts, detected or [None] * len(texts), strict=True):
        found = script_languages(text) if isinstance(text, str) else None
        if found and not found[0] & known:
            suite.warn(f"{suite.source.key} knows {_known(known)}, and this text is {found[1]}: expect poor results")
            break
        if not found and code and code not in known:
            name = NAMES.get(code, code)
            suite.warn(f"{suite.source.key} knows {_known(known)}, and this text is {name}: expect poor results")
            break
    if target and target not in known:
        name = NAMES.get(target, target)
        suite.warn(f"{suite.source.key} knows {_known(known)}, not {name}: expect poor {name} output")
