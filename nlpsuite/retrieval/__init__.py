"""Retrieval: index documents as passages (embeddings + BM25) and search them with fused scores.

``add`` and ``search`` take a Suite: its tokenizer cuts passages, its embedding head
embeds them, so an index belongs to the model that built it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import NlpsuiteError
from ..records import Progress
from ..text import blank, chunk
from . import index
from .documents import Document, read_documents
from .fusion import score_mix

MAX_TOKENS = 160  # passage length: long enough for a paragraph, short enough that one topic dominates
OVERLAP_TOKENS = 32
EMBED_SLICE = 64  # passages per progress step
DENSE_WEIGHT = 0.7  # tuned on STS-B dev used as a search (0.5-0.9 tried; RRF lost): see fusion.py

Embed = Callable[[list[str], Progress | None], np.ndarray]  # passages -> unit vectors, one row each, in order


def model_identity(suite) -> dict:
    """What an index records about the model that embedded it; searching needs the same."""
    embedder = suite.head("embedding")
    return {
        "key": suite.source.key,
        "precision": suite.precision,
        "embedding": getattr(embedder, "kind", type(embedder).__name__),
    }


def _embed(suite, texts: list[str], progress: Progress | None) -> np.ndarray:
    embedder = suite.head("embedding")
    order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths share a batch: less padding
    out = None
    for start in range(0, len(texts), EMBED_SLICE):
        rows = order[start : start + EMBED_SLICE]
        vectors = embedder([texts[i] for i in rows])
        if out is None:
            out = np.empty((len(texts), vectors.shape[1]), np.float32)
        out[rows] = vectors
        if progress:
            progress(len(rows), len(texts))
    return out


def add(suite, name: str, paths: list[str | Path], progress: Progress | None = None, wait: bool = False) -> dict:
    """Add (or replace, when their text changed) the documents under ``paths``; returns counts. Another process
    adding to the index at the same time is refused, or with ``wait`` waited for."""
    index.index_dir(name)  # a bad name fails before any reading
    return add_documents(suite, name, read_documents(paths), progress, wait=wait)


def add_documents(
    suite,
    name: str,
    docs: list[Document],
    progress: Progress | None = None,
    embed: Embed | None = None,
    wait: bool = False,
) -> dict:
    """``add`` for documents already read (see ``read_documents``); ``embed`` replaces the suite's own
    embedding of the new passages (e.g. on a cluster), while the passages and the index stay here."""
    model = model_identity(suite)
    max_tokens = min(MAX_TOKENS, suite.backbone.context_length)
    overlap = min(OVERLAP_TOKENS, max_tokens // 4)
    count = suite.tokenizer.count

    counts: dict = {}

    def change(current):
        known = current.documents if current else {}
        changed = [d for d in docs if known.get(d.source, {}).get("sha256") != d.sha256]
        replaced = {d.source for d in changed if d.source in known}  # a file emptied since is dropped
        keep = [i for i, p in enumerate(current.passages) if p["source"] not in replaced] if current else []
        passages = [current.passages[i] for i in keep] if current else []
        documents = {s: v for s, v in known.items() if s not in replaced}
        new = []
        for doc in changed:
            pieces = chunk(doc.text, count, max_tokens, overlap, markdown=True)
            new += [{"source": doc.source, "text": p.text, "start": p.start, "end": p.end} for p in pieces]
            if pieces:
                documents[doc.source] = {"sha256": doc.sha256, "passages": len(pieces)}
        if not passages and not new:
            raise NlpsuiteError("nothing to index: the documents hold no text")
        counts.update(
            added=sum(d.source not in known and d.source in documents for d in changed),
            updated=len(replaced),
            unchanged=len(docs) - len(changed),
            empty=sum(blank(d.text) for d in docs),
            passages_added=len(new),
            passages_removed=(len(current.passages) - len(keep)) if current else 0,
        )
        if current and not changed:
            return None
        embeddings = current.embeddings[keep] if current else None
        if new:
            texts = [p["text"] for p in new]
            vectors = embed(texts, progress) if embed else _embed(suite, texts, progress)
            embeddings = vectors if embeddings is None or not len(embeddings) else np.vstack([embeddings, vectors])
        return passages + new, embeddings, documents

    manifest = index.update(name, model, change, wait)
    return {"index": name, "documents": manifest["documents"], "passages": manifest["passages"], **counts}


def search(suite, name: str, queries: list[str], k: int = 5) -> list[list[dict]]:
    """The ``k`` best passages for each query, best first: ``{"source", "text", "score", ...}``."""
    if k < 1:
        raise NlpsuiteError("k must be at least 1")
    if not queries or any(not isinstance(q, str) or blank(q) for q in queries):
        raise NlpsuiteError("empty query")
    found = index.load(name)
    index.check_model(found.manifest, name, model_identity(suite))
    dense = suite.head("embedding")(queries) @ found.embeddings.T
    results = []
    for row, query in enumerate(queries):
        sparse = found.bm25_scores(query)
        fused = score_mix(dense[row], sparse, DENSE_WEIGHT)
        best = np.argsort(-fused, kind="stable")[:k]
        results.append(
            [
                {
                    "source": found.passages[i]["source"],
                    "text": found.passages[i]["text"],
                    "score": round(float(fused[i]), 4),
                    "start": found.passages[i]["start"],
                    "end": found.passages[i]["end"],
                    "dense": round(float(dense[row, i]), 4),
                    "bm25": round(float(sparse[i]), 4),
                }
                for i in best
            ]
        )
    return results


__all__ = ["add", "add_documents", "read_documents", "search", "model_identity", "index"]
