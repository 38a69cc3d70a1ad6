"""The one text splitter: paragraphs, sentences and token-budgeted chunks as exact spans of the source."""

from __future__ import annotations

import base64
import random

import pytest

from nlpsuite.text import Piece, blank, chunk, count_words, counts_characters, paragraphs, sentences, word_spans


def words(text: str) -> int:
    return len(text.split())


def texts(pieces: list[Piece]) -> list[str]:
    return [p.text for p in pieces]


def assert_exact_and_complete(source: str, pieces: list[Piece]) -> None:
    """Every piece is a verbatim slice, and the pieces hold every non-space character in order."""
    assert all(p.text == source[p.start : p.end] and p.text == p.text.strip() and p.text for p in pieces)
    assert all(a.start <= b.start for a, b in zip(pieces, pieces[1:], strict=False))
    covered, at = [], 0
    for p in pieces:  # overlapping pieces repeat text: count each character once
        covered.append(source[max(at, p.start) : p.end])
        at = max(at, p.end)
    assert "".join("".join(covered).split()) == "".join(source.split())


DOC = (
    "Alpha one two three. Beta four five six seven. Gamma eight nine.\n\n"
    "Delta ten eleven twelve thirteen. Epsilon fourteen fifteen. Zeta sixteen seventeen eighteen."
)


# -- sentences ---------------------------------------------------------------------------------------


def test_sentences_respect_abbreviations_and_initials():
    text = 'Dr. Smith met J. R. R. Tolkien in the U.S. in May. "Wow!" he said. Then e.g. tea? Yes'
    assert texts(sentences(text)) == [
        "Dr. Smith met J. R. R. Tolkien in the U.S. in May.",
        '"Wow!" he said.',
        "Then e.g. tea?",
        "Yes",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Dr. Smith met J. R. R. Tolkien in the U.S.",
        "Mr. and Mrs. Jones, i.e. the neighbours, saw Prof. Li and J.R.R. Tolkien, e.g. at St. Mary's.",
        "See Fig. 3 and No. 5 in vol. 2 of Smith et al. for the details.",
        "It costs 3.50 dollars at example.com today.",
        "Wait… what? no way!",
    ],
)
def test_one_sentence_stays_one(text):
    assert texts(sentences(text)) == [text]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("I said no. Then I left.", ["I said no.", "Then I left."]),
        ("He lives in the U.S. He likes it.", ["He lives in the U.S. He likes it."]),  # kept whole: U.S. Army...
        ("It was late (very late.) We stayed.", ["It was late (very late.)", "We stayed."]),
        ("He said “stop.” Then he left.", ["He said “stop.”", "Then he left."]),
        ("Apples, pears etc. Then tea.", ["Apples, pears etc.", "Then tea."]),
        ("It ended in 1990. 1991 was better.", ["It ended in 1990.", "1991 was better."]),
        ("So… Let us go. Now!", ["So…", "Let us go.", "Now!"]),
        ("Really?! Yes!!! Fine...", ["Really?!", "Yes!!!", "Fine..."]),
        ("1. First item\n2. Second item", ["1. First item\n2. Second item"]),  # list markers end nothing
    ],
)
def test_sentence_ends(text, expected):
    assert texts(sentences(text)) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("我今天很开心。你呢？", ["我今天很开心。", "你呢？"]),
        ("他说：“我很好。”你呢？我也好！", ["他说：“我很好。”", "你呢？", "我也好！"]),
        ("今日は晴れです。明日は雨でしょう．", ["今日は晴れです。", "明日は雨でしょう．"]),
        ("「晴れです。」と彼は言った。次です。", ["「晴れです。」と彼は言った。", "次です。"]),  # quoted, then と
        ("我们有三点：第一；第二。", ["我们有三点：第一；第二。"]),  # ； ends a clause, not a sentence
        ("你好!我很好.", ["你好!", "我很好."]),  # ASCII marks in CJK text need no space either
        ("मैं घर जा रहा हूँ। तुम कहाँ हो॥ ठीक है।", ["मैं घर जा रहा हूँ।", "तुम कहाँ हो॥", "ठीक है।"]),
        ("كيف حالك؟ أنا بخير.", ["كيف حالك؟", "أنا بخير."]),
        ("یہ ایک جملہ ہے۔ یہ دوسرا ہے۔", ["یہ ایک جملہ ہے۔", "یہ دوسرا ہے۔"]),
        ("Սա նախադասություն է։ Սա մեկ այլ է։", ["Սա նախադասություն է։", "Սա մեկ այլ է։"]),
        ("ይህ ዓረፍተ ነገር ነው። ይህ ሌላ ነው፧", ["ይህ ዓረፍተ ነገር ነው።", "ይህ ሌላ ነው፧"]),
        ("Это предложение. Это другое.", ["Это предложение.", "Это другое."]),
    ],
)
def test_sentence_ends_of_other_scripts(text, expected):
    assert texts(sentences(text)) == expected


