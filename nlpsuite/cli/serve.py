"""`nlpsuite serve`: the HTTP server (nlpsuite/serve/) with its options; nothing here but parsing."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import NlpsuiteError
from . import options as opt


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind; other than loopback needs --api-key.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="NLPSUITE_API_KEY", show_envvar=True, help="Require 'Bearer KEY'."),
    ] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Allow a non-loopback --host without a key.")] = False,
    model: opt.Model = None,
    device: opt.Device = "auto",
    precision: opt.Precision = "fp32",
    max_batch: Annotated[int, typer.Option("--max-batch", help="Most sequences decoding together.")] = 16,
    max_queue: Annotated[int, typer.Option("--max-queue", help="Most requests waiting; more get 429.")] = 64,
    cache_mb: opt.CacheMb = None,
    prefill_chunk: opt.PrefillChunk = None,
    max_body_mb: Annotated[float, typer.Option("--max-body-mb", help="Largest request body, in MiB.")] = 4.0,
    drain_seconds: Annotated[
        float, typer.Option("--drain-seconds", help="On SIGTERM, how long requests in flight may finish.")
    ] = 30.0,
    json: Annotated[bool, typer.Option("--json", help="Log one JSON object per line, for machines.")] = False,
    metrics_public: Annotated[
        bool, typer.Option("--metrics-public", help="Serve GET /metrics without the API key.")
    ] = False,
    keepalive_s: Annotated[
        float, typer.Option("--keepalive-s", help="While a stream waits, send an SSE comment this often (0 = off).")
    ] = 15.0,
) -> None:
    """Serve the model over HTTP: an OpenAI-compatible API, every task at /v1/tasks/NAME, a web page at /."""
    from ..serve.app import ServeConfig
    from ..serve.server import check_exposure, is_loopback
    from ..serve.server import serve as run

    for name, value, low in (("--port", port, 0), ("--max-batch", max_batch, 1), ("--max-queue", max_queue, 1)):
        if value < low or (name == "--port" and value > 65535):
            raise NlpsuiteError(f"{name} must be {'0 to 65535' if name == '--port' else f'at least {low}'}")
    if not max_body_mb > 0 or not drain_seconds >= 0 or not keepalive_s >= 0:
        raise NlpsuiteError("--max-body-mb must be positive, and --drain-seconds and --keepalive-s not negative")
    if (cache_mb is not None and not cache_mb >= 0) or (prefill_chunk is not None and prefill_chunk < 1):
        raise NlpsuiteError("--cache-mb must be 0 (off) or more, and --prefill-chunk at least 1")
    check_exposure(host, api_key, insecure)
    config = ServeConfig(
        model=model,
        device=device,
        precision=precision,
        api_key=api_key or None,
        max_batch=max_batch,
        max_queue=max_queue,
        cache_mb=cache_mb,
        prefill_chunk=prefill_chunk,
        max_body=int(max_body_mb * 1024 * 1024),
        drain_s=drain_seconds,
        loopback_only=is_loopback(host),
        host=host,
        metrics_public=metrics_public,
        keepalive_s=keepalive_s,
    )
    run(config, host, port, json_logs=json)
