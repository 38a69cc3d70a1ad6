"""`nlpsuite serve`: the OpenAI-compatible HTTP API, task endpoints generated from the task declarations, and a
small web page, over one backbone shared by continuous batching (runtime/batching.py)."""
