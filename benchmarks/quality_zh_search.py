"""Chinese headline -> article search: "right article first" for the old English BM25 and the script-aware one.

The sets are the sections of two Debian packages written in Simplified Chinese, so any machine with Debian's
archive has them: each section title is a query, the section's text its article.

    apt-get download debian-faq-zh-cn debian-reference-zh-cn && for f in *.deb; do dpkg -x $f x; done
    zcat x/usr/share/doc/debian/FAQ/debian-faq.zh-cn.txt.gz > faq.txt
    zcat x/usr/share/debian-reference/debian-reference.zh-cn.txt.gz > ref.txt
    python benchmarks/quality_zh_search.py faq.txt ref.txt [--search]   # --search: the default model's fused search too

BM25 alone scores whole sections; ``--search`` indexes them with ``index add`` (passages, embeddings) and asks
``search`` with the dense part fused as it ships, and with the old BM25 in its place.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import uuid
from pathlib import Path

import numpy as np
from harness import out_option, save, show

HEADING = re.compile(r"^(\d+\.\d+(?:\.\d+)?)\. (\S.*)$")  # "1.2. 什么是 Debian？" at the start of a line
HAN = re.compile(r"[\u4e00-\u9fff]")


def sections(path: Path) -> list[dict]:
    """Sections with at least 2 Han characters in the title and 40 in the text, from section 1.1 on."""
    lines = path.read_text(encoding="utf-8").replace("\u00a0", " ").split("\n")
    first = max(i for i, line in enumerate(lines) if line.startswith("1.1. "))  # the table of contents is indented
    found, current = [], None
    for line in lines[first:]:
        heading = HEADING.match(line)
        if heading:
            current = {"id": heading.group(1), "title": heading.group(2).strip(), "lines": []}
            found.append(current)
        elif current is not None and not current["lines"] and line.strip() and not line.startswith(" "):
            current["title"] += line.strip()  # a title wrapped onto a second line
        elif current is not None:
            current["lines"].append(line.strip())
    out = []
    for s in found:
        text = re.sub(r"(?<=[^\x00-\x7f])\n(?=[^\x00-\x7f])", "", "\n".join(s["lines"]).strip())  # unwrap Chinese
        if len(HAN.findall(text)) >= 40 and len(HAN.findall(s["title"])) >= 2:
            out.append({"id": s["id"], "title": s["title"], "text": text})
    return out


def first_hits(rows: list[dict], score) -> int:
    hits = 0
    for i, row in enumerate(rows):
        scores = score(row["title"])
        hits += bool(scores.max() > 0 and int(np.argmax(scores)) == i)
    return hits


def bm25_alone(rows: list[dict]) -> dict:
    import bm25s

    from nlpsuite.retrieval import terms

    texts = [r["text"] for r in rows]
    old = bm25s.BM25()
    old.index(terms.legacy_terms(texts), show_progress=False)
    tokens, languages = terms.passage_terms(texts)
    new = bm25s.BM25()
    new.index(tokens, show_progress=False)

    def scorer(model, cut):
        def score(query):
            ids = [i for i in model.get_tokens_ids(cut(query)) if i != model.vocab_dict.get("")]
            return np.asarray(model.get_scores_from_ids(ids)) if ids else np.zeros(len(rows))

        return score

    return {
        "english BM25": first_hits(rows, scorer(old, lambda q: terms.legacy_terms([q])[0])),
        "script-aware BM25": first_hits(rows, scorer(new, lambda q: terms.query_terms(q, languages))),
    }


def full_search(rows: list[dict]) -> dict:
    import bm25s

    from nlpsuite import Suite
    from nlpsuite.retrieval import DENSE_WEIGHT, index, terms
    from nlpsuite.retrieval.fusion import score_mix

    suite, name = Suite(device="cpu"), f"zh-bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as folder:
        docs = Path(folder) / "docs.jsonl"
        lines = [json.dumps({"id": r["id"], "text": r["text"]}, ensure_ascii=False) for r in rows]
        docs.write_text("\n".join(lines) + "\n", encoding="utf-8")
        suite.index(name, [str(docs)])
    try:
        found = index.load(name)
        sources = [p["source"] for p in found.passages]
        old = bm25s.BM25()
        old.index(terms.legacy_terms([p["text"] for p in found.passages]), show_progress=False)
        dense = suite.head("embedding")([r["title"] for r in rows]) @ found.embeddings.T
        counts = dict.fromkeys(("search before", "search now"), 0)
        for i, r in enumerate(rows):
            ids = [t for t in old.get_tokens_ids(terms.legacy_terms([r["title"]])[0]) if t != old.vocab_dict.get("")]
            before = np.asarray(old.get_scores_from_ids(ids)) if ids else np.zeros(len(sources))
            for key, sparse in (("search before", before), ("search now", found.bm25_scores(r["title"]))):
                counts[key] += bool(sources[int(np.argmax(score_mix(dense[i], sparse, DENSE_WEIGHT)))] == r["id"])
        return {**counts, "passages": len(sources)}
    finally:
        index.remove(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("texts", nargs="+", type=Path, help="the packages' text files (faq.txt, ref.txt)")
    parser.add_argument("--search", action="store_true", help="also the default model's fused search (slow)")
    out_option(parser, "zh_search")
    args = parser.parse_args()
    results = []
    for path in args.texts:
        rows = sections(path)
        result = {"set": path.name, "queries": len(rows), **bm25_alone(rows)}
        if args.search:
            result.update(full_search(rows))
        results.append(result)
    columns = list(dict.fromkeys(k for r in results for k in r))
    show("headline -> article: right article first", columns, [[r.get(c, "") for c in columns] for r in results])
    save(results, args.out)


if __name__ == "__main__":
    main()
