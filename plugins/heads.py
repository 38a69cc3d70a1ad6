"""Built-in plugin: the label-scoring and embedding heads, for any task to use."""

from __future__ import annotations

from nlpsuite.hookspecs import hookimpl


def _scoring(suite):
    from nlpsuite.heads.scoring import LabelScorer

    return LabelScorer(suite)


def _embedding(suite):
    from nlpsuite.heads.embedding import Embedder

    return Embedder(suite)


@hookimpl
def register_heads(register):
    register("scoring", _scoring)
    register("embedding", _embedding)
