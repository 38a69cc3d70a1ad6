"""ask on the tiny random model: span extraction with true offsets, chunks, generated answers, the null answer."""

from __future__ import annotations

import json

import numpy as np
import pytest
from plugin_cases import CONTEXT, is_null, words

pytestmark = pytest.mark.shared_cache


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


@pytest.mark.parametrize("generate", [False, True])
def test_the_null_answer_wins_when_the_model_finds_it_far_likelier(suite, null_likelier, generate):
    got = suite.ask("Who painted the tower?", context=CONTEXT, generate=generate)
    assert set(got) == {"answer", "score", "start", "end"}
    is_null(got)


@pytest.mark.parametrize("generate", [False, True])
def test_the_null_answer_from_an_index_cites_nothing(suite, tmp_path, null_likelier, generate):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tower.txt").write_text(CONTEXT)
    suite.index("no-answer", [str(docs)])  # not "kb": the index would outlive this test in the shared home
    got = suite.ask("Who painted the tower?", index="no-answer", generate=generate)
    is_null(got)
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
    is_null(json.loads(got.out))
    shown = cli(["ask", "Who painted the tower?", "--context", CONTEXT, *model_args[:-1]])
    assert shown.code == 0 and shown.out.startswith("(no answer)  (score ")
    quiet = cli(["ask", "Who painted the tower?", "--context", CONTEXT, *model_args])  # -q: the answer alone
    assert quiet.code == 0 and quiet.out == "(no answer)\n"


def test_ask_batch_with_context_field(cli, model_args, tmp_path, spans_only):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps({"text": "Who built it?", "context": CONTEXT}) + "\n")
    assert cli(["ask", "--input", str(src), "--output", str(out), *model_args]).code == 0
    row = json.loads(out.read_text())
    assert CONTEXT[row["start"] : row["end"]] == row["answer"]


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


def test_a_long_one_line_context_is_text_not_a_path(cli, model_args, spans_only):
    context = "Marie Curie was a physicist and chemist who did pioneering research on radioactivity. " * 4
    got = cli(["ask", "Who was Marie Curie?", "--context", context.strip(), "--json", *model_args])
    assert got.code == 0, got.err
    row = json.loads(got.out)
    assert context.strip()[row["start"] : row["end"]] == row["answer"]


AMAZON = (
    "The Amazon River in South America is the largest river by discharge volume of water in the world. It flows "
    "through Brazil, Peru and Colombia. The river was named by the Spanish explorer Francisco de Orellana in 1542."
)


def test_a_generated_answer_to_what_the_text_never_mentions_is_null_or_unsure(suite, monkeypatch):
    """Fault matrix B40: --generate answered "What is the population of Tokyo?" over a text about the Amazon with
    its first sentence at 0.87. A model that copies a sentence fluently (likely tokens) is no evidence."""
    from nlpsuite.heads.scoring import LabelScorer
    from nlpsuite.runtime.generation import Completion, Generator

    first = AMAZON.split(". ")[0] + "."
    monkeypatch.setattr(
        Generator, "generate", lambda self, prompts, params, on_text=None: [Completion(first, [], 0, "stop")]
    )
    scripted = {"unknown": -10.0}  # the model finds the copied sentence far likelier than "unknown"
    monkeypatch.setattr(
        LabelScorer,
        "log_likelihoods",
        lambda self, ids, labels, prefix=None: np.array([scripted.get(x, -2.0) for x in labels]),
    )
    got = suite.ask("What is the population of Tokyo?", context=AMAZON, generate=True)
    assert got["answer"] is None or got["score"] < 0.5, got


def test_eval_qa_reports_how_well_its_scores_hold(cli, model_args, tmp_path, spans_only):
    data = tmp_path / "qa.jsonl"
    rows = [{"question": "Who built it?", "context": CONTEXT, "answers": ["the tower"]},
            {"question": "What is the population of Tokyo?", "context": CONTEXT, "answers": []}] * 3  # fmt: skip
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    png = tmp_path / "qa.png"
    got = cli(["eval", "qa", str(data), "--json", "--reliability", str(png), *model_args])
    assert got.code == 0, got.err
    found = json.loads(got.out)["metrics"]
    assert 0 <= found["ece"] <= 1 and 0 <= found["mean_score"] <= 1 and found["reliability_png"] == str(png)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_calibrate_ask_fits_what_its_score_means_and_reset_removes_it(cli, model_args, tmp_path, monkeypatch):
    """Scripted signals (the question's coverage tells answerable from not): the fit must learn that, save it,
    and later answers must use it."""
    import dataclasses

    from nlpsuite.plugins import registry

    task = registry().tasks["ask"]
    rng = np.random.default_rng(0)

    def measure(suite, inputs, index=None, generate=False):
        out = []
        for i in inputs:
            answerable = "tower" in i["question"]
            good = answerable and rng.random() < 0.6
            answer = "the tower" if good else "nothing"
            signals = [rng.normal(1.0 if good else -1.0), -1.0, 1.0, 1.0, 1.0 if answerable else 0.0, 0.0]
            out.append({"result": {"answer": answer, "start": 0, "end": 1}, "signals": signals})
        return out

    from nlpsuite_plugins import qa

    recipe = dataclasses.replace(task.confidence, measure=measure)
    monkeypatch.setitem(registry().tasks, "ask", dataclasses.replace(task, confidence=recipe))
    monkeypatch.setattr(qa, "CONFIDENCE", recipe)  # what run() scores with
    data = tmp_path / "qa.jsonl"
    rows = [{"question": f"Who built the tower {i}?", "context": CONTEXT, "answers": ["the tower"]} for i in range(60)]
    rows += [{"question": f"Who painted it {i}?", "context": CONTEXT, "answers": []} for i in range(40)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = cli(["calibrate", "ask", str(data), "--json", *model_args])
    assert got.code == 0, got.err
    report = json.loads(got.out)
    assert report["after"]["nll"] <= report["before"]["nll"] and report["outcomes"]["no answer"] == 40
    assert report["after"]["accuracy"] >= 0.75
    answered = cli(["ask", "Who painted it 99?", "--context", CONTEXT, "--json", *model_args])
    assert json.loads(answered.out)["answer"] is None and json.loads(answered.out)["score"] > 0.9
    assert cli(["calibrate", "ask", "--reset", *model_args]).code == 0
    assert cli(["calibrate", "ask", "--reset", "--json", *model_args]).out.strip() == '{\n  "removed": []\n}'
