"""Heads: the ways a task reads the backbone (generation now; scoring, embedding, probe, span later)."""
