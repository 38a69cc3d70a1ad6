"""Language awareness: a catalog model's languages, a text's script, and the one-line warning when they differ."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from nlpsuite import languages
from nlpsuite.modelstore.catalog import Catalog, ModelSource


@pytest.mark.parametrize(
    "text, expected",
    [
        ("我爱编程。", ({"zh", "ja"}, "Chinese")),
        ("私はプログラミングが好きです。", ({"ja"}, "Japanese")),
        ("나는 프로그래밍을 좋아한다", ({"ko"}, "Korean")),
        ("Я люблю программирование.", ({"ru", "uk", "bg", "sr"}, "Cyrillic script")),
        ("I love programming.", None),
        ("J'aime programmer.", None),  # Latin script says nothing of the language
        ("What does 你好 mean in English?", None),  # mostly Latin
        ("2024-01-01 12:00", None),
    ],
)
def test_a_text_is_placed_by_its_main_script(text, expected):
    assert languages.script_languages(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("我爱编程。", "zh"),  # Han without kana
        ("私はプログラミングが好きです。", "ja"),
        ("나는 프로그래밍을 좋아한다", "ko"),
        ("Καλημέρα σε όλους.", "el"),
        ("ฉันชอบเขียนโปรแกรม", "th"),
        ("2024-01-01 12:00", None),
    ],
)
def test_a_script_that_tells_one_language_decides_without_the_identifier(text, expected, monkeypatch):
    monkeypatch.setattr(languages, "_identifier", lambda: pytest.fail("the script alone decides"))
    assert languages.detect(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The weather is lovely today and we are going for a walk.", "en"),
        ("Das Wetter ist heute schön und wir gehen spazieren.", "de"),
        ("Il fait beau aujourd'hui et nous allons nous promener.", "fr"),
        ("Hoy hace buen tiempo y vamos a dar un paseo por el parque.", "es"),
        ("Oggi il tempo è bello e andiamo a fare una passeggiata.", "it"),
        ("Het weer is vandaag mooi en we gaan een wandeling maken.", "nl"),
        ("Сегодня хорошая погода, и мы идём гулять.", "ru"),  # Cyrillic: chosen among its languages
    ],
)
def test_a_latin_or_shared_script_text_is_told_by_the_identifier(text, expected):
    assert languages.detect(text) == expected


def fake_suite(kind="catalog", key="smollm2-135m-instruct"):
    said: list[str] = []
    suite = SimpleNamespace(source=ModelSource(kind, key, key), catalog=Catalog(), warn=said.append)
    return suite, said


def test_the_default_model_declares_english_and_warns_once_about_chinese():
    suite, said = fake_suite()
    assert languages.model_languages(suite) == {"en"}
    languages.check(suite, ["I love programming.", "The weather is nice."], "fr")
    assert said == ["smollm2-135m-instruct knows English, not French: expect poor French output"]
    said.clear()
    languages.check(suite, ["我爱编程。", "自然语言处理是什么？"])
    assert said == ["smollm2-135m-instruct knows English, and this text is Chinese: expect poor results"]
    said.clear()
    languages.check(suite, ["I love programming."], "en")
    assert said == []


def test_a_detected_latin_script_language_the_model_does_not_know_is_said_too():
    suite, said = fake_suite()
    languages.check(suite, ["Je voudrais un café.", "I love programming."], detected=["fr", "en"])
    assert said == ["smollm2-135m-instruct knows English, and this text is French: expect poor results"]
    said.clear()
    languages.check(suite, ["I love programming."], detected=["en"])
    assert said == []


def test_a_model_the_user_brings_declares_nothing_and_nothing_is_said():
    suite, said = fake_suite("gguf", "qwen-0123abcd")
    languages.check(suite, ["我爱编程。"], "zh")
    assert languages.model_languages(suite) is None and said == []


def test_the_api_warns_once_per_suite():
    from nlpsuite import Suite

    suite = Suite(model="smollm2-135m-instruct")
    with pytest.warns(UserWarning, match="this text is Chinese"):
        languages.check(suite, ["我爱编程。"])
    suite.on_warning = pytest.fail  # said already: not again
    languages.check(suite, ["我今天很开心。"])
    assert len(suite.warnings) == 1


@pytest.mark.shared_cache
def test_translate_into_a_language_the_model_does_not_know_says_so_in_one_line(
    cli, make_tiny_llama, tmp_path_factory, monkeypatch
):
    tiny = make_tiny_llama(tmp_path_factory.mktemp("tiny-languages"), context=4096)
    model = ["--model", str(tiny), "--device", "cpu"]
    monkeypatch.setattr(languages, "model_languages", lambda suite: {"en"})  # as a catalog entry would say
    result = cli(["translate", "I love programming.", "--to", "zh", "--json", *model])
    assert result.code == 0, result.err
    lines = [line for line in result.err.splitlines() if line.startswith("warning: ")]  # besides conversion notes
    assert len(lines) == 1
    assert lines[0].endswith("knows English, not Chinese: expect poor Chinese output")
    assert json.loads(result.out)["warnings"] == [lines[0].removeprefix("warning: ")]
    quiet = cli(["translate", "I love programming.", "--to", "zh", "--json", *model, "-q"])
    assert quiet.err == "" and json.loads(quiet.out)["warnings"]  # -q: said in the JSON only
    english = cli(["translate", "I love programming.", "--to", "en", *model])
    assert english.code == 0 and "warning" not in english.err


def test_a_summary_is_asked_for_in_the_language_and_unit_of_the_text():
    from nlpsuite_plugins.summarize import _length

    assert languages.written_in("自然语言处理是计算机科学的一个分支。") == "Chinese"
    assert languages.written_in("Я люблю программирование.") is None  # Russian? Ukrainian? Bulgarian?
    assert _length("自然语言处理是计算机科学的一个分支。", 30) == "one sentence of at most 30 characters, in Chinese"
    assert _length("自然语言处理是计算机科学的一个分支。", 100) == "at most 100 characters, in Chinese"
    assert _length("Natural language processing is a branch of computer science.", 30) == "at most 30 words"
    assert _length("Natural language processing.", None) == "a few sentences"


@pytest.mark.shared_cache
def test_the_chat_repl_says_it_once_too(cli, tiny_llama, monkeypatch):
    monkeypatch.setattr(languages, "model_languages", lambda suite: {"en"})
    model = ["--model", str(tiny_llama), "--device", "cpu", "-n", "3"]
    result = cli(["chat", *model], stdin="明天天气怎么样？\n你好！\n".encode())
    assert result.code == 0, result.err
    warned = [line for line in result.err.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 1 and warned[0].endswith("and this text is Chinese: expect poor results")  # once
    quiet = cli(["chat", *model, "-q"], stdin="明天天气怎么样？\n".encode())
    assert "warning" not in quiet.err  # -q: the replies and errors only
