"""Built-in plugin: the `rerank` task (`nlpsuite rerank QUERY --documents FILE|-`): documents ordered by how
relevant the model finds each to the query, with a relevance score from 0 to 1; and the `relevance` head it
runs on, which `search --rerank N` uses too."""

from __future__ import annotations

from nlpsuite import languages
from nlpsuite.errors import NlpsuiteError
from nlpsuite.hookspecs import hookimpl
from nlpsuite.records import document_list, judgements_column
from nlpsuite.tasks import Eval, Input, Option, Task


def _relevance_head(suite):
    from nlpsuite.heads.relevance import RelevanceHead

    return RelevanceHead(suite)


def rank(suite, query: str, documents, top_n: int | None = None, return_documents: bool = True) -> list[dict]:
    """``[{"index", "relevance_score", "document"?}]`` best first (ties keep the documents' order)."""
    docs = document_list(documents)
    scores = suite.head("relevance").scores(query, [text for _, text in docs])
    order = sorted(range(len(docs)), key=lambda i: -scores[i])[:top_n]
    results = []
    for i in order:
        result = {"index": i, "relevance_score": round(float(scores[i]), 4)}
        if return_documents:
            result["document"] = (
                {"text": docs[i][1]} if docs[i][0] == str(i) else {"id": docs[i][0], "text": docs[i][1]}
            )
        results.append(result)
    return results


def run(suite, inputs, top_n=None, return_documents=True):
    if any(i.get("documents") is None for i in inputs):
        raise NlpsuiteError("give the documents to rank: --documents FILE, or - for stdin")
    languages.check(suite, [i["query"] for i in inputs])
    return [{"query": i["query"], "results": rank(suite, i["query"], i["documents"], top_n, return_documents)}
            for i in inputs]  # fmt: skip


# -- evaluation: records of a query, its candidate documents and the relevant ones among them ---------------------


def _ranked(suite, inputs: list[dict], options: dict) -> list[list[str]]:
    """Document ids in the order rerank puts them."""
    out = []
    for i in inputs:
        ids = [doc for doc, _ in document_list(i["documents"])]
        out.append([ids[r["index"]] for r in rank(suite, i["query"], i["documents"], return_documents=False)])
    return out


def _score(predictions: list[list[str]], gold: list[dict], options: dict) -> dict:
    from nlpsuite.eval import ranking

    return ranking.retrieval_report(predictions, gold, options["k"])


EVAL = Eval(
    "rerank",
    {"query": "query", "documents": "documents"},
    "relevant",
    _score,
    read_gold=judgements_column,
    predict=_ranked,
    options=(Option("k", int, 10, "Rank cut-off for recall@k, MRR and nDCG@k.", min=1),),
)


@hookimpl
def register_heads(register):
    register("relevance", _relevance_head)


@hookimpl
def register_tasks(register):
    register(
        Task(
            "rerank",
            "Order documents by relevance to a query, best first, each with a relevance score from 0 to 1.",
            "relevance",
            run,
            inputs=(
                Input("query", "The query"),
                Input(
                    "documents", "The documents: one per line, JSONL of {text}, or a JSON list", file=True, many=True
                ),  # fmt: skip
            ),
            options=(
                Option("top_n", int, None, "Return only the N most relevant documents.", min=1),
                Option("return_documents", bool, True, "Give each document's text with its score."),
            ),
            output=("results",),
            value="results",
            eval=EVAL,
            batch_size=4,
            progress_label="reranking",
        )
    )
