"""Server-sent events for every streaming route: the response, its headers, and keep-alive comments.

A stream can sit silent for long: its request waits in the queue behind full rows, or its long prompt is being
prefilled. Proxies and load balancers cut a connection idle for a while (often 60 s), so while no event is ready
the stream sends an SSE comment (``: keep-alive``) every ``keepalive_s`` seconds; clients skip comments (the SSE
standard says so, and the official SDKs do).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator

from starlette.responses import StreamingResponse

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # proxies must not hold tokens back
KEEPALIVE = ": keep-alive\n\n"


def event(data: dict, name: str | None = None) -> str:
    """One SSE event: ``data`` as JSON, under the event ``name`` when given (the Responses API names each)."""
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n"


def response(events: AsyncGenerator[str, None], keepalive_s: float = 0) -> StreamingResponse:
    """``events`` as a text/event-stream, with a keep-alive comment after each ``keepalive_s`` of silence (0: off)."""
    body = kept_alive(events, keepalive_s) if keepalive_s > 0 else events
    return StreamingResponse(body, media_type="text/event-stream", headers=HEADERS)


async def kept_alive(events: AsyncGenerator[str, None], every: float) -> AsyncIterator[str]:
    """``events``, with ``KEEPALIVE`` whenever the next one takes longer than ``every`` seconds.

    The next event is awaited in a task of its own, so a keep-alive never interrupts ``events`` mid-step; when the
    client goes away (this generator is cancelled or closed), that task is cancelled, which ends ``events`` and runs
    its cleanup (a request's rows leave the batch)."""
    pending: asyncio.Task | None = None
    try:
        while True:
            pending = pending or asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait({pending}, timeout=every)
            if not done:
                yield KEEPALIVE
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield item
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
        else:  # ``events`` sits at a yield (or has ended): close it from a task, as this one may be cancelled
            _closing.add(task := asyncio.ensure_future(events.aclose()))
            task.add_done_callback(_closing.discard)


_closing: set[asyncio.Task] = set()  # closing tasks, referenced until they end