def test_a_chinese_paragraph_is_many_sentences():
    paragraph = "今天天气很好。我们去公园散步吧！你觉得怎么样？" * 20
    assert len(sentences(paragraph)) == 60


def test_sentences_keep_offsets_across_paragraphs_and_hard_wraps():
    text = "  Intro line one\ncontinues here. Second one.\n\nTitle\n\nLast one!  "
    got = sentences(text)
    assert texts(got) == ["Intro line one\ncontinues here.", "Second one.", "Title", "Last one!"]
    assert all(p.text == text[p.start : p.end] for p in got)
    assert texts(sentences(text, 17, 44)) == ["continues here.", "Second one."]  # a window keeps whole offsets
    assert sentences(text, 17, 44)[0].start == 17


def test_paragraphs_split_on_blank_lines_only():
    text = "a\nb\n\n  \n c \n\n\nd"
    got = paragraphs(text)
    assert texts(got) == ["a\nb", "c", "d"]
    assert [(p.start, p.end) for p in got] == [(0, 3), (9, 10), (14, 15)]
    assert paragraphs(" \n\n ") == []


# -- chunk ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("budget", [3, 10, 50, 1000])
def test_chunks_keep_every_word_and_fit(budget):
    body = " ".join(f"w{i}" for i in range(300))
    text = "\n\n".join(f"{' '.join(['x'] * 40)}. Short one. {body}" for _ in range(3))
    got = chunk(text, words, budget)
    assert_exact_and_complete(text, got)
    assert all(words(p.text) <= budget for p in got)


def test_chunks_are_whole_paragraphs_else_whole_sentences():
    text = "One two. Three four.\n\nFive six seven. Eight nine.\n\nTen."
    assert texts(chunk(text, words, 4)) == ["One two. Three four.", "Five six seven.", "Eight nine.\n\nTen."]
    assert texts(chunk(text, words, 5)) == ["One two. Three four.", "Five six seven. Eight nine.", "Ten."]
    assert texts(chunk(text, words, 9)) == ["One two. Three four.\n\nFive six seven. Eight nine.", "Ten."]


def test_an_over_long_sentence_is_cut_at_whitespace_else_between_characters():
    sentence = " ".join(f"w{i}" for i in range(50))
    got = chunk(sentence, words, 8)
    assert all(words(p.text) <= 8 for p in got) and " ".join(texts(got)) == sentence
    blob = "x" * 100
    count = lambda t: len(t) // 10 + 1  # noqa: E731
    got = chunk(blob, count, 3)
    assert "".join(texts(got)) == blob and all(count(p.text) <= 3 for p in got)
    assert texts(chunk("x" * 10, len, 3)) == ["xxx", "xxx", "xxx", "x"]


def test_a_cut_never_separates_a_combining_mark_from_its_letter():
    text = "e\u0301" * 10  # é as e + combining acute accent
    got = chunk(text, len, 3)
    assert all(not p.text.startswith("\u0301") for p in got) and "".join(texts(got)) == text


def test_overlap_repeats_whole_sentences_within_its_budget():
    text = "A b c. D e f. G h i. J k l."
    got = chunk(text, words, 6, overlap_tokens=3)
    assert texts(got) == ["A b c. D e f.", "D e f. G h i.", "G h i. J k l."]
    assert texts(chunk(text, words, 6, overlap_tokens=2)) == ["A b c. D e f.", "G h i. J k l."]


