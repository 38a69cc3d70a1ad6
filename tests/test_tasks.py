"""The seven tasks' mechanics on the tiny random model: label scoring, span extraction, probes,
translation/summarization plumbing, and the CLI contracts (JSON fields, batch mode, bad input)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nlpsuite.api import Suite
from nlpsuite.errors import NlpsuiteError
from nlpsuite.numeric import softmax

pytestmark = pytest.mark.shared_cache

CONTEXT = (
    "The Eiffel Tower is a lattice tower in Paris. It was built from 1887 to 1889.\n\n"
    "It is named after the engineer Gustave Eiffel, whose company built it. It is 330 metres tall."
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, make_tiny_llama):
    """The tiny random model with room for the tasks' prompts (few-shot examples, long contexts)."""
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-tasks"), context=4096)


@pytest.fixture
def suite(tiny):
    return Suite(model=str(tiny), device="cpu")


def words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


# -- label scoring -----------------------------------------------------------------------------------------


def test_prefix_cache_gives_the_same_scores(suite):
    scorer = suite.head("scoring")
    head = suite.tokenizer.encode("Instructions and examples. ", add_special_tokens=False)
    prompt = head + suite.tokenizer.encode("Text: hello there\nLabel:", add_special_tokens=False)
    labels = [" yes", " no way", " maybe so then"]
    plain = scorer.log_likelihoods(prompt, labels)
    cached = scorer.log_likelihoods(prompt, labels, scorer.prefix(head))
    np.testing.assert_allclose(plain, cached, atol=1e-4)
    # a prefix the prompt doesn't start with is ignored, not misused
    other = scorer.prefix(suite.tokenizer.encode("Something else", add_special_tokens=False))
    np.testing.assert_allclose(plain, scorer.log_likelihoods(prompt, labels, other), atol=1e-4)


def test_sentiment_scores_are_log_likelihoods_minus_the_content_free_prior(suite):
    from nlpsuite_plugins.classify import SENTIMENT_LABELS, SENTIMENT_PROMPT, _shots_prefix

    from nlpsuite.calibration import CONTENT_FREE

    names, scores = suite.label_scores("sentiment", ["some text here"])
    scorer, enc = suite.head("scoring"), lambda t: suite.tokenizer.encode(t, add_special_tokens=False)
    verbal = [" " + label for label in SENTIMENT_LABELS]
    prompt = _shots_prefix() + SENTIMENT_PROMPT
    raw = scorer.log_likelihoods(enc(prompt.format(text="some text here")), verbal)
    prior = np.mean([softmax(scorer.log_likelihoods(enc(prompt.format(text=c)), verbal)) for c in CONTENT_FREE], 0)
    assert names == SENTIMENT_LABELS
    np.testing.assert_allclose(scores[0], raw - np.log(prior), atol=1e-4)


def test_classify_scores_are_text_given_label_log_likelihoods(suite):
    from nlpsuite_plugins.classify import CLASSIFY_PREFIX

    labels = ["alpha", "beta gamma"]
    names, scores = suite.label_scores("classify", ["some text here"], labels=labels)
    enc = lambda t: suite.tokenizer.encode(t, add_special_tokens=False)  # noqa: E731
    text = enc("some text here")
    expected = suite.head("scoring").continuation_log_likelihoods(
        [enc(CLASSIFY_PREFIX.format(label=label)) for label in labels], text
    ) / np.sqrt(len(text))
    assert names == labels
    np.testing.assert_allclose(scores[0], expected, atol=1e-4)


def test_classify_probabilities_sum_to_one_and_label_is_one_of_them(suite):
    results = suite.classify(["first text", "second text"], labels=["sports", "politics", "art"])
    for r in results:
        assert r["label"] in ("sports", "politics", "art")
        assert sum(r["scores"].values()) == pytest.approx(1, abs=1e-3)
        assert r["score"] == max(r["scores"].values())


