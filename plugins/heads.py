"""Built-in plugin: the label-scoring, embedding, span and probe heads, for any task to use."""

from __future__ import annotations

from nlpsuite.hookspecs import hookimpl


def _scoring(suite):
    from nlpsuite.heads.scoring import LabelScorer

    return LabelScorer(suite)


def _embedding(suite):
    from nlpsuite.heads.embedding import Embedder

    return Embedder(suite)


def _span(suite):
    from nlpsuite.heads.span import SpanHead

    return SpanHead(suite)


def _probe(suite):
    from nlpsuite.heads.probe import ProbeHead

    return ProbeHead(suite)


@hookimpl
def register_heads(register):
    register("scoring", _scoring)
    register("embedding", _embedding)
    register("span", _span)
    register("probe", _probe)
