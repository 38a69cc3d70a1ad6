"""``GET /metrics`` in Prometheus' text format (prometheus-client), one registry per server.

Requests are counted by route template and status (``/v1/batches/{batch_id}``, never the raw path: one series
per route, not per id); tokens, time to first token and the mean time between a reply's tokens come from the
engine's events; queue depth and running rows are read when scraped. Draft acceptance and prompt-cache hits
are fed by what the engine reports about each reply and each prefill.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5, 5, 10, 20, 40, 80)


class Metrics:
    """The series of one server; ``watch(ticket)`` follows a request's sequences as the engine reports them."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = Counter("nlpsuite_requests", "HTTP requests by route and status.", ["route", "status"],
                                registry=registry)  # fmt: skip
        self.prompt_tokens = Counter("nlpsuite_prompt_tokens", "Prompt tokens prefilled.", registry=registry)
        self.completion_tokens = Counter("nlpsuite_completion_tokens", "Tokens generated.", registry=registry)
        self.cached_tokens = Counter("nlpsuite_cached_prompt_tokens", "Prompt tokens taken from the prompt cache.",
                                     registry=registry)  # fmt: skip
        self.cache_lookups = Counter("nlpsuite_prompt_cache_lookups", "Prefills that asked the prompt cache.",
                                     registry=registry)  # fmt: skip
        self.cache_hits = Counter("nlpsuite_prompt_cache_hits", "Prefills that reused cached prompt state.",
                                  registry=registry)  # fmt: skip
        self.drafted = Counter("nlpsuite_draft_tokens", "Drafted tokens verified.", registry=registry)
        self.accepted = Counter("nlpsuite_draft_accepted_tokens", "Drafted tokens the model kept.", registry=registry)
        self.finished = Counter("nlpsuite_finished_sequences", "Replies finished, by reason.", ["reason"],
                                registry=registry)  # fmt: skip
        self.ttft = Histogram("nlpsuite_time_to_first_token_seconds", "From a sequence's arrival to its first text.",
                              buckets=LATENCY_BUCKETS, registry=registry)  # fmt: skip
        self.inter_token = Histogram("nlpsuite_inter_token_seconds", "Mean time between a reply's tokens.",
                                     buckets=LATENCY_BUCKETS, registry=registry)  # fmt: skip
        self.queue = Gauge("nlpsuite_queue_depth", "Sequences waiting to join the batch.", registry=registry)
        self.running = Gauge("nlpsuite_running_rows", "Sequences decoding in the batch.", registry=registry)
        self.jobs = Gauge("nlpsuite_jobs_waiting", "Task calls and embeddings waiting for their thread.",
                          registry=registry)  # fmt: skip

    def follow(self, engine) -> None:
        """Read the engine's load when scraped, and watch every request it takes from now on."""
        self.queue.set_function(lambda: engine.waiting)
        self.running.set_function(lambda: engine.active)
        self.jobs.set_function(lambda: engine.jobs_waiting)
        engine.watch = self.watch

    def watch(self, ticket) -> None:
        """Time the sequences of ``ticket`` through its events (called when the engine takes it)."""
        arrived = time.perf_counter()
        first: dict[int, float] = {}
        deliver = ticket.deliver

        def observed(event: tuple) -> None:
            index, kind, value = event
            now = time.perf_counter()
            if kind in ("text", "done") and index not in first:
                first[index] = now
                self.ttft.observe(now - arrived)
            if kind == "done":
                self.reply(value, now - first[index])
            deliver(event)

        ticket.deliver = observed

    def reply(self, completion, decoding_s: float) -> None:
        made = completion.completion_tokens
        self.prompt_tokens.inc(completion.prompt_tokens)
        self.completion_tokens.inc(made)
        self.finished.labels(completion.finish_reason).inc()
        if made > 1:
            self.inter_token.observe(decoding_s / (made - 1))
        self.drafted.inc(completion.drafted_tokens)
        self.accepted.inc(completion.accepted_tokens)
        cached = getattr(completion, "cached_tokens", None)  # reported by engines with a prompt cache
        if cached is not None:
            self.cache_lookups.inc()
            self.cached_tokens.inc(cached)
            if cached:
                self.cache_hits.inc()

    def count(self, scope: dict, status: int) -> None:
        self.requests.labels(route_of(scope), str(status)).inc()

    def response(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def route_of(scope: dict) -> str:
    """The route a request matched, as its template (``/v1/files/{file_id}``); "unmatched" for a 404."""
    if "endpoint" not in scope:
        return "unmatched"
    path = scope["path"]
    for name, value in sorted(scope.get("path_params", {}).items(), key=lambda kv: -len(str(kv[1]))):
        path = path.replace(f"/{value}", f"/{{{name}}}", 1)
    return path