def test_sentiment_shape_and_saved_calibration_is_used(suite, isolated_home):
    from nlpsuite import calibration

    before = suite.sentiment("a fine day")
    assert set(before["scores"]) == {"positive", "negative", "neutral"}
    key = calibration.task_key("sentiment")
    cal = calibration.Calibration(["negative", "neutral", "positive"], 1000.0)  # flat: everything ~1/3
    calibration.save(suite.source.key, suite.precision, key, cal)
    after = suite.sentiment("a fine day")
    assert all(p == pytest.approx(1 / 3, abs=0.01) for p in after["scores"].values())


@pytest.mark.parametrize("labels", [["only"], ["a", "a"], ["a", " "], []])
def test_bad_label_sets(suite, labels):
    with pytest.raises(NlpsuiteError):
        suite.classify("text", labels=labels)


def test_empty_text_is_refused(suite):
    with pytest.raises(NlpsuiteError, match="empty"):
        suite.sentiment("   ")


# -- span head -----------------------------------------------------------------------------------------------


@pytest.fixture
def spans_only(monkeypatch):
    """Keeps the null out of the running where span mechanics are tested: the random model may prefer it."""
    from nlpsuite.heads import span

    monkeypatch.setattr(span, "NULL_PRIOR", -1e9)


@pytest.mark.parametrize(
    "question", ["Who built it?", "How tall?", "When was the tower built and by whom exactly?", "x"]
)
def test_span_answers_are_substrings_with_true_offsets(suite, question, spans_only):
    from nlpsuite.heads.span import _word_edge

    got = suite.ask(question, context=CONTEXT)
    assert got["answer"] and got["answer"] == CONTEXT[got["start"] : got["end"]]
    assert 0 < got["score"] <= 1
    assert got["answer"] == got["answer"].strip()
    assert _word_edge(CONTEXT, got["start"]) and _word_edge(CONTEXT, got["end"])  # no "o" out of "Tower"


def test_word_edges_keep_words_and_numbers_whole():
    from nlpsuite.heads.span import _word_edge

    text = "In 1542, 1,500 men (3.5%) left."
    edges = [i for i in range(len(text) + 1) if _word_edge(text, i)]
    assert [text[a:b] for a, b in zip(edges, edges[1:], strict=False)] == [
        "In",
        " ",
        "1542",
        ",",
        " ",
        "1,500",
        " ",
        "men",
        " ",
        "(",
        "3.5",
        "%",
        ")",
        " ",
        "left",
        ".",
    ]


def test_word_edges_fall_between_han_characters():
    from nlpsuite.heads.span import _word_edge

    text = "自然语言处理（NLP）是计算机科学的一个分支。"
    edges = [i for i in range(len(text) + 1) if _word_edge(text, i)]
    pieces = [text[a:b] for a, b in zip(edges, edges[1:], strict=False)]
    assert pieces[:8] == ["自", "然", "语", "言", "处", "理", "（", "NLP"]
    assert pieces[10:20] == list("计算机科学的一个分支")  # a definition may start after 是


@pytest.mark.parametrize(
    "question, span, echoes",
    [
        ("什么是自然语言处理？", "自然语言处理", True),
        ("什么是自然语言处理？", "自然语言处理（NLP）", True),
        ("什么是自然语言处理？", "计算机科学的一个分支", False),
        ("What are the male bees called?", "male", True),
        ("Who was the captain of the Titanic?", "Titanic", True),
        ("When was the river named?", "The river was named by the Spanish explorer Francisco de Orellana", False),
        ("Is the Moon bigger or smaller than the Earth?", "smaller", False),  # a choice: its answer is asked
        ("你喜欢茶还是咖啡？", "咖啡", False),
    ],
)
def test_a_span_that_repeats_the_question_is_no_answer(question, span, echoes):
    from nlpsuite.heads.span import _echoes

    assert _echoes(question)(span) is echoes


def test_span_reads_long_contexts_in_chunks_with_offsets_into_the_whole(suite, spans_only):
    long_context = "\n\n".join([words(150) + "."] * 12 + [CONTEXT])
    got = suite.ask("Who built it?", context=long_context)
    assert got["answer"] == long_context[got["start"] : got["end"]]


