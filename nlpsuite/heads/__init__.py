"""Heads: the ways a task reads the backbone (generation, label scoring, embedding, probe, span)."""
