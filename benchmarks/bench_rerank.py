"""`search` against `search --rerank N` on a retrieval set with judged passages: nDCG@k, MRR@k and recall@k of
each, and what reranking costs per query (wall seconds, median and min-max).

The sets come from benchmarks/make_rerank_sets.py (the Python FAQ is the held-out one). The queries run in a fixed
random order, so the first ``--limit`` of them are a fair sample; each query's rankings are written to
``--trace`` as they come (a long run's partial results can be scored with ``--score TRACE``).

    python benchmarks/bench_rerank.py sets/python-faq.docs.jsonl sets/python-faq.queries.jsonl --rerank 20
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import uuid
from pathlib import Path

from harness import RESULTS, out_option, save, show, spread, stats


def score(trace: list[dict], k: int) -> dict:
    from nlpsuite.eval import ranking

    judged = [dict.fromkeys(t["relevant"], 1.0) for t in trace]
    out = {"queries": len(trace)}
    for name in ("search", "rerank"):
        found = ranking.retrieval_scores([t[name] for t in trace], judged, k)
        out[name] = {f"ndcg@{k}": round(found["ndcg@k"], 4), f"mrr@{k}": round(found["mrr"], 4),
                     f"recall@{k}": round(found["recall@k"], 4)}  # fmt: skip
    costs = [t["rerank_s"] for t in trace]
    out["rerank_s_per_query"] = stats(costs, 2)
    out["search_s_per_query"] = round(statistics.median(t["search_s"] for t in trace), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("docs", type=Path, nargs="?")
    parser.add_argument("queries", type=Path, nargs="?")
    parser.add_argument("--rerank", type=int, default=20)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0, help="the order the queries run in")
    parser.add_argument("--trace", type=Path, default=RESULTS / "rerank_trace.jsonl")
    parser.add_argument("--score", type=Path, help="score a trace written earlier instead of running")
    out_option(parser, "rerank")
    args = parser.parse_args()
    if args.score:
        trace = [json.loads(line) for line in args.score.read_text().splitlines() if line.strip()]
    else:
        trace = run(args)
    result = {"k": args.k, "rerank": args.rerank, **score(trace, args.k)}
    k = args.k
    rows = [
        (name if name == "search" else f"--rerank {args.rerank}",
         *(f"{result[name][f'{m}@{k}']:.4f}" for m in ("ndcg", "mrr", "recall")))
        for name in ("search", "rerank")
    ]  # fmt: skip
    title = (f"{result['queries']} queries; reranking {spread(result['rerank_s_per_query'])} s per query; "
             f"search alone {result['search_s_per_query']} s")  # fmt: skip
    show(title, ["", f"nDCG@{k}", f"MRR@{k}", f"recall@{k}"], rows)
    save(result, args.out)


def run(args) -> list[dict]:
    from nlpsuite_plugins.retrieval import _ranked

    from nlpsuite.api import Suite
    from nlpsuite.retrieval import index

    suite = Suite()
    queries = [json.loads(line) for line in args.queries.read_text().splitlines() if line.strip()]
    random.Random(args.seed).shuffle(queries)
    queries = queries[: args.limit]
    name = f"bench-rerank-{uuid.uuid4().hex[:8]}"
    suite.index(name, [args.docs])
    args.trace.parent.mkdir(parents=True, exist_ok=True)
    trace = []
    try:
        suite.head("relevance")  # built before the clock starts
        with open(args.trace, "w", encoding="utf-8") as out:
            for n, q in enumerate(queries, start=1):
                options = {"name": name, "k": args.k}
                started = time.perf_counter()
                (plain,) = _ranked(suite, [q], options)
                middle = time.perf_counter()
                (reranked,) = _ranked(suite, [q], {**options, "rerank": args.rerank})
                done = time.perf_counter()
                row = {"query": q["query"], "relevant": q["relevant"], "search": plain, "rerank": reranked,
                       "search_s": middle - started, "rerank_s": (done - middle) - (middle - started)}  # fmt: skip
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                out.flush()
                trace.append(row)
                print(f"{n}/{len(queries)} {row['rerank_s']:.1f} s", flush=True)
    finally:
        index.remove(name)
    return trace


if __name__ == "__main__":
    main()
