"""Built-in plugin: the `search` task (`nlpsuite search NAME QUERY`): passages of an index that best match."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

from nlpsuite.errors import NlpsuiteError
from nlpsuite.hookspecs import hookimpl
from nlpsuite.records import documents, judgements_column
from nlpsuite.tasks import Eval, Input, Option, Task

# The retrieval package (numpy, BM25) and the metrics are imported where they are used: registering the task
# happens in every process (start-up time), running it only in some.


def run(suite, inputs, name: str, k: int = 5, rerank: int | None = None):
    found = hits(suite, name, [i["query"] for i in inputs], k, rerank)
    return [{"index": name, "query": i["query"], "results": r} for i, r in zip(inputs, found, strict=True)]


def hits(suite, name: str, queries: list[str], k: int, rerank: int | None = None) -> list[list[dict]]:
    """The ``k`` best passages per query; with ``rerank``, the first ``rerank`` hits re-ordered by the relevance
    head (each then holds its ``relevance``) before the cut."""
    found = suite.search(name, list(queries), max(k, rerank or 0))
    if not rerank:
        return found
    head = suite.head("relevance")
    out = []
    for query, passages in zip(queries, found, strict=True):
        first, rest = passages[:rerank], passages[rerank:]
        scores = head.scores(query, [p["text"] for p in first])
        ranked = [
            {**first[i], "relevance": round(float(scores[i]), 4)}
            for i in sorted(range(len(first)), key=lambda i: -scores[i])
        ]
        out.append((ranked + rest)[:k])
    return out


def _index_exists(options: dict, shared: dict, batch: bool) -> None:
    if options.get("name"):
        from nlpsuite.retrieval import index

        index.load(options["name"])  # a missing index fails before the model loads


# -- evaluation: the --docs corpus in an index of its own while the queries run ---------------------------


def _docs_known(gold: list[dict], options: dict, path) -> dict:
    docs = documents(options["docs"])
    unknown = sorted({doc for judged in gold for doc in judged} - set(docs))
    if unknown:
        raise NlpsuiteError(f"{path}: relevant ids not in {options['docs']}: {', '.join(unknown[:5])}")
    return options


def remove_index(name: str) -> None:
    from nlpsuite.retrieval import index

    index.remove(name)


@contextlib.contextmanager
def _temporary_index(suite, options: dict):
    name = f"eval-{uuid.uuid4().hex[:12]}"
    try:
        suite.index(name, [options["docs"]])  # a JSONL of {"id", "text"}: each passage's source is its document's id
        yield {**options, "name": name}
    finally:
        remove_index(name)


def _ranked(suite, inputs: list[dict], options: dict) -> list[list[str]]:
    """Document ids in the order search ranks them; a document's passages count once."""
    out = []
    for query in (i["query"] for i in inputs):
        want = options["k"] * 4
        while True:
            passages = hits(suite, options["name"], [query], want, options.get("rerank"))[0]
            found = list(dict.fromkeys(str(hit["source"]) for hit in passages))
            if len(found) >= options["k"] or len(passages) < want:  # enough documents, or the index has no more
                break
            want *= 2
        out.append(found[: options["k"]])
    return out


def _score(predictions: list[list[str]], gold: list[dict], options: dict) -> dict:
    from nlpsuite.eval import ranking

    return ranking.retrieval_report(predictions, gold, options["k"])


EVAL = Eval(
    "retrieval",
    {"query": "query"},
    "relevant",
    _score,
    read_gold=judgements_column,
    predict=_ranked,
    prepare=_docs_known,
    setup=_temporary_index,
    options=(
        Option("docs", Path, None, "JSONL of documents ('id', 'text') to search.", required=True),
        Option("k", int, 10, "Rank cut-off for recall@k, MRR and nDCG@k.", min=1),
    ),
    sets=("name",),
)


@hookimpl
def register_tasks(register):
    register(
        Task(
            "search",
            "Search an index: the passages that best match the query (dense embeddings fused with BM25).",
            "embedding",
            run,
            inputs=(Input("query", "The query"),),
            options=(
                Option("name", str, None, "The index's name.", required=True, argument=True, label="Search index"),
                Option("k", int, 5, "How many passages to return.", flag="--k", short="-k", min=1, label="Passages"),
                Option(
                    "rerank", int, None, "Re-order the first N hits by the model's relevance (slower, better).", min=1
                ),  # fmt: skip
            ),
            output=("results",),
            value="results",
            check=_index_exists,
            eval=EVAL,
            batch_size=16,
            progress_label="searching",
        )
    )