def test_span_answers_of_a_later_chunk_point_at_their_own_words(suite, monkeypatch):
    """The model is stubbed to answer "he" where "he\nleft" is; an earlier "he" must not be taken for it."""
    from nlpsuite.heads.span import Span, SpanHead

    def extract_one(self, question, text):
        at = text.find("he\nleft")
        null = Span(None, 0.0, None, None, -50.0)
        return (Span("he", 0.9, at, at + 2, -1.0), null) if at >= 0 else (Span(text[:2], 0.1, 0, 2, -9.0), null)

    monkeypatch.setattr(SpanHead, "_extract_one", extract_one)
    context = "\n \n".join([words(150) + " he said."] * 12 + ["Then   he\nleft."])
    got = suite.ask("Who left?", context=context)
    assert got["start"] == context.index("he\nleft") and got["answer"] == "he"


def test_generative_answer_offsets_are_null_or_true(suite):
    got = suite.ask("Where is it?", context=CONTEXT, generate=True)
    assert set(got) == {"answer", "score", "start", "end"}
    if got["start"] is not None:
        assert CONTEXT[got["start"] : got["end"]] == got["answer"]


# -- no answer ---------------------------------------------------------------------------------------------------

NULL_REPLY = "unknown"  # the reply ask's prompts offer for a question the text does not answer


@pytest.fixture
def null_likelier(monkeypatch):
    """Scripts a model sure of the null reply: the span head's null candidate is certain, and a generated answer
    ("Paris") is far less likely to the scorer than the null reply."""
    from nlpsuite.heads.scoring import LabelScorer
    from nlpsuite.heads.span import SpanHead
    from nlpsuite.runtime.generation import Completion, Generator

    # raising=False: before the null candidate existed, this scripted nothing and the span won
    monkeypatch.setattr(SpanHead, "_null_logp", lambda self, step, past: 0.0, raising=False)
    monkeypatch.setattr(
        Generator, "generate", lambda self, prompts, params, on_text=None: [Completion("Paris", [], 0, "stop")]
    )
    scripted = {NULL_REPLY: -1.0, "Paris": -30.0}
    monkeypatch.setattr(
        LabelScorer, "log_likelihoods", lambda self, ids, labels, prefix=None: np.array([scripted[x] for x in labels])
    )


def _is_null(got: dict) -> None:
    assert got["answer"] is None and got["start"] is None and got["end"] is None
    assert 0.5 < got["score"] <= 1  # the probability of no answer, which won


@pytest.mark.parametrize("generate", [False, True])
def test_the_null_answer_wins_when_the_model_finds_it_far_likelier(suite, null_likelier, generate):
    got = suite.ask("Who painted the tower?", context=CONTEXT, generate=generate)
    assert set(got) == {"answer", "score", "start", "end"}
    _is_null(got)


@pytest.mark.parametrize("generate", [False, True])
def test_the_null_answer_from_an_index_cites_nothing(suite, tmp_path, null_likelier, generate):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tower.txt").write_text(CONTEXT)
    suite.index("no-answer", [str(docs)])  # not "kb": the index would outlive this test in the shared home
    got = suite.ask("Who painted the tower?", index="no-answer", generate=generate)
    _is_null(got)
    assert got["sources"] and "passage" not in got and "source" not in got


def test_the_null_prior_decides_between_the_best_span_and_no_answer(suite, monkeypatch):
    """The same reading, two priors: the decision is a comparison of the two probabilities, nothing else."""
    from nlpsuite.heads import span

    head = suite.head("span")
    monkeypatch.setattr(span, "NULL_PRIOR", 0.0)
    best, null = head.read("Who built it?", CONTEXT)
    assert best.score + null.score <= 1 + 1e-6  # shares of one distribution
    monkeypatch.setattr(span, "NULL_PRIOR", best.logp - null.logp + 1.0)
    assert head.extract("Who built it?", CONTEXT).answer is None
    monkeypatch.setattr(span, "NULL_PRIOR", best.logp - null.logp - 1.0)
    assert head.extract("Who built it?", CONTEXT).answer == best.answer