def test_bad_budgets_are_refused():
    with pytest.raises(ValueError):
        chunk("text", words, 0)
    with pytest.raises(ValueError):
        chunk("text", words, 5, overlap_tokens=5)


def test_empty_text_has_no_chunks():
    assert chunk(" \n\n ", words, 10) == [] and chunk("", words, 10, markdown=True) == []


def test_random_texts_keep_offsets_budgets_and_every_character():
    rng = random.Random(0)
    alphabet = ["word", "Dr.", "J.", "end.", "why?", "。", "你好", "\n", "\n\n", " ", "  ", "x" * 30, "- ", "# "]
    for _ in range(200):
        text = "".join(rng.choice(alphabet) + rng.choice(["", " "]) for _ in range(rng.randint(0, 60)))
        for markdown in (False, True):
            budget = rng.randint(5, 60)
            got = chunk(text, len, budget, rng.choice([0, 4]), markdown=markdown)
            assert_exact_and_complete(text, got)
            assert all(len(p.text) <= budget for p in got)
        assert_exact_and_complete(text, sentences(text))


# -- chunk(markdown=True): the retrieval rules ------------------------------------------------------------


def test_passages_are_exact_slices_within_budget_and_cover_every_sentence():
    passages = chunk(DOC, words, 8, markdown=True)
    assert all(p.text == DOC[p.start : p.end] and words(p.text) <= 8 for p in passages)
    for sentence in ("Alpha one two three.", "Gamma eight nine.", "Zeta sixteen seventeen eighteen."):
        assert any(sentence in p.text for p in passages)
    assert all(p.text[-1] in ".!?" for p in passages)  # cut at sentence ends, never mid-sentence


def test_a_cut_inside_a_paragraph_repeats_the_last_sentence_but_a_paragraph_break_does_not():
    got = texts(chunk(DOC, words, 9, overlap_tokens=5, markdown=True))
    assert got[0] == "Alpha one two three. Beta four five six seven."
    assert got[1] == "Beta four five six seven. Gamma eight nine."  # overlap: "Beta..." again
    assert got[2].startswith("Delta")  # a new paragraph starts clean
    assert not any("nine.\n\nDelta" in t for t in got)


def test_paragraphs_stay_apart_once_a_passage_is_half_full():
    assert [p.text.split()[0] for p in chunk(DOC, words, 20, markdown=True)] == ["Alpha", "Delta"]
    short = "Title\n\nBody one two three."
    assert texts(chunk(short, words, 20, markdown=True)) == [short]  # a heading joins its text
    assert len(chunk(DOC, words, 30)) == 1  # without the Markdown rules, paragraphs pack to the budget


def test_markdown_headings_start_passages_and_hard_wrapped_sentences_stay_whole():
    doc = "# Title\n\nIntro line one\ncontinues here. Second sentence.\n\n## Part\n\n- item one\n- item two"
    assert texts(chunk(doc, words, 50, markdown=True)) == [
        "# Title\n\nIntro line one\ncontinues here. Second sentence.",
        "## Part\n\n- item one\n- item two",
    ]
    no_blank_line = "Intro text here.\n## Part\nBody of the part."
    assert texts(chunk(no_blank_line, words, 50, markdown=True)) == ["Intro text here.", "## Part\nBody of the part."]
    wrapped = "Alpha beta gamma\ndelta epsilon. Zeta eta theta iota."
    # had the line break ended a sentence, "delta epsilon." would fit the overlap and open passage 2
    assert texts(chunk(wrapped, words, 8, overlap_tokens=3, markdown=True))[1] == "Zeta eta theta iota."


def test_a_line_break_before_a_markdown_block_ends_a_sentence():
    doc = "Steps to take\n- mix the flour\n- bake it\n> a quote\n| a | table |"
    got = texts(chunk(doc, words, 7, markdown=True))
    assert got == ["Steps to take\n- mix the flour", "- bake it\n> a quote", "| a | table |"]


def test_the_whitespace_between_sentences_counts_against_the_budget():
    got = chunk("aaaa. bbbb.\n    cccc.", len, 10, markdown=True)
    assert texts(got) == ["aaaa.", "bbbb.", "cccc."]  # "aaaa. bbbb." is 11 characters


