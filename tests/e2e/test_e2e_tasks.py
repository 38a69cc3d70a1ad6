"""Every task command end to end on the real default model, with what a user would check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CONTEXT = (
    "The Amazon River in South America is the largest river by discharge volume of water in the world. "
    "It flows through Brazil, Peru and Colombia. The river was named by the Spanish explorer Francisco de "
    "Orellana in 1542."
)


def run(args: list[str], home, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "NLPSUITE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "nlpsuite", *args], input=stdin, capture_output=True, text=True, env=env, timeout=600
    )


@pytest.fixture(scope="module")
def home(real_home):
    os.environ["NLPSUITE_HOME"] = str(real_home)
    from nlpsuite import Suite

    Suite(device="cpu").backbone  # fetch and convert once, outside the timed commands  # noqa: B018
    return real_home


def json_of(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_sentiment(home):
    pos = json_of(run(["sentiment", "A wonderful, moving film with a brilliant cast.", "--json"], home))
    neg = json_of(run(["sentiment", "--json"], home, stdin="Dull, overlong and badly acted. I want my money back."))
    assert pos["label"] == "positive" and neg["label"] == "negative"
    for result in (pos, neg):
        assert set(result["scores"]) == {"positive", "negative", "neutral"}
        assert sum(result["scores"].values()) == pytest.approx(1, abs=1e-3)


def test_classify_zero_shot(home):
    got = json_of(
        run(
            ["classify", "The goalie stopped every shot in the third period.", "--labels", "hockey,space", "--json"],
            home,
        )
    )
    assert got["label"] in ("hockey", "space") and got["label"] == "hockey"
    assert sum(got["scores"].values()) == pytest.approx(1, abs=1e-3)


def test_ask_extractive_answer_is_in_the_context(home, tmp_path):
    context = tmp_path / "amazon.txt"
    context.write_text(CONTEXT)
    got = json_of(run(["ask", "Who named the river?", "--context", str(context), "--json"], home))
    assert CONTEXT[got["start"] : got["end"]] == got["answer"]
    assert "Orellana" in got["answer"]


def test_ask_says_when_the_context_has_no_answer(home):
    got = json_of(run(["ask", "What is the population of Tokyo?", "--context", CONTEXT, "--json"], home))
    assert got["answer"] is None and got["start"] is None and got["end"] is None and 0 < got["score"] <= 1


def test_ask_no_answer_on_the_held_out_dev_split(home):
    """The hand-written set (31 questions, 13 unanswerable) of the old null prior. The calibrated choice between an
    answer and null (eval/confidence.py) trades answers for nulls here: F1 43.5 -> 58.3 in all, no-answer accuracy
    38.5 -> 92.3, answerable F1 47.1 -> 33.8 (2026-12-06). The floors hold each part near that."""
    data = Path(__file__).parents[1] / "data" / "qa_noanswer_test.jsonl"
    got = json_of(run(["eval", "qa", str(data), "--json"], home))["metrics"]
    assert got["f1"] >= 50 and got["no_answer_accuracy"] >= 80 and got["has_answer_f1"] >= 30


def test_ask_over_a_chinese_passage_does_not_answer_with_the_questions_subject(home):
    from nlpsuite import Suite

    context = "自然语言处理（NLP）是计算机科学的一个分支，它研究如何让计算机理解、生成和处理人类语言。"
    best, _ = Suite(device="cpu").head("span").read("什么是自然语言处理？", context)
    # The model's favourite span was the question's subject, 自然语言处理 (or with its （NLP）).
    assert best is not None and "自然语言处理" not in best.answer.removesuffix("（NLP）")


def test_extract_field_scores_hold_on_a_held_out_set(home, tmp_path):
    """Books: a schema the built-in extract score was not fitted on (docs/confidence.md: field ECE 0.058 on its 72
    fields, 58% of them right, 2026-12-06). Whatever the fields' rightness, their scores must say it."""
    data = Path(__file__).parents[2] / "benchmarks" / "data"
    schema = data / "extract_book.schema.json"
    got = run(["eval", "extract", str(data / "extract_book.jsonl"), "--schema", str(schema), "--json",
               "--reliability", str(tmp_path / "r.png")], home)  # fmt: skip
    metrics = json_of(got)["metrics"]
    assert metrics["field_ece"] <= 0.12 and abs(metrics["field_mean_score"] - metrics["field_right"]) <= 0.1
    assert metrics["invalid"] == 0 and (tmp_path / "r.png").exists()


def test_ask_generative(home):
    got = json_of(run(["ask", "Who named the river?", "--context", CONTEXT, "--generate", "--json"], home))
    assert "Orellana" in got["answer"] and {"answer", "score", "start", "end"} <= set(got)
    # the README's example, whose generated answer ignores the question: no answer is the honest outcome
    got = json_of(
        run(["ask", "Which countries does the river flow through?", "--context", CONTEXT, "--generate", "--json"], home)
    )
    assert {"answer", "score", "start", "end"} <= set(got) and 0 <= got["score"] <= 1


def test_translate_keeps_paragraphs(home):
    got = json_of(run(["translate", "Good morning.\n\nThank you very much.", "--to", "fr", "--json"], home))
    assert got["translation"].count("\n\n") == 1
    assert got["translation"] != "Good morning.\n\nThank you very much."


def test_summarize_respects_max_words(home):
    text = " ".join([CONTEXT] * 3)
    got = json_of(run(["summarize", text, "--max-words", "25", "--json"], home))
    assert 0 < len(got["summary"].split()) <= 25


def test_bad_inputs_are_one_line(home, tmp_path):
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"\x00\xff\xfe" * 100)
    for args in (
        ["sentiment", ""],
        ["classify", "x", "--labels", "a"],
        ["classify", "x", "--labels", "a,a"],
        ["translate", "hello", "--to", "xx"],
        ["summarize", "--file", str(binary)],
    ):
        done = run(args, home)
        assert done.returncode == 1, args
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_ask_from_an_index_and_chat_over_it(home, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "amazon.txt").write_text(CONTEXT)
    (docs / "moon.txt").write_text(
        "The Moon is Earth's only natural satellite. Neil Armstrong was the first person to walk on the Moon, in 1969."
    )
    name = f"e2e-{os.getpid()}"
    assert run(["index", "add", name, str(docs), "--quiet"], home).returncode == 0
    try:
        got = json_of(run(["ask", "Who was the first person to walk on the Moon?", "--index", name, "--json"], home))
        assert "Armstrong" in got["answer"] and got["source"].endswith("moon.txt")
        chat = run(["chat", "--quiet"], home, stdin=f"/index {name}\nWho named the Amazon river?\n")
        assert chat.returncode == 0 and "amazon.txt" in chat.stdout
    finally:
        run(["index", "rm", name], home)


def test_a_looping_reply_does_not_poison_the_next_question(home):
    """The scripted session of the new-user trial: the poem loops, and "What is 2 + 2?" was answered with 1,698
    characters that loop again; now the loop is cut, marked, and the question is answered about arithmetic."""
    done = run(["chat", "--json"], home, stdin="Write a short poem about autumn leaves.\nWhat is 2 + 2?\n")
    assert done.returncode == 0, done.stderr
    poem, answer = (json.loads(line) for line in done.stdout.splitlines())
    assert poem["finish_reason"] == "repetition"
    assert answer["finish_reason"] == "stop" and "4" in answer["content"] and "leaves" not in answer["content"]