def test_no_answer_on_the_command_line(cli, model_args, null_likelier):
    got = cli(["ask", "Who painted the tower?", "--context", CONTEXT, "--json", *model_args])
    assert got.code == 0, got.err
    _is_null(json.loads(got.out))
    shown = cli(["ask", "Who painted the tower?", "--context", CONTEXT, *model_args])
    assert shown.code == 0 and shown.out.startswith("(no answer)  (score ")


# -- probes ------------------------------------------------------------------------------------------------------


def test_probe_fit_separates_separable_data():
    from nlpsuite.heads.probe import fit

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8))
    gold = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    probe = fit(x, gold, ["no", "yes"])
    assert (probe.logits(x).argmax(1) == gold).mean() > 0.95


def test_probe_train_save_list_use_remove(suite, cli, tmp_path):
    data = tmp_path / "d.jsonl"
    rows = [{"text": f"apple banana {i}", "label": "fruit"} for i in range(8)]
    rows += [{"text": f"hammer wrench {i}", "label": "tool"} for i in range(8)]
    data.write_text("\n".join(json.dumps(r) for r in rows))
    model = ["--model", suite.model_name, "--device", "cpu", "-q"]
    trained = cli(["heads", "train", "kinds", str(data), "--json", *model])
    assert trained.code == 0, trained.err
    assert json.loads(trained.out)["labels"] == ["fruit", "tool"]
    listed = json.loads(cli(["heads", "list", "--json", "--model", suite.model_name]).out)
    assert [h["name"] for h in listed["heads"]] == ["kinds"]
    got = cli(["classify", "--head", "kinds", "hammer wrench 3", "--json", *model])
    assert got.code == 0, got.err
    assert json.loads(got.out)["label"] in ("fruit", "tool")
    assert cli(["heads", "rm", "kinds", "--model", suite.model_name]).code == 0
    missing = cli(["classify", "--head", "kinds", "x", *model])
    assert missing.code == 1 and "no head named 'kinds'" in missing.err


def test_probe_names_and_single_label_data(suite, cli, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("text,label\na,x\nb,x\n")
    model = ["--model", suite.model_name, "--device", "cpu", "-q"]
    assert "two labels" in cli(["heads", "train", "ok", str(data), *model]).err
    assert "bad head name" in cli(["heads", "train", "../evil", str(data), *model]).err


# -- translation and summarization plumbing -----------------------------------------------------------------------


def test_translation_keeps_paragraphs(suite):
    got = suite.translate("One. Two.\n\nThree.", to="de")
    assert got.count("\n\n") == 1


def test_translation_goes_sentence_by_sentence_in_chinese_too(suite):
    from nlpsuite_plugins.translate import translate_texts

    (got,), units = translate_texts(suite, ["我今天很开心。你呢？\n\nDr. Smith met J. R. R. Tolkien."], "German", None)
    assert units == [3] and got.count("\n\n") == 1


def test_translation_language_codes(suite):
    from nlpsuite_plugins.translate import clean, language

    assert language("DE", "--to") == "German" and language("french", "--to") == "French"
    with pytest.raises(NlpsuiteError, match="unknown language"):
        language("xx", "--to")
    assert clean('Here is the translation: "Hallo Welt"\nExtra line', "Hello world") == "Hallo Welt"


def test_summarize_map_reduce_covers_long_input(suite, monkeypatch):
    """The orchestration alone: the model's summaries are replaced by a marker naming what was summarized."""
    from nlpsuite_plugins import summarize

    calls = []

    def fake_generate(self, texts, words):
        calls.append(list(texts))
        return [f"summary of {len(t.split())} words." for t in texts]

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


# -- CLI contracts --------------------------------------------------------------------------------------------


@pytest.fixture
def model_args(tiny):
    return ["--model", str(tiny), "--device", "cpu", "-q"]


@pytest.mark.parametrize(
    ("args", "fields"),
    [
        (["sentiment", "nice"], {"label", "score", "scores"}),
        (["classify", "nice", "--labels", "a,b"], {"label", "score", "scores"}),
        (["ask", "Who built it?", "--context", CONTEXT], {"answer", "score", "start", "end"}),
        (["translate", "Hello there.", "--to", "fr"], {"translation"}),
        (["summarize", "A short text to sum up.", "--max-words", "5"], {"summary"}),
    ],
)
def test_json_fields(cli, model_args, args, fields):
    got = cli([*args, "--json", *model_args])
    assert got.code == 0, got.err
    assert fields <= set(json.loads(got.out))


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["sentiment"], "label"),
        (["classify", "--labels", "a,b"], "scores"),
        (["translate", "--to", "de"], "translation"),
        (["summarize"], "summary"),
    ],
)
def test_batch_modes_add_their_field(cli, model_args, tmp_path, args, field):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text('{"text": "first one.", "id": 1}\n{"text": "second one.", "id": 2}\n')
    got = cli([*args, "--input", str(src), "--output", str(out), *model_args])
    assert got.code == 0, got.err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in lines] == [1, 2] and all(field in r for r in lines)