# -- size: linear time (a quadratic splitter hangs here; no timing assertions) ----------------------------


def test_a_one_megabyte_line_without_spaces_is_cut_completely():
    blob = base64.b64encode(random.Random(1).randbytes(750_000)).decode()
    count = lambda t: len(t) // 3 + 1  # noqa: E731
    got = chunk(blob, count, 500)
    assert "".join(texts(got)) == blob and all(count(p.text) <= 500 for p in got)
    assert len(sentences(blob)) == 1


def test_a_megabyte_of_prose_splits_completely():
    rng = random.Random(2)
    vocabulary = ["the", "cat", "Dr.", "sat", "on", "J.", "mat", "e.g.", "U.S.", "today", "and", "then"]
    paragraph = " ".join(
        "The " + " ".join(rng.choice(vocabulary) for _ in range(rng.randint(3, 25))) + rng.choice(".?!")
        for _ in range(40)
    )
    text = "\n\n".join([paragraph] * 450)
    assert len(text) > 1_000_000
    assert_exact_and_complete(text, sentences(text))
    for markdown in (False, True):
        got = chunk(text, words, 160, overlap_tokens=32 if markdown else 0, markdown=markdown)
        assert_exact_and_complete(text, got)
        assert all(words(p.text) <= 160 for p in got)


def test_a_megabyte_of_periods_and_initials_splits_completely():
    text = "A. " * 350_000
    assert_exact_and_complete(text, sentences(text))
    assert_exact_and_complete(text, chunk(text, words, 100))


def test_budgets_hold_in_the_tokens_of_a_real_bpe_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    corpus = ["the quick brown fox jumps over the lazy dog", "Dr. Smith met J. R. R. Tolkien", "我今天很开心。你呢？"]
    trainer = trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(corpus * 10, trainer)
    count = lambda t: len(tokenizer.encode(t).ids)  # noqa: E731
    text = "\n\n".join(
        [
            "# Notes\n\nThe quick brown fox jumps over the lazy dog. " * 6,
            "我今天很开心。你呢？" * 30,
            "- Dr. Smith\n- J. R. R. Tolkien\n  met   the fox.\n" * 5,
            "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo" * 20,
        ]
    )
    for budget in (8, 32, 100):
        for markdown in (False, True):
            got = chunk(text, count, budget, budget // 4, markdown=markdown)
            assert_exact_and_complete(text, got)
            assert max(count(p.text) for p in got) <= budget


# --- lengths in any script ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("I love programming.", 3),
        ("  The -- dash   counts, as split() does. ", 7),
        ("我爱编程。", 4),  # a Han character is a word; the full stop is none
        ("我今天很开心。你呢？", 8),
        ("我爱Python编程！", 5),  # 我 爱 Python 编 程
        ("你好， world!", 3),
        ("私はプログラミングが好きです。", 14),  # kana count like Han
        ("나는 프로그래밍을 좋아한다", 3),  # Korean writes spaces: its words are counted by them
        ("", 0),
    ],
)
def test_count_words_counts_han_and_kana_by_character(text, expected):
    assert count_words(text) == expected


def test_word_spans_are_offsets_into_the_text():
    text = "自然语言 (NLP) 很有用。"
    spans = word_spans(text)
    assert [text[s:e] for s, e in spans] == ["自", "然", "语", "言", "(NLP)", "很", "有", "用"]
    assert len(spans) == count_words(text)


def test_counts_characters_when_most_words_are_han_or_kana():
    assert counts_characters("自然语言处理（NLP）是计算机科学的一个分支。")
    assert not counts_characters("The word 你好 means hello.")
    assert not counts_characters("")


@pytest.mark.parametrize("text", ["", "  \n\t", "\u200b\u200c\u200d\ufeff\u2060", "\u00ad\u200e \ufe0f", "\U000e0041"])
def test_text_of_invisible_characters_is_blank(text):
    assert blank(text)


@pytest.mark.parametrize("text", ["a", "\u200bword\u200b", "你", "🙂", "\u0640"])
def test_text_that_shows_something_is_not_blank(text):
    assert not blank(text)
