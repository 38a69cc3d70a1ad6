"""summarize on the tiny random model: map-reduce over long input and word limits."""

from __future__ import annotations

import pytest
from plugin_cases import words

pytestmark = pytest.mark.shared_cache


def test_summarize_map_reduce_covers_long_input(suite, monkeypatch):
    """The orchestration alone: the model's summaries are replaced by a marker naming what was summarized."""
    from nlpsuite_plugins import summarize

    calls = []

    def fake_generate(self, texts, words):
        calls.append(list(texts))
        return [(f"summary of {len(t.split())} words.", (-1.0, 4)) for t in texts]

    monkeypatch.setattr(summarize.Summarizer, "_generate", fake_generate)
    monkeypatch.setattr(summarize, "CHUNK_TOKENS", 200)
    long_text = "\n\n".join(words(120) + "." for _ in range(10))
    got = suite.summarize(long_text, max_words=5)
    mapped = calls[0]
    assert len(mapped) > 1 and " ".join(" ".join(mapped).split()) == " ".join(long_text.split())  # nothing dropped
    assert " ".join(calls[1]).count("summary of") == len(mapped)  # the next round reads every chunk's summary
    assert len(calls[-1]) == 1  # and it ends in one summary of everything
    assert got.startswith("summary of")


def test_clip_words():
    from nlpsuite_plugins.summarize import clip_words

    assert clip_words("Summary: One two three. Four five six seven.", 5) == "One two three."
    assert clip_words("a b c", 10) == "a b c"


def test_clip_words_counts_chinese_by_character_and_ends_at_a_full_stop():
    from nlpsuite_plugins.summarize import clip_words

    text = "自然语言处理是计算机科学的一个分支。它研究如何让计算机理解人类语言。"
    assert clip_words(text, 20) == "自然语言处理是计算机科学的一个分支。"
    assert clip_words(text, 100) == text
    assert clip_words("我爱编程，也爱读书。", 3) == "我爱编"


def test_summary_words_count_chinese_characters(suite, monkeypatch):
    from nlpsuite_plugins import summarize

    monkeypatch.setattr(
        summarize.Summarizer, "_generate", lambda self, texts, words: [("我爱编程。", (-1.0, 3)) for _ in texts]
    )
    assert summarize.run(suite, [{"text": "我爱编程，也爱读书。"}], max_words=10)[0]["words"] == 4
