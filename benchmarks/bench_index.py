"""`index add` and `search` latency on a few thousand passages of real English text.

The text is the docstrings of the Python standard library that runs this script (read with `ast`, not
imported), one document per module, so every machine has it. Measures: adding them all to a fresh
index (chunking, embedding, BM25, writing), re-adding them unchanged, loading the index from disk in a
fresh state, and searching it (median and min–max over the queries).

    python benchmarks/bench_index.py [--passages 2000] [--out results/index.json]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from harness import out_option, save, show, spread, stats, stdlib_documents, timed

QUERIES = [
    "How do I parse command line arguments?",
    "read and write compressed gzip files",
    "What does the garbage collector do?",
    "split a string with a regular expression",
    "send an email message over SMTP",
    "convert a date to a timestamp in UTC",
    "run a function in a separate thread",
    "format a number with thousands separators",
    "compute the SHA-256 hash of a file",
    "copy a folder and everything in it",
    "serialize an object to JSON",
    "generate a random integer in a range",
    "open a TCP connection to a server",
    "measure how long a piece of code takes",
    "decode base64 data",
    "what is a context manager",
    "sort a list of dictionaries by a key",
    "create a temporary directory",
    "log a warning message",
    "iterate over all files under a folder",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--passages", type=int, default=2000)
    parser.add_argument("--k", type=int, default=5)
    out_option(parser, "index")
    args = parser.parse_args()

    from nlpsuite import Suite, retrieval
    from nlpsuite.retrieval import index

    suite = Suite(model=args.model, device="cpu")
    tok = suite.tokenizer
    suite.head("embedding")([QUERIES[0]])  # load the model before the clock starts

    def count(text: str) -> int:
        return len(tok.encode(text, add_special_tokens=False))

    name = f"bench-{int(time.time())}"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        stdlib_documents(folder, args.passages, count, retrieval.MAX_TOKENS)
        try:
            add_s, counts = timed(lambda: suite.index(name, [str(folder)]))
            readd_s, again = timed(lambda: suite.index(name, [str(folder)]))
            index._LOADED.clear()
            load_s, _loaded = timed(lambda: index.load(name))
            size = sum(p.stat().st_size for p in index.index_dir(name).rglob("*") if p.is_file())
            suite.search(name, QUERIES[0], k=args.k)  # warm-up
            search_s = [timed(lambda q=q: suite.search(name, q, k=args.k))[0] for q in QUERIES]
            batch_s, _ = timed(lambda: suite.search(name, QUERIES, k=args.k))
        finally:
            index.remove(name)
    assert again["unchanged"] == counts["documents"] and again["passages_added"] == 0
    ms = [s * 1000 for s in search_s]
    report = {
        "model": args.model,
        "documents": counts["documents"],
        "passages": counts["passages"],
        "index_add_s": round(add_s, 2),
        "passages_per_s": round(counts["passages"] / add_s, 1),
        "re_add_unchanged_s": round(readd_s, 3),
        "load_ms": round(load_s * 1000, 1),
        "index_mb": round(size / 1e6, 2),
        "search_ms": stats(ms, 1),
        "search_batch_ms_per_query": round(batch_s * 1000 / len(QUERIES), 1),
        "queries": len(QUERIES),
        "k": args.k,
    }
    title = f"{args.model}: {report['documents']} documents, {report['passages']} passages (stdlib docstrings)"
    rows = [
        ("index add (chunk + embed + BM25 + write)", f"{add_s:.1f} s ({report['passages_per_s']} passages/s)"),
        ("re-add, nothing changed", f"{readd_s * 1000:.0f} ms"),
        ("load from disk", f"{report['load_ms']} ms ({report['index_mb']} MB)"),
        (f"search, one query, k={args.k}", f"{spread(report['search_ms'], '.1f')} ms"),
        (f"search, {len(QUERIES)} queries in one call", f"{report['search_batch_ms_per_query']} ms per query"),
    ]
    show(title, ["measure", "value"], rows)
    save(report, args.out)


if __name__ == "__main__":
    main()