def test_ask_batch_with_context_field(cli, model_args, tmp_path, spans_only):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps({"text": "Who built it?", "context": CONTEXT}) + "\n")
    assert cli(["ask", "--input", str(src), "--output", str(out), *model_args]).code == 0
    row = json.loads(out.read_text())
    assert CONTEXT[row["start"] : row["end"]] == row["answer"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sentiment", ""], "empty text"),
        (["classify", "x", "--labels", "one"], "at least two labels"),
        (["classify", "x", "--labels", "a,b,a"], "distinct"),
        (["classify", "x"], "--labels"),
        (["translate", "hello", "--to", "klingon"], "unknown language"),
        (["translate", "hello"], "--to"),
        (["ask", "who?"], "--context"),
        (["ask", "who?", "--context", "missing-file.txt"], "no such file"),
        (["summarize", "text", "--max-words", "0"], "--max-words"),
    ],
)
def test_bad_input_is_one_line(cli, model_args, args, message):
    got = cli([*args, *model_args])
    assert got.code == 1
    assert message in got.err and len(got.err.strip().splitlines()) == 1


def test_binary_file_is_refused(cli, model_args, tmp_path):
    binary = tmp_path / "x.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    for args in (["sentiment", "--file", str(binary)], ["summarize", "--file", str(binary)]):
        got = cli([*args, *model_args])
        assert got.code == 1 and "not UTF-8" in got.err


