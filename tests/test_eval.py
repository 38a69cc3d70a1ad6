"""`nlpsuite eval` and `nlpsuite calibrate`, driven through the CLI on the tiny model.

Three kinds of tests: the language-model evaluation on the real runtime, checked against
transformers; the command plumbing (reading data, batching, resuming, metrics, reports) with
scripted stand-ins for task methods, whose outputs the tests know and score independently with
sacrebleu and scikit-learn; and the same commands on the real task methods, which run once those
methods are in the Suite.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from nlpsuite.api import Suite
from nlpsuite.eval import calibration
from nlpsuite.eval.lm import cross_entropy

pytestmark = pytest.mark.shared_cache

TEXT = (
    "the quick brown fox jumps over the lazy dog. a small model speaks in short sentences. "
    "hello world, this is a tiny test corpus with numbers like 1 2 3 and words like cat dog bird."
)
needs_tasks = pytest.mark.skipif(not hasattr(Suite, "sentiment"), reason="task methods land with the tasks branch")
needs_scores = pytest.mark.skipif(not hasattr(Suite, "label_scores"), reason="label_scores lands with the tasks branch")
needs_search = pytest.mark.skipif(not hasattr(Suite, "search"), reason="index/search land with the retrieval branch")


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    """Files eval writes by default (the reliability diagram) land in the test's own folder."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def tiny(tiny_llama):
    return ["--model", str(tiny_llama), "--device", "cpu"]


@pytest.fixture
def suite(tiny_llama):
    return Suite(model=str(tiny_llama), device="cpu")


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


# --- language-model cross-entropy ------------------------------------------------------------


