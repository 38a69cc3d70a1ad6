"""The relevance candidates side by side, on the first N hits of each query of a judged set: the query-likelihood
gain (what the relevance head ships), a yes/no label (P(" yes") - P(" no") after the passage, the query and "Does
the passage answer the question?"), and the search's own order. Both candidates come from one pass per query:
the question follows the query in the same rows.

    python benchmarks/quality_rerank_candidates.py sets/debian-faq.docs.jsonl sets/debian-faq.queries.jsonl --hits 5
    python benchmarks/quality_rerank_candidates.py --score dump.json      # the table again from a dump

Writes every query's raw scores to ``--dump`` as it goes (a long run can be scored part-way).
"""

from __future__ import annotations

import argparse
import json
import random
import uuid
from pathlib import Path

import numpy as np
from harness import RESULTS, show

QUESTION = "\nDoes the passage answer the question? Answer:"


def measure(args) -> list[dict]:
    from nlpsuite.api import Suite
    from nlpsuite.heads.relevance import CONTENT_FREE
    from nlpsuite.numeric import log_softmax
    from nlpsuite.retrieval import index
    from nlpsuite.runtime.backbone import left_pad

    suite = Suite()
    head, tok, backbone = suite.head("relevance"), suite.tokenizer, suite.backbone
    enc = lambda text: tok.encode(text, add_special_tokens=False)  # noqa: E731
    yes, no = enc(" yes")[0], enc(" no")[0]
    queries = [json.loads(line) for line in args.queries.read_text().splitlines() if line.strip()]
    random.Random(args.seed).shuffle(queries)
    name = f"bench-candidates-{uuid.uuid4().hex[:8]}"
    suite.index(name, [args.docs])
    dump = []
    try:
        for q in queries[: args.limit]:
            hits = suite.search(name, q["query"], k=args.hits)
            query_ids, question = enc(" " + q["query"].strip()), enc(QUESTION)
            rows = [head.prompt(p) + query_ids + question for p in [CONTENT_FREE] + [h["text"] for h in hits]]
            ids, mask, positions = left_pad(rows, tok.pad_token_id)
            step = backbone.forward(ids, mask, positions, backbone.empty_state(len(rows)),
                                    num_logits=len(query_ids) + len(question) + 1, want_state=False)  # fmt: skip
            logp = log_softmax(step.logits)
            likelihood = logp[:, np.arange(len(query_ids)), query_ids].sum(axis=1)
            gain = (likelihood[1:] - likelihood[0]) / len(query_ids)
            label = logp[1:, -1, yes] - logp[1:, -1, no]
            dump.append({"query": q["query"], "relevant": q["relevant"], "sources": [str(h["source"]) for h in hits],
                         "gain": gain.tolist(), "yes_no": label.tolist()})  # fmt: skip
            args.dump.write_text(json.dumps(dump))
            print(f"{len(dump)}/{min(len(queries), args.limit or len(queries))}", flush=True)
    finally:
        index.remove(name)
    return dump


def table(dump: list[dict], k: int) -> None:
    from nlpsuite.eval import ranking

    judged = [dict.fromkeys(d["relevant"], 1.0) for d in dump]
    rows = []
    for label, key in (("search", None), ("query-likelihood gain", "gain"), ("yes/no label", "yes_no")):
        ranked = []
        for d in dump:
            order = range(len(d["sources"])) if key is None else np.argsort(-np.array(d[key]), kind="stable")
            ranked.append(list(dict.fromkeys(d["sources"][i] for i in order)))
        found = ranking.retrieval_scores(ranked, judged, k)
        rows.append((label, f"{found['ndcg@k']:.4f}", f"{found['mrr']:.4f}"))
    show(f"relevance candidates on {len(dump)} queries", ["ranking", f"nDCG@{k}", f"MRR@{k}"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("docs", type=Path, nargs="?")
    parser.add_argument("queries", type=Path, nargs="?")
    parser.add_argument("--hits", type=int, default=20)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dump", type=Path, default=RESULTS / "rerank_candidates.json")
    parser.add_argument("--score", type=Path, help="a dump written earlier: print its table")
    args = parser.parse_args()
    args.dump.parent.mkdir(parents=True, exist_ok=True)
    table(json.loads(args.score.read_text()) if args.score else measure(args), args.k)


if __name__ == "__main__":
    main()
