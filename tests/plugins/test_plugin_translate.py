"""translate on the tiny random model: paragraphs, sentence splitting and language names."""

from __future__ import annotations

import pytest

from nlpsuite.errors import NlpsuiteError

pytestmark = pytest.mark.shared_cache


def test_translation_keeps_paragraphs(suite):
    got = suite.translate("One. Two.\n\nThree.", to="de")
    assert got.count("\n\n") == 1


def test_translation_goes_sentence_by_sentence_in_chinese_too(suite):
    from nlpsuite_plugins.translate import translate_texts

    (got,), units, said = translate_texts(
        suite, ["我今天很开心。你呢？\n\nDr. Smith met J. R. R. Tolkien."], "German", None
    )
    assert units == [3] and got.count("\n\n") == 1
    assert len(said[0]) == 3 and all(n == 0 or lp < 0 for lp, n in said[0])  # one (log-probability, tokens) each


def test_translation_language_codes(suite):
    from nlpsuite_plugins.translate import clean, language

    assert language("DE", "--to") == "German" and language("french", "--to") == "French"
    with pytest.raises(NlpsuiteError, match="unknown language"):
        language("xx", "--to")
    assert clean('Here is the translation: "Hallo Welt"\nExtra line', "Hello world") == "Hallo Welt"


def test_translate_names_the_source_language_it_detects(suite):
    from nlpsuite_plugins import translate

    texts = ["我爱编程。", "I love programming and I write code every day.", "Hallo"]
    got = translate.run(suite, [{"text": t} for t in texts], to="German")
    assert [g["from"] for g in got] == ["Chinese", "English", None]  # one word: too unsure to name


def test_translate_names_the_detected_source_to_the_model(suite, monkeypatch):
    from nlpsuite_plugins import translate

    told = []
    monkeypatch.setattr(translate, "translate_texts", lambda s, texts, to, sources, **k: told.append(sources) or
                        (["x"] * len(texts), [1] * len(texts), [[(-1.0, 1)]] * len(texts)))  # fmt: skip
    got = translate.run(suite, [{"text": "我爱编程。"}, {"text": "Je voudrais un café, s'il vous plaît."}], to="German")
    assert told == [["Chinese", "French"]] and [g["from"] for g in got] == ["Chinese", "French"]
    assert translate.run(suite, [{"text": "我爱编程。"}], to="German", source="Japanese")[0]["from"] == "Japanese"
    assert translate._prompt("我爱编程。", "English", "Chinese").startswith("Translate the following Chinese text into")