def torch_log_probs(folder, ids: list[int], context: int | None = None) -> np.ndarray:
    """log p(token t | the tokens before it) for t >= 1, straight from transformers; ``context`` caps
    how many tokens before t it may see."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32).eval()
    out = []
    with torch.no_grad():
        if context is None:
            logits = model(torch.tensor([ids])).logits[0].double().log_softmax(-1)
            return np.array([logits[t - 1, ids[t]].item() for t in range(1, len(ids))])
        for t in range(1, len(ids)):
            window = ids[max(0, t - context) : t]
            logits = model(torch.tensor([window])).logits[0, -1].double().log_softmax(-1)
            out.append(logits[ids[t]].item())
    return np.array(out)


def test_cross_entropy_matches_a_full_sequence_computation(suite, tiny_llama):
    ids = suite.tokenizer.encode(TEXT)
    assert 40 < len(ids) < suite.backbone.context_length  # one window holds it all
    expected = -torch_log_probs(tiny_llama, ids)
    got = cross_entropy(suite.backbone, suite.tokenizer, TEXT, window=128, stride=64)
    assert got["tokens"] == len(ids) - 1
    assert got["nats_per_token"] == pytest.approx(expected.mean(), rel=1e-4)
    assert got["perplexity"] == pytest.approx(math.exp(expected.mean()), rel=1e-4)
    first = suite.tokenizer.decode(ids[:1])  # the unscored first token's characters don't count
    assert got["chars"] == len(TEXT) - len(first)
    assert got["bits_per_char"] == pytest.approx(expected.sum() / math.log(2) / got["chars"], rel=1e-4)


def test_windows_give_each_token_the_context_they_promise(suite, tiny_llama):
    ids = suite.tokenizer.encode(TEXT)
    # stride 1: every token is scored after exactly the window - 1 tokens before it (fewer at the start)
    expected = -torch_log_probs(tiny_llama, ids, context=7)
    got = cross_entropy(suite.backbone, suite.tokenizer, TEXT, window=8, stride=1)
    assert got["tokens"] == len(ids) - 1
    assert got["nats_per_token"] == pytest.approx(expected.mean(), rel=1e-4)
    full = cross_entropy(suite.backbone, suite.tokenizer, TEXT, window=128)["nats_per_token"]
    assert got["nats_per_token"] != pytest.approx(full, rel=1e-3)  # the cut context shows
    for window, stride in ((16, 5), (16, 8), (9, 3)):  # every token scored exactly once
        assert cross_entropy(suite.backbone, suite.tokenizer, TEXT, window, stride)["tokens"] == len(ids) - 1


def test_eval_lm_cli(cli, tiny, tmp_path, suite):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT + "\n" + TEXT.upper() + "\n", encoding="utf-8")
    result = cli(["eval", "lm", str(corpus), "--window", "32", "--stride", "16", "--json", *tiny])
    assert result.code == 0, result.err
    report = json.loads(result.out)
    direct = cross_entropy(suite.backbone, suite.tokenizer, corpus.read_text(encoding="utf-8"), 32, 16)
    assert report["task"] == "lm" and report["n"] == direct["tokens"]
    assert report["metrics"]["cross_entropy"] == pytest.approx(direct["nats_per_token"])
    assert report["metrics"]["perplexity"] == pytest.approx(math.exp(direct["nats_per_token"]))
    assert report["metrics"]["bits_per_char"] == pytest.approx(direct["bits_per_char"])
    first_line = cli(["eval", "lm", str(corpus), "--limit", "1", "--json", *tiny])
    assert json.loads(first_line.out)["n"] == len(suite.tokenizer.encode(TEXT + "\n")) - 1
    table = cli(["eval", "lm", str(corpus), "--output", str(tmp_path / "r.json"), *tiny])
    assert table.code == 0 and "perplexity" in table.out and "cross_entropy" in table.out
    assert json.loads((tmp_path / "r.json").read_text())["metrics"]["perplexity"] > 1


# --- bad input -------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path):
    good = write_jsonl(tmp_path / "cls.jsonl", [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}])
    return {
        "good": good,
        "nolabel": write_jsonl(tmp_path / "nolabel.jsonl", [{"text": "a"}]),
        "intlabel": write_jsonl(tmp_path / "int.jsonl", [{"text": "a", "label": "x"}, {"text": "b", "label": 1}]),
        "empty": write_jsonl(tmp_path / "empty.jsonl", []),
        "csv": _write(tmp_path / "t.csv", "source,target\nhello,bonjour\n"),
        "tsv": _write(tmp_path / "s.tsv", "text\treference\nsome text\ta summary\n"),
        "txt": _write(tmp_path / "data.txt", "text"),
        "notjson": _write(tmp_path / "bad.jsonl", '{"text": "a", "label": "x"}\nnot json\n'),
        "onelabel": write_jsonl(tmp_path / "one.jsonl", [{"text": "a", "label": "x"}, {"text": "b", "label": "x"}]),
        "queries": write_jsonl(tmp_path / "q.jsonl", [{"query": "q", "relevant": ["d1", "d9"]}]),
        "docs": write_jsonl(tmp_path / "docs.jsonl", [{"id": "d1", "text": "doc"}]),
        "badgrade": write_jsonl(tmp_path / "g.jsonl", [{"query": "q", "relevant": {"d1": "high"}}]),
        "qa": write_jsonl(tmp_path / "qa.jsonl", [{"question": "q", "context": "c", "answers": ["x", 3]}]),
        "blank": _write(tmp_path / "blank.txt", "  \n\n"),
        "short": _write(tmp_path / "short.tsv", 'text\tlabel\n"quoted" start\tpos\nfoo\n'),
    }


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "args, message",
    [
        (["eval", "poetry", "{good}"], "error: unknown task 'poetry' (choose from: sentiment, classification, qa"),
        (["eval", "classification", "{nolabel}"], "error: {nolabel}:1: missing column 'label'"),
        (["eval", "classification", "{intlabel}"], "error: {intlabel}:2: 'label' must be a string, not int"),
        (["eval", "sentiment", "{empty}"], "error: {empty} holds no records"),
        (["eval", "translation", "{csv}", "--to", "fr"], "error: {csv} has no column 'reference' (its columns: source"),
        (["eval", "translation", "{csv}"], "error: --to is required: Target language"),
        (["eval", "summarization", "{tsv}", "--max-words", "0"], "error: --max-words must be at least 1"),
        (["eval", "qa", "{tsv}"], "error: {tsv} has no column 'question', 'context', 'answers'"),
        (["eval", "classification", "{txt}"], "error: {txt}: expected a .jsonl, .csv, .tsv or .parquet file"),
        (["eval", "classification", "{notjson}"], "error: {notjson}:2:1: not valid JSON (Expecting value)"),
        (["eval", "classification", "{onelabel}"], "error: {onelabel}: classification needs at least two distinct"),
        (["eval", "classification", "{good}", "--limit", "0"], "error: --limit must be at least 1"),
        (["eval", "retrieval", "{queries}"], "error: --docs is required: JSONL of documents"),
        (["eval", "retrieval", "{queries}", "--docs", "{docs}"], "error: {queries}: relevant ids not in {docs}: d9"),
        (["eval", "retrieval", "{badgrade}", "--docs", "{docs}"], "error: {badgrade}:1: the grade of 'd1' in"),
        (["eval", "retrieval", "{queries}", "--docs", "{docs}", "--k", "0"], "error: --k must be at least 1"),
        (["eval", "qa", "{qa}"], "error: {qa}:1: 'answers' must be a string or a list of strings ([] for no answer)"),
        (["eval", "classification", "{short}"], "error: {short}:3: no value for 'label'"),
        (["eval", "retrieval", "{queries}", "--docs", "{csv}"], "error: {csv}: the documents must be a .jsonl file"),
        (["eval", "lm", "{blank}"], "error: {blank} holds no text"),
        (["eval", "lm", "{txt}", "--predictions", "{txt}.jsonl"], "error: --predictions keeps per-example"),
        (["calibrate", "classification", "{good}", "--limit", "0"], "error: --limit must be at least 1"),
        (["eval", "lm", "{txt}", "--window", "1"], "error: --window must be at least 2 tokens"),
        (["eval", "lm", "{txt}-missing"], "error: cannot read {txt}-missing"),
        (
            ["calibrate", "retrieval", "{good}"],
            "error: calibrate works on ask, classification, classify, extract, extraction, qa",
        ),
        (["calibrate", "classification", "{good}", "--holdout", "1.5"], "error: --holdout must be between 0 and 1"),
        (["calibrate", "classification", "{good}", "--holdout", "0.1"], "error: {good} has 2 examples: too few"),
        (["calibrate", "classification", "{good}", "--labels", "x"], "error: --labels needs at least two distinct"),
        (
            ["calibrate", "classification", "{good}", "--labels", "x,z"],
            "error: labels in the data not among --labels: y",
        ),
        (["calibrate", "sentiment", "{intlabel}"], "error: {intlabel}:2: 'label' must be a string, not int"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(cli, files, args, message):
    args = [a.format(**files) for a in args]
    result = cli([*args, "--model", "no-such-model"])  # input is checked before any model is looked up
    assert result.code == 1, result.out
    assert result.err.strip().startswith(message.format(**files)), result.err
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err


# --- command plumbing, with scripted task methods --------------------------------------------
# Each stand-in returns outputs the test chose, so the metrics can be recomputed independently.


def scripted_labels(table: dict[str, dict[str, float]]):
    def run(inputs, labels=None, head=None):
        out = []
        for t in (i["text"] for i in inputs):
            scores = table[t]
            best = max(scores, key=scores.get)
            out.append({"label": best, "score": scores[best], "scores": dict(scores)})
        return out

    return run


def script(monkeypatch, name: str, run) -> None:
    """The registered task keeps its declaration, but its run() is a script: run(inputs, **options) -> results."""
    from nlpsuite import plugins

    tasks = plugins.registry().tasks
    scripted = dataclasses.replace(tasks[name], run=lambda suite, inputs, **options: run(inputs, **options))
    monkeypatch.setitem(tasks, name, scripted)


def test_classification_report_matches_scikit_learn(cli, tiny, tmp_path, monkeypatch):
    from sklearn import metrics as sk

    rng = np.random.default_rng(0)
    labels = ["business", "science", "sports"]
    gold = [str(g) for g in rng.choice(labels, 60)]
    probs = rng.dirichlet([2, 2, 2], 60)
    probs[np.arange(60), [labels.index(g) for g in gold]] += rng.random(60)  # right more often than not
    probs /= probs.sum(axis=1, keepdims=True)
    records = [{"text": f"article {i}", "label": g} for i, g in enumerate(gold)]
    table = {r["text"]: dict(zip(labels, map(float, p), strict=True)) for r, p in zip(records, probs, strict=True)}
    seen = []

    def classify(inputs, labels=None, head=None):
        seen.append(labels)
        return scripted_labels(table)(inputs)

    script(monkeypatch, "classify", classify)
    data = write_jsonl(tmp_path / "news.jsonl", records)
    out = tmp_path / "report.json"
    result = cli(["eval", "classification", str(data), "--json", "--output", str(out), "--batch-size", "7", *tiny])
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report == json.loads(out.read_text())
    assert report["task"] == "classification" and report["n"] == 60
    assert seen and all(s == labels for s in seen)  # the label set comes from the data
    seen.clear()
    png = str(tmp_path / "probe.png")
    probe = cli(["eval", "classification", str(data), "--head", "topics", "--reliability", png, *tiny])
    assert probe.code == 0, probe.err
    assert seen and all(s is None for s in seen)  # a probe head brings its own labels
    predicted = [labels[i] for i in probs.argmax(axis=1)]
    m = report["metrics"]
    assert m["accuracy"] == pytest.approx(sk.accuracy_score(gold, predicted))
    assert m["macro_f1"] == pytest.approx(sk.f1_score(gold, predicted, average="macro"))
    assert m["confusion_matrix"]["matrix"] == sk.confusion_matrix(gold, predicted, labels=labels).tolist()
    precision, recall, _, _ = sk.precision_recall_fscore_support(gold, predicted, labels=labels, zero_division=0)
    assert [m["per_class"][lab]["precision"] for lab in labels] == pytest.approx(list(precision))
    assert [m["per_class"][lab]["recall"] for lab in labels] == pytest.approx(list(recall))
    gold_index = np.array([labels.index(g) for g in gold])
    assert m["ece"] == pytest.approx(calibration.expected_calibration_error(probs, gold_index))
    assert m["reliability_png"] == str(out.with_suffix(".png"))
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"

    shown = cli(["eval", "classification", str(data), "--limit", "10", *tiny])
    assert shown.code == 0, shown.err
    assert "accuracy" in shown.out and "confusion matrix" in shown.out and "per class" in shown.out
    assert "reliability diagram: classification-reliability.png" in shown.out
    assert (tmp_path / "classification-reliability.png").read_bytes()[:4] == b"\x89PNG"


def test_sentiment_labels_must_be_ones_the_task_produces(cli, tiny, tmp_path, monkeypatch):
    table = {"good": {"positive": 0.9, "negative": 0.1}, "bad": {"positive": 0.2, "negative": 0.8}}
    script(monkeypatch, "sentiment", scripted_labels(table))
    data = write_jsonl(tmp_path / "s.jsonl", [{"text": "good", "label": "pos"}, {"text": "bad", "label": "negative"}])
    result = cli(["eval", "sentiment", str(data), "--reliability", str(tmp_path / "r.png"), *tiny])
    assert result.code == 1
    expected = "error: labels in the data that the task does not produce: pos (it produces: positive, negative)"
    assert result.err.strip().splitlines()[-1] == expected  # after any first-use conversion lines
    data = write_jsonl(
        tmp_path / "s.jsonl", [{"text": "good", "label": "negative"}, {"text": "bad", "label": "negative"}]
    )
    result = cli(["eval", "sentiment", str(data), "--json", "--reliability", str(tmp_path / "r.png"), *tiny])
    m = json.loads(result.out)["metrics"]
    assert m["accuracy"] == 0.5 and m["ece"] == pytest.approx(0.5 * abs(0 - 0.9) + 0.5 * abs(1 - 0.8))


def test_translation_report_matches_sacrebleu_and_prints_the_signature(cli, tiny, tmp_path, monkeypatch):
    import sacrebleu

    pairs = {
        "le chat est sur le tapis": ("the cat is on the mat", "the cat sits on the mat"),
        "il pleut aujourd'hui": ("it rains today", "it is raining today"),
        "bonjour le monde": ("hello world", "hello world"),
    }
    calls = []

    def translate(inputs, to, source=None):
        calls.append((to, source))
        return [{"translation": pairs[i["text"]][0], "score": 0.5} for i in inputs]

    script(monkeypatch, "translate", translate)
    data = tmp_path / "fr-en.tsv"
    data.write_text("source\treference\n" + "".join(f"{s}\t{r}\n" for s, (_, r) in pairs.items()), encoding="utf-8")
    result = cli(["eval", "translation", str(data), "--to", "en", "--from", "fr", "--json", *tiny])
    assert result.code == 0, result.err
    m = json.loads(result.out)["metrics"]
    hyps, refs = [h for h, _ in pairs.values()], [r for _, r in pairs.values()]
    assert m["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert m["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    assert m["signature"]["bleu"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert set(calls) == {("English", "French")}  # the task's declared options parse the codes
    shown = cli(["eval", "translation", str(data), "--to", "en", *tiny])
    assert "bleu signature: nrefs:1|case:mixed" in shown.out and "chrf" in shown.out


def test_summarization_and_qa_reports(cli, tiny, tmp_path, monkeypatch):
    from rouge_score import rouge_scorer

    summaries = {"a long story about cats and dogs": "cats and dogs", "the market rose sharply": "markets rose"}
    script(monkeypatch, "summarize", lambda inputs, max_words=None: [{"summary": summaries[i["text"]], "score": 0.5}
                                                                     for i in inputs])  # fmt: skip
    records = [
        {"text": t, "reference": r} for t, r in zip(summaries, ["a story of cats and dogs", "market up"], strict=True)
    ]
    result = cli(["eval", "summarization", str(write_jsonl(tmp_path / "s.jsonl", records)), "--json", *tiny])
    assert result.code == 0, result.err
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    for name in ("rouge1", "rouge2", "rougeL"):
        expected = np.mean([scorer.score(r["reference"], summaries[r["text"]])[name].fmeasure for r in records])
        assert json.loads(result.out)["metrics"][name] == pytest.approx(expected)

    answers = {"who?": "The Beatles", "when?": "in 1969", "where?": "London"}
    script(
        monkeypatch,
        "ask",
        lambda inputs, index=None, generate=False: [
            {"answer": answers[i["question"]], "score": 0.5, "start": 0, "end": 1} for i in inputs
        ],
    )
    data = write_jsonl(
        tmp_path / "qa.jsonl",
        [
            {"question": "who?", "context": "c", "answers": ["Beatles", "the beatles"]},  # exact after normalization
            {"question": "when?", "context": "c", "answers": {"text": ["1969"], "answer_start": [0]}},  # F1 2/3
            {"question": "where?", "context": "c", "answers": "Paris"},  # wrong
        ],
    )
    result = cli(["eval", "qa", str(data), "--json", *tiny])
    found = json.loads(result.out)["metrics"]
    assert {k: found[k] for k in ("exact_match", "f1")} == pytest.approx(
        {"exact_match": 100 / 3, "f1": 100 * (1 + 2 / 3) / 3}
    )
    # every score 0.5; right: F1 >= 0.5 (who?, when?) or not (where?): ECE |2/3 - 0.5| in one bin
    assert found["right"] == pytest.approx(2 / 3) and found["ece"] == pytest.approx(1 / 6)


def test_qa_scores_a_null_answer_as_squad2_does(cli, tiny, tmp_path, monkeypatch):
    """No answer is right only where the gold has none (``[]``, or SQuAD 2.0's empty ``text``)."""
    answers = {"who?": None, "when?": "1969", "where?": None, "why?": "for fun"}
    script(
        monkeypatch,
        "ask",
        lambda inputs, index=None, generate=False: [
            {"answer": answers[i["question"]], "score": 0.5, "start": None, "end": None} for i in inputs
        ],
    )
    data = write_jsonl(
        tmp_path / "qa.jsonl",
        [
            {"question": "who?", "context": "c", "answers": []},  # right: no answer
            {"question": "when?", "context": "c", "answers": ["1969"]},  # right
            {"question": "where?", "context": "c", "answers": ["London"]},  # wrong: it has an answer
            {"question": "why?", "context": "c", "answers": {"text": [], "answer_start": []}},  # wrong: it has none
        ],
    )
    result = cli(["eval", "qa", str(data), "--json", *tiny])
    assert result.code == 0, result.err
    found = json.loads(result.out)["metrics"]
    assert found == pytest.approx(
        {
            "exact_match": 50.0,
            "f1": 50.0,
            "has_answer_exact_match": 50.0,
            "has_answer_f1": 50.0,
            "no_answer_accuracy": 50.0,
            "ece": 0.0,  # every score 0.5, and half the results are right
            "right": 0.5,
            "mean_score": 0.5,
            "reliability_png": found["reliability_png"],
        }
    )


def test_retrieval_maps_hits_back_to_document_ids(cli, tiny, tmp_path, monkeypatch):
    """A stand-in index ranks documents by shared words, so the expected ranking is known."""
    from nlpsuite_plugins import retrieval as retrieval_plugin

    indexes: dict[str, list[tuple[str, str]]] = {}
    removed = []

    def index(self, name, paths):  # the real index reads a JSONL of {"id", "text"}: sources are the ids
        (path,) = paths
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        indexes[name] = [(str(r["id"]), r["text"]) for r in records]
        return {"index": name, "documents": len(records)}

    def search(self, name, query, k=5):
        if isinstance(query, list):  # as Suite.search: a list of queries gives a list of hit lists
            return [search(self, name, q, k) for q in query]
        words = set(query.split())
        hits = sorted(indexes[name], key=lambda doc: -len(words & set(doc[1].split())))  # stable: ties keep order
        chunked = [{"source": s, "text": t, "score": 0.0} for s, t in hits for _ in (0, 1)]
        return chunked[:k]  # every document comes back twice, as two passages: it must count once

    monkeypatch.setattr(Suite, "index", index, raising=False)
    monkeypatch.setattr(Suite, "search", search, raising=False)
    monkeypatch.setattr(retrieval_plugin, "remove_index", removed.append)
    docs = [
        {"id": "cats", "text": "cats purr sleep"},
        {"id": 7, "text": "dogs bark run swim"},
        {"id": "fish", "text": "fish swim"},
    ]
    queries = [  # ties go to the earlier document
        {"query": "do cats sleep", "relevant": ["cats"]},  # cats first
        {"query": "fish and dogs", "relevant": {"7": 2, "fish": 1}},  # dogs, then fish
        {"query": "swim fish", "relevant": [7]},  # fish (2 words), then dogs (1)
    ]
    d = write_jsonl(tmp_path / "docs.jsonl", docs)
    q = write_jsonl(tmp_path / "q.jsonl", queries)
    result = cli(["eval", "retrieval", str(q), "--docs", str(d), "--k", "2", "--json", *tiny])
    assert result.code == 0, result.err
    m = json.loads(result.out)["metrics"]
    ndcg_third = (1 / math.log2(3)) / 1.0
    assert m["recall@k"] == pytest.approx((1 + 1 + 1) / 3)
    assert m["mrr"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert m["ndcg@k"] == pytest.approx((1 + 1 + ndcg_third) / 3)
    assert m["recall@2"] == m["recall@k"] and m["ndcg@2"] == m["ndcg@k"] and m["k"] == 2
    k1 = json.loads(cli(["eval", "retrieval", str(q), "--docs", str(d), "--k", "1", "--json", *tiny]).out)
    assert k1["metrics"]["recall@k"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert removed == list(indexes) and len(set(removed)) == 2  # each run's index is its own, and removed


def test_an_interrupted_eval_resumes_from_its_predictions(cli, tiny, tmp_path, monkeypatch):
    texts = [f"t{i}" if i != 1 else "t1\u2028line separator" for i in range(10)]  # a line only to str.splitlines
    table = {t: {"a": 0.7, "b": 0.3} if i % 3 else {"a": 0.2, "b": 0.8} for i, t in enumerate(texts)}
    calls, interrupt = [], [3]  # the third call is interrupted, once

    def classify(inputs, labels=None, head=None):
        calls.append([i["text"] for i in inputs])
        if len(calls) == interrupt[0]:
            interrupt[0] = 0
            raise KeyboardInterrupt
        return scripted_labels(table)(inputs)

    script(monkeypatch, "classify", classify)
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": t, "label": "a" if i < 5 else "b"} for i, t in enumerate(table)])
    preds = tmp_path / "preds.jsonl"
    args = ["eval", "classification", str(data), "--predictions", str(preds), "--batch-size", "3", "--json", *tiny]
    stopped = cli(args)
    assert stopped.code == 130
    assert len(preds.read_text(encoding="utf-8").splitlines()) == 6  # two whole batches kept, each record one line
    assert stopped.err.strip().splitlines()[-1] == (
        f"interrupted: 6 of 10 predictions kept in {preds}: run the same command to resume"
    )  # it said 'nothing half-done was kept', as if the predictions were lost
    with open(preds, "a") as fh:
        fh.write('{"input": "t6", "predi')  # torn by the interruption
    calls.clear()
    resumed = cli(args)
    assert resumed.code == 0, resumed.err
    assert calls[0] == ["t6", "t7", "t8"] and sum(map(len, calls)) == 4
    fresh = cli(["eval", "classification", str(data), "--batch-size", "3", "--json", *tiny])
    assert json.loads(resumed.out)["metrics"]["accuracy"] == json.loads(fresh.out)["metrics"]["accuracy"]
    calls.clear()
    rescored = cli(["eval", "classification", str(data), "--predictions", str(preds), "--json", "--model", "nope"])
    assert rescored.code == 0 and not calls  # all predictions saved: scored again without a model
    assert json.loads(rescored.out) == json.loads(resumed.out)
    shuffled = [{"text": t, "label": "ab"[i % 2]} for i, t in enumerate(reversed(table))]
    other = write_jsonl(tmp_path / "other.jsonl", shuffled)
    clash = cli(["eval", "classification", str(other), "--predictions", str(preds), *tiny])
    assert clash.code == 1 and "error: saved prediction" in clash.err


def test_an_interrupted_eval_without_predictions_says_how_to_keep_them(cli, tiny, tmp_path, monkeypatch):
    def classify(inputs, labels=None, head=None):
        raise KeyboardInterrupt

    script(monkeypatch, "classify", classify)
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": f"t{i}", "label": "ab"[i % 2]} for i in range(4)])
    stopped = cli(["eval", "classification", str(data), *tiny])
    assert stopped.code == 130
    assert stopped.err.strip().splitlines()[-1] == (
        "interrupted: no prediction was kept; --predictions FILE keeps them, so that a rerun resumes"
    )


def test_calibrate_fits_saves_and_reports(cli, tiny, tmp_path, monkeypatch, suite):
    """label_scores stand-in: overconfident raw scores with a prior for 'neg', so both parts of the fit matter."""
    rng = np.random.default_rng(3)
    n = 400
    gold = rng.integers(0, 2, n)
    clean = rng.normal(size=(n, 2))
    clean[np.arange(n), gold] += 1.2
    raw = {f"review {i}": 5 * clean[i] + np.array([0.0, 6.0]) for i in range(n)}
    raw.update({"N/A": np.array([0.0, 6.0]), "[MASK]": np.array([0.1, 6.1])})
    asked = []

    def label_scores(self, task, texts, labels=None, head=None):
        asked.append((task, labels, head))
        names = ["pos", "neg"]
        return names, np.array([raw[t] for t in texts])

    monkeypatch.setattr(Suite, "label_scores", label_scores, raising=False)
    names = ["pos", "neg"]
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": f"review {i}", "label": names[g]} for i, g in enumerate(gold)])
    result = cli(["calibrate", "classification", str(data), "--json", "--seed", "1", *tiny])
    assert result.code == 0, result.err
    out = json.loads(result.out)
    assert out["n_fit"] == 200 and out["n_heldout"] == 200 and out["labels"] == names
    assert out["method"] == "bias+temperature" and out["temperature"] > 2
    assert out["after"]["ece"] < out["before"]["ece"] / 2 and out["after"]["accuracy"] > out["before"]["accuracy"]
    assert {a[0] for a in asked} == {"classify"} and asked[0][1] == ["neg", "pos"]  # label set from the data
    key = calibration.task_key("classify", ["neg", "pos"])
    saved = calibration.load(suite.source.key, "fp32", key)
    assert out["saved"] == str(calibration.path(suite.source.key, "fp32", key))
    assert saved.temperature == pytest.approx(out["temperature"]) and saved.info["n_fit"] == 200
    # the held-out numbers are what the saved calibration gives on the held-out part
    held = np.random.default_rng(1).permutation(n)[:200]
    scores = np.array([raw[f"review {i}"] for i in held])
    assert calibration.assess(saved.apply(scores), gold[held])["ece"] == pytest.approx(out["after"]["ece"])
    again = cli(["calibrate", "classification", str(data), "--json", "--seed", "1", *tiny])
    assert json.loads(again.out)["temperature"] == out["temperature"]  # seeded split: same fit

    table = cli(["calibrate", "classification", str(data), "--holdout", "0.25", *tiny])
    assert table.code == 0 and "before" in table.out and "after" in table.out and "saved to" in table.out

    # sentiment brings its own labels; its calibration is stored under them, where the task looks it up
    as_sentiment = json.loads(cli(["calibrate", "sentiment", str(data), "--json", *tiny]).out)
    sentiment_key = calibration.task_key("sentiment", ["pos", "neg"])
    assert as_sentiment["saved"] == str(calibration.path(suite.source.key, "fp32", sentiment_key))
    assert asked[-1] == ("sentiment", None, None)

    asked.clear()
    probe = cli(["calibrate", "classification", str(data), "--head", "mine", "--json", *tiny])
    assert json.loads(probe.out)["method"] in ("temperature", "bias+temperature")
    assert asked and all(a == ("classify", None, "mine") for a in asked)
    assert calibration.load(suite.source.key, "fp32", calibration.task_key("classify", head="mine")) is not None

    reset = cli(["calibrate", "classification", "--reset", "--json", *tiny])
    assert reset.code == 0 and len(json.loads(reset.out)["removed"]) == 2  # the label set's and the probe's
    assert calibration.load(suite.source.key, "fp32", key) is None
    assert calibration.load(suite.source.key, "fp32", sentiment_key) is not None  # another task's stays


def test_calibrate_refuses_a_fit_on_too_few_examples_per_label(cli, tiny, tmp_path, monkeypatch, suite):
    """30 easily separated rows used to fit temperature 0.036 and make every later probability 1.000."""
    names = ["positive", "negative", "neutral"]
    monkeypatch.setattr(
        Suite,
        "label_scores",
        lambda self, task, texts, labels=None, head=None: (names, np.array([[9.0, 0, 0] for _ in texts])),
        raising=False,
    )
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": f"t{i}", "label": names[i % 3]} for i in range(30)])
    result = cli(["calibrate", "sentiment", str(data), *tiny])
    assert result.code == 1
    assert result.err.strip().startswith("error: calibrate needs at least 10 examples of each label to fit on")
    assert calibration.load(suite.source.key, "fp32", calibration.task_key("sentiment", names)) is None


# --- the real task methods (skipped until the tasks and retrieval branches are merged) --------


@pytest.fixture(scope="module")
def roomy(tmp_path_factory, make_tiny_llama):
    """The tiny random model with room for the tasks' prompts (few-shot examples)."""
    folder = make_tiny_llama(tmp_path_factory.mktemp("tiny-eval-tasks"), context=4096)
    return ["--model", str(folder), "--device", "cpu"]


@needs_tasks
def test_eval_sentiment_on_the_model(cli, roomy, tmp_path):
    from sklearn import metrics as sk

    records = [{"text": t, "label": lab} for t, lab in [("a wonderful film", "positive"), ("dull and bad", "negative")]]
    data = write_jsonl(tmp_path / "s.jsonl", records * 3)
    preds = tmp_path / "p.jsonl"
    result = cli(["eval", "sentiment", str(data), "--json", "--predictions", str(preds), *roomy])
    assert result.code == 0, result.err
    m = json.loads(result.out)["metrics"]
    predicted = [json.loads(line)["prediction"]["label"] for line in preds.read_text().splitlines()]
    gold = [r["label"] for r in records * 3]
    assert m["accuracy"] == pytest.approx(sk.accuracy_score(gold, predicted))
    assert m["macro_f1"] == pytest.approx(sk.f1_score(gold, predicted, average="macro"))
    assert 0 <= m["ece"] <= 1


@needs_tasks
def test_eval_translation_summarization_qa_on_the_model(cli, roomy, tmp_path):
    import sacrebleu

    data = write_jsonl(tmp_path / "t.jsonl", [{"source": "hello world", "reference": "bonjour le monde"}] * 2)
    preds = tmp_path / "p.jsonl"
    result = cli(["eval", "translation", str(data), "--to", "French", "--json", "--predictions", str(preds), *roomy])
    assert result.code == 0, result.err
    hyps = [json.loads(line)["prediction"]["translation"] for line in preds.read_text().splitlines()]
    m = json.loads(result.out)["metrics"]
    assert m["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [["bonjour le monde"] * 2]).score)
    summary = write_jsonl(tmp_path / "s.jsonl", [{"text": TEXT, "reference": "a fox and a small model"}])
    result = cli(["eval", "summarization", str(summary), "--max-words", "10", "--json", *roomy])
    scored = {"ece", "right", "mean_score", "reliability_png"}  # how well the score holds: see docs/confidence.md
    assert set(json.loads(result.out)["metrics"]) == {"rouge1", "rouge2", "rougeL", *scored}
    qa = write_jsonl(tmp_path / "qa.jsonl", [{"question": "What jumps?", "context": TEXT, "answers": ["fox"]}])
    result = cli(["eval", "qa", str(qa), "--json", *roomy])
    assert set(json.loads(result.out)["metrics"]) == {"exact_match", "f1", *scored}


@needs_search
def test_eval_retrieval_on_the_model(cli, roomy, tmp_path):
    docs = write_jsonl(tmp_path / "docs.jsonl", [{"id": f"d{i}", "text": t} for i, t in enumerate(TEXT.split(". "))])
    queries = write_jsonl(tmp_path / "q.jsonl", [{"query": "fox and dog", "relevant": ["d0"]}])
    result = cli(["eval", "retrieval", str(queries), "--docs", str(docs), "--k", "3", "--json", *roomy])
    assert result.code == 0, result.err
    m = json.loads(result.out)["metrics"]
    assert 0 <= m["recall@k"] <= 1 and 0 <= m["mrr"] <= 1 and 0 <= m["ndcg@k"] <= 1


@needs_scores
def test_calibrate_on_the_model_is_used_by_later_runs(cli, roomy, tmp_path):
    labels = ["sports", "weather"]
    texts = [f"{w} news number {i}" for i in range(24) for w in ("football", "rain")]
    records = [{"text": t, "label": labels[i % 2]} for i, t in enumerate(texts)]
    data = write_jsonl(tmp_path / "d.jsonl", records)
    result = cli(["calibrate", "classification", str(data), "--json", *roomy])
    assert result.code == 0, result.err
    out = json.loads(result.out)
    assert set(out) >= {"before", "after", "temperature", "saved"}
    suite = Suite(model=roomy[1], device="cpu")
    saved = calibration.load(suite.source.key, suite.backbone.precision, calibration.task_key("classify", labels))
    names, raw = suite.label_scores("classify", texts[:3], labels)
    done = suite.classify(texts[:3], labels=labels)
    expected = saved.for_labels(list(names)).apply(raw)
    for row, probs in zip(done, expected, strict=True):
        assert [row["scores"][n] for n in names] == pytest.approx(list(probs), abs=1e-4)  # printed to 4 places


# --- end to end on the real default model ----------------------------------------------------


@pytest.mark.e2e
def test_eval_lm_on_the_default_model_equals_transformers(cli, tmp_path, real_home):
    import os
    import this  # the Zen of Python: a short English text every Python ships (printed on import)

    import torch
    from transformers import AutoModelForCausalLM

    zen = "".join(this.d.get(c, c) for c in this.s)
    corpus = _write(tmp_path / "zen.txt", zen)
    result = cli(["eval", "lm", str(corpus), "--json", "--device", "cpu"])
    assert result.code == 0, result.err
    report = json.loads(result.out)
    suite = Suite(device="cpu")
    ids = suite.tokenizer.encode(zen)
    assert report["n"] == len(ids) - 1 < 512  # one window: every token sees all the text before it
    gguf = suite.backbone.manifest["source"]["gguf"]
    model = AutoModelForCausalLM.from_pretrained(
        os.path.dirname(gguf), gguf_file=os.path.basename(gguf), dtype=torch.float32
    ).eval()
    with torch.no_grad():
        logp = model(torch.tensor([ids])).logits[0].double().log_softmax(-1)
    expected = -np.mean([logp[t - 1, ids[t]].item() for t in range(1, len(ids))])
    assert report["metrics"]["cross_entropy"] == pytest.approx(expected, rel=1e-4)
    assert report["metrics"]["perplexity"] == pytest.approx(math.exp(expected), rel=1e-3)