def test_one_megabyte_text_for_a_label_task_is_refused_plainly(cli, model_args, tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("word " * 210_000)
    got = cli(["sentiment", "--file", str(big), *model_args])
    assert got.code == 1 and "split it" in got.err and len(got.err.strip().splitlines()) == 1


def test_plugins_register_every_task(suite):
    assert {"translate", "summarize", "ask", "sentiment", "classify"} <= set(suite.registry.tasks)
    assert {"generation", "scoring", "embedding", "probe", "span"} <= set(suite.registry.heads)


def test_span_never_answers_with_blanks(suite, spans_only):
    spaced = "   \n\n   " + CONTEXT.replace(" ", "   ") + "\n\n\n"
    got = suite.ask("Who built it?", context=spaced)
    assert got["answer"].strip() == got["answer"] and got["answer"]
    assert spaced[got["start"] : got["end"]] == got["answer"]


def test_ask_from_an_index_cites_its_passages(suite, tmp_path, spans_only):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tower.txt").write_text(CONTEXT)
    (docs / "other.txt").write_text("Bananas are yellow fruit that grow in bunches on large plants.")
    suite.index("kb", [str(docs)])
    got = suite.ask("Who built it?", index="kb")
    cited = got["sources"][got["passage"] - 1]
    assert cited["text"][got["start"] : got["end"]] == got["answer"] and got["source"] == cited["source"]
    assert {s["source"] for s in got["sources"]} <= {str(docs / "tower.txt"), str(docs / "other.txt")}
    generated = suite.ask("Who built it?", index="kb", generate=True)
    assert generated["sources"] and generated["start"] is None


def test_ask_from_a_missing_index_is_one_line(cli, model_args):
    got = cli(["ask", "Who?", "--index", "nope", *model_args])
    assert got.code == 1 and "nope" in got.err and len(got.err.strip().splitlines()) == 1


def test_a_probe_from_other_embeddings_is_refused(suite, tmp_path):
    head = suite.head("probe")
    head.train("p", [f"apple {i}" for i in range(5)] + [f"hammer {i}" for i in range(5)], ["a"] * 5 + ["b"] * 5)
    probe = head.store.load("p")
    probe.info["embedding"] = "mean-pooled/0"
    head.store.save("p", probe)
    with pytest.raises(NlpsuiteError, match="train it again"):
        suite.classify("apple", head="p")


def test_a_long_one_line_context_is_text_not_a_path(cli, model_args, spans_only):
    context = "Marie Curie was a physicist and chemist who did pioneering research on radioactivity. " * 4
    got = cli(["ask", "Who was Marie Curie?", "--context", context.strip(), "--json", *model_args])
    assert got.code == 0, got.err
    row = json.loads(got.out)
    assert context.strip()[row["start"] : row["end"]] == row["answer"]


def test_repl_task_options_need_values(suite):
    import io

    from nlpsuite.cli.repl import ChatRepl
    from nlpsuite.runtime.sampling import SamplingParams

    out = io.StringIO()
    repl = ChatRepl(suite, SamplingParams(max_tokens=8), stdin=io.StringIO("/task translate --to\nhello\n"), stdout=out)
    repl.run()  # must not raise: the bad /task is refused, "hello" goes to chat
    assert repl.task is None
    repl = ChatRepl(
        suite,
        SamplingParams(max_tokens=8),
        json=True,
        stdin=io.StringIO("/task translate --to de\nHello.\n"),
        stdout=(out := io.StringIO()),
    )
    repl.run()
    assert "translation" in json.loads(out.getvalue().strip().splitlines()[-1])


def test_clip_words_counts_chinese_by_character_and_ends_at_a_full_stop():
    from nlpsuite_plugins.summarize import clip_words

    text = "自然语言处理是计算机科学的一个分支。它研究如何让计算机理解人类语言。"
    assert clip_words(text, 20) == "自然语言处理是计算机科学的一个分支。"
    assert clip_words(text, 100) == text
    assert clip_words("我爱编程，也爱读书。", 3) == "我爱编"


def test_summary_words_count_chinese_characters(suite, monkeypatch):
    from nlpsuite_plugins import summarize

    monkeypatch.setattr(summarize.Summarizer, "_generate", lambda self, texts, words: ["我爱编程。" for _ in texts])
    assert summarize.run(suite, [{"text": "我爱编程，也爱读书。"}], max_words=10)[0]["words"] == 4


def test_translate_names_the_source_language_it_detects(suite):
    from nlpsuite_plugins import translate

    texts = ["我爱编程。", "I love programming and I write code every day.", "Hallo"]
    got = translate.run(suite, [{"text": t} for t in texts], to="German")
    assert [g["from"] for g in got] == ["Chinese", "English", None]  # one word: too unsure to name


def test_translate_names_the_detected_source_to_the_model(suite, monkeypatch):
    from nlpsuite_plugins import translate

    told = []
    monkeypatch.setattr(translate, "translate_texts", lambda s, texts, to, sources, **k: told.append(sources) or
                        (["x"] * len(texts), [1] * len(texts)))  # fmt: skip
    got = translate.run(suite, [{"text": "我爱编程。"}, {"text": "Je voudrais un café, s'il vous plaît."}], to="German")
    assert told == [["Chinese", "French"]] and [g["from"] for g in got] == ["Chinese", "French"]
    assert translate.run(suite, [{"text": "我爱编程。"}], to="German", source="Japanese")[0]["from"] == "Japanese"
    assert translate._prompt("我爱编程。", "English", "Chinese").startswith("Translate the following Chinese text into")
