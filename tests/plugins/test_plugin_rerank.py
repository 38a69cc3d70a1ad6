"""rerank and the relevance head on the tiny random model: query log-likelihoods against transformers, the task's
front-ends (Suite.run, CLI, batch, eval) and `search --rerank`."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest

from nlpsuite.errors import NlpsuiteError

pytestmark = pytest.mark.shared_cache

DOCS = [
    "the quick brown fox jumps over the lazy dog",
    "a small model speaks in short sentences",
    "hello world, this is a tiny test corpus",
    "numbers like 1 2 3 and words like cat dog bird",
    "Ünïcödé text: naïve café, 東京, emoji 🙂",
]


def reference_log_likelihood(model, tokenizer, prompt_ids: list[int], query_ids: list[int]) -> float:
    """log P(query | prompt) by transformers, one unpadded row at a time."""
    import torch

    ids = torch.tensor([prompt_ids + query_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0].double(), dim=-1)
    return float(sum(logp[len(prompt_ids) - 1 + j, t] for j, t in enumerate(query_ids)))


def test_query_log_likelihoods_match_transformers_across_padded_rows(suite, tiny, monkeypatch):
    from transformers import AutoModelForCausalLM

    from nlpsuite.heads import relevance

    monkeypatch.setattr(relevance, "ROWS", 2)  # rows of different lengths, left-padded, in several passes
    head = suite.head("relevance")
    query = "cat dog bird?"
    got, n = head.query_log_likelihoods(query, DOCS)
    model = AutoModelForCausalLM.from_pretrained(tiny).eval()
    query_ids = suite.tokenizer.encode(" " + query, add_special_tokens=False)
    prompts = [head.prompt(d) for d in DOCS] + [head.prompt(relevance.CONTENT_FREE)]
    want = [reference_log_likelihood(model, None, p, query_ids) for p in prompts]
    assert n == len(query_ids)
    np.testing.assert_allclose(got, want, atol=2e-3)
    gains = head.gains(query, DOCS)
    np.testing.assert_allclose(gains, (np.array(want[:-1]) - want[-1]) / n, atol=2e-3)
    scores = head.scores(query, DOCS)
    assert np.all((scores > 0) & (scores < 1)) and list(np.argsort(-scores)) == list(np.argsort(-gains))


def test_rerank_orders_documents_by_relevance(suite):
    results = suite.run("rerank", "cat dog bird?", documents=DOCS)
    scores = suite.head("relevance").scores("cat dog bird?", DOCS)
    assert sorted(r["index"] for r in results) == list(range(len(DOCS)))
    assert [r["index"] for r in results] == sorted(range(len(DOCS)), key=lambda i: -scores[i])
    assert [r["relevance_score"] for r in results] == sorted((r["relevance_score"] for r in results), reverse=True)
    assert all(r["document"] == {"text": DOCS[r["index"]]} for r in results)
    top = suite.run("rerank", "cat dog bird?", documents=[{"id": f"d{i}", "text": t} for i, t in enumerate(DOCS)],
                    top_n=2, return_documents=True)  # fmt: skip
    assert [r["index"] for r in top] == [r["index"] for r in results[:2]]
    assert top[0]["document"] == {"id": f"d{top[0]['index']}", "text": DOCS[top[0]["index"]]}
    bare = suite.run("rerank", "cat dog bird?", documents="\n".join(DOCS), return_documents=False)
    assert [r["index"] for r in bare] == [r["index"] for r in results] and "document" not in bare[0]
    both = suite.run("rerank", ["cat dog bird?", "hello"], documents=DOCS)
    assert [r["index"] for r in both[0]] == [r["index"] for r in results]


@pytest.mark.parametrize(
    "documents", [[], [""], [{"id": "a"}], [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}], "[1,", None]
)
def test_bad_documents_are_refused_in_one_line(suite, documents):
    with pytest.raises(NlpsuiteError):
        suite.run("rerank", "a query", documents=documents)


def test_rerank_cli_text_json_stdin_and_batch(cli, model_args, suite, tmp_path):
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(DOCS) + "\n", encoding="utf-8")
    want = suite.run("rerank", "cat dog bird?", documents=DOCS)
    by_file = cli(["rerank", "cat dog bird?", "--documents", str(docs), "--json", *model_args])
    assert by_file.code == 0, by_file.err
    assert json.loads(by_file.out)["results"] == want
    by_stdin = cli(["rerank", "cat dog bird?", "--documents", "-", "--top-n", "1", "--no-return-documents",
                    "--json", *model_args], stdin="\n".join(DOCS).encode())  # fmt: skip
    assert json.loads(by_stdin.out)["results"] == [{k: v for k, v in want[0].items() if k != "document"}]
    shown = cli(["rerank", "cat dog bird?", "--documents", str(docs), *model_args])
    assert shown.code == 0 and shown.out.startswith(f"1. #{want[0]['index']}")
    records = tmp_path / "in.jsonl"
    records.write_text("".join(json.dumps({"text": q, "documents": DOCS}) + "\n" for q in ["cat dog bird?", "hi"]))
    out = tmp_path / "out.jsonl"
    batch = cli(["rerank", "--input", str(records), "--output", str(out), *model_args])
    assert batch.code == 0, batch.err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["results"] == want and len(lines) == 2
    missing = cli(["rerank", "cat", *model_args])
    assert missing.code != 0 and "documents" in missing.err and "Traceback" not in missing.err


def test_eval_rerank_scores_the_ranking_it_makes(cli, model_args, suite, tmp_path):
    from nlpsuite.eval import ranking

    data = tmp_path / "judged.jsonl"
    rows = [
        {"query": "cat dog bird?", "documents": DOCS, "relevant": ["3"]},
        {"query": "café", "documents": [{"id": "x", "text": DOCS[4]}, {"id": "y", "text": DOCS[0]}], "relevant": ["x"]},
    ]
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    result = cli(["eval", "rerank", str(data), "--k", "3", "--json", *model_args])
    assert result.code == 0, result.err
    got = json.loads(result.out)["metrics"]
    ranked = []
    for r in rows:
        ids = [d["id"] if isinstance(d, dict) else str(i) for i, d in enumerate(r["documents"])]
        ranked.append([ids[x["index"]] for x in suite.run("rerank", r["query"], documents=r["documents"])])
    want = ranking.retrieval_scores(ranked, [dict.fromkeys(r["relevant"], 1.0) for r in rows], 3)
    assert got["ndcg@3"] == pytest.approx(want["ndcg@k"]) and got["mrr"] == pytest.approx(want["mrr"])


def test_search_rerank_reorders_the_first_hits(suite, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(DOCS * 2)))
    name = f"t-{uuid.uuid4().hex[:8]}"
    suite.index(name, [str(corpus)])
    try:
        plain = suite.run("search", "cat dog bird", name=name, k=10)
        reranked = suite.run("search", "cat dog bird", name=name, k=3, rerank=4)
        first = plain[:4]
        scores = suite.head("relevance").scores("cat dog bird", [h["text"] for h in first])
        order = sorted(range(4), key=lambda i: -scores[i])
        assert [h["text"] for h in reranked] == [first[i]["text"] for i in order][:3]
        assert [h["relevance"] for h in reranked] == [round(float(scores[i]), 4) for i in order][:3]
        deeper = suite.run("search", "cat dog bird", name=name, k=6, rerank=2)
        assert [h["text"] for h in deeper[2:]] == [h["text"] for h in plain[2:6]]  # past N: the first stage's order
    finally:
        from nlpsuite.retrieval import index

        index.remove(name)


def test_rerank_in_the_repl(suite, tmp_path):
    import io

    from nlpsuite.cli.repl import ChatRepl
    from nlpsuite.runtime.sampling import SamplingParams

    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(DOCS), encoding="utf-8")
    script = io.StringIO(f"/task rerank --documents {docs} --top-n 2 --return-documents false\ncat dog bird?\n")
    repl = ChatRepl(suite, SamplingParams(max_tokens=4), json=True, stdin=script, stdout=(shown := io.StringIO()))
    repl.run()
    want = suite.run("rerank", "cat dog bird?", documents=DOCS, top_n=2, return_documents=False)
    assert json.loads(shown.getvalue().splitlines()[-1])["results"] == want
